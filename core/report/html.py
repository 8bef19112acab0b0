"""A self-contained HTML report for people who do not read code: one file, plotly.js inline, no
request to anywhere when opened. Sections (each an ``<section id=…>``): ``summary`` (plain
language; a change is called better or worse only where its 95 % paired bootstrap interval
excludes zero), ``dataset`` (profile), ``diagnosis``, ``mitigations``, ``comparison`` (metrics with
changes and their intervals, curves, per-class recall, calibration). Each run is read at its result
(``checkpoint_line`` says which evaluation), or every run at its last evaluation.

    html = build_report(store, [run_a, run_b])                     # str
    html = build_report(store, [run_a, run_b], checkpoint="last")  # every run at its last evaluation
"""

from __future__ import annotations

import html
import math
import time
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from core import charts
from core.compare.intervals import Comparison, Interval, compare_to_reference
from core.compare.one_run import checkpoint_line
from core.compare.runs import compatibility, config_differences, delta_table, label, metric_table
from core.compare.setting_words import mitigation_words
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


def _hallucination_words(col: str, h: float, h2: float, iv: Interval | None) -> str:
    if h2 == h:
        return f"{col} keeps the hallucination rate at {_pct(h2)}"
    points = f"{100 * (h2 - h):+.1f} points"
    if iv is None:
        return f"{col} has a hallucination rate of {_pct(h2)} ({points})"
    where = f"95 % interval {100 * iv.low:+.1f} to {100 * iv.high:+.1f} points"
    if iv.verdict == "no clear difference":
        return f"{col} shows no clear difference in the hallucination rate: {_pct(h2)} ({points}; {where})"
    return f"{col} {'cuts' if h2 < h else 'raises'} the hallucination rate to {_pct(h2)} ({points}; {where})"


def _called(iv: Interval | None, delta: float) -> str:
    """ ", better" / ", worse" / ", no clear difference" for a change with an interval; "" without."""
    if iv is None or delta == 0:
        return ""
    return f", {iv.verdict}"


def build_report(store: Store, run_ids: list[int], *, title: str = "Gapscope report", checkpoint: str | None = None) -> str:
    """The report on runs ``run_ids`` (the first is the reference), as one HTML document; each run
    at its result, or with ``checkpoint="last"`` at its last evaluation."""
    results = [RunResults(store, r, checkpoint=checkpoint) for r in run_ids]
    table = metric_table(results)
    datasets = [store.load_dataset(int(r.row.version_id)) for r in results]
    comparisons = compare_to_reference(results, datasets) if len(results) > 1 else {}
    by_label = {label(r): comparisons[r.run_id] for r in results[1:] if r.run_id in comparisons}
    lines = "".join(f"<li><b>{html.escape(label(r))}</b>: {html.escape(checkpoint_line(r))}</li>" for r in results)
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='muted'>Generated {time.strftime('%Y-%m-%d %H:%M')} by Gapscope · {len(results)} run(s) · test split, "
        "each run at its result:</p>",
        f"<ul id='checkpoints'>{lines}</ul>",
    ]
    notes = compatibility(store, results)

    sentences = summary_sentences(results, table, by_label)
    parts.append(
        "<section id='summary'><h2>Summary</h2>"
        + "".join(f"<p>{html.escape(s)}</p>" for s in sentences)
        + "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
        + "<p class='muted'>Hallucination rate: the share of test items answered wrongly with confidence ≥ τ. "
        "Calibration error (ECE): how far the model's confidence is from its accuracy.</p></section>"
    )

    loaded = {int(r.row.version_id): ds for r, ds in zip(results, datasets)}
    data_parts, diag_parts = [], []
    for vid, ds in loaded.items():
        info = store.version(vid)
        data_parts.append(_dataset_section(info.label, ds))
        diag_parts.append(_diagnosis_section(info.label, ds))
    parts.append("<section id='dataset'><h2>Dataset</h2>" + "".join(data_parts) + "</section>")
    parts.append("<section id='diagnosis'><h2>Diagnosis</h2>" + "".join(diag_parts) + "</section>")

    mit = "".join(
        f"<li><b>{html.escape(label(r))}</b>: {html.escape(', '.join(mitigation_words(RunConfig.from_dict(r.config).mitigations)) or 'none (baseline)')}</li>"
        for r in results
    )
    diff = config_differences(results) if len(results) > 1 else pd.DataFrame()
    parts.append(
        "<section id='mitigations'><h2>Mitigation settings</h2><ul>"
        + mit
        + "</ul>"
        + ("<h3>Settings that differ</h3>" + _table(diff) if not diff.empty else "")
        + "</section>"
    )

    comp = ["<section id='comparison'><h2>Run comparison</h2>"]
    if not table.empty:
        if len(results) > 1:
            shown = delta_table(table, by_label)
            comp.append(_table(shown.text.rename(index=metric_name), classes=shown.verdicts.rename(index=metric_name)))
            comp.append(
                "<p class='muted'>Δ: the change against the first run, with its 95 % paired bootstrap interval over the shared test "
                "items; green is better and red is worse only where the interval excludes zero. Classwise ECE and the unknown-class "
                "AUROC have no interval.</p>"
            )
        else:
            comp.append(_table(table.rename(index=metric_name)))
    comp.append(_run_figures(store, results))
    comp.append("</section>")
    parts.append("".join(comp))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>" + "".join(parts) + "</body></html>"
    )


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
