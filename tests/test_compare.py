"""Comparing runs: metric tables and verdicts, the settings that differ, and the example-level diff
on hand-made predictions (matched across a simulated version and its parent)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from core.compare.examples import example_diff, keyed_predictions, outcome_counts, shares_items, top_outcome
from core.compare.intervals import Comparison, Interval, mcnemar, verdict_of
from core.compare.runs import (
    compatibility,
    config_differences,
    curves,
    default_run,
    delta_table,
    deltas,
    ece_by_group,
    metric_table,
    recall_by_class,
    run_list,
    verdict,
    verdict_words,
)
from core.data.dataset import Dataset
from core.metrics.keys import per_class_key
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
    assert list(diff.index) == ["loss"] and diff.iloc[0].tolist() == ["—", "Focal loss"]  # in words, as the Train page says it
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


def test_delta_table_puts_each_change_first_and_calls_it_only_with_an_interval():
    table = pd.DataFrame({"#1 · a": [0.8, 0.10, np.nan], "#2 · b": [0.9, 0.05, 0.2], "#3 · c": [0.8, 0.20, 0.1]},
                         index=["accuracy", "hallucination_rate", "ece"])  # fmt: skip
    plain = delta_table(table)
    shown, verdicts = plain.values, plain.verdicts
    assert list(shown.columns) == ["Δ #2 · b", "Δ #3 · c", "#1 · a", "#2 · b", "#3 · c"]  # changes first: never cut off
    assert shown["Δ #2 · b"].tolist()[:2] == pytest.approx([0.1, -0.05]) and np.isnan(shown.loc["ece", "Δ #2 · b"])
    assert list(verdicts.columns) == list(shown.columns) and list(verdicts.index) == list(table.index)
    # without intervals no change is called better or worse; a zero change is "same"
    assert verdicts["Δ #2 · b"].tolist() == ["no interval", "no interval", "same"]
    assert verdicts["Δ #3 · c"].tolist() == ["same", "no interval", "same"]
    assert (verdicts[["#1 · a", "#2 · b", "#3 · c"]] == "").all().all()
    assert plain.text.loc["accuracy", "Δ #3 · c"] == "0" and plain.text.loc["accuracy", "#2 · b"] == "0.9000"

    sure = Interval("accuracy", 0.8, 0.9, 0.1, 0.06, 0.14, verdict_of("accuracy", 0.06, 0.14))
    unsure = Interval("hallucination_rate", 0.10, 0.05, -0.05, -0.09, 0.01, verdict_of("hallucination_rate", -0.09, 0.01))
    worse = Interval("hallucination_rate", 0.10, 0.20, 0.10, 0.04, 0.16, verdict_of("hallucination_rate", 0.04, 0.16))
    comps = {
        "#2 · b": Comparison({"accuracy": sure, "hallucination_rate": unsure}, None),
        "#3 · c": Comparison({"hallucination_rate": worse}, None),
    }
    with_iv = delta_table(table, comps)
    assert with_iv.verdicts["Δ #2 · b"].tolist() == ["better", "no clear difference", "same"]
    assert with_iv.verdicts["Δ #3 · c"].tolist() == ["same", "worse", "same"]
    assert with_iv.text.loc["accuracy", "Δ #2 · b"] == "+0.1000 [+0.0600, +0.1400]"


def test_verdict_words_say_better_or_worse_only_where_the_interval_excludes_zero():
    unsure = Interval("hallucination_rate", 0.10, 0.093, -0.007, -0.02, 0.006, verdict_of("hallucination_rate", -0.02, 0.006))
    words = verdict_words(
        "#2 · b", "#1 · a", Comparison({"hallucination_rate": unsure}, mcnemar([True, False], [True, True])), ["hallucination_rate"]
    )
    assert "better" not in words and "worse" not in words and "no clear difference on any metric" in words
    assert "1 items only it gets right, 0 only the reference" in words
    sure = Interval("ece", 0.10, 0.05, -0.05, -0.07, -0.03, verdict_of("ece", -0.07, -0.03))
    words = verdict_words("#2 · b", "#1 · a", Comparison({"ece": sure, "hallucination_rate": unsure}, None), ["hallucination_rate", "ece"])
    assert words == "#2 · b against #1 · a: better on ECE; no clear difference on the rest."
    assert "no verdict" in verdict_words("#2", "#1", Comparison({}, None, "no interval: the runs share no test items"), ["ece"])


def test_curves_recall_and_ece_per_run(store):
    vid = store.save_dataset(_ds(), source="upload:toy")
    a = store.create_run(vid, {}, name="a")
    store.add_metrics(a, 20, "val", {"macro_f1": 0.7}, epoch=2.0)
    store.add_metrics(a, 10, "val", {"macro_f1": 0.5})  # no epoch stored: the step stands in
    store.add_metrics(a, 20, "test", {per_class_key("recall", 1): 0.25, per_class_key("recall", 0): 0.75, "ece_tail": 0.3, "ece_head": 0.1})
    b = store.create_run(vid, {}, name="b")
    store.add_metrics(b, 5, "train", {"loss": 1.0})
    results = [RunResults(store, a), RunResults(store, b)]
    lines = curves(results, "val", "macro_f1")
    assert list(lines) == ["#1 · a"] and lines["#1 · a"]["step"].tolist() == [10, 20]
    assert lines["#1 · a"]["epoch"].tolist() == [10.0, 2.0] and lines["#1 · a"]["value"].tolist() == [0.5, 0.7]
    assert recall_by_class(results) == {"#1 · a": {"cat": 0.75, "dog": 0.25}, "#2 · b": {}}
    assert ece_by_group(results) == {"#1 · a": {"head": 0.1, "tail": 0.3}, "#2 · b": {}}


def test_run_list_and_the_run_the_runs_page_opens_on(store):
    vid = store.save_dataset(_ds(), source="upload:toy")
    a = store.create_run(vid, {}, name="first")
    b = store.create_run(vid, {}, name="second")
    store.set_run_status(a, "running", started_at=1_700_000_000.0, heartbeat_at=time.time(), progress=0.25, message="step 3")
    rows = store.runs()
    table = run_list(rows, {vid: "Toy v1"})
    assert list(table.columns) == ["run", "name", "dataset", "status", "progress", "message", "started"]
    first = table.set_index("run").loc[a]
    assert (first["name"], first["dataset"], first["status"], first["progress"], first["message"]) == (
        "first", "Toy v1", rows[[r.id for r in rows].index(a)].label, 0.25, "step 3"
    )  # fmt: skip
    assert first["started"] == pd.Timestamp("2023-11-14 22:13:20") and pd.isna(table.set_index("run").loc[b, "started"])
    assert run_list(rows, {})["dataset"].tolist() == [f"v{vid}", f"v{vid}"]
    assert run_list([], {}).empty
    assert default_run(rows, b) == b and default_run(rows, 999) == a and default_run(rows) == a  # asked for, else running
    store.set_run_status(a, "finished")
    assert default_run(store.runs()) == store.runs()[0].id  # else the newest


def test_top_outcome_and_whether_two_runs_share_their_items(store):
    diff = pd.DataFrame({"outcome": ["fixed", "fixed", "introduced", "fixed"], "conf_b": [0.5, 0.9, 0.99, 0.7]}, index=[1, 2, 3, 4])
    assert top_outcome(diff, "fixed").index.tolist() == [2, 4, 1] and top_outcome(diff, "fixed", n=1).index.tolist() == [2]
    assert top_outcome(diff, "still wrong").empty
    one = store.save_dataset(_ds(), source="upload:one")
    two = store.save_dataset(_ds(), source="upload:two")
    child = save_simulated(store, one, Recipe(noise_rate=0.5, seed=0))
    a, b, c = (RunResults(store, store.create_run(v, {}, name="")) for v in (one, two, child))
    assert shares_items(store, a, c) and not shares_items(store, a, b)


def test_mitigations_are_said_in_words():
    from core.compare.setting_words import mitigation_words
    from core.mitigate.settings import Cleaning, Decision, LossSettings, Mitigations, Resampling
    from core.train.config import RunConfig

    assert mitigation_words(Mitigations()) == []
    m = Mitigations(
        resample=Resampling("smote"),
        loss=LossSettings(name="balanced_softmax", class_weights="inverse"),
        clean=Cleaning(action="drop", source="threshold", threshold=0.25),
        decision=Decision(abstain_below=0.6),
    )
    assert mitigation_words(m) == [
        "SMOTE (resampling)",
        "Balanced softmax",
        "Weight ∝ 1 / class count",
        "Drop: label quality below 0.25",
        "abstain below confidence 0.6",
    ]
    assert (
        RunConfig(version_id=1, model="small_cnn", mitigations=m)
        .display_name()
        .startswith("small_cnn · full fine-tune · SMOTE (resampling)")
    )


def test_settings_are_said_in_words():
    from core.compare.setting_words import setting_name, setting_value

    assert (
        setting_name("mitigations.loss.name") == "loss" and setting_value("mitigations.loss.name", "balanced_softmax") == "Balanced softmax"
    )
    assert setting_name("mitigations.loss.class_weights") == "loss: class weights"
    assert setting_name("mitigations.resample.method") == "resampling: sampler"
    assert setting_value("mitigations.resample.method", "class_balanced") == "Class-balanced sampling"
    assert setting_value("mitigations.resample.method", "smote_enn") == "SMOTE + edited nearest neighbours"
    assert setting_value("mitigations.augment.image", ["flip", "rotate"]) == "Flip, Rotate"
    assert setting_value("mitigations.decision.threshold_moving", True) == "on"
    assert setting_name("checkpoint") == "result" and setting_value("checkpoint", "last") == "last evaluation"
    assert (
        setting_name("early_stopping_metric") == "selection metric (val)"
        and setting_value("early_stopping_metric", "macro_f1") == "macro-F1"
    )
    assert (
        setting_value("finetune", "linear_probe") == "linear probe (frozen backbone)" and setting_value("lr", None) == "the model's default"
    )
    assert setting_value("weight_decay", 0.01) == "0.01" and setting_name("warmup_ratio") == "warm-up share"
