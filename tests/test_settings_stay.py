"""Every page keeps its settings when the user leaves it and comes back (``ui.state``): set values
that are not the defaults, visit another page (and let that page's timers fire), return, and read
the same values back."""

from __future__ import annotations

from unittest import mock

import pytest
from streamlit.testing.v1 import AppTest, local_script_runner

from core.data import demos
from core.store import RunStatus, Store
from core.train.config import RunConfig
from tests.conftest import APP

pytestmark = [pytest.mark.timeout(300)]


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
