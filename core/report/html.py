"""A self-contained HTML report for people who do not read code: one file, plotly.js inline, no
request to anywhere when opened. Sections (each an ``<section id=…>``): ``summary`` (plain
language; a change is called better or worse only where its 95 % paired bootstrap interval
excludes zero), ``dataset`` (profile), ``diagnosis``, ``mitigations``, ``comparison`` (metrics with
changes and their intervals, curves, per-class recall, calibration). Each run is read at its result
(``checkpoint_line`` says which evaluation), or every run at its last evaluation. Token-classification
runs: entity metrics with intervals over test sentences (``core.compare.entities``), per-type F1, the
type confusion, token reliability and each run's most confident hallucinated entities (every text
escaped), the dataset's entity types.

    html = build_report(store, [run_a, run_b])                     # str
    html = build_report(store, [run_a, run_b], checkpoint="last")  # every run at its last evaluation
"""

from __future__ import annotations

import html
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from core import charts
from core.compare.entities import (
    TOKEN_METRICS,
    compare_entities_to_reference,
    entity_gallery,
    marked_pieces,
    type_confusion,
    type_f1_keys,
    type_table,
)
from core.compare.intervals import Comparison, Interval, compare_to_reference
from core.compare.one_run import checkpoint_line
from core.compare.runs import compatibility, config_differences, delta_table, label, metric_table
from core.compare.setting_words import mitigation_words
from core.data.dataset import item_ref
from core.data.overview import groups_line
from core.data.profile import profile
from core.diagnose.pipeline import DiagnoseConfig, diagnose, is_cached
from core.metrics.names import metric_name
from core.metrics.results import RunResults
from core.train.config import RunConfig

if TYPE_CHECKING:
    from core.data.dataset import Dataset
    from core.store.database import Store

SECTIONS = ("summary", "dataset", "diagnosis", "mitigations", "comparison")
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} .muted{color:#666} table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:right} th:first-child,td:first-child{text-align:left}
.better{background:#d4f5dd} .worse{background:#fbd9d9} .note{background:#fff6d5;padding:.5rem .8rem;border-radius:4px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:.5rem} section{margin-top:2rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.35rem .7rem;margin:.35rem 0} .sent{line-height:2.1}
.tag{display:inline-block;width:6.5em;color:#777;font-size:.85em}
"""


def _pct(v: float) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def _fig(fig: go.Figure) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _table(df: pd.DataFrame, *, classes: pd.DataFrame | None = None, fmt: str = "{:.4f}") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in ["", *df.columns])
    body = []
    for idx, row in df.iterrows():
        cells = []
        for col, v in row.items():
            text = fmt.format(v) if isinstance(v, float) and math.isfinite(v) else ("—" if isinstance(v, float) else html.escape(str(v)))
            css = f' class="{classes.loc[idx, col]}"' if classes is not None and classes.loc[idx, col] in ("better", "worse") else ""
            cells.append(f"<td{css}>{text}</td>")
        body.append(f"<tr><td>{html.escape(str(idx))}</td>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def summary_sentences(results: list[RunResults], table: pd.DataFrame, comparisons: dict[str, Comparison] | None = None) -> list[str]:
    """Plain-language findings: each run's hallucination rate and macro-F1, and every later run against
    the first — "cuts" / "raises", "better" / "worse" only where the change's 95 % interval
    (``comparisons``: run label → its ``Comparison`` with the first) excludes zero."""
    if table.empty:
        return ["No run has been evaluated yet."]
    comparisons = comparisons or {}
    ref = table.columns[0]
    tau = results[0].tau
    out = []
    get = lambda m, col: float(table.loc[m, col]) if m in table.index else float("nan")
    h, f1 = get("hallucination_rate", ref), get("macro_f1", ref)
    out.append(
        f"{ref} answered {_pct(h)} of the test items wrongly while at least {tau:.0%} sure of itself (its hallucination rate), "
        f"with a macro-F1 of {f1:.3f}."
        if math.isfinite(f1)
        else f"{ref} answered {_pct(h)} of the test items confidently and wrongly."
    )
    fk = get("forced_known_rate", ref)
    if math.isfinite(fk):
        out.append(f"Shown items of classes it never trained on, it still named a known class with confidence ≥ τ for {_pct(fk)} of them.")
    for col in table.columns[1:]:
        h2, f2, e1, e2 = get("hallucination_rate", col), get("macro_f1", col), get("ece", ref), get("ece", col)
        if not math.isfinite(h2):
            continue
        comp = comparisons.get(col)
        ivs = {} if comp is None else comp.intervals
        words = _hallucination_words(col, h, h2, ivs.get("hallucination_rate"))
        if math.isfinite(f2) and math.isfinite(f1):
            words += f"; macro-F1 {f2:.3f} ({f2 - f1:+.3f}{_called(ivs.get('macro_f1'), f2 - f1)})"
        if math.isfinite(e1) and math.isfinite(e2):
            words += f"; calibration error {e2:.3f} ({e2 - e1:+.3f}{_called(ivs.get('ece'), e2 - e1)})"
        if comp is None or not ivs:
            why = comp.why_none if comp is not None and comp.why_none else "no interval"
            words += f" ({why}: no change is called better or worse)"
        out.append(words + ".")
    return out


def _hallucination_words(col: str, h: float, h2: float, iv: Interval | None, what: str = "hallucination rate") -> str:
    if h2 == h:
        return f"{col} keeps the {what} at {_pct(h2)}"
    points = f"{100 * (h2 - h):+.1f} points"
    if iv is None:
        return f"{col} has a {what} of {_pct(h2)} ({points})"
    where = f"95 % interval {100 * iv.low:+.1f} to {100 * iv.high:+.1f} points"
    if iv.verdict == "no clear difference":
        return f"{col} shows no clear difference in the {what}: {_pct(h2)} ({points}; {where})"
    return f"{col} {'cuts' if h2 < h else 'raises'} the {what} to {_pct(h2)} ({points}; {where})"


def _called(iv: Interval | None, delta: float) -> str:
    """ ", better" / ", worse" / ", no clear difference" for a change with an interval; "" without."""
    if iv is None or delta == 0:
        return ""
    return f", {iv.verdict}"


def build_report(store: Store, run_ids: list[int], *, title: str = "Gapscope report", checkpoint: str | None = None) -> str:
    """The report on runs ``run_ids`` (the first is the reference), as one HTML document; each run
    at its result, or with ``checkpoint="last"`` at its last evaluation. Token-classification runs
    get entity metrics, per-type F1, the type confusion and their hallucinated entities instead."""
    results = [RunResults(store, r, checkpoint=checkpoint) for r in run_ids]
    datasets = [store.load_dataset(int(r.row.version_id)) for r in results]
    tokens = bool(results) and all(r.is_tokens for r in results)
    table = metric_table(results, TOKEN_METRICS) if tokens else metric_table(results)
    compare = compare_entities_to_reference if tokens else compare_to_reference
    comparisons = compare(results, datasets) if len(results) > 1 else {}
    by_label = {label(r): comparisons[r.run_id] for r in results[1:] if r.run_id in comparisons}
    lines = "".join(f"<li><b>{html.escape(label(r))}</b>: {html.escape(checkpoint_line(r))}</li>" for r in results)
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='muted'>Generated {time.strftime('%Y-%m-%d %H:%M')} by Gapscope · {len(results)} run(s) · test split, "
        "each run at its result:</p>",
        f"<ul id='checkpoints'>{lines}</ul>",
    ]
    notes = compatibility(store, results)

    sentences = token_summary_sentences(results, table, by_label) if tokens else summary_sentences(results, table, by_label)
    parts.append(
        "<section id='summary'><h2>Summary</h2>"
        + "".join(f"<p>{html.escape(s)}</p>" for s in sentences)
        + "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
        + (TOKEN_GLOSSARY if tokens else GLOSSARY)
        + "</section>"
    )

    loaded = {int(r.row.version_id): ds for r, ds in zip(results, datasets)}
    data_parts, diag_parts = [], []
    for vid, ds in loaded.items():
        info = store.version(vid)
        data_parts.append(_token_dataset_section(info.label, ds) if tokens else _dataset_section(info.label, ds))
        diag_parts.append(_token_diagnosis_section(info.label) if tokens else _diagnosis_section(info.label, ds))
    parts.append("<section id='dataset'><h2>Dataset</h2>" + "".join(data_parts) + "</section>")
    parts.append("<section id='diagnosis'><h2>Diagnosis</h2>" + "".join(diag_parts) + "</section>")
    parts.append(_mitigations_section(results))
    comp = ["<section id='comparison'><h2>Run comparison</h2>"]
    if tokens:
        comp.append(_token_comparison(results, datasets, table, by_label))
    else:
        comp.append(_metrics_block(results, table, by_label))
        comp.append(_run_figures(store, results))
    comp.append("</section>")
    parts.append("".join(comp))
    parts.append(_shift_section(store, results))
    parts.append(_selection_section(store, results))
    parts.append(_lab_section(store, results, datasets))
    if not tokens:
        parts.append(_explanations_section(results, datasets))
        parts.append(_robustness_section(results))
        parts.append(_fairness_section(results))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>" + "".join(parts) + "</body></html>"
    )


def _lab_section(store: Store, results: list[RunResults], datasets: list[Dataset]) -> str:
    """The knowledge-gap lab's runs: accuracy and hallucination by how often each fact was seen, in a
    chart, a table per run and plain sentences (``core.lab.view``); empty without a lab run."""
    from core.lab import view

    pairs = [(r, ds) for r, ds in zip(results, datasets) if r.is_lab]
    if not pairs:
        return ""
    labs = [r for r, _ in pairs]
    out = [
        "<section id='lab'><h2>Knowledge-gap lab</h2><p class='muted'>A small language model trained from scratch on a synthetic "
        "corpus of people and their facts, asked one question per person and attribute; each question grouped by how many times the "
        "corpus mentions the person (0: never).</p>"
    ]
    tables = {label(r): view.exposure_table(r, r.result_step) for r in labs}
    kv = None
    for r in labs:
        mono = float(store.version(int(r.row.version_id)).params.get("monofact_rate", 0.0))
        kv = view.kv_line(r, mono, r.result_step)
        taught = view.taught_curve(r)
        sentences = view.findings(tables[label(r)], kv, r.tau, taught)
        out.append(f"<h3>{html.escape(label(r))}</h3>" + "".join(f"<p>{html.escape(s)}</p>" for s in sentences))
        out.append(_table(tables[label(r)].set_index("exposure"), fmt="{:.3f}"))
    out.append(_fig(charts.exposure_lines(tables, tau=labs[0].tau, kv=None if kv is None else kv["bound"])))
    from core.lab.compare import delta_words, exposure_deltas

    deltas = exposure_deltas(labs, [ds for _, ds in pairs])
    if not deltas.empty:
        out.append(
            f"<p class='muted'>Against {html.escape(label(labs[0]))}, per exposure count: the change on the questions both runs "
            "were asked, with a paired 95 % bootstrap interval.</p>"
        )
        out.append(_table(delta_words(deltas, {r.run_id: label(r) for r in labs}).set_index("run")))
    out.append(_probe_part(store))
    out.append(_tune_part(store))
    return "".join(out) + "</section>"


def _probe_part(store: Store) -> str:
    """The latest real-model probe of the Lab page (``core.lab.facts``): its findings, the figures by
    SliCK category and the confidence chart; empty when none was kept."""
    from core.lab import facts as F

    kept = F.probes(store.home)
    if not kept:
        return ""
    rec = kept[0]
    tau = float(rec["settings"].get("tau", 0.9))
    return (
        f"<h3>A real model, probed: {html.escape(str(rec['model']))} (probe {int(rec['id'])}, {html.escape(str(rec['created']))})</h3>"
        "<p class='muted'>Each fact asked in few-shot prompts, greedily and by sampling; known when every greedy answer is right, "
        "maybe when some answer is, unknown when none is (Gekhman et al. 2024). Confidence: the share of samples giving the answer.</p>"
        + "".join(f"<p>{html.escape(s)}</p>" for s in F.findings(rec["summary"], tau))
        + _table(F.summary_table(rec["summary"]).set_index("category"), fmt="{:.3f}")
        + _fig(charts.probe_confidence(F.rows_table(rec["rows"]), tau=tau))
    )


def _tune_part(store: Store) -> str:
    """The latest fine-tuning of the real model (``core.lab.finetune``): its findings, the probe
    before and after per set and category, and the evaluations over epochs; empty when none was kept."""
    from core.lab import facts as F
    from core.lab import finetune as T

    kept = F.records(store.home, folder=F.TUNES_DIR, prefix="tune")
    if not kept:
        return ""
    rec = kept[0]
    return (
        f"<h3>The real model, fine-tuned (fine-tuning {int(rec['id'])} from probe {int(rec['probe'])}, {html.escape(str(rec['created']))})</h3>"
        "<p class='muted'>Fine-tuned on some of the probe's facts — a chosen share of them unknown to the model before — and asked the "
        "whole probe again: the facts it was taught, and those held out (Gekhman et al. 2024).</p>"
        + "".join(f"<p>{html.escape(s)}</p>" for s in T.tune_findings(rec))
        + _table(pd.DataFrame(rec["table"]).set_index("set"), fmt="{:.3f}")
        + _fig(charts.tune_lines(T.history_frame(rec["history"])))
    )


def _shift_section(store: Store, results: list[RunResults]) -> str:
    """The drift tests on the runs' versions and the runs' estimates on shifted targets, as kept from
    the Shift page; empty when none were kept."""
    from core.shift.records import run_table, version_tests
    from core.shift.scenario import TEST_WORDS

    tests = version_tests(store.home, sorted({int(r.row.version_id) for r in results}))
    table = run_table(store.home, [r.run_id for r in results])
    if not tests and table.empty:
        return ""
    out = ["<section id='shift'><h2>Shift</h2>"]
    for rec in tests:
        verdicts = "; ".join(
            f"{TEST_WORDS.get(name, name)}: {'shifted' if t['shifted'] else 'no evidence of shift'} (statistic {t['statistic']:.4g}, "
            f"p = {t['p_value']:.3g}, {t['n_reference']:,} + {t['n_target']:,} items)"
            for name, t in rec["tests"].items()
        )
        out.append(f"<p><b>{html.escape(rec['words'])}</b>: {html.escape(verdicts)}.</p>")
    if not table.empty:
        out.append(
            "<p class='muted'>Each run's accuracy and hallucination rate on a target, estimated without its labels "
            "(average thresholded confidence), beside the true values where the target had labels.</p>"
        )
        out.append(_table(table.set_index("target")))
    return "".join(out) + "</section>"


def _selection_section(store: Store, results: list[RunResults]) -> str:
    """Runs on kept versions and the keep-x % sweeps they belong to; empty when none."""
    from core.select.sweep import selection_records, summary_words

    kept, sweeps = selection_records(store, [r.run_id for r in results])
    if kept.empty and not sweeps:
        return ""
    out = ["<section id='selection'><h2>Selection</h2>"]
    if not kept.empty:
        out.append("<p class='muted'>Runs trained on a kept share of their dataset's train items.</p>")
        out.append(_table(kept.set_index("run")))
    for vid, summary in sweeps.items():
        out.append(
            f"<h3>Keep-x % sweep of version {vid}</h3><p class='muted'>Test metrics at each run's result, mean over seeds with a "
            "normal 95 % interval; <i>vs random</i> is the difference to keeping the same share at random.</p>"
        )
        out.append(_table(summary_words(summary).set_index("score")))
    return "".join(out) + "</section>"


def _fairness_section(results: list[RunResults]) -> str:
    """The runs measured by a sensitive column (``core.fairness``; the Runs page measures them): the
    table by group, and for two-class tasks the gaps with intervals; empty when none are kept."""
    from core.fairness.evaluate import fairness_rows, records_by_column, table_of

    by_column = records_by_column(results)
    if not by_column:
        return ""
    out = [
        "<section id='fairness'><h2>Fairness by group</h2><p class='muted'>Each run's test items grouped by a sensitive column: "
        "accuracy, calibration error, hallucination rate and recall per class in each group, the difference between the best and "
        "worst group; for two-class tasks the equalized odds and demographic parity differences with 95 % bootstrap intervals.</p>"
    ]
    for column, pairs in by_column.items():
        out.append(f"<h3>By {html.escape(column)}</h3>")
        for name, rec in pairs:
            out.append(f"<p><b>{html.escape(name)}</b></p>" + _table(table_of(rec), fmt="{:.3f}"))
        rows = fairness_rows(pairs)
        if not rows.empty:
            out.append(_table(rows.set_index("run")))
    return "".join(out) + "</section>"


def _robustness_section(results: list[RunResults]) -> str:
    """The robustness evaluations kept with the runs (``core.robust``; the Runs page runs them), one
    chart and table per attack; empty when none are kept."""
    from core.robust import records

    by_attack: dict[str, list[tuple[str, dict]]] = {}
    for r in results:
        rec = records.load(r.files)
        if rec is not None:
            by_attack.setdefault(rec["attack"], []).append((label(r), rec))
    if not by_attack:
        return ""
    out = [
        "<section id='robustness'><h2>Under attack</h2><p class='muted'>Each run's result model attacked on a seeded sample of its "
        "test items: accuracy, the share of right answers the attack changed, and confident-wrong (answered wrongly with "
        "confidence ≥ τ) at each budget.</p>"
    ]
    for attack, pairs in by_attack.items():
        x_title = "words changed, at most" if attack == "words" else "ε (L∞)"
        curves = {name: records.curve(rec) for name, rec in pairs}
        out.append(_fig(charts.robustness_curves(curves, x_title=x_title, title=f"{records.ATTACK_WORDS[attack]}")))
        table = records.table(pairs)
        out.append(_table(table.set_index("run"), fmt="{:.1%}"))
    return "".join(out) + "</section>"


def _explanations_section(results: list[RunResults], datasets: list[Dataset], n: int = 6) -> str:
    """The most confident wrong answers each run has explanations kept for (``core.explain``; the
    Runs page computes them), attributed for the class answered; empty when none are kept."""
    from core.compare.one_run import confident_errors, result_predictions
    from core.explain import cache
    from core.explain.kinds import METHOD_WORDS, METHODS

    out = []
    for res, ds in zip(results, datasets):
        if ds.modality not in METHODS or res.result_step is None:
            continue
        kept = cache.stored(res.files, res.result_step)
        if not kept:
            continue
        wrong = confident_errors(result_predictions(res))
        shown = []
        for _, row in wrong.iterrows():
            item, pred = int(row["item"]), int(row["pred"])
            method = next((m for m in METHODS[ds.modality] if (item, pred, m) in kept), None)
            if method is None:
                continue
            a = cache.load(res.files, res.result_step, item, pred, method)
            assert a is not None
            title = f"{item_ref(ds, item)}: given {ds.class_names[int(row['label'])]}, answered {ds.class_names[pred]} ({float(row['conf']):.0%})"
            shown.append((title, a, method))
            if len(shown) == n:
                break
        if not shown:
            continue
        out.append(f"<h3>{html.escape(label(res))}</h3>")
        cells = []
        for title, a, method in shown:
            head = f"<p><b>{html.escape(title)}</b> <span class='muted'>· {METHOD_WORDS[method]}</span></p>"
            if ds.modality == "image":
                cells.append(head + _fig(charts.attribution_image(np.asarray(ds.items[a.item]), a.values, title="")))
            elif ds.modality == "text":
                cells.append(head + "<p>" + charts.attribution_text_html(str(ds.items[a.item]), a.spans, a.values) + "</p>")
            else:
                cells.append(head + _fig(charts.attribution_bars(a.parts, a.values, title="")))
        out.append("<div class='grid'>" + "".join(cells) + "</div>")
    if not out:
        return ""
    return (
        "<section id='explanations'><h2>Why it answered</h2><p class='muted'>The most confident wrong answers, attributed "
        "for the class the run answered (red: evidence for it, blue: against), as kept from the Runs page.</p>"
        + "".join(out)
        + "</section>"
    )


GLOSSARY = (
    "<p class='muted'>Hallucination rate: the share of test items answered wrongly with confidence ≥ τ. "
    "Calibration error (ECE): how far the model's confidence is from its accuracy.</p>"
)


def _mitigations_section(results: list[RunResults]) -> str:
    mit = "".join(
        f"<li><b>{html.escape(label(r))}</b>: {html.escape(', '.join(mitigation_words(RunConfig.from_dict(r.config).mitigations)) or 'none (baseline)')}</li>"
        for r in results
    )
    diff = config_differences(results) if len(results) > 1 else pd.DataFrame()
    return (
        "<section id='mitigations'><h2>Mitigation settings</h2><ul>"
        + mit
        + "</ul>"
        + ("<h3>Settings that differ</h3>" + _table(diff) if not diff.empty else "")
        + "</section>"
    )


DELTA_NOTE = (
    "<p class='muted'>Δ: the change against the first run, with its 95 % paired bootstrap interval over the shared test "
    "items; green is better and red is worse only where the interval excludes zero. Classwise ECE and the unknown-class "
    "AUROC have no interval.</p>"
)
TOKEN_DELTA_NOTE = (
    "<p class='muted'>Δ: the change against the first run, with its 95 % paired bootstrap interval over the shared test "
    "sentences (sentences resampled, entities counted as seqeval counts them); green is better and red is worse only where "
    "the interval excludes zero.</p>"
)


def _metrics_block(results: list[RunResults], table: pd.DataFrame, by_label: dict[str, Comparison], note: str = DELTA_NOTE) -> str:
    if table.empty:
        return ""
    if len(results) > 1:
        shown = delta_table(table, by_label)
        return _table(shown.text.rename(index=metric_name), classes=shown.verdicts.rename(index=metric_name)) + note
    return _table(table.rename(index=metric_name))


def _dataset_section(name: str, ds: Dataset) -> str:
    p = profile(ds)
    b = p.train
    facts = [
        f"{p.n_items:,} items, {len(p.class_names)} classes ({p.modality})",
        f"train imbalance ratio {b.imbalance_ratio:,.1f} (largest ÷ smallest class)"
        if math.isfinite(b.imbalance_ratio)
        else "one class only in train",
        f"{p.duplicates.n_duplicate_items:,} exact duplicates",
    ]
    if b.missing:
        facts.append(f"classes with no train items: {', '.join(str(p.class_names[c]) for c in b.missing)}")
    if "sim_noisy" in ds.meta.columns:
        facts.append(f"simulated: {int(ds.meta['sim_noisy'].sum()):,} train labels made wrong on purpose")
    facts.append(groups_line(b))  # the rule behind the chart's colours and the ECE per group, in words
    fig = charts.class_distribution([str(c) for c in p.class_names], b, title=f"Train items per class — {name}")
    return f"<h3>{html.escape(name)}</h3><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>" + _fig(fig)


def _diagnosis_section(name: str, ds: Dataset) -> str:
    if not is_cached(ds, DiagnoseConfig()):
        return f"<h3>{html.escape(name)}</h3><p class='muted'>Not diagnosed yet (the Diagnose page does it once per version).</p>"
    d = diagnose(ds, DiagnoseConfig())
    n_issues = int(d.issues.is_issue.sum())
    text = (
        f"{n_issues:,} items look mislabelled ({n_issues / max(len(ds), 1):.1%}); {len(d.duplicates):,} groups of near-duplicates; "
        f"{len(d.outliers):,} outliers."
    )
    return f"<h3>{html.escape(name)}</h3><p>{html.escape(text)}</p>"


def _run_figures(store: Store, results: list[RunResults]) -> str:
    curves = go.Figure()
    for r in results:
        for split, metric in (("val", "macro_f1"), ("test", "hallucination_rate")):
            part = r.metrics[(r.metrics["name"] == metric) & (r.metrics["split"] == split)].sort_values("step")
            if len(part):
                x = part["epoch"].fillna(part["step"])
                curves.add_scatter(x=x, y=part["value"], mode="lines+markers", name=f"{label(r)} · {metric} ({split})")
                at = (part["step"] == r.result_step).to_numpy()
                if at.any():
                    curves.add_scatter(x=x[at], y=part["value"][at], mode="markers", marker={"symbol": "star", "size": 14},
                                       name=f"{label(r)} · result", showlegend=False)  # fmt: skip
    curves.update_layout(title="Training curves: val macro-F1 and test hallucination rate (★ each run's result)", **charts.LAYOUT)
    curves.update_xaxes(title="epoch")
    out = [_fig(curves)]
    recall = go.Figure()
    bins: dict[str, dict] = {}
    for r in results:
        ds_names = store.version(int(r.row.version_id)).class_names
        per = r.per_class("recall", step=r.result_step)
        recall.add_bar(x=[str(ds_names[c]) for c in per], y=list(per.values()), name=label(r))
        art = r.artifacts(r.result_step) if r.result_step is not None else {}
        if art:
            bins[label(r)] = art["test"]["reliability"]
    recall.update_layout(title="Recall per class (test)", barmode="group", **charts.LAYOUT)
    recall.update_xaxes(type="category")
    out.append("<div class='grid'>" + _fig(recall) + (_fig(charts.reliability_diagram(bins)) if bins else "") + "</div>")
    return "".join(out)


# ------------------------------------------------------------------ token-classification runs

TOKEN_GLOSSARY = (
    "<p class='muted'>Entity F1: how many true entities a run finds with their exact words and type (seqeval's strict "
    "counts; micro over all entities, macro the mean over types). Confident spurious entities: predicted entities where "
    "there is none, with confidence ≥ τ; type hallucinations: an entity's exact words named with the wrong type, with "
    "confidence ≥ τ (both as shares of the predicted entities). Token ECE: how far the confidence of each word's tag is "
    "from its accuracy.</p>"
)


def token_summary_sentences(results: list[RunResults], table: pd.DataFrame, comparisons: dict[str, Comparison] | None = None) -> list[str]:
    """Plain-language findings for token runs: the first run's entity F1 and hallucinated-entity
    rates, and every later run's confident spurious-entity rate, entity F1 and token ECE against it
    — "cuts" / "raises", "better" / "worse" only where the change's 95 % interval excludes zero."""
    if table.empty:
        return ["No run has been evaluated yet."]
    comparisons = comparisons or {}
    ref = table.columns[0]
    get = lambda m, col: float(table.loc[m, col]) if m in table.index else float("nan")
    f1, macro = get("entity_f1_micro", ref), get("entity_f1_macro", ref)
    spur, wrong = get("confident_spurious_rate", ref), get("type_hallucination_rate", ref)
    tau = results[0].tau
    out = [
        f"{ref} found the test entities with an entity micro-F1 of {f1:.3f} (macro-F1 {macro:.3f} over the types). Of the entities it "
        f"named, {_pct(spur)} were spurious — no entity there — while it was at least {tau:.0%} sure, and {_pct(wrong)} had the right "
        "words but the wrong type."
    ]
    forced = get("forced_known_type_rate", ref)
    if math.isfinite(forced):
        out.append(
            f"Its train split lacked some entity types; it still gave {_pct(forced)} of their test mentions a type it knew, "
            "with confidence ≥ τ (the forced-known type rate)."
        )
    for col in table.columns[1:]:
        s2, f2 = get("confident_spurious_rate", col), get("entity_f1_micro", col)
        e1, e2 = get("token_ece", ref), get("token_ece", col)
        if not math.isfinite(s2):
            continue
        comp = comparisons.get(col)
        ivs = {} if comp is None else comp.intervals
        words = _hallucination_words(col, spur, s2, ivs.get("confident_spurious_rate"), "confident spurious-entity rate")
        if math.isfinite(f2) and math.isfinite(f1):
            words += f"; entity micro-F1 {f2:.3f} ({f2 - f1:+.3f}{_called(ivs.get('entity_f1_micro'), f2 - f1)})"
        if math.isfinite(e1) and math.isfinite(e2):
            words += f"; token calibration error {e2:.3f} ({e2 - e1:+.3f}{_called(ivs.get('token_ece'), e2 - e1)})"
        if comp is None or not ivs:
            why = comp.why_none if comp is not None and comp.why_none else "no interval"
            words += f" ({why}: no change is called better or worse)"
        out.append(words + ".")
    return out


def _token_dataset_section(name: str, ds: Dataset) -> str:
    """A token dataset in facts and one chart: sentences, tokens, entity types and mentions, head /
    medium / tail types by train mentions (``core.tokens.stats``)."""
    from core.tokens import stats

    k = stats.kpis(ds)
    table = stats.entity_table(ds)
    facts = [
        f"{k.sentences:,} sentences, {k.tokens:,} tokens, {k.types} entity types, {k.mentions:,} entity mentions (tokens)",
        f"{k.no_entity_share:.0%} of the sentences hold no entity",
        "train imbalance: "
        + ("a type has no train mention" if k.imbalance == float("inf") else f"{k.imbalance:,.0f}:1 (most ÷ fewest mentions)"),
        *stats.type_lines(table),
    ]
    fig = charts.entity_bars(table, title=f"Entity mentions per type and split — {name}")
    return f"<h3>{html.escape(name)}</h3><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>" + _fig(fig)


def _token_diagnosis_section(name: str) -> str:
    return (
        f"<h3>{html.escape(name)}</h3><p class='muted'>Token label errors are found on the Diagnose page; this report does not "
        "summarise them for token datasets.</p>"
    )


def _token_comparison(results: list[RunResults], datasets: list[Dataset], table: pd.DataFrame, by_label: dict[str, Comparison]) -> str:
    """Entity metrics (with intervals), per-type F1 (with intervals, and as bars), curves, each run's
    type confusion and token reliability, and each run's most confident hallucinated entities."""
    if table.empty:
        return "<p>No run has been evaluated yet.</p>"
    names = [str(c) for c in datasets[0].class_names]
    out = [_metrics_block(results, table, by_label, TOKEN_DELTA_NOTE)]
    per_type = metric_table(results, type_f1_keys(names))
    if not per_type.empty:
        out.append("<h3>F1 per entity type</h3>")
        rename = lambda m: metric_name(m, names)
        if len(results) > 1:
            shown = delta_table(per_type, by_label)
            out.append(_table(shown.text.rename(index=rename), classes=shown.verdicts.rename(index=rename)))
        else:
            out.append(_table(per_type.rename(index=rename)))
    out.append(_token_figures(results, datasets))
    out.append("<h3 id='entity-gallery'>Hallucinated entities</h3>")
    out.extend(_token_gallery(r, ds) for r, ds in zip(results, datasets))
    return "".join(out)


def _token_figures(results: list[RunResults], datasets: list[Dataset]) -> str:
    curves = go.Figure()
    for r in results:
        for split, metric in (("val", "entity_f1_macro"), ("test", "confident_spurious_rate")):
            part = r.metrics[(r.metrics["name"] == metric) & (r.metrics["split"] == split)].sort_values("step")
            if len(part):
                curves.add_scatter(x=part["epoch"].fillna(part["step"]), y=part["value"], mode="lines+markers",
                                   name=f"{label(r)} · {metric_name(metric)} ({split})")  # fmt: skip
    curves.update_layout(title="Training curves: val entity macro-F1 and test confident spurious-entity rate", **charts.LAYOUT)
    curves.update_xaxes(title="epoch")
    out = [_fig(curves)]
    tables = [type_table(r, ds) for r, ds in zip(results, datasets)]
    if len(results) == 1:
        types = _fig(charts.entity_type_scores(tables[0]))
    else:
        bars = {label(r): dict(zip(t["type"].astype(str), t["f1"].astype(float))) for r, t in zip(results, tables)}
        types = _fig(charts.grouped_bars(bars, title="Entity F1 per type (test)", y_title="F1"))
    groups = ", ".join(f"{t} {g}" for t, g in zip(tables[0]["type"], tables[0]["group"]))
    out.append(types + f"<p class='muted'>Types by train mentions — {html.escape(groups)} ({html.escape(_mention_rule())}).</p>")
    figures = []
    for r in results:
        confusion = type_confusion(r)
        if confusion is not None:
            figures.append(_fig(charts.type_confusion(*confusion, title=f"Type confusion (test, entity level) — {label(r)}")))
        art = r.artifacts(r.result_step) if r.result_step is not None else {}
        if "test" in art and "reliability" in art["test"]:
            figures.append(_fig(charts.reliability_diagram({"test": art["test"]["reliability"]}, title=f"Token reliability — {label(r)}")))
    out.append("<div class='grid'>" + "".join(figures) + "</div>")
    return "".join(out)


def _mention_rule() -> str:
    from core.metrics.groups import rule_words

    return rule_words().replace("items", "mentions")


def _token_gallery(res: RunResults, ds: Dataset) -> str:
    """A run's most confident hallucinated entities: each sentence's true entities (solid) and
    predicted ones (dashed), the entity in question underlined; every text escaped."""
    entries = entity_gallery(res, ds)
    head = f"<h4>{html.escape(label(res))}</h4>"
    if not entries:
        return head + f"<p class='muted'>None with confidence ≥ τ = {res.tau:.2f}.</p>"
    types = [str(c) for c in ds.class_names[1:]]
    cards = []
    for e in entries:
        what = f"spurious {e.predicted} (no entity there)" if e.true is None else f"{e.predicted} for a true {e.true} (wrong type)"
        lines = "".join(
            f"<div class='sent'><span class='tag'>{name}</span>"
            f"{charts.entity_sentence_html(marked_pieces(e.tokens, tags, (e.start, e.end)), types, predicted=pred)}</div>"
            for name, tags, pred in (("true", e.true_tags, False), ("predicted", e.pred_tags, True))
        )
        ref = html.escape(item_ref(ds, e.item))
        cards.append(f"<div class='card'><div class='muted'>{ref} · {html.escape(what)} · confidence {e.confidence:.1%}</div>{lines}</div>")
    return head + "".join(cards)
