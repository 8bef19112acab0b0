"""The core loop in a real browser: choose a demo, start a run, watch the live chart gain points
with no further input, stop the run."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

# points of the "Training loss" chart (Streamlit wraps titles in <b>; during a redraw the old and
# the new chart may both be in the page, so take the larger; points are counted as drawn markers)
LOSS_POINTS = """() => Math.max(0, ...[...document.querySelectorAll('.js-plotly-plot')]
  .filter(p => p.layout && p.layout.title && String(p.layout.title.text).includes('Training loss'))
  .map(p => p.querySelectorAll('.scatterlayer .trace .points path').length))"""


def test_start_watch_live_and_stop(server, page):
    page.goto(f"{server}/data")
    page.locator(".st-key-demo_digits").get_by_role("button", name="Open").click()  # Digits 8×8, by its key: the cards draw one by one
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("1,797")

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    expect(page.get_by_role("heading", name="🏋️ Train")).to_be_visible()
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("200")
    epochs.press("Enter")
    page.get_by_text("More settings").click()
    every = page.get_by_label("Evaluate every N steps (0 = each epoch)")
    every.fill("5")
    every.press("Enter")
    expect(page.get_by_text("200 epoch(s)")).to_be_visible()
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("Run #1 is")).to_be_visible()

    page.get_by_role("link", name="Open run #1").click()
    expect(page.get_by_role("heading", name="Run #1", exact=False)).to_be_visible()
    page.wait_for_function(f"({LOSS_POINTS})() >= 2", timeout=90_000)
    before = page.evaluate(LOSS_POINTS)
    # no input: the fragment's timer must bring new points
    page.wait_for_function(f"({LOSS_POINTS})() > {before}", timeout=60_000)
    after = page.evaluate(LOSS_POINTS)
    assert after > before

    expect(page.get_by_test_id("stSidebar")).to_contain_text("1 running")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("heading", name="Run #1", exact=False)).to_contain_text("stopped", timeout=90_000)
    # the rest of the page follows without a reload: the sidebar's counts
    expect(page.get_by_test_id("stSidebar")).to_contain_text("0 running", timeout=30_000)
    expect(page.get_by_role("combobox", name="Run")).to_have_value(
        re.compile(r"^#1 · small_cnn · full fine-tune$")
    )  # no status to go stale
