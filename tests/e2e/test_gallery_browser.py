"""The Runs page in a real browser while a run trains: the live panels are redrawn every 2 s (and
Streamlit marks them stale, fading them, while it does), but the hallucination gallery's images
are not among them, so they never fade."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from playwright.sync_api import expect

from core.store import RunStatus, Store
from tests.test_compare import _ds

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

# how many element containers are stale right now: images, and everything else
STALE = """() => {
  const stale = [...document.querySelectorAll('[data-testid="stElementContainer"][data-stale="true"]')];
  return [stale.filter(e => e.querySelector('img')).length, stale.length];
}"""


def test_gallery_images_never_go_stale_while_the_panels_redraw(home, server, page):
    store = Store(home)
    vid = store.save_dataset(_ds(), source="upload:toy")
    run = store.create_run(vid, {"model": "small_cnn", "tau": 0.9}, name="live")
    store.add_metrics(run, 10, "val", {"macro_f1": 0.5}, epoch=1.0)
    store.add_metrics(run, 10, "test", {"accuracy": 0.6}, epoch=1.0)
    items = np.arange(30, 40)
    store.add_predictions(run, 10, "test", items, items % 2, np.zeros(10, np.int64), np.linspace(0.55, 0.99, 10))
    store.set_run_status(run, RunStatus.RUNNING)
    beating = threading.Event()

    def beat() -> None:  # a worker's heartbeat, so the run stays live
        while not beating.wait(1.0):
            store.heartbeat(run)

    threading.Thread(target=beat, daemon=True).start()
    try:
        page.goto(f"{server}/runs")
        expect(page.get_by_text("5 wrong of 10", exact=False)).to_be_visible()
        expect(page.locator('[data-testid="stImage"] img').first).to_be_visible()
        stale_images, stale_any, samples = 0, 0, 0
        deadline = time.monotonic() + 12  # six ticks of the 2 s timer
        while time.monotonic() < deadline:
            images, anything = page.evaluate(STALE)
            stale_images, stale_any, samples = stale_images + images, stale_any + anything, samples + 1
            page.wait_for_timeout(20)
        assert samples > 50
        assert stale_any > 0, "no element went stale: the live fragment never redrew (the measurement saw nothing)"
        assert stale_images == 0
    finally:
        beating.set()
