"""AppTest of the Train and Runs pages with real background runs (digits, small CNN)."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core.data import demos
from core.store import Store
from tests.conftest import APP

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def wait_for(predicate, timeout=120.0, poll=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def test_train_page_starts_a_run_and_runs_page_shows_it(home):
    store = Store(home)
    vid = demos.import_demo(store, "digits")
    at = open_page("app_pages/train.py")
    text = " ".join(m.value for m in at.markdown)
    assert "small CNN (random init)" in text and "1,445 training items" in text and "69 steps" in text
    assert any("Estimated time" in m.value for m in at.markdown)
    at.button(key="start_run").click()
    at.run()
    assert not at.exception, at.exception
    runs = store.runs()
    assert len(runs) == 1 and runs[0]["version_id"] == vid and runs[0]["config"]["model"] == "small_cnn"
    assert any(f"Run #{runs[0]['id']}" in s.value for s in at.success)
    # the app's runner pumps the queue in the background: the run finishes with no further input
    assert wait_for(lambda: store.run(runs[0]["id"])["status"] == "finished"), store.run(runs[0]["id"])
    at.switch_page("app_pages/runs.py")
    at.run()
    assert not at.exception, at.exception
    kpis = {m.label: m.value for m in at.metric}
    assert float(kpis["Accuracy"]) > 0.8 and kpis["Forced-known rate @τ"] == "—"
    assert len(at.get("plotly_chart")) == 6  # loss, accuracy, hallucination, recall, reliability, confusion
    assert any("wrong of 176" in c.value for c in at.caption)  # the hallucination gallery
    assert any("Temperature scaling" in m.value for m in at.markdown)


def test_runs_page_updates_while_a_run_goes_and_stops_it(home):
    store = Store(home)
    demos.import_demo(store, "digits")
    at = open_page("app_pages/train.py")
    at.number_input(key="tr_epochs").set_value(200)
    at.number_input(key="tr_eval").set_value(5)
    at.run()
    at.button(key="start_run").click()
    at.run()
    run_id = store.runs()[0]["id"]
    assert wait_for(lambda: len(store.metrics(run_id)) > 0)
    at.switch_page("app_pages/runs.py")
    at.run()
    first = len(store.metrics(run_id))
    assert wait_for(lambda: len(store.metrics(run_id)) > first + 20)
    at.run()  # a tick of run_every
    assert not at.exception, at.exception
    assert any("running" in s.value for s in at.subheader)
    at.button(key=f"stop_{run_id}").click()
    at.run()
    assert wait_for(lambda: store.run(run_id)["status"] == "stopped", timeout=60), store.run(run_id)
    rows = len(store.metrics(run_id))
    assert rows > first  # nothing written before the stop is lost
    at.run()
    assert any("stopped" in s.value for s in at.subheader)


def test_train_page_rejects_a_bad_model_path(home):
    demos.import_demo(Store(home), "digits")
    at = open_page("app_pages/train.py")
    at.text_input(key="tr_path").set_value("/nowhere/model.pth")
    at.run()
    assert any("neither a built-in" in e.value and "existing path" in e.value for e in at.error)
    assert at.button(key="start_run").disabled
