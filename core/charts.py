"""Plotly figure builders: data in, figure out. No streamlit here; pages call ``st.plotly_chart``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.data import SPLITS
from core.profile import Balance

GROUP_COLOURS = {"head": "#4C78A8", "medium": "#F2A541", "tail": "#E45756"}
SPLIT_COLOURS = {"train": "#4C78A8", "val": "#72B7B2", "test": "#B279A2"}
LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=360, template="plotly_white", legend=dict(orientation="h", y=1.12))


def class_distribution(
    class_names: list[str], balance: Balance, *, sort: bool = True, log: bool = False, title: str = "Items per class"
) -> go.Figure:
    """Bars of class counts coloured by head/medium/tail, thresholds as dashed lines."""
    order = np.argsort(-balance.counts, kind="stable") if sort else np.arange(len(class_names))
    names = [class_names[i] for i in order]
    counts = balance.counts[order]
    groups = balance.groups[order]
    fig = go.Figure()
    for group, colour in GROUP_COLOURS.items():
        mask = groups == group
        if mask.any():
            fig.add_bar(
                x=[n for n, m in zip(names, mask) if m], y=counts[mask], name=group, marker_color=colour,
                hovertemplate="%{x}: %{y:,} items<extra>" + group + "</extra>",
            )
    head, tail = balance.thresholds
    for y, text in ((head, f"head > {head}"), (tail, f"tail < {tail}")):
        fig.add_hline(y=y, line_dash="dot", line_color="#888", annotation_text=text, annotation_position="top right")
    fig.update_layout(title=title, barmode="overlay", xaxis=dict(categoryorder="array", categoryarray=names, title=None), **LAYOUT)
    fig.update_yaxes(type="log" if log else "linear", title="items")
    if len(names) > 30:
        fig.update_xaxes(showticklabels=False)
    return fig


def split_counts(counts: pd.DataFrame) -> go.Figure:
    """Grouped bars: items per class in train / val / test."""
    fig = go.Figure()
    for split in SPLITS:
        fig.add_bar(x=counts.index.astype(str), y=counts[split], name=split, marker_color=SPLIT_COLOURS[split],
                    hovertemplate="%{x}: %{y:,}<extra>" + split + "</extra>")
    fig.update_layout(title="Items per class and split", barmode="group", **LAYOUT)
    return fig


def slice_bars(table: pd.DataFrame, column: str, *, by: str = "class") -> go.Figure:
    """Stacked bars of a slice table from ``core.profile.slice_counts``: items per slice value × class (or split)."""
    part = table[by]
    fig = go.Figure()
    for col in part.columns:
        fig.add_bar(x=part.index.astype(str), y=part[col], name=str(col), hovertemplate="%{x}: %{y:,}<extra>" + str(col) + "</extra>")
    fig.update_layout(title=f"Items per {column} and {by}", barmode="stack", **LAYOUT)
    return fig


def length_histogram(lengths: np.ndarray, *, unit: str = "words") -> go.Figure:
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=60, marker_color="#4C78A8"))
    fig.update_layout(title=f"Text length ({unit})", **LAYOUT)
    fig.update_xaxes(title=unit)
    fig.update_yaxes(title="texts")
    return fig
