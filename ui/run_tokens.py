"""One token-classification (NER) run on the Runs page, every number read at its result
(``core.compare.one_run`` and ``core.compare.entities``): entity metric cards with their change
after temperature scaling, curves of entity F1, hallucinated-entity rates and token ECE (the
result's step marked), precision / recall / F1 per type coloured by head / medium / tail train
mentions, the span-level type confusion with "O", token reliability, the forced-known type rate
when the run's train lacked a type, and the gallery of the most confident hallucinated entities
(true and predicted entities of each sentence). ``ui.run_detail`` lays these out for a token run."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from core import charts
from core.compare.entities import GalleryEntry, dropped_types, entity_gallery, marked_pieces, type_confusion, type_table
from core.compare.one_run import readings, temperature_table
from core.data.dataset import Dataset
from core.metrics.groups import rule_words
from core.metrics.results import RunResults
from ui.items import where

KPIS = [
    ("entity_f1_micro", "Entity micro-F1", False), ("entity_f1_macro", "Entity macro-F1", False),
    ("confident_spurious_rate", "Spurious @τ", True), ("type_hallucination_rate", "Wrong type @τ", True),
    ("token_ece", "Token ECE", True),
]  # fmt: skip
FORCED = ("forced_known_type_rate", "Forced-known @τ", True)
TS_METRICS = ["token_ece", "token_nll", "entity_f1_micro", "confident_spurious_rate", "type_hallucination_rate", "forced_known_type_rate"]
HALLUCINATION_CURVES = ["spurious_rate", "confident_spurious_rate", "type_hallucination_rate"]


def types_of(ds: Dataset) -> list[str]:
    """The dataset's entity types (its class names after "(no entity)"), the order colours follow."""
    return [str(c) for c in ds.class_names[1:]]


def panels(res: RunResults, ds: Dataset) -> None:
    """Cards, curves, per-type scores, type confusion, reliability, temperature scaling, forced-known types."""
    dropped = dropped_types(res, ds)
    cards(res, [*KPIS, FORCED] if dropped else KPIS)
    step = res.result_step
    offset = None if step is None else res.at("o_offset", step, "test")
    if offset is not None:
        st.caption(
            f"Fewer invented entities: at the result's evaluation the logit of O was raised by **{offset:.2f}**, the largest offset "
            "(0 to 4) whose val entity micro-F1 is within 0.01 of the best; every score on this page is of those answers."
        )
    curves(res)
    if step is None or not res.artifacts(step):
        st.info("Per-type scores, the type confusion and the reliability diagram appear after the first evaluation.")
        return
    per_type(res, ds)
    calibration(res)
    if dropped:
        forced_known(res, dropped)


def cards(res: RunResults, kpis: list[tuple[str, str, bool]]) -> None:
    values = readings(res, [name for name, _, _ in kpis])
    for col, (name, title, lower_better) in zip(st.columns(len(kpis)), kpis):
        r = values[name]
        unchanged = r.change is not None and round(r.change, 3) == 0
        delta = None if r.change is None else "unchanged after TS" if unchanged else f"{r.change:+.3f} after TS"
        col.metric(
            title, "—" if r.value is None else f"{r.value:.3f}", delta, delta_color="off" if unchanged else "inverse" if lower_better else "normal",
            delta_arrow="off" if unchanged else "auto",
            help=charts.metric_title(name)[0].upper() + charts.metric_title(name)[1:] + " of the test split"
            + (". The change after temperature scaling (TS, fitted on val words) is under the value." if delta else "."),
        )  # fmt: skip


def curves(res: RunResults) -> None:
    """Training loss, entity micro- and macro-F1 (val, test), hallucinated-entity rates (test), token ECE (val, test)."""
    metrics, key = res.metrics, res.run_id
    step = res.result_step
    mark = None if step is None else (step, "★ result")
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.metric_curves(metrics, ["loss"], splits=("train",), title="Training loss"), width="stretch", key=f"loss_{key}")
    if not res.eval_steps("val") and not res.eval_steps("test"):
        c2.info("Entity F1, the hallucinated-entity rates and the token calibration error appear after the first evaluation.")
        return
    c2.plotly_chart(charts.metric_curves(metrics, ["entity_f1_micro", "entity_f1_macro"], title="Entity micro- and macro-F1", mark=mark),
                    width="stretch", key=f"ef1_{key}")  # fmt: skip
    c3, c4 = st.columns(2)
    c3.plotly_chart(
        charts.metric_curves(metrics, HALLUCINATION_CURVES, splits=("test",), title="Hallucinated entities (test)", mark=mark),
        width="stretch", key=f"hal_{key}",
    )  # fmt: skip
    c4.plotly_chart(charts.metric_curves(metrics, ["token_ece"], title="Token calibration error (ECE)", mark=mark), width="stretch",
                    key=f"ece_{key}")  # fmt: skip


def per_type(res: RunResults, ds: Dataset) -> None:
    """Precision, recall and F1 per type (groups by train mentions) and the type confusion."""
    c1, c2 = st.columns(2)
    table = type_table(res, ds)
    with c1:
        st.plotly_chart(charts.entity_type_scores(table, title=f"Precision, recall and F1 per type (test, step {res.result_step})"),
                        width="stretch", key=f"types_{res.run_id}")  # fmt: skip
        st.caption("Bars: F1, coloured by the type's train mentions — " + rule_words().replace("items", "mentions") + ".")
    confusion = type_confusion(res)
    if confusion is None:
        c2.info("No type confusion was stored for this evaluation.")
    else:
        c2.plotly_chart(charts.type_confusion(*confusion), width="stretch", key=f"tcm_{res.run_id}")


def calibration(res: RunResults) -> None:
    """Token reliability before and after temperature scaling, and the before / after table."""
    art = res.artifacts(res.result_step)
    c1, c2 = st.columns(2)
    bins = {"test": art["test"]["reliability"]} if "test" in art and "reliability" in art["test"] else {}
    if "test_ts" in art:
        bins["test, temperature-scaled"] = art["test_ts"]["reliability"]
    if bins:
        c1.plotly_chart(charts.reliability_diagram(bins, title="Token reliability"), width="stretch", key=f"rel_{res.run_id}")
    table = temperature_table(res, TS_METRICS)
    if table is None:
        c2.caption("No temperature scaling at this evaluation.")
        return
    temperature = res.at("temperature", res.result_step, "test_ts")
    c2.markdown(f"**Temperature scaling** (T = {temperature or float('nan'):.2f}, fitted on val words), test split:")
    table = table.dropna(how="all")
    c2.dataframe(table.map(lambda v: "—" if pd.isna(v) else f"{v:.4f}").rename(index=charts.metric_title), width="stretch")


def forced_known(res: RunResults, dropped: list[str]) -> None:
    step = res.result_step
    rate, forced, mentions = (res.at(m, step) for m in ("forced_known_type_rate", "n_forced_known_type", "n_dropped_type_mentions"))
    if not mentions:
        st.info(f"The run's train split has no {', '.join(dropped)} mentions, and the test split has none either.")
        return
    st.warning(
        f"The run's train split has no {', '.join(dropped)} mentions: the model cannot name them. Of the {mentions:,.0f} test mentions, "
        f"{forced or 0:,.0f} ({(rate or 0):.1%}) were covered by an entity of a known type with confidence ≥ τ = {res.tau:.2f} "
        "(the forced-known type rate).",
        icon="⚠️",
    )


# ------------------------------------------------------------------ the gallery


def entry_html(entry: GalleryEntry, types: list[str], ref: str) -> str:
    """One hallucinated entity as HTML: a line of what it is, then the sentence's true entities and
    the run's predicted ones (dashed), the entity itself underlined on both lines."""
    focus = (entry.start, entry.end)
    what = (
        f"<b>spurious</b>: {html.escape(entry.predicted)} where there is no entity"
        if entry.true is None
        else f"<b>wrong type</b>: {html.escape(entry.predicted)} for a true {html.escape(entry.true)}"
    )
    truth = charts.entity_sentence_html(marked_pieces(entry.tokens, entry.true_tags, focus), types)
    pred = charts.entity_sentence_html(marked_pieces(entry.tokens, entry.pred_tags, focus), types, predicted=True)
    return lines_html(f"{html.escape(ref)} · {what} · confidence {entry.confidence:.1%}", [("true", truth), ("predicted", pred)])


def lines_html(head: str, lines: list[tuple[str, str]]) -> str:
    """A bordered card: ``head`` (HTML) over labelled lines of sentence HTML."""
    label = "<span style='display:inline-block;width:6.5em;color:#777;font-size:.85em'>{}</span>"
    rows = "".join(f"<div style='line-height:2.1'>{label.format(html.escape(name))}{body}</div>" for name, body in lines)
    return (
        "<div style='border:1px solid #ddd;border-radius:6px;padding:.35rem .7rem;margin:.35rem 0'>"
        f"<div style='font-size:.85em;color:#444'>{head}</div>{rows}</div>"
    )


def gallery(res: RunResults, ds: Dataset, when: str) -> None:
    st.markdown("**Hallucinated entities** — the most confident spurious and wrong-type entities on the test split")
    step = res.result_step
    if step is None:
        st.caption("Appears after the first evaluation.")
        return
    n_pred, spurious, wrong = (res.at(m, step) for m in ("n_pred_spans", "n_confident_spurious", "n_type_hallucinations"))
    st.caption(
        f"At {when}: {n_pred or 0:,.0f} predicted entities; {spurious or 0:,.0f} spurious and {wrong or 0:,.0f} of the wrong type "
        f"with confidence ≥ τ = {res.tau:.2f}. True entities solid, predicted ones dashed; the entity in question underlined."
    )
    entries = entity_gallery(res, ds)
    if not entries:
        st.caption("None at or above τ." if res.artifacts(step) else "The evaluation's file has not arrived yet.")
        return
    types = types_of(ds)
    st.html("".join(entry_html(e, types, where(ds, e.item)) for e in entries))
