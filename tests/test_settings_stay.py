"""Every page keeps its settings when the user leaves it and comes back (``ui.state``): set values
that are not the defaults, visit another page (and let that page's timers fire), return, and read
the same values back."""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest, local_script_runner

from core.data import demos
from core.data.demos import load_digits_8x8
from core.jsonable import to_jsonable
from core.metrics.calibration import reliability_bins
from core.metrics.classification import confusion
from core.metrics.keys import slice_key
from core.mitigate.settings import Decision, Mitigations
from core.store import RunFiles, RunStatus, Store
from core.train.config import RunConfig
from tests.conftest import APP

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def open_app(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    go(at, page)
    return at


def go(at: AppTest, page: str) -> None:
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception


def timers_fire(at: AppTest) -> None:
    """Rerun only the page's fragments, as the browser does when a ``st.fragment(run_every=…)``
    fires (the Runs page's list and run, a diagnosis or sweep in progress): ``app.py`` does not run.
    AppTest has no public call for it, so the rerun request of ``at.run`` gets the fragment queue."""
    fragments = list(at._fragment_storage._fragments)
    assert fragments, "the page has no fragment to rerun"
    request = local_script_runner.RerunData
    with mock.patch.object(local_script_runner, "RerunData", lambda **kw: request(**kw, fragment_id_queue=fragments)):
        at.run()
    assert not at.exception, at.exception


def stored_run(store: Store, vid: int, name: str) -> int:
    """A finished run with no metrics: enough for the Runs page to list it and draw its detail."""
    run = store.create_run(vid, RunConfig(version_id=vid, model="small_cnn", epochs=1).to_dict(), name=name)
    store.set_run_status(run, RunStatus.FINISHED)
    return run


def test_train_settings_stay_after_a_visit_to_runs(home):
    store = Store(home)
    vid = demos.import_demo(store, "digits")
    first = stored_run(store, vid, "first")
    stored_run(store, vid, "second")
    at = open_app("app_pages/train.py")
    at.number_input(key="tr_epochs").set_value(7)
    at.radio(key="tr_preset").set_value("long_tail")
    at.run()
    at.number_input(key="tr_seed").set_value(42)
    at.slider(key="tr_tau").set_value(0.8)
    at.number_input(key="tr_lr").set_value(0.02)
    at.selectbox(key="tr_loss_name").set_value("focal")  # by hand: the preset becomes custom
    at.run()
    assert at.radio(key="tr_preset").value == "custom"
    assert at.selectbox(key="tr_loss_name").value == "focal"

    timers_fire(at)  # the sidebar's runner line, on the page being left
    go(at, "app_pages/runs.py")
    assert at.selectbox(key="runs_pick").value == first + 1 and at.dataframe  # the list and the newest run are drawn
    assert any(f"Run #{first + 1}" in s.value for s in at.subheader)
    timers_fire(at)  # the run list redraws every 2 s
    timers_fire(at)
    go(at, "app_pages/train.py")
    assert at.number_input(key="tr_epochs").value == 7
    assert at.number_input(key="tr_seed").value == 42
    assert at.slider(key="tr_tau").value == pytest.approx(0.8)
    assert at.number_input(key="tr_lr").value == pytest.approx(0.02)
    assert at.radio(key="tr_preset").value == "custom"
    assert at.selectbox(key="tr_loss_name").value == "focal"


def _reviews(store: Store) -> int:
    """120 texts in 3 classes with two slice columns: every widget of the Data page is drawn."""
    from core.data.imports import import_upload

    rows = "".join(f"review number {i} of the test,{'abc'[i % 3]},{'web' if i % 2 else 'shop'},{'s' + str(i % 4)}\n" for i in range(120))
    return import_upload(store, "reviews.csv", ("text,label,domain,source\n" + rows).encode()).version_id


def test_data_settings_stay(home):
    store = Store(home)
    vid = _reviews(store)
    stored_run(store, vid, "on reviews")
    at = open_app("app_pages/data.py")
    at.radio(key="dt_dist_split").set_value("all splits")
    at.toggle(key="dt_dist_sort").set_value(False)
    at.toggle(key="dt_dist_log").set_value(True)
    at.multiselect(key="dt_pv_classes").set_value([0, 2])
    at.run()
    at.number_input(key="dt_pv_page").set_value(2)  # 80 of the 120 match: pages of 25
    at.selectbox(key="dt_slice_col").set_value("source")
    at.radio(key="dt_slice_by").set_value("split")
    at.run()
    assert any("80 items match · page 2 of 4" in c.value for c in at.caption)

    timers_fire(at)  # the sidebar's runner line, on the page being left
    go(at, "app_pages/runs.py")
    timers_fire(at)
    go(at, "app_pages/data.py")
    assert at.radio(key="dt_dist_split").value == "all splits"
    assert at.toggle(key="dt_dist_sort").value is False and at.toggle(key="dt_dist_log").value is True
    assert at.multiselect(key="dt_pv_classes").value == [0, 2]
    assert at.number_input(key="dt_pv_page").value == 2
    assert at.selectbox(key="dt_slice_col").value == "source" and at.radio(key="dt_slice_by").value == "split"
    assert any("80 items match · page 2 of 4" in c.value for c in at.caption)
    # a kept page past the end of a shorter list moves to its last page
    at.number_input(key="dt_pv_page").set_value(4)
    at.run()
    at.multiselect(key="dt_pv_classes").set_value([1])
    at.run()
    assert not at.exception, at.exception
    assert at.number_input(key="dt_pv_page").value == 2
    assert any("40 items match · page 2 of 2" in c.value for c in at.caption)


def evaluated_run(store: Store, vid: int, name: str, seed: int) -> int:
    """A finished run with one evaluation stored as the worker stores it (metric rows with two slice
    columns, test predictions, the artifacts file), from made-up probabilities: the Runs page draws
    its slices and its decisions."""
    ds = store.load_dataset(vid)
    test = np.flatnonzero(ds.split == 2)
    labels = ds.labels[test]
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(ds.n_classes, 0.3), len(test))
    probs[np.arange(len(test)), labels] += rng.random(len(test))  # mostly right
    probs /= probs.sum(axis=1, keepdims=True)
    pred, conf = probs.argmax(axis=1), probs.max(axis=1)
    right = pred == labels
    values = {"accuracy": float(right.mean())}
    for column in ("half", "third"):
        for value in sorted(set(ds.meta[column])):
            values[slice_key(column, value, "accuracy")] = float(right[ds.meta[column].to_numpy()[test] == value].mean())
    abstains = Mitigations(decision=Decision(abstain_below=0.6))  # the Runs page draws its decisions
    run = store.create_run(vid, RunConfig(version_id=vid, model="small_cnn", epochs=1, mitigations=abstains).to_dict(), name=name)
    store.add_predictions(run, 10, "test", test, labels, pred, conf)
    part = {"reliability": reliability_bins(probs, labels).to_dict(), "confusion": confusion(pred, labels, ds.n_classes)}
    RunFiles(run, home=store.home).write_eval(10, 1.0, np.arange(ds.n_classes), np.array([], int), {"test": to_jsonable(part)})
    store.add_metrics(run, 10, "test", values, epoch=1.0)
    store.add_metrics(run, 10, "val", {"macro_f1": float(right.mean())}, epoch=1.0)
    store.set_run_status(run, RunStatus.FINISHED)
    return run


def _digits_in_slices(store: Store) -> int:
    """Digits 8×8 with two slice columns, ``half`` (even, odd) and ``third`` (t0, t1, t2)."""
    digits = load_digits_8x8().dataset
    n = len(digits)
    meta = pd.DataFrame({"half": np.where(np.arange(n) % 2, "odd", "even"), "third": [f"t{i % 3}" for i in range(n)]})
    return store.save_dataset(dataclasses.replace(digits, meta=meta), source="upload:digits-thirds")


def test_runs_page_keeps_the_run_picked_its_slice_and_its_abstention(home):
    store = Store(home)
    vid = _digits_in_slices(store)
    first = evaluated_run(store, vid, "first", seed=0)
    second = evaluated_run(store, vid, "second", seed=1)
    at = open_app("app_pages/runs.py")
    assert at.selectbox(key="runs_pick").value == second  # the newest first
    at.selectbox(key="runs_pick").set_value(first)
    at.run()
    assert at.selectbox(key=f"rn_slice_{first}").options == ["half", "third"]
    assert at.slider(key=f"rn_abstain_{first}").value == pytest.approx(0.6)  # the run's own setting
    at.selectbox(key=f"rn_slice_{first}").set_value("third")
    at.slider(key=f"rn_abstain_{first}").set_value(0.7)
    at.run()
    assert not at.exception, at.exception
    answered = {m.label: m.value for m in at.metric}["Answered"]

    timers_fire(at)  # the run list and the sidebar's runner line, on the page being left
    go(at, "app_pages/data.py")
    timers_fire(at)  # the sidebar's runner line, on the page being left
    go(at, "app_pages/runs.py")
    assert at.selectbox(key="runs_pick").value == first
    assert any(f"Run #{first} · first" in s.value for s in at.subheader)
    assert at.selectbox(key=f"rn_slice_{first}").value == "third"
    assert at.slider(key=f"rn_abstain_{first}").value == pytest.approx(0.7)
    assert {m.label: m.value for m in at.metric}["Answered"] == answered
    assert any('"t2"' in c.proto.spec for c in at.get("plotly_chart"))  # the slice chart is the third's


SIMULATE = {  # widget kind, key, a value that is not the default
    "sm_imbalance": ("radio", "step"),
    "sm_ratio": ("select_slider", 20),
    "sm_minority": ("slider", 0.3),
    "sm_drop": ("multiselect", ["3"]),
    "sm_noise_kind": ("selectbox", "pairflip"),
    "sm_noise": ("slider", 0.2),
    "sm_dup": ("slider", 0.1),
    "sm_thin_col": ("selectbox", "third"),
    "sm_thin_val_third": ("selectbox", "t1"),
    "sm_thin_keep": ("slider", 0.5),
    "sm_seed": ("number_input", 5),
    "sm_knob": ("selectbox", "noise"),
    "sm_sev_noise": ("text_input", "0, 0.25"),
    "sm_epochs": ("number_input", 2),
    "sm_preset": ("selectbox", "noisy_labels"),
}


def test_simulate_settings_stay(home):
    store = Store(home)
    vid = _digits_in_slices(store)
    stored_run(store, vid, "stored")
    at = open_app("app_pages/simulate.py")
    for key, (kind, value) in SIMULATE.items():  # one at a time: a choice draws the next widgets
        getattr(at, kind)(key=key).set_value(value)
        at.run()
        assert not at.exception, (key, at.exception)
    summary = next(c.value for c in at.caption if "Val and test are unchanged" in c.value)
    assert "pair-flip" in summary or "pairflip" in summary, summary

    timers_fire(at)  # the sidebar's runner line, on the page being left
    go(at, "app_pages/runs.py")
    timers_fire(at)
    go(at, "app_pages/simulate.py")
    for key, (kind, value) in SIMULATE.items():
        assert getattr(at, kind)(key=key).value == (pytest.approx(value) if isinstance(value, float) else value), key
    assert any(c.value == summary for c in at.caption)  # the same recipe, previewed again


@pytest.mark.usefixtures("shared_embeddings")
def test_diagnose_settings_stay(home):
    from core.diagnose import review
    from core.diagnose.pipeline import diagnose
    from tests.test_diagnose import noisy_digits

    ds, _ = noisy_digits()
    store = Store(home)
    vid = store.save_dataset(ds, source="upload:digits.csv")
    diagnose(ds)  # cached with the default settings, as if run before
    run = stored_run(store, vid, "judge")  # a finished run on this version: a second source of label issues
    at = open_app("app_pages/diagnose.py")
    review_values = {
        ("radio", "dg_source"): run,
        ("multiselect", "dg_sus_classes"): [1, 2],
        ("radio", "dg_sus_order"): review.REVIEW_ORDERS[1],
        ("toggle", "dg_sus_hide"): False,
        ("multiselect", "dg_bulk_kinds"): [review.SUSPECT, review.OUTLIER],
        ("slider", "dg_bulk_quality"): (0.1, 0.9),
        ("toggle", "dg_bulk_open"): False,
        ("radio", "dg_bulk_action"): "keep",
        ("number_input", "dg_sus_page"): 2,
    }
    at.session_state["bulk_panel_open"] = True  # the "Bulk decisions by filter" expander: drawn only when open
    at.run()
    for (kind, key), value in review_values.items():
        getattr(at, kind)(key=key).set_value(value)
        at.run()
        assert not at.exception, (key, at.exception)
    at.session_state["dg_tab"] = "Outliers"
    at.run()
    at.number_input(key="dg_out_page").set_value(2)
    at.session_state["dg_tab"] = "Embedding map"
    at.run()
    at.radio(key="dg_map_colour").set_value("flagged")
    at.run()
    settings = {"dg_k": 12, "dg_folds": 4, "dg_dup": 0.95, "dg_out": 0.02}
    for key, value in settings.items():
        (at.number_input if key in ("dg_k", "dg_folds") else at.slider)(key=key).set_value(value)
    at.run()
    assert any("has not been diagnosed" in i.value for i in at.info)  # other settings: not diagnosed yet

    timers_fire(at)  # the sidebar's runner line, on the page being left
    go(at, "app_pages/runs.py")
    timers_fire(at)
    go(at, "app_pages/diagnose.py")
    assert at.number_input(key="dg_k").value == 12 and at.number_input(key="dg_folds").value == 4
    assert at.slider(key="dg_dup").value == pytest.approx(0.95) and at.slider(key="dg_out").value == pytest.approx(0.02)
    for key, value in (("dg_k", 10), ("dg_folds", 5), ("dg_dup", 0.98), ("dg_out", 0.01)):  # back to the diagnosed settings
        (at.number_input if key in ("dg_k", "dg_folds") else at.slider)(key=key).set_value(value)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["dg_tab"] == "Embedding map" and at.radio(key="dg_map_colour").value == "flagged"
    at.session_state["dg_tab"] = "Outliers"
    at.run()
    assert at.number_input(key="dg_out_page").value == 2
    at.session_state["dg_tab"] = "Label issues"
    at.session_state["bulk_panel_open"] = True  # open again: its filters were kept while it was not drawn
    at.run()
    for (kind, key), value in review_values.items():
        assert getattr(at, kind)(key=key).value == value, key
