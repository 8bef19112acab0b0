"""The stakeholder demo in a real browser, at digits size so it fits CI: open a demo → simulate a
long tail plus 30 % noise → sweep the imbalance ratio → run baseline and mitigated → Compare →
download the report."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]


def _nav(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()


def test_the_stakeholder_demo(server, page, tmp_path):
    page.goto(f"{server}/data")
    page.get_by_test_id("stButton").filter(has_text="Open").last.click()  # Digits 8×8
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("1,797")

    # simulate: the long tail is the default profile; 30 % noise with the keyboard
    _nav(page, "Simulate")
    expect(page.get_by_role("heading", name="🧪 Simulate")).to_be_visible()
    noise = page.get_by_role("slider", name="Share of each class's train labels made wrong")
    summary = page.get_by_text("long tail ×10 · 30% symmetric noise", exact=False)
    for _ in range(40):  # steps of 0.05 to 0.30; a key pressed while the page reruns may be lost: read and correct
        if summary.is_visible():
            break
        value = float(noise.input_value())
        if abs(value - 0.3) > 1e-6:
            noise.press("ArrowRight" if value < 0.3 else "ArrowLeft")
        else:
            try:
                summary.wait_for(timeout=10_000)
            except PlaywrightTimeout:
                continue  # the page may still be rerunning, or have dropped a key: read the value again
    expect(page.get_by_text("long tail ×10 · 30% symmetric noise", exact=False)).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Create this version").click()
    expect(page.get_by_text("made it the current dataset")).to_be_visible(timeout=60_000)

    # the sweep: default knob (imbalance ratio) and severities, one epoch each
    epochs = page.get_by_label("Epochs")
    epochs.fill("1")
    epochs.press("Enter")
    page.get_by_role("button", name=re.compile(r"Run the sweep \(4 runs\)")).click()
    expect(page.get_by_text("4 of 4 runs finished")).to_be_visible(timeout=300_000)
    expect(page.locator(".js-plotly-plot").filter(has_text="Hallucination rate @τ").first).to_be_visible()

    # baseline and mitigated on the simulated version, with the long-tail preset
    _nav(page, "Train")
    expect(page.get_by_role("heading", name="🏋️ Train")).to_be_visible()
    pair = page.get_by_role("button", name="Run baseline and mitigated side by side")
    for _ in range(8):  # a click that lands while the page reruns can be lost: click until the preset took
        page.get_by_text("long-tail fix").click()
        try:
            expect(pair).to_be_enabled(timeout=15_000)
            break
        except AssertionError:
            continue
    epochs = page.get_by_label("Epochs")
    epochs.fill("2")
    epochs.press("Enter")
    expect(page.get_by_label("Epochs")).to_have_value("2", timeout=30_000)
    expect(pair).to_be_enabled(timeout=30_000)
    pair.click()
    expect(page.get_by_text(re.compile(r"Run #\d+ is \w+, #\d+ is"))).to_be_visible(timeout=30_000)

    # Compare: wait for both to finish, then take the report
    _nav(page, "Compare")
    expect(page.get_by_role("heading", name="⚖️ Compare")).to_be_visible()
    expect(page.get_by_text("Errors fixed")).to_be_visible(timeout=60_000)
    # the page opens on the pair just started and redraws itself when the runs end
    tags = page.get_by_test_id("stMultiSelectTagsContainer").first
    expect(tags).to_contain_text(re.compile(r"#\d+ · small_cnn · full · baseline"))
    expect(tags).to_contain_text("balanced_softmax")
    expect(page.get_by_text("Some runs are still training")).not_to_be_visible(timeout=300_000)
    page.get_by_role("button", name="Prepare the report and exports").click()
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Report (HTML)").click()
    path = tmp_path / "report.html"
    download.value.save_as(path)
    html = path.read_text()
    for section in ("summary", "dataset", "diagnosis", "mitigations", "comparison"):
        assert f"<section id='{section}'>" in html
    assert "balanced_softmax" in html and "hallucination rate" in html
