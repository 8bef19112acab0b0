"""The report and the exports of token-classification runs: every section, entity metrics with
intervals, per-type F1, the type confusion, the hallucinated-entity gallery with its text escaped,
nothing fetched from outside; metric exports name the entity types."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from core.compare.entities import Piece
from core.report.exports import metrics_csv
from core.report.html import SECTIONS, build_report, token_summary_sentences
from core.store import Store
from tests.test_report import Parsed
from tests.test_token_runs_page import conll_slice, needs_conll, write_token_run

pytestmark = [pytest.mark.timeout(600), needs_conll]

HOSTILE = "<img src=x onerror=alert(1)>&"


@pytest.fixture
def token_runs(home) -> tuple[Store, list[int]]:
    """The weak and strong runs of ``tests.test_token_runs_page``, every test sentence opening with
    a word of markup."""
    store = Store(home)
    ds = conll_slice()
    assert ds.items is not None
    for r in range(len(ds)):
        if ds.split[r] == 2:
            ds.items[r] = (HOSTILE, *ds.items[r][1:])
    vid = store.save_dataset(ds, source="demo:conll2003")
    weak = write_token_run(store, vid, ds, name="weak", rights=(0.6, 0.7), seed=1)
    strong = write_token_run(store, vid, ds, name="strong", rights=(0.8, 0.95), seed=2)
    return store, [weak, strong]


def test_the_token_report_has_its_sections_intervals_and_gallery(token_runs):
    store, ids = token_runs
    doc = build_report(store, ids, title="CoNLL: strong vs weak")
    parsed = Parsed()
    parsed.feed(doc)
    assert parsed.sections == list(SECTIONS)
    assert parsed.scripts_with_src == 0 and parsed.external == [] and not re.search(r"@import|url\(\s*['\"]?https?://", doc)
    assert parsed.plots >= 6  # entity mentions, curves, per-type F1, a type confusion and a reliability diagram per run
    summary = doc[doc.index("id='summary'") : doc.index("id='dataset'")]
    assert "#1 · weak found the test entities with an entity micro-F1 of" in summary
    assert "#2 · strong cuts the confident spurious-entity rate to" in summary and "95 % interval" in summary
    assert "entity micro-F1" in summary and ", better)" in summary
    assert "forced-known type rate" in summary  # the train split lacks MISC
    dataset = doc[doc.index("id='dataset'") : doc.index("id='diagnosis'")]
    assert "entity types" in dataset and "Only in val / test (a model cannot learn them): MISC" in dataset
    comparison = doc[doc.index("id='comparison'") :]
    for row in (
        "entity micro-F1",
        "confident spurious-entity rate @τ",
        "type hallucination rate @τ",
        "token ECE",
        "F1 of PER",
        "F1 of LOC",
    ):
        assert f"<td>{row}</td>" in comparison, row
    cells = re.findall(r'<td class="(better|worse)">([+-]\d\.\d+) \[([+-]\d\.\d+), ([+-]\d\.\d+)\]</td>', doc)
    assert cells and all(float(lo) > 0 or float(hi) < 0 for _, _, lo, hi in cells)  # coloured only where the interval excludes zero
    assert doc.count('class="better"') + doc.count('class="worse"') == len(cells)
    assert "shared test sentences" in comparison
    assert "Type confusion (test, entity level)" in comparison and "Entity F1 per type" in comparison
    gallery = doc[doc.index("id='entity-gallery'") :]
    assert "spurious" in gallery and "border:1px dashed" in gallery and "border:1px solid" in gallery
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;" in gallery and HOSTILE not in doc  # every text escaped
    last = build_report(store, ids, checkpoint="last")
    assert "test scores at step 20, the last evaluation" in last


def test_a_single_token_run_report_and_the_metric_export_names_types(token_runs):
    store, ids = token_runs
    parsed = Parsed()
    doc = build_report(store, ids[:1])
    parsed.feed(doc)
    assert parsed.sections == list(SECTIONS) and parsed.external == []
    assert "Precision, recall and F1 per entity type" in doc and "Types by train mentions" in doc
    csv = pd.read_csv(io.BytesIO(metrics_csv(store, ids)))
    names = set(csv["name"])
    assert {"f1/PER", "f1/LOC", "spurious/ORG", "confident_spurious/PER", "entity_f1_micro", "token_ece"} <= names
    assert not any(re.fullmatch(r"f1/\d+", n) for n in names)


def test_token_summary_without_an_interval_calls_nothing_better():
    table = pd.DataFrame(
        {"#1 · a": [0.70, 0.60, 0.05, 0.01, 0.10], "#2 · b": [0.75, 0.62, 0.03, 0.01, 0.08]},
        index=["entity_f1_micro", "entity_f1_macro", "confident_spurious_rate", "type_hallucination_rate", "token_ece"],
    )

    class Run:
        tau = 0.9

    said = token_summary_sentences([Run()], table, {})  # type: ignore[list-item]
    assert said[0].startswith("#1 · a found the test entities with an entity micro-F1 of 0.700 (macro-F1 0.600")
    assert "5.0% were spurious" in said[0] and "at least 90% sure" in said[0]
    assert "has a confident spurious-entity rate of 3.0% (-2.0 points)" in said[1] and "no interval" in said[1]
    assert not re.search(r"\b(cuts|raises|better|worse)\b", said[1].split("(no interval")[0])


def test_entity_marks_escape_text_and_draw_true_and_predicted_apart():
    from core.charts import entity_sentence_html

    pieces = [Piece("<b>Ann</b>", "PER", True), Piece("met & left", None, False)]
    true = entity_sentence_html(pieces, ["PER"])
    pred = entity_sentence_html(pieces, ["PER"], predicted=True)
    assert "&lt;b&gt;Ann&lt;/b&gt;" in true and "<b>Ann" not in true and "met &amp; left" in true
    assert "1px solid" in true and "1px dashed" in pred and "underline" in true
