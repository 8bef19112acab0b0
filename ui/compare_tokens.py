"""The Compare page's panels for token-classification (NER) runs, each at its result: entity
metrics with their change against the first run, 95 % paired bootstrap intervals over the shared
test sentences and verdicts; per-type F1 changes with intervals; curves with each result starred
and each run's token reliability; the entities one run fixed or broke against the reference and
the hallucinated entities it removed or added, sentences highlighted; and each run's gallery of
hallucinated entities. The numbers come from ``core.compare.entities`` and ``core.compare.runs``."""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from core import charts
from core.compare.entities import (
    DIFF_OUTCOMES,
    TOKEN_METRICS,
    DiffExample,
    TokenAnswers,
    compare_entities_to_reference,
    diff_counts,
    diff_examples,
    entity_diff,
    entity_gallery,
    marked_pieces,
    token_answers,
    type_f1_keys,
)
from core.compare.examples import shares_items
from core.compare.intervals import Comparison
from core.compare.runs import curves, delta_table, label, metric_table, result_marks, verdict_words
from core.data.dataset import Dataset
from core.metrics.keys import parse_key
from core.metrics.names import metric_name
from core.metrics.results import RunResults
from ui import common, run_tokens
from ui.items import where
from ui.state import default

CURVES = {
    "val entity macro-F1": ("val", "entity_f1_macro"), "test entity micro-F1": ("test", "entity_f1_micro"),
    "test confident spurious rate @τ": ("test", "confident_spurious_rate"), "test token ECE": ("test", "token_ece"),
    "train loss": ("train", "loss"),
}  # fmt: skip
COLOURS = {"better": "background-color: #d4f5dd", "worse": "background-color: #fbd9d9"}
DIFF_TITLES = {
    "fixed": "Entities fixed", "introduced": "Entities introduced", "hallucination removed": "Hallucinations removed",
    "hallucination added": "Hallucinations added",
}  # fmt: skip

Key = tuple[tuple[int, int | None, str, str], ...]


def _key(results: Sequence[RunResults]) -> Key:
    return tuple((r.run_id, r.result_step, r.checkpoint, str(r.status)) for r in results)


def show(results: Sequence[RunResults]) -> None:
    """Every token panel, in page order."""
    metrics_panel(results)
    per_type_panel(results)
    curves_panel(results)
    diff_panel(results)
    galleries_panel(results)


def comparisons(results: Sequence[RunResults]) -> dict[str, Comparison]:
    """Each run's ``Comparison`` with the reference, by label; cached per run and result step."""
    got = _comparisons(str(common.store().home), _key(results))
    return {label(r): got[r.run_id] for r in results[1:] if r.run_id in got}


@st.cache_data(show_spinner="Bootstrapping the changes over test sentences…", max_entries=64)
def _comparisons(home: str, key: Key) -> dict[int, Comparison]:
    results = [RunResults(common.store(), rid, checkpoint=rule) for rid, _, rule, _ in key]
    return compare_entities_to_reference(results, [common.dataset(r.row.version_id) for r in results])


def _styled_table(table: pd.DataFrame, comps: dict[str, Comparison], names: list[str] | None = None) -> Styler:
    shown = delta_table(table, comps)
    styles = shown.verdicts.map(lambda v: COLOURS.get(v, ""))
    text = shown.text.copy()
    text.index = styles.index = [metric_name(m, names) for m in table.index]
    return text.style.apply(lambda _: styles, axis=None)


def metrics_panel(results: Sequence[RunResults]) -> None:
    st.subheader("Entity metrics (test split, each run at its result)")
    table = metric_table(list(results), TOKEN_METRICS)
    if table.empty:
        st.info("No run has been evaluated yet.")
        return
    comps = comparisons(results)
    st.dataframe(_styled_table(table, comps), width="stretch")
    st.caption(
        "Δ against the first run with its 95 % paired bootstrap interval over the shared test sentences (sentences resampled, "
        "entity counts summed as seqeval counts them): green is better, red is worse, and only where the interval excludes zero "
        "(lower is better for the spurious, hallucination, forced-known and missed rates, token ECE and NLL)."
    )
    for r in results[1:]:
        st.markdown(verdict_words(label(r), label(results[0]), comps.get(label(r)), list(table.index)))


def per_type_panel(results: Sequence[RunResults]) -> None:
    """F1 per entity type: each run's value and the change with its interval; bars per run."""
    names = [str(c) for c in common.dataset(results[0].row.version_id).class_names]
    table = metric_table(list(results), type_f1_keys(names))
    if table.empty:
        return
    st.markdown("**F1 per entity type** — the change against the first run with its 95 % interval")
    st.dataframe(_styled_table(table, comparisons(results), names), width="stretch")
    types = {key: names[parse_key(key).cls or 0] for key in table.index}
    bars = {col: {types[k]: float(v) for k, v in table[col].dropna().items()} for col in table.columns}
    st.plotly_chart(charts.grouped_bars(bars, title="Entity F1 per type (test)", y_title="F1"), width="stretch", key="cmp_tok_types")


def curves_panel(results: Sequence[RunResults]) -> None:
    default("cmp_tok_curve", "val entity macro-F1", allowed=list(CURVES))
    curve = st.selectbox("Curve", list(CURVES), key="cmp_tok_curve", persist_state="session")
    split, metric = CURVES[curve]
    st.plotly_chart(charts.runs_curves(curves(results, split, metric), title=f"{curve} (★ each run's result)",
                                       marks=result_marks(results, split, metric)), width="stretch", key="cmp_tok_curves")  # fmt: skip
    st.markdown("**Token reliability** — points below the diagonal are over-confidence; a point's size is its bin's token count")
    cols = st.columns(min(len(results), 3))
    for i, res in enumerate(results):
        art = res.artifacts(res.result_step) if res.result_step is not None else {}
        with cols[i % len(cols)]:
            if "test" in art and "reliability" in art["test"]:
                st.plotly_chart(charts.reliability_diagram({"test": art["test"]["reliability"]}, title=label(res)), width="stretch",
                                key=f"cmp_tok_rel_{i}")  # fmt: skip
            else:
                st.caption(f"{label(res)}: no evaluation yet.")


@st.cache_resource(show_spinner="Reading word probabilities…", max_entries=8)
def _answers(home: str, run_id: int, step: int | None, rule: str, status: str) -> TokenAnswers | None:
    res = RunResults(common.store(), run_id, checkpoint=rule)
    return token_answers(res, common.dataset(res.row.version_id))


def answers(res: RunResults) -> TokenAnswers | None:
    """The run's test sentences at its result (cached per run, step and status)."""
    return _answers(str(common.store().home), res.run_id, res.result_step, res.checkpoint, str(res.status))


def diff_panel(results: Sequence[RunResults]) -> None:
    """One run against the reference, entity by entity: fixed, introduced, hallucinations removed and added."""
    st.subheader("What changed, entity by entity")
    by_id = {r.run_id: r for r in results}
    others = [r.run_id for r in results[1:]]
    default("cmp_tok_other", others[0], allowed=others)
    other = st.selectbox(
        "Against the reference", others, key="cmp_tok_other", persist_state="session", format_func=lambda i: label(by_id[i])
    )
    a, b = results[0], by_id[other]
    if not shares_items(common.store(), a, b):
        st.info("These two runs do not share their test sentences and types: there is no entity-by-entity diff.")
        return
    ans_a, ans_b = answers(a), answers(b)
    if ans_a is None or ans_b is None:
        st.info("Both runs need an evaluation with stored word probabilities first.")
        return
    diff = entity_diff(ans_a, ans_b)
    counts = diff_counts(diff)
    for col, outcome in zip(st.columns(len(DIFF_OUTCOMES)), DIFF_OUTCOMES):
        col.metric(DIFF_TITLES[outcome], f"{counts[outcome]:,}")
    st.caption(
        f"Fixed: a true entity {label(b)} finds exactly (span and type) and {label(a)} does not; introduced: the reverse. "
        "Hallucinations: spurious or wrong-type entities one run predicts and the other does not."
    )
    default("cmp_tok_outcome", "fixed", allowed=list(DIFF_OUTCOMES))
    outcome = str(st.radio("Show", list(DIFF_OUTCOMES), key="cmp_tok_outcome", horizontal=True, persist_state="session"))
    shown = diff_examples(ans_a, ans_b, diff, outcome)
    if not shown:
        st.caption("None.")
        return
    ds = common.dataset(b.row.version_id)
    st.html("".join(_diff_html(e, ds, f"#{a.run_id}", f"#{b.run_id}") for e in shown))


def _diff_html(e: DiffExample, ds: Dataset, name_a: str, name_b: str) -> str:
    types = run_tokens.types_of(ds)
    focus = (e.start, e.end)
    conf = lambda c: "" if c != c else f" ({c:.0%})"  # NaN: the run predicted no such span
    head = (
        f"{html.escape(where(ds, e.item))} · <b>{html.escape(e.outcome)}</b> · {html.escape(e.kind)} · "
        f"{html.escape(name_a)}: {html.escape(e.a)}{conf(e.conf_a)} → {html.escape(name_b)}: {html.escape(e.b)}{conf(e.conf_b)}"
    )
    lines = [
        ("true", charts.entity_sentence_html(marked_pieces(e.tokens, e.true_tags, focus), types)),
        (name_a, charts.entity_sentence_html(marked_pieces(e.tokens, e.tags_a, focus), types, predicted=True)),
        (name_b, charts.entity_sentence_html(marked_pieces(e.tokens, e.tags_b, focus), types, predicted=True)),
    ]
    return run_tokens.lines_html(head, lines)


def galleries_panel(results: Sequence[RunResults]) -> None:
    st.subheader("Hallucinated entities — each run's most confident spurious and wrong-type entities")
    for tab, res in zip(st.tabs([label(r) for r in results]), results):
        with tab:
            ds = common.dataset(res.row.version_id)
            entries = entity_gallery(res, ds)
            if not entries:
                st.caption("No evaluation yet." if res.result_step is None else "None at or above τ.")
                continue
            types = run_tokens.types_of(ds)
            st.caption(f"At or above τ = {res.tau:.2f}; true entities solid, predicted ones dashed, the entity in question underlined.")
            st.html("".join(run_tokens.entry_html(e, types, where(ds, e.item)) for e in entries))
