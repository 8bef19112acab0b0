"""The metric-key codec and the torch-free results reader, on hand-written metric rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.metrics.keys import (
    LOWER_IS_BETTER,
    MetricKey,
    best_index,
    improves,
    parse_key,
    per_class_key,
    scaled_split,
    selection_value,
    slice_key,
)
from core.metrics.results import RunResults
from core.store import RunFiles, RunStatus


@pytest.mark.parametrize(
    ("column", "value"),
    [("domain", "tweets"), ("file", "a/b=c.png"), ("score", "(0.5, 1.25]"), ("100%", "50% off"), ("é", "ü ø")],
)
def test_slice_keys_round_trip_any_column_and_value(column, value):
    key = slice_key(column, value, "accuracy")
    assert key.startswith("slice/") and key.endswith("/accuracy") and key.count("/") == 2
    assert parse_key(key) == MetricKey("slice", "accuracy", column=column, value=value)


def test_plain_and_per_class_keys():
    assert per_class_key("recall", 3) == "recall/3"
    assert parse_key("recall/3") == MetricKey("class", "recall", cls=3)
    assert parse_key("accuracy") == MetricKey("summary", "accuracy")
    assert parse_key("loss/3") == MetricKey("summary", "loss/3")  # not a per-class metric name
    assert scaled_split("test") == "test_ts"
    # a key written by the previous Gapscope (unescaped) still parses
    assert parse_key("slice/domain=movie reviews/ece") == MetricKey("slice", "ece", column="domain", value="movie reviews")


def test_improves_is_the_best_checkpoint_rule():
    assert "ece" in LOWER_IS_BETTER and "macro_f1" not in LOWER_IS_BETTER
    assert improves("macro_f1", 0.5, None) and improves("macro_f1", math.nan, None)  # nothing to beat yet
    assert improves("macro_f1", 0.6, 0.5) and not improves("macro_f1", 0.5, 0.5) and not improves("macro_f1", 0.4, 0.5)
    assert improves("ece", 0.04, 0.05) and not improves("ece", 0.06, 0.05)
    assert not improves("macro_f1", math.nan, 0.5)  # NaN never beats a best
    assert improves("macro_f1", 0.1, math.nan)  # any number beats a NaN best


def test_a_selection_window_judges_each_evaluation_with_the_ones_before_it():
    assert selection_value([0.2, 0.6], 1) == 0.6 and selection_value([0.2, 0.6], 2) == pytest.approx(0.4)
    assert selection_value([0.2, math.nan, 0.6], 2) == 0.6  # an undefined value is left out
    assert math.isnan(selection_value([math.nan], 2)) and math.isnan(selection_value([], 1))
    spike = [0.20, 0.27, 0.38, 0.37, 0.38]  # a spike at the third evaluation, as good later
    assert best_index("macro_f1", spike, 1) == 2 and best_index("macro_f1", spike, 2) == 3
    assert best_index("ece", [0.3, 0.1, 0.2, 0.05], 2) == 3 and best_index("macro_f1", [], 2) is None


def _store_with_rows(store, rows, *, config=None):
    ds = _tiny_dataset()
    vid = store.save_dataset(ds, source="upload:t.csv")
    run_id = store.create_run(vid, {"tau": 0.8, "early_stopping_metric": "macro_f1", **(config or {})})
    for step, split, values in rows:
        store.add_metrics(run_id, step, split, values, epoch=step / 10)
    return run_id


def _tiny_dataset():
    import pandas as pd

    from core.data import Dataset

    return Dataset("t", "tabular", pd.DataFrame({"x": np.arange(6.0)}), np.array([0, 1] * 3), ["a", "b"], np.array([0, 0, 1, 1, 2, 2]))


def test_reader_names_the_best_evaluation_by_the_loops_rule(store):
    rows = [
        (10, "val", {"macro_f1": 0.5}), (10, "test", {"accuracy": 0.6, "recall/0": 0.5, "recall/1": float("nan")}),
        (20, "val", {"macro_f1": 0.7}), (20, "test", {"accuracy": 0.8, "recall/0": 0.9, "recall/1": 0.7,
                                                     slice_key("domain", "web/shop", "accuracy"): 0.75}),
        (30, "val", {"macro_f1": 0.6}), (30, "test", {"accuracy": 0.7}),
        (20, "test_ts", {"accuracy": 0.8, "temperature": 1.4}),
    ]  # fmt: skip
    res = RunResults(store, _store_with_rows(store, rows))
    assert res.status == RunStatus.QUEUED and res.tau == 0.8
    assert res.eval_steps() == [10, 20, 30] and res.best_step == 20 and res.scaled_step == 20
    assert res.latest("accuracy") == 0.7 and res.at("accuracy", 20) == 0.8 and res.at("accuracy", 99) is None
    assert res.latest("temperature", "test_ts") == 1.4 and res.latest("nope") is None
    assert res.per_class("recall", step=10) == {0: 0.5}  # NaN (undefined) is left out
    assert res.per_class("recall", step=20) == {0: 0.9, 1: 0.7}
    slices = res.slices(step=20)
    assert slices.to_dict("records") == [{"column": "domain", "value": "web/shop", "metric": "accuracy", "score": 0.75}]
    assert res.values(step=20) == {"accuracy": 0.8}
    assert res.artifacts() == {} and res.summary() is None  # no evaluation file, not ended


def test_reader_prefers_the_workers_summary_and_handles_no_val_split(store):
    run_id = _store_with_rows(store, [(5, "test", {"accuracy": 0.5}), (9, "test", {"accuracy": 0.4})])
    assert RunResults(store, run_id).best_step == 9  # without val, the latest evaluation is kept
    RunFiles(run_id, home=store.home).write_json("summary.json", {"best_step": 5, "status": "finished"})
    assert RunResults(store, run_id).best_step == 5
    lower = _store_with_rows(
        store, [(1, "val", {"ece": 0.2}), (2, "val", {"ece": 0.1}), (3, "val", {"ece": 0.3})], config={"early_stopping_metric": "ece"}
    )
    assert RunResults(store, lower).best_step == 2  # lower is better for ECE
    spike = [(i, "val", {"macro_f1": v}) for i, v in enumerate([0.2, 0.27, 0.38, 0.37, 0.38], start=1)]
    assert RunResults(store, _store_with_rows(store, spike)).best_step == 3
    assert RunResults(store, _store_with_rows(store, spike, config={"selection_window": 2})).best_step == 4


def test_temperature_scaling_that_sharpens_is_explained_in_words():
    import pandas as pd

    from ui.words import temperature_words

    def table(h_before, h_after):
        return pd.DataFrame({"before": [h_before, 0.20], "after temperature scaling": [h_after, 0.03]}, index=["hallucination_rate", "ece"])

    sharpened = temperature_words(0.43, table(0.010, 0.025))
    assert "T = 0.43 < 1" in sharpened and "1.0% to 2.5%" in sharpened and "0.200 → 0.030" in sharpened
    softened = temperature_words(1.6, table(0.05, 0.02))
    assert "over-confident" in softened and "5.0% → 2.0%" in softened
    assert temperature_words(0.9, table(0.02, 0.01)) == ""  # nothing surprising: nothing said
    assert temperature_words(None, table(0.02, 0.03)) == ""
