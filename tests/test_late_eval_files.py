"""Metric rows of an evaluation can be stored before its file arrives (a run on a Ray cluster sends
its rows at once and its files with the next heartbeat): every reader of evaluation files shows
what is there and never raises for a step whose file is still on its way."""

from __future__ import annotations

import numpy as np

from core.data.demos import load_digits_8x8
from core.metrics.results import RunResults
from core.store import RunFiles


def _eval_file(files: RunFiles, step: int) -> None:
    classes = np.arange(3)
    part = {
        "reliability": {"lower": [0.0] * 15, "upper": [1.0] * 15, "count": [1] * 15, "mean_conf": [None] * 15, "accuracy": [0.5] * 15},
        "confusion": np.eye(3, dtype=int).tolist(),
    }
    files.write_eval(step, 1.0, classes, np.array([], dtype=int), {"test": part, "val": part})


def test_metric_rows_without_their_evaluation_file_read_as_no_artifacts(store, home):
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    run = store.create_run(vid, {"version_id": vid})
    files = RunFiles(run, home=home)
    for step in (30, 60):  # both evaluations' rows are stored; only the first one's file has come
        store.add_metrics(run, step, "test", {"accuracy": 0.5, "recall/0": 0.5})
        store.add_metrics(run, step, "val", {"accuracy": 0.5, "macro_f1": 0.4 + step / 1000})
    res = RunResults(store, run)
    assert res.best_step == 60 and res.artifacts(60) == {}  # no file yet: nothing to draw, no KeyError
    assert files.eval_artifacts(60) == {} and files.heldout_probs(3, step=60) is None
    assert res.artifacts() == {}  # no evaluation file at all
    _eval_file(files, 30)
    assert files.eval_artifacts(60) == {}
    assert files.eval_artifacts()["step"] == 30 and res.artifacts(30)["test"]["confusion"].shape == (3, 3)
    _eval_file(files, 60)  # the file arrives
    assert res.artifacts(60)["test"]["reliability"]["count"].sum() == 15
