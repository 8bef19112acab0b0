"""Train's settings in a real browser after a visit to Runs, whose run list redraws itself on a timer."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from core.data import demos
from core.store import RunStatus, Store
from core.train.config import RunConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]


def _nav(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()


def test_train_settings_stay_after_runs_redraws(home, server, page):
    store = Store(home)
    vid = demos.import_demo(store, "digits")
    run = store.create_run(vid, RunConfig(version_id=vid, model="small_cnn", epochs=1).to_dict(), name="stored")
    store.set_run_status(run, RunStatus.FINISHED)
    frames: list[int] = []  # messages from the server: each fragment rerun sends some
    page.on("websocket", lambda ws: ws.on("framereceived", lambda _: frames.append(1)))
    page.goto(f"{server}/train")
    epochs = page.get_by_label("Epochs", exact=True)
    expect(epochs).to_have_value("3")
    epochs.fill("7")
    epochs.press("Enter")
    plan = page.locator("li", has_text="epoch(s) ×")
    expect(plan).to_contain_text("7 epoch(s)")  # the server has run with 7 epochs
    page.get_by_text("long-tail fix").click()
    expect(page.locator("li", has_text="Mitigations:")).not_to_contain_text("none (baseline)")
    expect(plan).to_contain_text("7 epoch(s)")  # and with both

    _nav(page, "Runs")
    expect(page.get_by_role("heading", name=f"Run #{run} · stored")).to_be_visible()
    seen = len(frames)
    deadline = time.monotonic() + 60
    while len(frames) < seen + 20 and time.monotonic() < deadline:  # the list's 2 s timer has fired several times
        page.wait_for_timeout(250)  # lets Playwright deliver the frames
    assert len(frames) >= seen + 20, "the Runs page's timers never fired"

    _nav(page, "Train")
    epochs = page.get_by_label("Epochs", exact=True)
    expect(epochs).to_have_value("7")
    expect(page.get_by_role("radio", name="long-tail fix")).to_be_checked()
