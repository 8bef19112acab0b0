"""The Selection page in a real browser: an uploaded table, a run trained from the Train page, its
data map, and a keep-x % sweep whose runs finish and draw their lines."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]


def table_csv() -> str:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 900)
    x = rng.normal(size=(900, 3)) + y[:, None] * 1.2
    names = np.array(["low", "mid", "high"])
    flip = rng.random(900) < 0.1  # some label noise, for the data map's hard-to-learn corner
    given = np.where(flip, (y + 1) % 3, y)
    rows = [f"{a:.4f},{b:.4f},{c:.4f},{names[t]}" for (a, b, c), t in zip(x, given)]
    return "a,b,c,label\n" + "\n".join(rows) + "\n"


def test_a_keep_x_percent_sweep_runs_and_draws(server, page, tmp_path):
    page.goto(f"{server}/data")
    expect(page.get_by_role("heading", name="📊 Data")).to_be_visible()
    page.get_by_role("tab", name="Upload").click()
    csv = tmp_path / "three.csv"
    csv.write_text(table_csv())
    page.locator("input[type=file]").set_input_files(str(csv))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 'three.csv' as version 1.")).to_be_visible()

    page.goto(f"{server}/train")
    expect(page.get_by_role("heading", name="🏋️ Train")).to_be_visible()
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("4")
    epochs.press("Enter")
    expect(page.get_by_text("4 epoch(s)")).to_be_visible()
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("Run #1 is")).to_be_visible()

    page.get_by_role("link", name="Open run #1").click()
    expect(page.get_by_role("heading", name="Run #1", exact=False)).to_contain_text("finished", timeout=180_000)

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Selection").click()
    expect(page.get_by_role("heading", name="🎯 Selection")).to_be_visible()
    expect(page.get_by_text("Hard to learn").first).to_be_visible()
    sweep_epochs = page.get_by_label("Epochs", exact=True)
    sweep_epochs.fill("2")
    sweep_epochs.press("Enter")
    page.get_by_role("button", name="Run the sweep (6 runs)").click()  # el2n, ccs and random at 30 % and 50 %
    expect(page.get_by_text("Queued 6 runs")).to_be_visible()
    expect(page.get_by_text("6 of 6 runs finished")).to_be_visible(timeout=300_000)
    expect(page.locator(".js-plotly-plot").filter(has_text="against the share kept")).to_have_count(3)
    page.screenshot(path=str(tmp_path.parent / "select_page.png"), full_page=True)
