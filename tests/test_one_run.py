"""One run as the Runs page shows it (``core.compare.one_run``), on hand-made metric rows and
predictions: every number at the best evaluation, temperature scaling and threshold moving before
and after, recall per class, slices, the decision curve with its tie rule, the gallery's choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.compare.one_run import (
    checkpoint_line,
    class_recall,
    confident_errors,
    decisions,
    error_count,
    readings,
    result_epoch,
    result_predictions,
    slice_columns,
    slice_table,
    temperature_table,
    threshold_table,
    uses_decisions,
)
from core.metrics.keys import per_class_key, slice_key
from core.metrics.results import RunResults
from core.store.artifacts import RunFiles
from tests.test_compare import _ds


def _run(store) -> RunResults:
    vid = store.save_dataset(_ds(), source="upload:toy")
    run = store.create_run(vid, {"model": "small_cnn", "tau": 0.9}, name="toy")
    for step, f1 in ((10, 0.5), (20, 0.7), (30, 0.6)):  # the best evaluation is step 20
        store.add_metrics(run, step, "val", {"macro_f1": f1}, epoch=step / 10)
        store.add_metrics(run, step, "test", {
            "accuracy": 0.7 + step / 1000, "ece": 0.1, "hallucination_rate": 0.2, per_class_key("recall", 0): 0.5 + step / 100,
            per_class_key("recall", 1): 0.9, slice_key("colour", "red", "accuracy"): 0.4, slice_key("colour", "blue", "accuracy"): 0.6,
            slice_key("colour", "red", "ece"): 0.05, slice_key("size", "big", "accuracy"): 1.0,
        }, epoch=step / 10)  # fmt: skip
    store.add_metrics(run, 20, "test_ts", {"accuracy": 0.72, "ece": 0.04, "hallucination_rate": 0.25, "temperature": 1.5})
    store.add_metrics(run, 20, "test_tm", {"macro_f1": 0.66, "accuracy": 0.7})
    store.add_predictions(
        run, 20, "test", np.arange(5), np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 0, 0]), np.array([0.9, 0.95, 0.8, 0.6, 0.99])
    )
    store.add_predictions(run, 30, "test", np.arange(5), np.zeros(5), np.zeros(5), np.full(5, 0.5))
    store.set_run_status(run, "finished")
    return RunResults(store, run)


def test_every_number_is_read_at_the_best_evaluation(store):
    res = _run(store)
    assert res.result_step == 20 and res.best_step == 20 and result_epoch(res) == 2.0
    r = readings(res, ["accuracy", "ece", "forced_known_rate"])
    assert r["accuracy"].value == pytest.approx(0.72) and r["accuracy"].change == pytest.approx(0.0)
    assert r["ece"].value == pytest.approx(0.1) and r["ece"].change == pytest.approx(-0.06)
    assert r["forced_known_rate"].value is None and r["forced_known_rate"].change is None
    assert class_recall(res, [0, 1]) == {0: pytest.approx(0.7), 1: pytest.approx(0.9)}
    assert class_recall(res, [1]) == {1: pytest.approx(0.9)}  # only the classes the evaluation scored


def test_temperature_and_threshold_tables(store):
    res = _run(store)
    ts = temperature_table(res, ["accuracy", "ece", "nll"])
    assert ts is not None and list(ts.columns) == ["before", "after temperature scaling"]
    assert ts.loc["ece"].tolist() == pytest.approx([0.1, 0.04]) and ts.loc["nll"].isna().all()
    tm = threshold_table(res, ["macro_f1", "accuracy"])
    assert tm is not None and list(tm.columns) == ["before", "after threshold moving"]
    # before threshold moving is the temperature-scaled answer (the run scaled): no scaled macro-F1 row
    assert np.isnan(tm.loc["macro_f1", "before"]) and tm.loc["macro_f1", "after threshold moving"] == pytest.approx(0.66)
    assert tm.loc["accuracy"].tolist() == pytest.approx([0.72, 0.7])


def test_without_scaling_or_threshold_moving_there_is_no_table(store):
    vid = store.save_dataset(_ds(), source="upload:plain")
    run = store.create_run(vid, {}, name="plain")
    store.add_metrics(run, 5, "test", {"accuracy": 0.5})
    res = RunResults(store, run)
    assert temperature_table(res) is None and threshold_table(res) is None
    assert readings(res, ["accuracy"])["accuracy"].change is None and result_epoch(res) is None
    empty = RunResults(store, store.create_run(vid, {}, name="new"))
    assert empty.best_step is None and result_predictions(empty).empty and slice_columns(empty) == []


def test_slices_of_the_best_evaluation(store):
    res = _run(store)
    assert slice_columns(res) == ["colour", "size"]
    table = slice_table(res, "colour")
    assert list(table.columns) == ["accuracy", "hallucination_rate", "ece"] and sorted(table.index) == ["blue", "red"]
    assert table.loc["red", "accuracy"] == pytest.approx(0.4) and table.loc["red", "ece"] == pytest.approx(0.05)
    assert np.isnan(table.loc["blue", "ece"]) and table["hallucination_rate"].isna().all()


def test_the_gallery_shows_the_most_confident_wrong_answers(store):
    res = _run(store)
    preds = result_predictions(res)
    assert preds["item"].tolist() == [0, 1, 2, 3, 4]  # step 20's, not the latest (30)
    assert confident_errors(preds)["item"].tolist() == [4, 1, 3]
    assert confident_errors(preds, n=2)["item"].tolist() == [4, 1]
    n = error_count(preds, 0.9)
    assert (n.total, n.wrong, n.confident) == (5, 3, 2)


def test_decisions_use_the_tie_rule_and_only_known_classes():
    preds = pd.DataFrame({"label": [0, 0, 1, 1, 2], "pred": [0, 1, 1, 0, 2], "conf": [0.9, 0.9, 0.8, 0.6, 0.95]})
    d = decisions(preds, [0, 1], 0.85)  # class 2 is unknown to the model: left out
    assert d.coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert d.risk.tolist() == pytest.approx([0.5, 0.5, 1 / 3, 0.5])  # the tied pair counts half an error each
    assert (d.answered, d.error, d.change) == (0.5, 0.5, 0.0)
    lower = decisions(preds, [0, 1], 0.7)
    assert (lower.answered, lower.error) == (0.75, pytest.approx(1 / 3)) and lower.change == pytest.approx(1 / 3 - 0.5)
    none = decisions(preds, [0, 1], 0.99)
    assert none.answered == 0.0 and np.isnan(none.error) and none.change is None
    nothing = decisions(preds, [7], 0.5)
    assert len(nothing.coverage) == 0 and np.isnan(nothing.answered) and nothing.change is None


def test_the_checkpoint_rule_picks_the_step_and_the_line_says_it(store):
    res = _run(store)  # val macro-F1 0.5, 0.7, 0.6 at steps 10, 20, 30
    assert res.checkpoint == "best" and checkpoint_line(res) == "test scores at step 20, the best val macro-F1"
    last = RunResults(store, res.run_id, checkpoint="last")  # a reader's override
    assert last.result_step == 30 and checkpoint_line(last) == "test scores at step 30, the last evaluation"
    r = readings(last, ["accuracy"])["accuracy"]
    assert r.value == pytest.approx(0.73) and r.change is None  # temperature scaling was fitted at step 20, not here
    assert result_predictions(last)["conf"].tolist() == [0.5] * 5  # the predictions of step 30
    # a run kept by "last": its worker's summary names step 30; a reader may still ask for the best val
    store.set_run_status(res.run_id, "running")
    kept_last = store.create_run(res.row.version_id, {"checkpoint": "last", "early_stopping_metric": "ece"}, name="kept last")
    for step, ece in ((10, 0.2), (20, 0.1), (30, 0.3)):
        store.add_metrics(kept_last, step, "val", {"ece": ece})
        store.add_metrics(kept_last, step, "test", {"accuracy": step / 100})
    RunFiles(kept_last, home=store.home).write_json("summary.json", {"best_step": 30, "checkpoint": "last", "status": "finished"})
    store.set_run_status(kept_last, "finished")
    own = RunResults(store, kept_last)
    assert own.checkpoint == "last" and own.result_step == 30 and checkpoint_line(own) == "test scores at step 30, the last evaluation"
    best = RunResults(store, kept_last, checkpoint="best")
    assert best.result_step == 20 and checkpoint_line(best) == "test scores at step 20, the best val ECE"  # lower is better
    with pytest.raises(ValueError, match="best or last"):
        RunResults(store, kept_last, checkpoint="first")
    # while a run trains, the line says "so far"
    assert checkpoint_line(RunResults(store, res.run_id)).endswith("the best val macro-F1 so far")


def test_decisions_are_shown_only_for_runs_that_made_them(store):
    res = _run(store)  # it has threshold-moved rows
    assert uses_decisions(res)
    vid = res.row.version_id
    plain = RunResults(store, store.create_run(vid, {"model": "small_cnn"}, name="plain"))
    abstains = RunResults(store, store.create_run(vid, {"mitigations": {"decision": {"abstain_below": 0.7}}}, name="abstains"))
    moves = RunResults(store, store.create_run(vid, {"mitigations": {"decision": {"threshold_moving": True}}}, name="moves"))
    assert not uses_decisions(plain) and uses_decisions(abstains) and uses_decisions(moves)
