"""What the Simulate page shows of a token recipe before it is saved, and of the token detector's
grade on a simulated version: figures, the counts in words, mentions per type before and after,
example sentences before and after with the changed tokens marked. Pure functions; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core import charts
from core.data.dataset import Dataset
from core.data.overview import Figure
from core.simulate.grade import Grade
from core.simulate.tokens import KIND_WORDS, KINDS, REMOVED_WORDS, TokenGrade, TokenPlan
from core.tokens.corrupt import TokenRecipe
from core.tokens.marks import MarkedSegment, changed_positions, marked_segments
from core.tokens.spans import entity_types


def source_line(label: str, ds: Dataset) -> str:
    """The version token recipes start from, its sentences and entity types."""
    n_types = len(entity_types(ds.tags if ds.tags is not None else []))
    return f"**From:** {label} — {len(ds):,} sentences, {n_types} entity type{'s' if n_types != 1 else ''}"


def _mentions(plan: TokenPlan) -> tuple[int, int]:
    return int(plan.counts["mentions_before"].sum()), int(plan.counts["mentions_after"].sum())


def plan_figures(plan: TokenPlan) -> list[Figure]:
    """Train sentences and mentions after the recipe (and the change, when there is one), sentences
    whose tags changed and spans changed."""
    before, after = int(plan.train.sum()), int((plan.train & plan.kept).sum())
    m_before, m_after = _mentions(plan)
    changed = int(plan.changed.sum())
    spans_changed = sum(plan.change_counts().values())
    return [
        Figure("Train sentences", f"{after:,}", delta=f"{after - before:+,}" if after != before else None),
        Figure("Train mentions", f"{m_after:,}", delta=f"{m_after - m_before:+,}" if m_after != m_before else None),
        Figure("Sentences with wrong tags", f"{changed:,}", f"{changed / max(after, 1):.1%} of the train sentences kept"),
        Figure("Spans changed", f"{spans_changed:,}"),
    ]


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def plan_words(recipe: TokenRecipe, plan: TokenPlan) -> str:
    """What the recipe does, in words and counts."""
    before, after = int(plan.train.sum()), int((plan.train & plan.kept).sum())
    removed = {k: n for k, n in plan.removed_counts().items() if n}
    words = f"{after:,} of the {before:,} train sentences stay"
    if removed:
        words += " (" + _join([f"{n:,} {REMOVED_WORDS[k]}" for k, n in removed.items()]) + " left out)"
    changes = {k: n for k, n in plan.change_counts().items() if n}
    if changes:
        words += f"; {sum(changes.values()):,} spans change in {int(plan.changed.sum()):,} sentences: " + _join(
            [f"{n:,} {KIND_WORDS[k]}" for k, n in changes.items()]
        )
    elif recipe.flip_rate or recipe.delete_rate or recipe.shift_rate:
        words += "; no span could change (none is left to change)"
    m_before, m_after = _mentions(plan)
    return words + f". Train mentions {m_before:,} → {m_after:,}. Val and test are unchanged."


def mention_chart(plan: TokenPlan) -> go.Figure:
    """Train mentions per type now and after the recipe (grouped bars, log scale)."""
    table = plan.counts
    before = {str(t): float(n) for t, n in zip(table["type"], table["mentions_before"])}
    after = {str(t): float(n) for t, n in zip(table["type"], table["mentions_after"])}
    fig = charts.counts_before_after(before, after, title="Train mentions per type", names=("now", "after the recipe"))
    fig.update_yaxes(title="mentions")
    return fig


def counts_table(plan: TokenPlan) -> pd.DataFrame:
    """The counts per type as shown: mentions and sentences before and after, and the change."""
    t = plan.counts
    return pd.DataFrame(
        {
            "type": t["type"],
            "train mentions now": t["mentions_before"],
            "after": t["mentions_after"],
            "change": t["mentions_after"] - t["mentions_before"],
            "train sentences now": t["sentences_before"],
            "sentences after": t["sentences_after"],
        }
    )


@dataclass(frozen=True)
class Example:
    """One changed sentence: its number, the kinds of change, and the sentence before and after,
    the changed tokens marked in both."""

    item: int
    kinds: tuple[str, ...]
    before: list[MarkedSegment]
    after: list[MarkedSegment]


def examples(ds: Dataset, plan: TokenPlan, *, k: int = 4, seed: int = 0) -> list[Example]:
    """Up to ``k`` of the sentences the recipe changed, drawn at random (seeded), in order."""
    changed = np.flatnonzero(plan.changed)
    if not len(changed) or ds.tags is None:
        return []
    chosen = np.sort(np.random.default_rng(seed).choice(changed, size=min(k, len(changed)), replace=False))
    ids = ds.item_ids()
    out = []
    for i in chosen.tolist():
        tokens, before, after = list(ds.items[i]), list(ds.tags[i]), plan.tags[i]
        marks = changed_positions(before, after)
        out.append(
            Example(int(ids[i]), tuple(plan.kinds(i)), marked_segments(tokens, before, marks), marked_segments(tokens, after, marks))
        )
    return out


def kind_words(kinds: tuple[str, ...] | list[str]) -> str:
    return ", ".join(KIND_WORDS.get(k, k) for k in kinds)


# ---------------------------------------------------------------------- the detector's grade


def _share(x: float) -> str:
    return f"{x:.1%}" if np.isfinite(x) else "—"


def grade_figures(g: TokenGrade) -> list[Figure]:
    o = g.overall
    return [
        Figure("Sentences with wrong tags (truth)", f"{o.corrupted:,}", "Train sentences whose tags the recipe changed."),
        Figure("Flagged by the detector", f"{o.flagged:,}", "Train sentences the token detector flags."),
        Figure("Precision", _share(o.precision), "Share of the flagged sentences that are really wrong."),
        Figure("Recall", _share(o.recall), "Share of the wrong sentences the detector found."),
        Figure("F1", _share(o.f1), "Harmonic mean of precision and recall."),
    ]


def grade_table(g: TokenGrade) -> pd.DataFrame:
    """One row per kind of change: sentences, caught, recall, precision and F1 as if it were the only
    kind, and the share of the caught ones the detector named right."""

    def row(kind: str, gr: Grade, named: float) -> dict:
        return {
            "change": KIND_WORDS[kind],
            "sentences": gr.corrupted,
            "caught": gr.caught,
            "recall": gr.recall,
            "precision (this kind alone)": gr.precision,
            "F1": gr.f1,
            "named right": named,
        }

    columns = ["change", "sentences", "caught", "recall", "precision (this kind alone)", "F1", "named right"]
    return pd.DataFrame([row(k.kind, k.grade, k.named) for k in g.kinds], columns=columns)


def grade_words(g: TokenGrade) -> str:
    """How to read the grade."""
    kinds = [k.kind for k in g.kinds]
    order = [k for k in KINDS if k in kinds]
    return (
        "Sentence level, over the train sentences: a flagged sentence is caught when the recipe changed any of its tags. "
        "Per kind, recall counts that kind's sentences; precision counts the flags among the clean sentences and that "
        "kind's alone. 'Named right': the caught sentences whose suggestion says the change "
        f"({', '.join(KIND_WORDS[k] for k in order) or 'none'}) as the detector would: a type, a missed span, a boundary."
    )
