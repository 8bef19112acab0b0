"""The Shift page in a real browser: an uploaded table, a target with another class mix, the tests' verdict."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def table_csv() -> str:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 900)
    x = rng.normal(size=(900, 3)) + y[:, None] * 2.0
    rows = [f"{a:.4f},{b:.4f},{c:.4f},{'ill' if t else 'healthy'}" for (a, b, c), t in zip(x, y)]
    return "dose,age,score,label\n" + "\n".join(rows) + "\n"


def test_a_class_mix_target_is_found_shifted(server, page, tmp_path):
    page.goto(f"{server}/data")
    expect(page.get_by_role("heading", name="📊 Data")).to_be_visible()
    page.get_by_role("tab", name="Upload").click()
    csv = tmp_path / "clinic.csv"
    csv.write_text(table_csv())
    page.locator("input[type=file]").set_input_files(str(csv))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 'clinic.csv' as version 1.")).to_be_visible()

    page.goto(f"{server}/shift")
    expect(page.get_by_role("heading", name="🌊 Shift")).to_be_visible()
    page.get_by_text("test rows with another class mix").click()
    expect(page.get_by_role("spinbutton", name="healthy")).to_be_visible()
    page.get_by_role("spinbutton", name="healthy").fill("0.95")
    page.get_by_role("spinbutton", name="healthy").press("Enter")
    page.get_by_role("spinbutton", name="ill").fill("0.05")
    page.get_by_role("spinbutton", name="ill").press("Enter")
    expect(page.get_by_text("drawn as healthy 95%, ill 5%")).to_be_visible()
    page.get_by_role("button", name="Test for shift").click()
    expect(page.get_by_text("The target is shifted")).to_be_visible()
    expect(page.get_by_text("No finished run can answer these items yet")).to_be_visible()
    page.screenshot(path=str(tmp_path.parent / "shift_page.png"), full_page=True)
