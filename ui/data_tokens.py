"""The Data page's picture of a token (NER) dataset: headline figures, entity mentions per type and
split with head / tail types, example sentences with their entities highlighted, sentence lengths."""

from __future__ import annotations

import html

import streamlit as st

from core import charts
from core.data.dataset import SPLITS, Dataset
from core.tokens import stats
from core.tokens.stats import Segment
from ui.state import default


def highlighted(segments: list[Segment], types: list[str]) -> str:
    """One sentence as HTML: each entity a coloured mark with its type; all text escaped."""
    parts = []
    for text, kind in segments:
        if kind is None:
            parts.append(html.escape(text))
        else:
            colour = charts.entity_colour(kind, types)
            parts.append(
                f'<mark style="background:{colour}33;border:1px solid {colour};border-radius:4px;padding:0 3px">'
                f"{html.escape(text)} <sub style='color:{colour};font-weight:600'>{html.escape(kind)}</sub></mark>"
            )
    return " ".join(parts)


def kpis(ds: Dataset) -> None:
    k = stats.kpis(ds)
    figures = [
        ("Sentences", f"{k.sentences:,}", f"{k.no_entity_share:.0%} without an entity"),
        ("Tokens", f"{k.tokens:,}", f"{k.tokens / max(1, k.sentences):.1f} per sentence"),
        ("Entity types", f"{k.types}", "absent from train: " + ", ".join(k.absent_from_train) if k.absent_from_train else "all in train"),
        ("Mentions", f"{k.mentions:,}", "all splits"),
        ("Imbalance", "∞" if k.imbalance == float("inf") else f"{k.imbalance:.0f}:1", "most ÷ fewest train mentions"),
    ]
    for col, (label, value, note) in zip(st.columns(len(figures)), figures):
        col.metric(label, value)
        col.caption(note)


def entities(ds: Dataset) -> None:
    st.subheader("Entities per type")
    table = stats.entity_table(ds)
    default("dt_tok_log", False)
    log = st.toggle("Log scale", key="dt_tok_log", persist_state="session")
    st.plotly_chart(charts.entity_bars(table, log=log), width="stretch")
    for line in stats.type_lines(table):
        st.caption(line)
    st.dataframe(table.style.format({"share of train mentions": "{:.1%}"}), width="stretch", hide_index=True)


def examples(ds: Dataset) -> None:
    table = stats.entity_table(ds)
    types = list(table["type"])
    choices = ["any sentence", *sorted(types)]
    default("dt_tok_type", choices[0], allowed=choices)
    default("dt_tok_split", "train", allowed=list(SPLITS))
    default("dt_tok_seed", 0)
    c1, c2, c3 = st.columns([2, 2, 1])
    kind = str(c1.selectbox("Sentences holding", choices, key="dt_tok_type", persist_state="session"))
    split = str(c2.radio("Split", list(SPLITS), horizontal=True, key="dt_tok_split", persist_state="session"))
    seed = int(c3.number_input("Draw", 0, 10_000, key="dt_tok_seed", persist_state="session", help="Another draw of examples"))
    rows = stats.examples(ds, kind=None if kind == choices[0] else kind, split=SPLITS.index(split), k=8, seed=seed)
    if not rows:
        st.info(f"No {split} sentence holds {kind}.")
        return
    all_types = sorted(types)
    st.html("".join(f"<p style='line-height:2'><b>#{item}</b> · {highlighted(segs, all_types)}</p>" for item, segs in rows))


def lengths(ds: Dataset) -> None:
    frame = stats.lengths(ds)
    st.plotly_chart(charts.length_histogram(frame["tokens"].to_numpy(), unit="tokens"), width="stretch")
    st.dataframe(frame.groupby("split")["tokens"].describe().style.format("{:,.1f}"), width="stretch")


def scheme(params: dict) -> None:
    stored = params.get("tag_scheme")
    st.markdown(stats.scheme_line(stored))
    table = stats.broken_transitions(stored)
    if len(table):
        st.caption("Transitions the file's scheme does not allow (repaired on import):")
        st.dataframe(table, width="stretch", hide_index=True)
    else:
        st.caption("No transition broke the scheme.")


def profile(ds: Dataset, params: dict) -> None:
    """Everything the Data page shows of a token dataset (``params``: its version's, for the tag scheme)."""
    kpis(ds)
    entities(ds)
    t_examples, t_lengths, t_scheme = st.tabs(["Examples", "Sentence lengths", "Tag scheme"])
    with t_examples:
        examples(ds)
    with t_lengths:
        lengths(ds)
    with t_scheme:
        scheme(params)
