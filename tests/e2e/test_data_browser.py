"""The Data page in a real browser: open a demo, see the sidebar follow, upload a CSV."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

CSV = "text,label\n" + "".join(f"a browser test sentence number {i},{'yes' if i % 4 else 'no'}\n" for i in range(40))


def test_open_demo_and_upload_csv(server, page, tmp_path):
    page.goto(f"{server}/data")
    expect(page.get_by_role("heading", name="📊 Data")).to_be_visible()
    page.locator(".st-key-demo_digits").get_by_role("button", name="Open").click()  # Digits 8×8, by its key: the cards draw one by one
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("1,797")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("combobox", name="Dataset")).to_have_value("Digits 8×8 · v1")
    expect(sidebar).to_contain_text("Runner: idle")
    page.get_by_role("tab", name="Upload").click()
    csv = tmp_path / "answers.csv"
    csv.write_text(CSV)
    page.locator("input[type=file]").set_input_files(str(csv))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 'answers.csv' as version 2.")).to_be_visible()
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("40")
    expect(sidebar.get_by_role("combobox", name="Dataset")).to_have_value("answers · v2")
    page.screenshot(path=str(tmp_path.parent / "data_page.png"), full_page=True)
