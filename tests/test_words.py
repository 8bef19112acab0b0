"""Words a person reads instead of code: metric names, per-class export names, a simulated
version's label."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.metrics.keys import LOWER_IS_BETTER, TRAIN_KEYS, per_class_key, slice_key
from core.metrics.names import METRIC_NAMES, class_labels, export_name, metric_name
from core.metrics.summaries import SUMMARY_KEYS
from core.report.exports import metrics_csv, metrics_frame, metrics_parquet
from core.simulate.recipe import Recipe
from core.simulate.versions import save_simulated
from core.store import Store

FASHION = ["T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def test_every_stored_metric_has_words():
    for key in (*SUMMARY_KEYS, *TRAIN_KEYS, *LOWER_IS_BETTER, "temperature", "abstain_coverage", "abstain_risk"):
        words = metric_name(key)
        assert key in METRIC_NAMES and "_" not in words, key
    assert metric_name("macro_f1") == "macro-F1"
    assert metric_name("ece_tail") == "ECE of tail classes"


def test_per_class_and_per_slice_names():
    assert metric_name(per_class_key("recall", 7), FASHION) == "recall of sneaker"
    assert metric_name("f1/2") == "F1 of class 2"  # no class names given
    assert metric_name(per_class_key("precision", 12), FASHION) == "precision of class 12"  # beyond the names
    assert metric_name(slice_key("domain", "tweets", "hallucination_rate")) == "hallucination rate @τ on domain = tweets"
    assert metric_name("some_new_thing") == "some new thing"


def test_class_labels_add_the_index_only_where_names_collide():
    assert class_labels(FASHION) == FASHION
    assert class_labels(["cat", "dog", "cat", 3]) == ["cat (0)", "dog", "cat (2)", "3"]


def test_export_names():
    labels = class_labels(FASHION)
    assert export_name("recall/7", labels) == "recall/sneaker"
    assert export_name("offset/0", labels) == "offset/T-shirt/top"
    assert export_name("recall/10", labels) == "recall/10"  # no such class: as stored
    assert export_name("macro_f1", labels) == "macro_f1"
    assert export_name("slice/domain=a/accuracy", labels) == "slice/domain=a/accuracy"


def _store_with_metrics(home, class_names: list[str]) -> tuple[Store, int]:
    store = Store(home)
    k = len(class_names)
    ds = Dataset(
        "tiny", "text", np.array([f"t{i}" for i in range(2 * k)], dtype=object), list(range(k)) * 2, class_names, [0] * k + [2] * k
    )
    vid = store.save_dataset(ds, source="test")
    run = store.create_run(vid, {}, name="baseline")
    values = {per_class_key("recall", c): 0.5 + c / 100 for c in range(k)} | {"macro_f1": 0.7}
    assert store.add_metrics(run, 10, "test", values, epoch=1.0)
    return store, run


def test_metrics_exports_name_classes(home):
    store, run = _store_with_metrics(home, ["sneaker", "cat", "dog", "cat"])
    frame = metrics_frame(store, [run])
    assert frame.set_index("name")["value"].to_dict() == pytest.approx(
        {"recall/sneaker": 0.50, "recall/cat (1)": 0.51, "recall/dog": 0.52, "recall/cat (3)": 0.53, "macro_f1": 0.7}
    )
    csv = pd.read_csv(io.BytesIO(metrics_csv(store, [run])))
    parquet = pd.read_parquet(io.BytesIO(metrics_parquet(store, [run])))
    assert list(csv["name"]) == list(parquet["name"]) == list(frame["name"])


def test_a_simulated_version_says_simulated_once(home):
    store = Store(home)
    ds = Dataset(
        "Digits", "text", np.array([f"t{i}" for i in range(40)], dtype=object), [i % 2 for i in range(40)], ["a", "b"], [0] * 30 + [2] * 10
    )
    vid = store.save_dataset(ds, source="test")
    child = save_simulated(store, vid, Recipe(imbalance="long_tail", ratio=10.0))
    assert store.version(child).label == f"Digits · v{child} (simulated: long tail ×10 (seed 0))"
