"""The Runs page's hallucination gallery while a run trains: drawn by the page run, not by the
fragments that redraw the run every 2 s (Streamlit fades every element a fragment redraws, so
images there would flicker grey on each tick); once the run has ended, in its place among the
panels."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

import ui.run_detail
from core.store import RunStatus, Store
from tests.test_compare import _ds
from tests.test_train_pages import open_page


def _running(store: Store) -> int:
    """A run that trains: one evaluation with predictions, a fresh heartbeat."""
    vid = store.save_dataset(_ds(), source="upload:toy")
    run = store.create_run(vid, {"model": "small_cnn", "tau": 0.9}, name="toy")
    store.add_metrics(run, 10, "val", {"macro_f1": 0.5}, epoch=1.0)
    store.add_metrics(run, 10, "test", {"accuracy": 0.6}, epoch=1.0)
    items = np.arange(30, 40)  # the test items of _ds
    store.add_predictions(run, 10, "test", items, items % 2, np.zeros(10, np.int64), np.linspace(0.55, 0.99, 10))
    store.set_run_status(run, RunStatus.RUNNING)
    store.heartbeat(run)
    return run


def test_a_live_runs_gallery_is_drawn_outside_the_refreshing_fragments(home, monkeypatch):
    store = Store(home)
    run = _running(store)
    drawn_in: list[str | None] = []
    gallery = ui.run_detail.gallery

    def recording(*args, **kwargs):
        drawn_in.append(ThreadState.get().fragment_id)  # None: drawn by the page run, not by a fragment
        return gallery(*args, **kwargs)

    monkeypatch.setattr(ui.run_detail, "gallery", recording)
    at = open_page("app_pages/runs.py")
    assert not at.exception, at.exception
    if not store.run(run).status.active:  # pragma: no cover - the app's runner would have to give up on it first
        pytest.skip(f"the run was not live when the page drew it: {store.run(run).status}")
    assert drawn_in and all(f is None for f in drawn_in)  # the page run drew it, no fragment
    assert any(c.value.startswith("At step 10 (epoch 1.00): 5 wrong of 10;") for c in at.caption)
    assert at.session_state[f"gallery_shown_{run}"] == (10, True)  # what the live fragment compares against
    assert [e.label for e in at.expander][-2:] == ["Logs", "Config"]  # the tail is still drawn, live
    # once the run has ended, the gallery is drawn among the panels again, inside the still fragment
    store.set_run_status(run, RunStatus.FINISHED)
    drawn_in.clear()
    at.run()
    assert not at.exception, at.exception
    assert drawn_in and all(f is not None for f in drawn_in)
    assert any(c.value.startswith("At step 10 (epoch 1.00): 5 wrong of 10;") for c in at.caption)
