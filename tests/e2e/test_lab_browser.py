"""The knowledge-gap lab in a real browser.

On the Lab page: a tiny corpus set by its knobs (40 people, buckets 1 and 8), its preview (monofact
rate, exposure histogram, sample biographies), saved; a small run started and followed until its
per-exposure table, chart and findings arrive; a second run with paraphrase augmentation; both on
Compare, the second against the first.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]


def _shot(page, tmp_path: Path, name: str, *, top) -> None:
    top.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(tmp_path.parent / name), full_page=True)


def _fill(page, label: str, value: str) -> None:
    """Type a value and commit it; a rerun still drawing the previous change can put the old value
    back, so it is typed again until it stays."""
    field = page.get_by_label(label, exact=True)
    for _ in range(4):
        field.fill(value)
        field.press("Enter")
        try:
            expect(field).to_have_value(value, timeout=15_000)
            expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=30_000)  # the rerun is over
            expect(field).to_have_value(value, timeout=5_000)
            return
        except AssertionError:
            continue
    expect(field).to_have_value(value)


def _run(page, run_id: int) -> None:
    """Start run ``run_id`` and wait until it is done and its findings are on the page."""
    page.get_by_role("button", name=re.compile(r"^Start a lab run")).click()
    expect(page.get_by_text(f"Run {run_id} queued")).to_be_visible()
    done = page.get_by_text(re.compile(r"^finished: done: [\d,]+ tokens · accuracy by exposure"))
    expect(done).to_have_count(0, timeout=30_000)  # the new run is shown, not the one before
    expect(done).to_have_count(1, timeout=300_000)
    expect(page.get_by_text(re.compile(r"^The model answers right \d+% of the facts seen 1×"))).to_be_visible(timeout=60_000)


def test_the_lab_from_knobs_to_compare(page, server, tmp_path):
    page.goto(server)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Lab").click()
    expect(page.get_by_role("heading", name="🧠 Knowledge-gap lab")).to_be_visible()
    _fill(page, "People", "40")
    _fill(page, "Appearances per bucket", "1, 8")
    monofact = page.get_by_test_id("stMetric").filter(has_text="Monofact rate")
    expect(monofact).to_contain_text("50.0%")
    expect(page.locator(".js-plotly-plot").filter(has_text="People per number of appearances")).to_have_count(1)
    expect(page.get_by_text("Sample biographies")).to_be_visible()
    _shot(page, tmp_path, "lab-corpus.png", top=page.get_by_role("heading", name="1 · The corpus"))
    page.get_by_role("button", name="Save this corpus").click()
    expect(page.get_by_text(re.compile(r"Saved as version \d+"))).to_be_visible()
    _fill(page, "Epochs", "4")
    _fill(page, "Evaluate every (epochs)", "2")
    _fill(page, "Layers", "1")
    _run(page, 1)
    expect(page.locator(".js-plotly-plot").filter(has_text="against how often the fact was seen")).to_have_count(1)
    expect(page.get_by_text(re.compile(r"^For people the corpus never mentions it invents an answer"))).to_be_visible()
    _shot(page, tmp_path, "lab-run.png", top=page.get_by_role("heading", name="3 · What it learned, by how often it saw each fact"))
    page.get_by_text("Paraphrase augmentation", exact=True).click()
    expect(page.get_by_role("button", name=re.compile(r"^Start a lab run · paraphrase augmentation"))).to_be_visible()
    _run(page, 2)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Compare").click()
    expect(page.get_by_role("heading", name=re.compile("Compare"))).to_be_visible()
    frames = page.get_by_test_id("stDataFrame")
    expect(frames.filter(has_text=re.compile(r"Δ #\d+ · lab GPT-2 · paraphrase augmentation"))).to_have_count(1, timeout=90_000)
    _shot(page, tmp_path, "lab-compare.png", top=page.get_by_role("heading", name=re.compile("Compare")))


def test_smollm2_probed_from_the_lab_page(page, server, tmp_path):
    from core.data import assets

    if not assets.is_ready("smollm2"):
        pytest.skip("the smollm2 asset is not fetched (python -m core.data.assets fetch)")
    page.goto(server)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Lab").click()
    section = page.get_by_role("heading", name="4 · A real model, probed")
    expect(section).to_be_visible()
    expect(page.get_by_text("No probe yet.")).to_be_visible()
    _fill(page, "Facts asked", "3")
    _fill(page, "Greedy prompts", "1")
    _fill(page, "Samples", "2")
    page.get_by_role("button", name="Probe SmolLM2 in the background").click()
    expect(page.get_by_text(re.compile(r"^Of 3 facts the model knows \d+%"))).to_be_visible(timeout=400_000)
    expect(page.locator(".js-plotly-plot").filter(has_text="Confidence against correctness")).to_have_count(1)
    expect(page.get_by_text(re.compile(r"^Over all facts: accuracy \d+%"))).to_be_visible()
    _shot(page, tmp_path, "lab_probe.png", top=section)
    tune = page.get_by_role("heading", name="5 · A real model, fine-tuned on what it did not know")
    expect(tune).to_be_visible()
    # the plan, or why there is none (three facts may hold no unknown one to mix in)
    expect(page.get_by_text(re.compile(r"^(Fine-tunes on \d+ facts \(\d+ unknown|nothing to fine-tune on)"))).to_be_visible()
    go = page.get_by_role("button", name="Fine-tune SmolLM2 in the background")
    import torch

    if not torch.cuda.is_available():
        expect(page.get_by_text(re.compile("Fine-tuning SmolLM2 needs a GPU, and this machine has none"))).to_be_visible()
        expect(go).to_be_disabled()
    _shot(page, tmp_path, "lab_tune.png", top=tune)
