"""core.train.apply: a finished run's model on items it never saw gives what the run itself gave.

Each run's own test items, handed back as a new target, must get the probabilities the run
stored for them at its result — through every input path (image, table, text, linear probe).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.errors import DataError
from core.metrics.results import RunResults
from core.store import RunFiles
from core.train.apply import apply_run
from tests.conftest import needs_asset
from tests.test_train import _digits, _run

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def stored_test_probs(store, run_id: int, home) -> tuple[np.ndarray, np.ndarray]:
    res = RunResults(store, run_id)
    ds = store.load_dataset(res.row.version_id)
    rows, probs = RunFiles(run_id, home=home).heldout_probs(len(ds.class_names), split="test", step=res.result_step)
    return rows, probs


def check_matches(store, run_id: int, home, *, atol: float = 1e-5) -> None:
    ds = store.load_dataset(store.run(run_id).version_id)
    rows, expected = stored_test_probs(store, run_id, home)
    target = ds.subset(rows)
    got = apply_run(store, run_id, target)
    full = np.zeros((len(rows), len(ds.class_names)))
    full[:, got.classes] = got.probs
    np.testing.assert_allclose(full, expected, atol=atol)
    assert got.labels_as_model_classes(target.labels).tolist() == [got.classes.tolist().index(y) for y in target.labels]


def test_an_image_run_on_its_own_test_items_gives_its_stored_probabilities(store, home):
    run_id, status = _run(store, version_id=_digits(store))
    assert status == "finished"
    check_matches(store, run_id, home)
    with pytest.raises(DataError, match="trained on image data"):
        apply_run(store, run_id, Dataset("t", "text", np.array(["a"] * 3, dtype=object), np.zeros(3, int), ["x"], np.zeros(3, np.int8)))


def test_a_table_run_encodes_a_target_with_its_own_train_encoding(store, home):
    from sklearn.datasets import load_iris

    from core.data.splits import stratified_split

    iris = load_iris(as_frame=True)
    y = iris.target.to_numpy()
    df = iris.data.assign(kind=np.where(y == 0, "a", "b"))
    ds = Dataset("iris", "tabular", df, y, list(iris.target_names), stratified_split(y, val=0.2, test=0.2))
    vid = store.save_dataset(ds, source="upload:iris.csv")
    run_id, status = _run(store, version_id=vid, model="auto", epochs=10, batch_size=16, lr=1e-2)
    assert status == "finished"
    check_matches(store, run_id, home)
    # a target's own statistics do not move its encoding: the first test row alone gets the same answer
    rows, expected = stored_test_probs(store, run_id, home)
    one = apply_run(store, run_id, store.load_dataset(vid).subset(rows[:1]))
    np.testing.assert_allclose(one.probs[0], expected[0][one.classes], atol=1e-5)
    with pytest.raises(DataError, match="lacks the column"):
        apply_run(store, run_id, Dataset("t", "tabular", pd.DataFrame({"kind": ["a"] * 3}), np.zeros(3, int), ["x"], np.zeros(3, np.int8)))


@needs_asset("minilm")
def test_text_runs_fine_tuned_and_linear_probe_give_their_stored_probabilities(store, home, tmp_path):
    from core.data.splits import stratified_split
    from tests.test_models import tiny_bert_dir

    texts = ["great film, loved it", "terrible, a waste of time", "wonderful and moving", "awful acting, boring"] * 10
    labels = np.arange(len(texts)) % 2 ^ 1
    split = stratified_split(labels, val=0.25, test=0.25, seed=0)
    vid = store.save_dataset(
        Dataset("reviews", "text", np.array(texts, dtype=object), labels, ["neg", "pos"], split), source="upload:r.csv"
    )
    folder = tiny_bert_dir(tmp_path / "bert")
    for finetune in ("full", "linear_probe"):
        run_id, status = _run(store, version_id=vid, model=str(folder), finetune=finetune, epochs=2, batch_size=8)
        assert status == "finished", store.run(run_id).message
        check_matches(store, run_id, home, atol=1e-4)


def test_a_run_on_a_target_gets_estimates_with_the_truth_beside_them(store, home):
    from core.shift.made import corrupt_images
    from core.shift.target import run_on_target, run_val_probs

    run_id, status = _run(store, version_id=_digits(store), epochs=4)
    assert status == "finished"
    ds = store.load_dataset(store.run(run_id).version_id)
    val_probs, val_labels, classes = run_val_probs(store, run_id)
    assert val_probs.shape == (int((ds.split == 1).sum()), len(classes)) and (val_labels >= 0).all()
    test = ds.subset(ds.split == 2)
    same = run_on_target(store, run_id, test).estimate
    stored = store.metrics(run_id)
    acc = stored[(stored.split == "test") & (stored.name == "accuracy") & (stored.step == RunResults(store, run_id).result_step)]
    assert same.truth["accuracy"] == pytest.approx(float(acc.value.iloc[0]), abs=1e-9)
    assert set(same.accuracy) >= {"atc_negent", "mean_confidence", "bbse"} and 0 <= same.hallucination["atc"] <= 1
    turned = Dataset("digits turned", "image", corrupt_images(test.items, "rotate", 90), test.labels, test.class_names, test.split)
    moved = run_on_target(store, run_id, turned).estimate
    assert moved.truth["accuracy"] < same.truth["accuracy"] - 0.2  # rotated digits: far fewer right
    assert moved.accuracy["atc_negent"] < same.accuracy["atc_negent"]  # and the estimate sees it
    assert run_on_target(store, run_id, turned, labelled=False).estimate.truth == {}


def test_drift_on_tables_runs_both_tests_and_the_column_tests():
    from core.shift.target import drift

    rng = np.random.default_rng(0)

    def table(n: int, shift: float = 0.0) -> Dataset:
        df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n) + shift, "c": rng.choice(["x", "y", "z"], n)})
        return Dataset("t", "tabular", df, np.zeros(n, int), ["only"], np.zeros(n, np.int8))

    ref, same, moved = table(300), table(300), table(300, shift=0.6)
    quiet, loud = drift(ref, same), drift(ref, moved)
    assert not quiet.shifted and quiet.tests["mmd"].p_value > 0.05 and not quiet.features.shifted
    assert loud.shifted and loud.tests["mmd"].shifted and loud.tests["domain_classifier"].shifted
    flags = loud.features.table.set_index("column")["shifted"]
    assert flags.to_dict() == {"a": False, "b": True, "c": False}
    assert "5 standardised and one-hot columns" in loud.embedding
