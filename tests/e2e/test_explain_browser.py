"""Why a run answered, in a real browser: a short small-CNN run on the digits demo, its hallucination
gallery's first item explained for the class it answered and its given class, the attribution
method switched to occlusion, the whole gallery explained in the background (which embeds the
version), and then the nearest train items said in words under the explanation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]


def _shot(page, tmp_path: Path, name: str, *, top) -> None:
    """A screenshot with ``top`` at the top of the view (Streamlit scrolls its main block, not the
    page, so a full-page shot is the view), kept beside the test's folder."""
    top.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(tmp_path.parent / name), full_page=True)


def test_why_it_answered_explains_the_gallery(server, page, tmp_path):
    page.goto(f"{server}/data")
    # Digits 8×8 by its button's key: on a loaded machine the page may click before the last card is drawn
    page.locator(".st-key-demo_digits").get_by_role("button", name="Open").click()
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("1,797")

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    expect(page.get_by_role("heading", name="🏋️ Train")).to_be_visible()
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("2")
    epochs.press("Enter")
    expect(page.get_by_text("2 epoch(s)")).to_be_visible()
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("Run #1 is")).to_be_visible()

    page.get_by_role("link", name="Open run #1").click()
    # while the page reruns from the run's live layout to its still one, the old heading (stale)
    # stands beside the new one for a moment
    heading = page.get_by_role("heading", name="Run #1", exact=False)
    expect(heading.filter(has_text="finished")).to_have_count(1, timeout=180_000)
    expect(heading).to_have_count(1, timeout=60_000)

    # the explanation of the gallery's first item, both classes, Integrated Gradients first. When
    # the run ends the page reruns from its live layout to its still one: until that run is over
    # the old (stale) gallery and its "Why it answered" stand beside the new ones
    why = page.get_by_text("Why it answered")
    expect(why).to_have_count(1, timeout=90_000)
    expect(why).to_be_visible()
    item = page.get_by_test_id("stSelectbox").filter(has_text="Item")
    expect(item).to_have_count(1)
    expect(item).to_be_visible()
    # after the radio is switched the page may keep a hidden copy (display: none) of each chart
    # beside the one shown: only the visible ones count
    charts = page.locator(".js-plotly-plot")
    expect(charts.filter(has_text="answered:", visible=True)).to_have_count(1, timeout=120_000)
    expect(charts.filter(has_text="given:", visible=True)).to_have_count(1)
    expect(page.get_by_text("Integrated Gradients of the class's logit", exact=False)).to_be_visible()

    # occlusion: a click that lands while the page reruns can be lost, so click until it took
    occlusion = page.get_by_test_id("stRadio").filter(has_text="Attribution").get_by_text("Occlusion", exact=True)
    caption = page.get_by_text("blacked out", exact=False)
    for _ in range(6):
        occlusion.click()
        try:
            expect(caption).to_be_visible(timeout=30_000)
            break
        except AssertionError:
            continue
    expect(caption).to_be_visible(timeout=60_000)
    expect(charts.filter(has_text="answered:", visible=True)).to_have_count(1, timeout=60_000)
    expect(charts.filter(has_text="given:", visible=True)).to_have_count(1)
    expect(page.get_by_text("Appear once the version is embedded", exact=False)).to_be_visible()
    _shot(page, tmp_path, "explain_runs_page_before.png", top=why)

    # the whole gallery in the background: every item, both classes, every method, then the embedding
    page.get_by_role("button", name="Explain the whole gallery in the background").click()
    expect(page.get_by_text("Every gallery item explained", exact=False)).to_be_visible(timeout=240_000)

    # the job's end redraws the page once: the nearest train items, from the embeddings it made
    said = page.get_by_text(re.compile(r"^Answered \S+: \d of its 5 nearest train items are labelled"))
    expect(said).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Every gallery item explained", exact=False)).to_be_visible()
    expect(charts.filter(has_text="answered:", visible=True)).to_have_count(1, timeout=60_000)
    expect(charts.filter(has_text="given:", visible=True)).to_have_count(1)
    expect(page.get_by_text("Cosine similarity of the embeddings", exact=False)).to_be_visible()
    expect(page.get_by_test_id("stImage").last).to_be_visible()  # the five nearest, side by side
    _shot(page, tmp_path, "explain_runs_page.png", top=why)
