"""Plotly figure builders: data in, figure out. No streamlit here; pages call ``st.plotly_chart``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.data.dataset import SPLITS
from core.data.profile import Balance
from core.metrics.names import metric_name

if TYPE_CHECKING:
    from core.compare.entities import Piece

GROUP_COLOURS = {"head": "#4C78A8", "medium": "#F2A541", "tail": "#E45756"}
SPLIT_COLOURS = {"train": "#4C78A8", "val": "#72B7B2", "test": "#B279A2"}
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2")  # one colour per run, in order
# legends sit under the plot so they never cover the title
LAYOUT = dict(
    margin=dict(l=10, r=10, t=40, b=10), height=380, template="plotly_white", legend=dict(orientation="h", yanchor="top", y=-0.15, x=0)
)


def log_ticks(values: Sequence[float] | np.ndarray) -> dict[str, list]:
    """Tick values and labels 1, 2, 5, 10, 20, 50, … spanning ``values`` (the positive ones), for a
    log axis: Plotly's own labels a decade's minor ticks "2", "3" … where 20, 30 … is meant."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return {}
    lo, hi = float(v.min()), float(v.max())
    ticks = [m * 10**e for e in range(int(np.floor(np.log10(lo))), int(np.floor(np.log10(hi))) + 2) for m in (1, 2, 5)]
    low = max((t for t in ticks if t <= lo), default=ticks[0])
    high = min((t for t in ticks if t >= hi), default=ticks[-1])
    shown = [t for t in ticks if low <= t <= high]
    return {"tickvals": shown, "ticktext": [f"{t:,.0f}" if t >= 1 else f"{t:g}" for t in shown]}


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
                x=[n for n, m in zip(names, mask) if m],
                y=counts[mask],
                name=group,
                marker_color=colour,
                hovertemplate="%{x}: %{y:,} items<extra>" + group + "</extra>",
            )
    # no lines when the groups come from other counts (all splits coloured by train groups)
    head, tail = balance.thresholds or (0, 0)
    # labelled only where the two labels cannot collide (a log axis, or lines far apart); the
    # caption under the chart names the thresholds either way
    apart = log or (head - tail) > 0.08 * max(float(counts.max(initial=1)), 1.0)
    lines = ((head, f"head > {head}", "top right"), (tail, f"tail < {tail}", "bottom right")) if balance.thresholds else ()
    for y, text, where in lines:
        # no annotation arguments at all when unlabelled: with a position but no text Plotly writes "new text"
        label = dict(
            annotation_text=text, annotation_position=where, annotation_font_color="#555", annotation_bgcolor="rgba(255,255,255,0.8)"
        )
        fig.add_hline(y=y, line_dash="dot", line_color="#888", **(label if apart else {}))
    fig.update_layout(title=title, barmode="overlay", xaxis=dict(categoryorder="array", categoryarray=names, title=None), **LAYOUT)
    fig.update_yaxes(type="log" if log else "linear", title="items", **(log_ticks(counts) if log else {}))
    if len(names) > 30:
        fig.update_xaxes(showticklabels=False)
    return fig


def split_counts(counts: pd.DataFrame) -> go.Figure:
    """Grouped bars: items per class in train / val / test."""
    fig = go.Figure()
    for split in SPLITS:
        fig.add_bar(
            x=counts.index.astype(str),
            y=counts[split],
            name=split,
            marker_color=SPLIT_COLOURS[split],
            hovertemplate="%{x}: %{y:,}<extra>" + split + "</extra>",
        )
    fig.update_layout(title="Items per class and split", barmode="group", **LAYOUT)
    return fig


def slice_bars(table: pd.DataFrame, column: str, *, by: str = "class") -> go.Figure:
    """Stacked bars of a slice table from ``core.data.profile.slice_counts``: items per slice value × class (or split)."""
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


def noise_matrix(matrix: np.ndarray, class_names: list[str]) -> go.Figure:
    """Heatmap of the estimated P(given label | true label); off-diagonal mass is label noise."""
    names = [str(c) for c in class_names]
    text = np.vectorize(lambda v: f"{v:.2f}" if v >= 0.005 else "")(matrix)
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=names,
            y=names,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=text,
            texttemplate="%{text}",
            hovertemplate="true %{x} → given %{y}: %{z:.3f}<extra></extra>",
            colorbar=dict(title="P"),
        )
    )
    fig.update_layout(title="Estimated noise matrix P(given | true)", **{**LAYOUT, "height": max(360, 28 * len(names) + 120)})
    fig.update_xaxes(title="true label", side="bottom")
    fig.update_yaxes(title="given label", autorange="reversed")
    return fig


def noise_rates(rates: np.ndarray, class_names: list[str]) -> go.Figure:
    """Bars of the estimated share of each true class that carries a wrong label."""
    order = np.argsort(-rates, kind="stable")
    fig = go.Figure(
        go.Bar(
            x=[str(class_names[i]) for i in order],
            y=rates[order],
            marker_color="#E45756",
            hovertemplate="%{x}: %{y:.1%} mislabelled<extra></extra>",
        )
    )
    fig.update_layout(title="Estimated noise rate per class", **LAYOUT)
    fig.update_yaxes(tickformat=".1%", title="share mislabelled", rangemode="tozero")
    return fig


def embedding_map(
    xy: np.ndarray,
    colour: np.ndarray,
    *,
    colour_name: str,
    hover: list[str],
    index: np.ndarray,
    continuous: bool = False,
) -> go.Figure:
    """2-D map of the items; ``index`` goes into customdata so a selection maps back to items."""
    if continuous:
        fig = go.Figure(
            go.Scattergl(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                customdata=index,
                text=hover,
                marker=dict(size=5, color=colour, colorscale="RdYlGn", reversescale=False, colorbar=dict(title=colour_name), opacity=0.8),
                hovertemplate="%{text}<extra></extra>",
            )
        )
    else:
        fig = go.Figure()
        colour = np.asarray(colour, dtype=object)
        for value in pd.unique(colour):
            m = colour == value
            fig.add_trace(
                go.Scattergl(
                    x=xy[m, 0],
                    y=xy[m, 1],
                    mode="markers",
                    name=str(value),
                    customdata=index[m],
                    text=[h for h, keep in zip(hover, m) if keep],
                    marker=dict(size=5, opacity=0.8),
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    fig.update_layout(title=f"Embedding map, coloured by {colour_name}", dragmode="lasso", **{**LAYOUT, "height": 560})
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None)
    return fig


def score_histogram(scores: np.ndarray, *, cut: float | None = None, title: str, x_title: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=scores, nbinsx=60, marker_color="#4C78A8"))
    if cut is not None:
        fig.add_vline(x=cut, line_dash="dot", line_color="#E45756", annotation_text="flag above")
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="items")
    return fig


# ---------------------------------------------------------------------- runs


def metric_title(name: str) -> str:
    """A metric's name as people read it ("macro_f1" → "macro-F1"): ``core.metrics.names``."""
    return metric_name(name)


def metric_curves(
    metrics: pd.DataFrame, names: list[str], *, splits: tuple[str, ...] = ("val", "test"), title: str, mark: tuple[int, str] | None = None
) -> go.Figure:
    """Lines of metrics over optimiser steps, one per (metric, split). ``metrics`` as from
    ``Store.metrics``: columns step, split, name, value. ``mark``: (step, words) drawn as a dashed
    line, e.g. the evaluation a run's result is read at."""
    fig = go.Figure()
    for name in names:
        for split in splits:
            part = metrics[(metrics["name"] == name) & (metrics["split"] == split)].sort_values("step")
            if len(part):
                fig.add_scatter(
                    x=part["step"],
                    y=part["value"],
                    mode="lines+markers",
                    name=f"{metric_name(name)} · {split}",
                    hovertemplate="step %{x}: %{y:.4f}<extra>" + f"{name} · {split}" + "</extra>",
                )
    if mark is not None:
        fig.add_vline(x=mark[0], line_dash="dash", line_color="#888", annotation_text=mark[1], annotation_position="top left")
    fig.update_layout(title=title, **LAYOUT)
    fig.update_layout(legend_y=-0.25)  # under the axis title, not on it
    fig.update_xaxes(title="step")
    return fig


def per_class_bars(values: dict[int, float], class_names: list[str], *, title: str, absent: Sequence[int] = ()) -> go.Figure:
    """Bars of a per-class metric (e.g. recall), lowest first; classes absent from train in grey."""
    items = sorted(values.items(), key=lambda kv: (np.nan_to_num(kv[1], nan=-1.0), kv[0]))
    fig = go.Figure(
        go.Bar(
            x=[str(class_names[c]) for c, _ in items],
            y=[v for _, v in items],
            marker_color=["#BBBBBB" if c in absent else "#4C78A8" for c, _ in items],
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(type="category")  # class names like "0".."9" stay names, and no numeric axis when empty
    fig.update_yaxes(range=[0, 1])
    return fig


def reliability_diagram(bins: dict[str, dict[str, np.ndarray]], *, title: str = "Reliability diagram") -> go.Figure:
    """Accuracy against confidence per bin, for one or more named curves (e.g. before/after
    temperature scaling); the diagonal is perfect calibration, points below it are over-confidence.
    A point's area follows its bin's item count, so a bin of two items does not look like a trend."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#888"), name="perfect", hoverinfo="skip")
    largest = max((int(np.max(b["count"], initial=0)) for b in bins.values()), default=0)
    for name, b in bins.items():
        count = np.asarray(b["count"])
        mask = count > 0
        fig.add_scatter(
            x=np.asarray(b["mean_conf"])[mask],
            y=np.asarray(b["accuracy"])[mask],
            mode="lines+markers",
            name=name,
            line=dict(width=1.5),
            marker=dict(size=4 + 14 * np.sqrt(count[mask] / max(largest, 1))),
            customdata=count[mask],
            hovertemplate="confidence %{x:.2f} → accuracy %{y:.2f} (%{customdata:,} items)<extra></extra>",
        )
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title="confidence", range=[0, 1])
    fig.update_yaxes(title="accuracy", range=[0, 1])
    return fig


def confusion_matrix(
    matrix: np.ndarray, class_names: list[str], *, normalise: bool = True, title: str = "Confusion matrix (test)"
) -> go.Figure:
    m = np.asarray(matrix, dtype=float)
    z = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalise else m
    names = [str(c) for c in class_names]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalise else None,
            customdata=m,
            hovertemplate="true %{y} → predicted %{x}: %{customdata:,.0f}<extra></extra>",
        )
    )
    fig.update_layout(title=title, **{**LAYOUT, "height": max(360, 26 * len(names) + 120)})
    fig.update_xaxes(title="predicted")
    fig.update_yaxes(title="true", autorange="reversed")
    return fig


def slice_metric_bars(values: pd.DataFrame, column: str) -> go.Figure:
    """Grouped bars per slice value (index) for metric columns, e.g. accuracy and hallucination rate."""
    fig = go.Figure()
    for metric in values.columns:
        fig.add_bar(
            x=values.index.astype(str),
            y=values[metric],
            name=metric_name(metric),
            hovertemplate="%{x}: %{y:.3f}<extra>" + metric + "</extra>",
        )
    fig.update_layout(title=f"Test metrics per {column}", barmode="group", **LAYOUT)
    return fig


def counts_before_after(
    before: dict[str, float],
    after: dict[str, float],
    *,
    title: str = "Items per class: train split → one epoch",
    names: tuple[str, str] = ("train split", "after resampling"),
) -> go.Figure:
    """Grouped bars of items per class before and after (resampling, a simulation), classes by size (log scale)."""
    order = sorted(before, key=lambda c: -before[c])
    fig = go.Figure()
    fig.add_bar(
        x=order,
        y=[before[c] for c in order],
        name=names[0],
        marker_color="#9AA5B1",
        hovertemplate="%{x}: %{y:,.0f}<extra>" + names[0] + "</extra>",
    )
    fig.add_bar(
        x=order,
        y=[after.get(c, 0) for c in order],
        name=names[1],
        marker_color="#4C78A8",
        hovertemplate="%{x}: %{y:,.0f}<extra>" + names[1] + "</extra>",
    )
    fig.update_xaxes(type="category")
    fig.update_layout(title=title, barmode="group", **LAYOUT)
    fig.update_yaxes(type="log", title="items", **log_ticks([*before.values(), *after.values()]))
    return fig


def resampled_map(xy: np.ndarray, labels: np.ndarray, synthetic: np.ndarray, removed_xy: np.ndarray) -> go.Figure:
    """2-D map of real items (dots) and the points a sampler made (crosses) or removed (grey rings)."""
    fig = go.Figure()
    classes = sorted(set(labels.tolist()), key=str)
    palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC", "#EECA3B"]
    for i, c in enumerate(classes):
        colour = palette[i % len(palette)]
        for made, symbol, size in ((False, "circle", 5), (True, "x", 7)):
            keep = (labels == c) & (synthetic == made)
            if keep.any():
                fig.add_trace(
                    go.Scattergl(
                        x=xy[keep, 0],
                        y=xy[keep, 1],
                        mode="markers",
                        name=f"{c}{' · new' if made else ''}",
                        legendgroup=str(c),
                        marker=dict(color=colour, symbol=symbol, size=size, opacity=0.9 if made else 0.5),
                        hovertemplate=f"{c}{' (synthetic)' if made else ''}<extra></extra>",
                    )
                )
    if len(removed_xy):
        fig.add_trace(
            go.Scattergl(
                x=removed_xy[:, 0],
                y=removed_xy[:, 1],
                mode="markers",
                name="removed",
                marker=dict(color="rgba(0,0,0,0)", line=dict(color="#555", width=1), size=7),
                hovertemplate="removed<extra></extra>",
            )
        )
    fig.update_layout(title="Resampling on the embedding map (PCA of the real items)", **LAYOUT)
    fig.update_xaxes(title="PC 1")
    fig.update_yaxes(title="PC 2")
    return fig


def risk_coverage(coverage: np.ndarray, risk: np.ndarray, *, point: tuple[float, float] | None = None, label: str = "") -> go.Figure:
    """Error rate of the most confident answers as more are given; ``point`` marks an operating point."""
    fig = go.Figure(
        go.Scatter(
            x=coverage,
            y=risk,
            mode="lines",
            name="risk",
            line=dict(color="#4C78A8"),
            hovertemplate="answer %{x:.0%}: error %{y:.1%}<extra></extra>",
        )
    )
    if point is not None:
        fig.add_trace(
            go.Scatter(
                x=[point[0]],
                y=[point[1]],
                mode="markers+text",
                marker=dict(size=12, color="#E45756"),
                text=[label],
                textposition="top left",
                name="operating point",
                hovertemplate="answered %{x:.1%}, error %{y:.1%}<extra></extra>",
            )
        )
    fig.update_layout(title="Risk–coverage: error of the answers given, most confident first", **LAYOUT)
    fig.update_xaxes(title="coverage (share answered)", tickformat=".0%", range=[0, 1])
    top = float(np.nanmax(risk)) if len(risk) else 0.0
    # whole percents repeat on a small range ("1%, 1%, 0%"): decimals until the ticks differ
    fig.update_yaxes(title="risk (error rate)", tickformat=".0%" if top >= 0.1 else ".1%" if top >= 0.01 else ".2%", rangemode="tozero")
    return fig


def sweep_lines(table: pd.DataFrame, metric: str, *, x_title: str, title: str) -> go.Figure:
    """``metric`` against severity, one line per arm (baseline, mitigated); ``table`` as from
    ``core.simulate.sweep.sweep_results``. Points not measured yet are left out."""
    fig = go.Figure()
    colours = {"baseline": "#E45756", "mitigated": "#4C78A8"}
    for arm, part in table.groupby("arm", sort=True):
        part = part.sort_values("severity")
        done = part[part[metric].notna()]
        fig.add_scatter(
            x=done["severity"],
            y=done[metric],
            mode="lines+markers",
            name=str(arm),
            line=dict(color=colours.get(str(arm))),
            hovertemplate="%{x:g}: %{y:.3f}<extra>" + str(arm) + "</extra>",
        )
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title=x_title, type="category" if table["severity"].nunique() <= 6 else "linear")
    fig.update_yaxes(rangemode="tozero")
    return fig


def confusion_difference(a: np.ndarray, b: np.ndarray, class_names: list[str], *, title: str) -> go.Figure:
    """How run b's row-normalised confusion differs from run a's, coloured by what it means: red
    is worse (recall lost on the diagonal, more confusion off it), blue is better; the hover shows
    the raw change of each cell."""
    norm = lambda m: np.asarray(m, float) / np.maximum(np.asarray(m, float).sum(axis=1, keepdims=True), 1)
    change = norm(b) - norm(a)
    worse = change.copy()
    np.fill_diagonal(worse, -np.diag(change))  # on the diagonal more is better
    names = [str(c) for c in class_names]
    top = float(np.abs(worse).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=worse,
            x=names,
            y=names,
            customdata=change,
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            zmin=-top,
            zmax=top,
            colorbar=dict(title="worse ↑"),
            hovertemplate="true %{y} → predicted %{x}: %{customdata:+.1%}<extra></extra>",
        )
    )
    fig.update_layout(title=title, **{**LAYOUT, "height": max(360, 26 * len(names) + 120)})
    fig.update_xaxes(title="predicted", type="category")
    fig.update_yaxes(title="true", autorange="reversed", type="category")
    return fig


def grouped_bars(values: dict[str, dict[str, float]], *, title: str, y_title: str = "") -> go.Figure:
    """Bars per category (x), one colour per series: ``{series: {category: value}}``."""
    fig = go.Figure()
    for series, per in values.items():
        fig.add_bar(x=list(per), y=list(per.values()), name=series, hovertemplate="%{x}: %{y:.3f}<extra>" + series + "</extra>")
    fig.update_layout(title=title, barmode="group", **LAYOUT)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title=y_title)
    return fig


def runs_curves(
    curves: dict[str, pd.DataFrame], *, title: str, x: str = "epoch", marks: Mapping[str, tuple[float, float]] | None = None
) -> go.Figure:
    """One line per run: ``{run label: frame with columns x and value}``; ``marks``: ``{run label:
    (x, value)}`` drawn as a star in the run's colour (the evaluation its result is read at)."""
    fig = go.Figure()
    for i, (name, part) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        fig.add_scatter(
            x=part[x], y=part["value"], mode="lines+markers", name=name, line_color=colour,
            hovertemplate=f"{x} %{{x:.2f}}: %{{y:.4f}}<extra>{name}</extra>",
        )  # fmt: skip
        if marks and name in marks:
            mx, my = marks[name]
            fig.add_scatter(
                x=[mx], y=[my], mode="markers", name=f"{name} · result", showlegend=False, marker={"symbol": "star", "size": 16, "color": colour},
                hovertemplate=f"result: {x} %{{x:.2f}}: %{{y:.4f}}<extra>{name}</extra>",
            )  # fmt: skip
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title=x)
    return fig


#: A colour per entity type, in the order of a dataset's types (repeats past the last).
ENTITY_COLOURS = ("#F58518", "#4C78A8", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#EECA3B", "#FF9DA6", "#9D755D", "#BAB0AC")


def entity_colour(kind: str, types: Sequence[str]) -> str:
    """The colour of entity type ``kind`` among ``types`` (grey for a type not in the list)."""
    return ENTITY_COLOURS[list(types).index(kind) % len(ENTITY_COLOURS)] if kind in types else "#999999"


def entity_bars(table: pd.DataFrame, *, log: bool = False, title: str = "Entity mentions per type") -> go.Figure:
    """Mentions per entity type and split (``core.tokens.stats.entity_table``); a train bar's
    outline colour is its head / medium / tail group."""
    fig = go.Figure()
    for split in ("train", "val", "test"):
        column = f"{split} mentions"
        fig.add_bar(
            x=table["type"],
            y=table[column],
            name=split,
            marker_color=SPLIT_COLOURS[split],
            marker_line_color=[GROUP_COLOURS.get(g, "#888") for g in table["group"]] if split == "train" else None,
            marker_line_width=3 if split == "train" else 0,
            customdata=table["group"],
            hovertemplate="%{x}: %{y:,} " + split + " mentions<extra>%{customdata} type</extra>",
        )
    fig.update_layout(title=title, barmode="group", **LAYOUT)
    fig.update_yaxes(title="mentions", type="log" if log else "linear")
    return fig


def entity_type_scores(table: pd.DataFrame, *, title: str = "Precision, recall and F1 per entity type (test)") -> go.Figure:
    """F1 per entity type as bars coloured by the type's head / medium / tail group (train mentions),
    precision and recall as markers on them; ``table`` as from ``core.compare.entities.type_table``
    (columns type, group, precision, recall, f1). Types in the table's order."""
    fig = go.Figure()
    types = [str(t) for t in table["type"]]
    for group, colour in GROUP_COLOURS.items():
        part = table[table["group"] == group]
        if len(part):
            fig.add_bar(
                x=part["type"].astype(str), y=part["f1"], name=f"F1 · {group} type", marker_color=colour,
                customdata=part.get("train mentions"),
                hovertemplate="%{x}: F1 %{y:.3f}<extra>" + group + " type (%{customdata:,} train mentions)</extra>",
            )  # fmt: skip
    for metric, symbol in (("precision", "diamond"), ("recall", "triangle-up")):
        fig.add_scatter(
            x=types, y=table[metric], mode="markers", name=metric, marker=dict(symbol=symbol, size=11, color="#222", line=dict(width=1, color="#fff")),
            hovertemplate="%{x}: " + metric + " %{y:.3f}<extra></extra>",
        )  # fmt: skip
    fig.update_layout(title=title, barmode="overlay", **LAYOUT)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=types)
    fig.update_yaxes(range=[0, 1.05], title="score")
    return fig


def type_confusion(labels: Sequence[str], counts: np.ndarray, *, title: str = "Type confusion (test, entity level)") -> go.Figure:
    """Span-level confusion of entity types with "O" (``core.metrics.entities.TypeConfusion``):
    rows true, columns predicted; the "O" row holds spurious entities, the "O" column missed ones.
    Colour: the share of the row; text and hover: the count."""
    m = np.asarray(counts, dtype=float)
    z = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    names = [str(c) for c in labels]
    text = np.where(m > 0, m.astype(np.int64).astype(str), "")
    fig = go.Figure(
        go.Heatmap(
            z=z, x=names, y=names, colorscale="Blues", zmin=0, zmax=1, text=text, texttemplate="%{text}", customdata=m,
            hovertemplate="true %{y} → predicted %{x}: %{customdata:,.0f} entities (%{z:.0%} of the row)<extra></extra>",
            colorbar=dict(title="share"),
        )
    )  # fmt: skip
    fig.update_layout(title=title, **{**LAYOUT, "height": max(360, 34 * len(names) + 140)})
    fig.update_xaxes(title="predicted (O: missed)", type="category")
    fig.update_yaxes(title="true (O: spurious)", autorange="reversed", type="category")
    return fig


def entity_sentence_html(pieces: Sequence[Piece], types: Sequence[str], *, predicted: bool = False) -> str:
    """A sentence as HTML, every text escaped: each entity a mark in its type's colour
    (``entity_colour``) with the type beside it — solid for true entities, dashed for
    ``predicted`` ones; the pieces in focus (``core.compare.entities.Piece.focus``) underlined in
    red, so the entity a picture is about stands out on both lines."""
    import html

    border = "dashed" if predicted else "solid"
    parts = []
    for piece in pieces:
        text, kind, focus = piece.text, piece.kind, piece.focus
        under = "text-decoration:underline 3px #E45756;text-underline-offset:4px;" if focus else ""
        if kind is None:
            parts.append(f"<span style='{under}'>{html.escape(text)}</span>" if focus else html.escape(text))
            continue
        colour = entity_colour(kind, types)
        parts.append(
            f"<mark style='background:{colour}33;border:1px {border} {colour};border-radius:4px;padding:0 3px;{under}'>"
            f"{html.escape(text)} <sub style='color:{colour};font-weight:600'>{html.escape(kind)}</sub></mark>"
        )
    return " ".join(parts)


def class_mix(table: pd.DataFrame, *, title: str = "Class mix: the run's val split, and the target as BBSE sees it") -> go.Figure:
    """Grouped bars per class of every ``… share`` column of ``core.shift.scenario.prior_table``."""
    fig = go.Figure()
    for col in [c for c in table.columns if "share" in c]:
        fig.add_bar(name=col, x=table["class"], y=table[col])
    fig.update_layout(barmode="group", height=320, margin={"t": 40, "b": 10}, title=title, yaxis={"tickformat": ".0%"})
    return fig


REGION_COLOURS = {"easy": "#54A24B", "ambiguous": "#F2A541", "hard to learn": "#E45756"}


def data_map(table: pd.DataFrame, *, max_points: int = 6000, seed: int = 0) -> go.Figure:
    """The data map (Swayamdipta et al. 2020): variability (x) against confidence (y) of each train
    item, coloured by region; ``table`` as from ``core.select.scores.data_map`` (a seeded sample of
    ``max_points`` is drawn)."""
    t = table.dropna(subset=["confidence", "variability"])
    if len(t) > max_points:
        t = t.sample(max_points, random_state=seed)
    fig = go.Figure()
    for region, colour in REGION_COLOURS.items():
        part = t[t["region"] == region]
        fig.add_trace(
            go.Scattergl(
                x=part["variability"],
                y=part["confidence"],
                mode="markers",
                name=f"{region} ({int((table['region'] == region).sum()):,})",
                customdata=part["row"],
                marker=dict(size=4, opacity=0.6, color=colour),
                hovertemplate="item %{customdata}: confidence %{y:.2f}, variability %{x:.2f}<extra></extra>",
            )
        )
    fig.update_layout(title="Data map: how sure the run was of each given label, and how much that moved", **{**LAYOUT, "height": 460})
    fig.update_xaxes(title="variability (sd of the given label's probability over epochs)", rangemode="tozero")
    fig.update_yaxes(title="confidence (mean probability of the given label)", range=[0, 1])
    return fig


def keep_sweep(summary: pd.DataFrame, metric: str, *, title: str, full: float | None = None) -> go.Figure:
    """``metric`` against the share kept, one line per score with the sd over seeds as error bars;
    ``summary`` as from ``core.select.sweep.sweep_summary``; ``full``: the run on every item, dashed."""
    fig = go.Figure()
    for i, (score, part) in enumerate(summary.groupby("score", sort=False)):
        part = part.sort_values("fraction")
        colour = "#7F7F7F" if score == "random" else PALETTE[i % len(PALETTE)]
        fig.add_scatter(
            x=part["fraction"],
            y=part[metric],
            error_y=dict(type="data", array=part[f"{metric}_sd"], visible=bool((part["runs"] > 1).any())),
            mode="lines+markers",
            name=str(score),
            line=dict(color=colour, dash="dot" if score == "random" else "solid"),
            hovertemplate="%{x:.0%} kept: %{y:.3f}<extra>" + str(score) + "</extra>",
        )
    if full is not None and np.isfinite(full):
        fig.add_hline(y=full, line_dash="dash", line_color="#333", annotation_text="every item", annotation_position="top left")
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title="share of train items kept", tickformat=".0%")
    fig.update_yaxes(title=metric_name(metric), rangemode="tozero")
    return fig


def label_curves(curves: pd.DataFrame, metric: str = "accuracy", *, title: str = "Accuracy against labels spent") -> go.Figure:
    """``metric`` against labels spent, one line per picker (``core.select.active.rounds``)."""
    fig = go.Figure()
    for i, (picker, part) in enumerate(curves.groupby("picker", sort=False)):
        fig.add_scatter(
            x=part["labels"],
            y=part[metric],
            mode="lines+markers",
            name=str(picker),
            line=dict(color="#7F7F7F" if picker == "random" else PALETTE[i % len(PALETTE)], dash="dot" if picker == "random" else "solid"),
            hovertemplate="%{x} labels: %{y:.3f}<extra>" + str(picker) + "</extra>",
        )
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title="labels spent")
    fig.update_yaxes(title=metric_name(metric))
    return fig


def attribution_text_html(text: str, spans: Sequence[tuple[int, int]], values: np.ndarray, *, top: float | None = None) -> str:
    """A text as HTML, every character escaped: each word's background red for evidence *for* the
    class, blue for evidence against, as strong as the word's share of the largest |attribution|;
    the text between words kept as it is."""
    import html

    v = np.asarray(values, np.float64)
    top = float(top) if top else float(np.abs(v).max()) if v.size else 0.0
    parts, at = [], 0
    for (a, b), x in zip(spans, v.tolist()):
        parts.append(html.escape(text[at:a]))
        w = abs(x) / top if top > 0 else 0.0
        rgb = "228,87,86" if x > 0 else "76,120,168"
        parts.append(
            f"<span title='{x:+.3g}' style='background:rgba({rgb},{0.08 + 0.72 * w:.2f});border-radius:3px;padding:0 2px'>"
            f"{html.escape(text[a:b])}</span>"
        )
        at = b
    parts.append(html.escape(text[at:]))
    return "".join(parts)


def attribution_rgb(image: np.ndarray, values: np.ndarray, *, top: float | None = None) -> np.ndarray:
    """The image in grey (as stored: dark stays dark) with its attribution painted over it — red for
    the class, blue against — each pixel's colour as strong as its share of ``top`` (default its
    own largest |attribution|; give two maps the same ``top`` to compare them); uint8 (H, W, 3)."""
    img = np.asarray(image, np.float64)
    grey = img.mean(axis=2) if img.ndim == 3 else img
    base = np.repeat(grey[..., None], 3, axis=2)
    v = np.asarray(values, np.float64)
    scale = float(top) if top else float(np.abs(v).max())
    alpha = np.clip(np.abs(v) / scale, 0.0, 1.0)[..., None] * 0.9 if scale > 0 else np.zeros((*v.shape, 1))
    colour = np.where((v > 0)[..., None], np.array([228.0, 87.0, 86.0]), np.array([76.0, 120.0, 168.0]))
    return np.clip((1 - alpha) * base + alpha * colour, 0, 255).astype(np.uint8)


def attribution_image(image: np.ndarray, values: np.ndarray, *, title: str, top: float | None = None) -> go.Figure:
    """``attribution_rgb`` as a figure; hovering a pixel gives its attribution."""
    v = np.asarray(values, np.float64)
    fig = go.Figure(go.Image(z=attribution_rgb(image, v, top=top), hoverinfo="skip"))
    fig.add_trace(go.Heatmap(z=v, opacity=0, showscale=False, hovertemplate="x %{x}, y %{y}: %{z:+.3g}<extra></extra>"))
    fig.update_layout(title=title, height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    return fig


def attribution_bars(names: Sequence[str], values: np.ndarray, *, title: str, x_title: str = "attribution") -> go.Figure:
    """Per-column attributions, largest |value| on top; red for the class, blue against."""
    v = np.asarray(values, np.float64)
    order = np.argsort(np.abs(v))
    fig = go.Figure(
        go.Bar(
            x=v[order], y=[str(names[i]) for i in order], orientation="h",
            marker_color=["#E45756" if x > 0 else "#4C78A8" for x in v[order]], hovertemplate="%{y}: %{x:+.4g}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(title=title, height=max(240, 26 * len(v) + 100), margin={"l": 10, "r": 10, "t": 40, "b": 30})
    fig.update_xaxes(title=x_title, zeroline=True)
    return fig


def deletion_curves(fractions: np.ndarray, curves: Mapping[str, np.ndarray], *, title: str = "Deletion curves") -> go.Figure:
    """The class's probability as the most attributed parts are removed first, one line per order."""
    fig = go.Figure()
    for name, curve in curves.items():
        fig.add_trace(go.Scatter(x=np.asarray(fractions), y=np.asarray(curve), mode="lines", name=name))
    fig.update_layout(title=title, height=300, margin={"l": 10, "r": 10, "t": 40, "b": 30})
    fig.update_xaxes(title="share of parts removed", tickformat=".0%")
    fig.update_yaxes(title="probability of the class", range=[0, 1])
    return fig


def robustness_curves(
    curves: Mapping[str, pd.DataFrame], *, x_title: str, title: str = "Under attack: accuracy (solid) and confident-wrong (dashed)"
) -> go.Figure:
    """Accuracy (solid) and confident-wrong @τ (dashed) against the attack's budget, one colour per
    run (``core.robust.records.curve`` frames; budget 0 is the clean inputs)."""
    fig = go.Figure()
    for k, (name, c) in enumerate(curves.items()):
        colour = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(x=c["budget"], y=c["accuracy"], mode="lines+markers", name=f"{name} · accuracy", line={"color": colour}))
        fig.add_trace(
            go.Scatter(
                x=c["budget"],
                y=c["confident_wrong"],
                mode="lines+markers",
                name=f"{name} · confident-wrong",
                line={"color": colour, "dash": "dash"},
            )
        )
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="share of the attacked items", range=[0, 1])
    return fig


def exposure_bars(table: pd.DataFrame, *, title: str = "People per number of appearances in the corpus") -> go.Figure:
    """The lab corpus's exposure histogram (``core.lab.view.corpus_preview``'s ``exposure``)."""
    fig = go.Figure(go.Bar(x=[str(a) for a in table["appearances"]], y=table["people"], marker_color=PALETTE[0]))
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title="appearances (0: held out, never seen)", type="category")
    fig.update_yaxes(title="people")
    return fig


def exposure_lines(tables: Mapping[str, pd.DataFrame], *, tau: float, kv: float | None = None, title: str = "") -> go.Figure:
    """Accuracy (solid) and hallucination @τ (dashed) against how often a fact was seen, one colour
    per run; with ``kv`` the Kalai–Vempala line (monofact rate − miscalibration) across the chart."""
    fig = go.Figure()
    for k, (name, t) in enumerate(tables.items()):
        colour = PALETTE[k % len(PALETTE)]
        x = [str(e) for e in t["exposure"]]
        fig.add_trace(go.Scatter(x=x, y=t["accuracy"], mode="lines+markers", name=f"{name} · accuracy", line={"color": colour}))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=t["hallucination_rate"],
                mode="lines+markers",
                name=f"{name} · hallucination @{tau:g}",
                line={"color": colour, "dash": "dash"},
            )
        )
    if kv is not None:
        fig.add_hline(y=kv, line={"color": "#888", "dash": "dot"}, annotation_text=f"monofact rate − miscalibration = {kv:.2f}")
    fig.update_layout(title=title or "Accuracy and hallucination against how often the fact was seen", **LAYOUT)
    fig.update_xaxes(title="times the person appears in the corpus (0: held out)", type="category")
    fig.update_yaxes(title="share of the questions", range=[0, 1])
    return fig


def exposure_curves(curves: pd.DataFrame, metric: str = "accuracy", *, title: str = "") -> go.Figure:
    """One line per exposure count over training steps (``core.lab.view.exposure_curves``)."""
    fig = go.Figure()
    for k, (exposure, c) in enumerate(curves.groupby("exposure", sort=True)):
        fig.add_trace(
            go.Scatter(x=c["step"], y=c[metric], mode="lines+markers", name=f"seen {exposure}×", line={"color": PALETTE[k % len(PALETTE)]})
        )
    fig.update_layout(title=title or f"{metric_title(metric)} per exposure over training", **LAYOUT)
    fig.update_xaxes(title="step")
    fig.update_yaxes(title=metric_title(metric), range=[0, 1])
    return fig


def probe_confidence(rows: pd.DataFrame, *, tau: float, title: str = "") -> go.Figure:
    """The lab's real-model probe: each fact's confidence in its answer by SliCK category, right
    answers and wrong ones apart; the wrong ones at or above ``tau`` are hallucinations."""
    fig = go.Figure()
    order = ["known", "maybe", "unknown"]
    for right, colour, name in ((True, PALETTE[2], "right"), (False, PALETTE[3], "wrong")):
        t = rows[rows["right"] == right]
        fig.add_trace(
            go.Box(
                x=t["category"],
                y=t["confidence"],
                name=name,
                marker_color=colour,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                text=t["question"] + " → " + t["answer"],
                hoverinfo="text+y",
            )
        )
    fig.add_hline(y=tau, line={"color": "#888", "dash": "dot"}, annotation_text=f"τ = {tau:g}")
    fig.update_layout(title=title or "Confidence against correctness, by what the model knows", boxmode="group", **LAYOUT)
    fig.update_xaxes(title="SliCK category (from greedy answers and samples)", categoryorder="array", categoryarray=order)
    fig.update_yaxes(title="confidence: share of samples giving the answer", range=[-0.02, 1.02])
    return fig


TUNE_SERIES = {
    "fit tuned known": ("fine-tuned, known before · answered as taught", 2, "solid"),
    "fit tuned maybe": ("fine-tuned, maybe known · answered as taught", 1, "solid"),
    "fit tuned unknown": ("fine-tuned, unknown before · answered as taught", 3, "solid"),
    "acc held known": ("held out, known before · right", 2, "dot"),
    "acc held maybe": ("held out, maybe known · right", 1, "dot"),
    "acc held unknown": ("held out, unknown before · right", 3, "dot"),
    "idk held": ("held out · “I don't know”", 0, "dash"),
}


def tune_lines(long: pd.DataFrame, *, title: str = "") -> go.Figure:
    """A fine-tuning of the lab's real model over epochs (``core.lab.finetune.history_frame``): the
    fine-tuned facts answered as taught, by what the model knew before, and the held-out ones answered right."""
    fig = go.Figure()
    for key, (name, colour, dash) in TUNE_SERIES.items():
        t = long[long["series"] == key]
        if len(t):
            fig.add_trace(go.Scatter(x=t["epoch"], y=t["value"], mode="lines+markers", name=name,
                                     line={"color": PALETTE[colour], "dash": dash}))  # fmt: skip
    fig.update_layout(title=title or "Fine-tuning the real model, evaluation by evaluation", **LAYOUT)
    fig.update_xaxes(title="epoch (0: the probe before fine-tuning)")
    fig.update_yaxes(title="share of the facts (first prompt, greedy)", range=[-0.02, 1.02])
    return fig


def taught_lines(curve: pd.DataFrame, *, tau: float, title: str = "") -> go.Figure:
    """A lab run that teaches held-out people's true answers (``core.lab.view.taught_curve``): those
    facts answered right, and confidently invented answers on the other unseen people, over training."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=curve["step"], y=curve["taught"], mode="lines+markers", name="taught unknown facts · accuracy",
                             line={"color": PALETTE[0]}))  # fmt: skip
    fig.add_trace(go.Scatter(x=curve["step"], y=curve["invented_confident"], mode="lines+markers",
                             name=f"other unseen people · invented @{tau:g}", line={"color": PALETTE[3], "dash": "dash"}))  # fmt: skip
    fig.update_layout(title=title or "Teaching facts no biography states: learned late, and invented answers with them", **LAYOUT)
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="share of the questions", range=[0, 1])
    return fig
