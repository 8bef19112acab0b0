"""Named entities through the whole loop in a real browser, on a small CoNLL-2003 slice: upload a
CoNLL file → the Data page's entity view → diagnose token label errors → the rare-types preset,
baseline and mitigated side by side → Compare with intervals → the report."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.data import assets

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not (assets.is_ready("conll2003") and assets.is_ready("minilm")), reason="CoNLL-2003 or MiniLM not fetched"),
]

N_SENTENCES = 160


def _nav(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()


def _conll_slice(path) -> int:
    """The first sentences of CoNLL-2003 train as a CoNLL upload (IOB2, four columns); their count."""
    text = assets.asset_path("conll2003", "conll2003/train.txt").read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip() and not b.startswith("-DOCSTART-")][:N_SENTENCES]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return len(blocks)


def test_named_entities_through_the_loop(server, page, tmp_path):
    upload = tmp_path / "news.conll"
    n = _conll_slice(upload)

    # Data: a CoNLL upload becomes a token dataset with its entity view
    page.goto(f"{server}/data")
    expect(page.get_by_role("heading", name="📊 Data")).to_be_visible()
    page.get_by_role("tab", name="Upload").click()
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Entities per type")).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(f"{n:,}")
    expect(page.locator("mark").first).to_be_visible()  # example sentences with their entities highlighted
    page.screenshot(path=str(tmp_path.parent / "ner_data.png"), full_page=True)

    # Diagnose: token label errors in the background, then the review queue
    _nav(page, "Diagnose")
    run = page.get_by_role("button", name="Run diagnosis")
    queue = page.get_by_text(re.compile(r"^[\d,]+ sentences to review$"))
    for _ in range(5):  # a click that lands while the page reruns can be lost: click until the job started
        run.click()
        try:
            expect(run).not_to_be_visible(timeout=15_000)
            break
        except AssertionError:
            continue
    expect(queue).to_be_visible(timeout=300_000)
    page.screenshot(path=str(tmp_path.parent / "ner_diagnose.png"), full_page=True)

    # Train: the rare-types preset, two epochs, baseline and mitigated side by side
    _nav(page, "Train")
    expect(page.get_by_role("heading", name="🏋️ Train")).to_be_visible()
    pair = page.get_by_role("button", name="Run baseline and mitigated side by side")
    for _ in range(8):  # a click that lands while the page reruns can be lost: click until the preset took
        page.get_by_text("rare entity types").first.click()
        try:
            expect(pair).to_be_enabled(timeout=15_000)
            break
        except AssertionError:
            continue
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("2")
    epochs.press("Enter")
    expect(page.get_by_label("Epochs", exact=True)).to_have_value("2", timeout=30_000)
    expect(pair).to_be_enabled(timeout=30_000)
    page.screenshot(path=str(tmp_path.parent / "ner_train.png"), full_page=True)
    pair.click()
    expect(page.get_by_text(re.compile(r"Run #\d+ is \w+, #\d+ is"))).to_be_visible(timeout=120_000)

    # Compare: both runs finish; entity metrics with intervals; the report
    _nav(page, "Compare")
    expect(page.get_by_role("heading", name="⚖️ Compare")).to_be_visible()
    # the page redraws itself when the runs end: then each line names the step of its best val entity macro-F1
    final = re.compile(r"test scores at step \d+, the best val entity macro-F1(?! so far)")
    expect(page.get_by_role("listitem").filter(has_text=final)).to_have_count(2, timeout=600_000)
    expect(page.get_by_text(re.compile("^Still training"))).not_to_be_visible(timeout=60_000)
    # during a redraw the old and the new section may both be in the page: either will do
    expect(page.get_by_text("Entity metrics (test split, each run at its result)").first).to_be_visible(timeout=120_000)
    expect(page.get_by_text("What changed, entity by entity").first).to_be_visible()
    page.screenshot(path=str(tmp_path.parent / "ner_compare.png"), full_page=True)
    page.get_by_role("button", name="Prepare the report and exports").click()
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Report (HTML)").click()
    path = tmp_path / "report.html"
    download.value.save_as(path)
    html = path.read_text()
    assert "entity" in html.lower() and "spurious" in html.lower()
    assert "<script src=" not in html  # offline: plotly inline

    # Runs: the newest run's entity view
    _nav(page, "Runs")
    expect(page.get_by_role("heading", name=re.compile(r"Run #\d+ · "))).to_be_visible()
    expect(page.get_by_text(re.compile(r"entity micro-F1", re.I)).first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(tmp_path.parent / "ner_runs.png"), full_page=True)
