"""The sidebar's runner line follows the store on its own (a fragment), without a page reload."""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from core.data import Dataset
from core.store import Store
from core.store.status import RunStatus
from tests.conftest import APP
from ui import sidebar


def _runner_line(at: AppTest) -> str:
    return next(c.value for c in at.sidebar.caption if c.value.startswith("**Runner:**"))


def test_runner_line_follows_a_run_through_its_statuses(home):
    store = Store(home)
    ds = Dataset("tiny", "text", np.array(["a", "b", "c", "d"], dtype=object), [0, 1, 0, 1], ["x", "y"], [0, 0, 2, 2])
    vid = store.save_dataset(ds, source="test")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()  # the home page: no runner is started, so nothing moves the runs but this test
    assert not at.exception, at.exception
    assert _runner_line(at) == "**Runner:** idle · 0 running · 0 queued · 0 runs stored"
    first = store.create_run(vid, {}, name="first")
    second = store.create_run(vid, {}, name="second")
    at.run()  # AppTest does not fire run_every: a run stands for the fragment's next tick
    assert _runner_line(at) == "**Runner:** idle · 0 running · 2 queued · 2 runs stored"
    assert store.set_run_status(first, RunStatus.RUNNING, only_if=[RunStatus.QUEUED])
    at.run()
    assert _runner_line(at) == "**Runner:** busy · 1 running · 1 queued · 2 runs stored"
    assert store.set_run_status(first, RunStatus.FINISHED) and store.set_run_status(second, RunStatus.RUNNING)
    at.run()
    assert _runner_line(at) == "**Runner:** busy · 1 running · 0 queued · 2 runs stored"
    assert store.set_run_status(second, RunStatus.FAILED)
    at.run()
    assert _runner_line(at) == "**Runner:** idle · 0 running · 0 queued · 2 runs stored"


def test_runner_line_is_a_fragment_that_redraws_itself():
    # a fragment with run_every: the browser redraws the line every few seconds on its own
    assert sidebar.RUNNER_EVERY_S <= 5.0
    assert getattr(sidebar._status_lines, "__wrapped__", None) is not None
