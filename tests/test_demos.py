"""The built-in demos: real data, exact counts, stored once."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import assets, demos
from tests.conftest import needs_asset


def test_digits_demo_is_always_there_and_imports_once(store):
    assert demos.available("digits")
    v1 = demos.import_demo(store, "digits")
    assert demos.import_demo(store, "digits") == v1  # idempotent
    ds = store.load_dataset(v1)
    assert ds.items.shape == (1797, 8, 8) and ds.items.dtype == np.uint8 and ds.items.max() == 255
    assert np.bincount(ds.labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


@needs_asset("fashion-mnist")
def test_fashion_mnist_counts_and_splits():
    ds = demos.load_fashion_mnist().dataset
    assert ds.items.shape == (70_000, 28, 28) and ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert np.bincount(ds.split).tolist() == [55_000, 5_000, 10_000]  # test as shipped; val = 1/12 of train
    assert np.bincount(ds.labels[ds.split == 0]).tolist() == [5_500] * 10


@needs_asset("vader")
def test_vader_keeps_every_rater_and_domain():
    ds = demos.load_vader().dataset
    assert len(ds) == 23_703 and ds.class_names == ["negative", "neutral", "positive"]
    assert np.bincount(ds.labels).tolist() == [10_849, 383, 12_471]
    assert ds.meta["domain"].value_counts().to_dict() == {
        "movie reviews": 10_605,
        "NYT editorials": 5_190,
        "tweets": 4_200,
        "product reviews": 3_708,
    }
    first = ds.meta.iloc[0]
    ratings = np.array(first["ratings"].split(","), dtype=int)
    assert len(ratings) == first["n_raters"] and abs(ratings.mean() - first["mean_rating"]) < 1e-6
    assert 0 <= ds.meta["agreement"].min() and ds.meta["agreement"].max() == 1
    # every split has every domain (split is stratified by label × domain)
    for code in range(3):
        assert ds.meta["domain"][ds.split == code].nunique() == 4


@needs_asset("mnist-5k")
def test_mnist_5k():
    ds = demos.load_mnist_5k().dataset
    assert ds.items.shape == (5_000, 28, 28) and np.bincount(ds.labels).tolist() == [500] * 10


def test_assets_are_pinned_and_verified():
    for key, asset in assets.ASSETS.items():
        assert asset.files, key
        for rel, (_, sha) in asset.files.items():
            assert len(sha) == 64 and rel.startswith(key + "/")
        if asset.source != "debian":
            assert len(asset.archive_sha256) == 64


def test_a_tampered_asset_is_not_ready(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPSCOPE_ASSETS", str(tmp_path / "assets"))
    assert not assets.is_ready("vader")
    rel = next(iter(assets.ASSETS["mnist-5k"].files))
    (tmp_path / "assets" / rel).parent.mkdir(parents=True)
    (tmp_path / "assets" / rel).write_bytes(b"not the real file")
    assert not assets.is_ready("mnist-5k")
    with pytest.raises(assets.AssetError, match=r"Run `python -m core\.data\.assets fetch`"):
        assets.asset_path("mnist-5k")  # a tampered asset is never handed out


@needs_asset("census-income")
def test_census_income_draws_each_year_and_keeps_the_fairness_columns():
    ds = demos.load_census_income().dataset
    assert len(ds) == 40_000 and ds.modality == "tabular" and ds.class_names == ["50k or less", "more than 50k"]
    assert ds.meta["year"].value_counts().to_dict() == {1994: 20_000, 1995: 20_000}
    assert list(ds.meta.columns) == demos.CENSUS_META
    assert {"sex", "race", "age"} <= set(ds.items.columns) and not {"year", "instance_weight", "income"} & set(ds.items.columns)
    assert set(ds.meta["sex"]) == {"Female", "Male"} and ds.meta["race"].nunique() == 5
    assert 0.05 < ds.labels.mean() < 0.08  # about 6 % earn more than $50k
    assert set(np.unique(ds.split)) == {0, 1, 2}  # UCI's train / test, val carved from train
    assert ds.items["age"].equals(ds.meta["age"])
