"""Comparing runs: metric tables and verdicts, the settings that differ, and the example-level diff
on hand-made predictions (matched across a simulated version and its parent)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.compare.examples import example_diff, keyed_predictions, outcome_counts
from core.compare.runs import compatibility, config_differences, deltas, metric_table, verdict
from core.data.dataset import Dataset
from core.metrics.results import RunResults
from core.simulate.recipe import Recipe
from core.simulate.versions import save_simulated


def _ds() -> Dataset:
    n = 40
    items = np.arange(n * 4, dtype=np.uint8).reshape(n, 2, 2)
    labels = np.arange(n) % 2
    split = np.array([0] * 24 + [1] * 6 + [2] * 10)
    return Dataset("toy", "image", items, labels, ["cat", "dog"], split)


def _run(store, vid, config, *, val_f1, test):
    run = store.create_run(vid, config, name=config.get("name", ""))
    for step, f1 in val_f1.items():
        store.add_metrics(run, step, "val", {"macro_f1": f1})
        store.add_metrics(run, step, "test", {k: v + step / 1000 for k, v in test.items()})
    store.set_run_status(run, "finished")
    return run


def test_metric_table_reads_each_runs_best_step_and_verdicts_follow_the_direction(store):
    vid = store.save_dataset(_ds(), source="upload:toy")
    a = _run(
        store,
        vid,
        {"model": "small_cnn", "tau": 0.9},
        val_f1={10: 0.5, 20: 0.7, 30: 0.6},
        test={"accuracy": 0.8, "hallucination_rate": 0.10},
    )
    b = _run(
        store,
        vid,
        {"model": "small_cnn", "tau": 0.9, "mitigations": {"loss": {"name": "focal"}}},
        val_f1={10: 0.9},
        test={"accuracy": 0.85, "hallucination_rate": 0.05},
    )
    results = [RunResults(store, a), RunResults(store, b)]
    table = metric_table(results)
    assert list(table.index) == ["accuracy", "hallucination_rate"]  # metrics no run has are left out
    assert table.iloc[:, 0].tolist() == [0.8 + 0.020, 0.10 + 0.020]  # run a's best val step is 20
    d = deltas(table)
    assert d.iloc[:, 0].tolist() == [0.0, 0.0]
    assert np.allclose(d.iloc[:, 1], [0.85 + 0.01 - 0.82, 0.05 + 0.01 - 0.12])
    assert verdict("accuracy", 0.03) == "better" and verdict("hallucination_rate", -0.06) == "better"
    assert verdict("ece", 0.01) == "worse" and verdict("accuracy", 0.0) == "same" and verdict("nll", float("nan")) == "same"
    diff = config_differences(results)
    assert list(diff.index) == ["mitigations.loss.name"] and diff.iloc[0].tolist() == ["—", "focal"]
    assert compatibility(store, results) == []


def test_compatibility_names_what_cannot_be_compared(store):
    one = store.save_dataset(_ds(), source="upload:one")
    two = store.save_dataset(_ds(), source="upload:two")
    a = _run(store, one, {"tau": 0.9}, val_f1={1: 0.5}, test={"accuracy": 0.5})
    b = _run(store, two, {"tau": 0.8}, val_f1={1: 0.5}, test={"accuracy": 0.5})
    store.set_run_status(b, "running")
    notes = " ".join(compatibility(store, [RunResults(store, a), RunResults(store, b)]))
    assert "different datasets" in notes and "different τ (0.8, 0.9)" in notes and "Still training" in notes


def test_example_diff_on_hand_made_predictions():
    a = pd.DataFrame(
        {"item": [0, 1, 2, 3], "label": [0, 1, 1, 0], "pred": [0, 0, 0, 0], "conf": [0.9, 0.8, 0.7, 0.6]}, index=[10, 11, 12, 13]
    )
    b = pd.DataFrame(
        {"item": [5, 6, 7, 9], "label": [0, 1, 1, 1], "pred": [1, 1, 0, 1], "conf": [0.5, 0.9, 0.95, 0.99]}, index=[10, 11, 12, 14]
    )
    diff = example_diff(a, b)
    assert diff.index.tolist() == [10, 11, 12]  # item 13 and 14 were answered by one run only
    assert diff["outcome"].tolist() == ["introduced", "fixed", "still wrong"]
    assert diff.loc[11, ["item_a", "item_b"]].tolist() == [1, 6]
    assert outcome_counts(diff) == {"fixed": 1, "introduced": 1, "still wrong": 1, "both right": 0}


def test_items_are_matched_across_a_simulated_version_and_its_parent(store):
    parent = store.save_dataset(_ds(), source="upload:toy")
    child = save_simulated(store, parent, Recipe(noise_rate=0.5, duplicate_share=0.5, seed=0))
    p_ds, c_ds = store.load_dataset(parent), store.load_dataset(child)
    runs = {}
    for vid, ds in ((parent, p_ds), (child, c_ds)):
        run = store.create_run(vid, {}, name="")
        test = np.flatnonzero(ds.split == 2)
        store.add_predictions(run, 1, "test", test, ds.labels[test], ds.labels[test], np.full(len(test), 0.9))
        runs[vid] = keyed_predictions(RunResults(store, run), ds)
    diff = example_diff(runs[parent], runs[child])
    assert len(diff) == 10 and (diff["outcome"] == "both right").all()  # the same ten test items, found by source_item
    assert (c_ds.meta["source_item"].to_numpy()[diff["item_b"]] == diff["item_a"].to_numpy()).all()


def test_the_confusion_difference_colours_lost_recall_and_new_confusion_as_worse():
    from core import charts

    a = np.array([[8, 2], [0, 10]])
    b = np.array([[10, 0], [3, 7]])  # class 0 recall up, class 1 recall down and confused with 0
    fig = charts.confusion_difference(a, b, ["cat", "dog"], title="t")
    z, raw = np.array(fig.data[0].z), np.array(fig.data[0].customdata)
    assert np.allclose(raw, [[0.2, -0.2], [0.3, -0.3]])
    assert np.allclose(z, [[-0.2, -0.2], [0.3, 0.3]])  # better (negative) for cat, worse (positive) for dog
