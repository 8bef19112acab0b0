"""What the Simulate page shows of a recipe before it is saved, and of the detector's self-check:
figures from a ``Plan`` and a ``Grade``, the slices a recipe can thin, a neutral noise matrix.
Pure functions; no I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.dataset import Dataset
from core.data.overview import Figure
from core.data.slices import slice_columns
from core.simulate.corrupt import TRAIN, Plan
from core.simulate.grade import Grade


def per_class(names: list[str], counts: np.ndarray) -> dict[str, float]:
    """Counts by class name, for a before / after chart."""
    return {names[c]: float(n) for c, n in enumerate(counts)}


def plan_figures(ds: Dataset, plan: Plan) -> list[Figure]:
    """Train items after the recipe (and the change), the imbalance of the given labels, wrong train
    labels and copies."""
    after, before = int(plan.counts_after.sum()), int(plan.counts_before.sum())
    kept = plan.counts_after[plan.counts_after > 0]
    train_rows = (ds.split[plan.rows] == TRAIN) & (plan.labels >= 0)
    return [
        Figure("Train items", f"{after:,}", delta=f"{after - before:+,}"),
        Figure("Imbalance ratio (given labels)", f"{kept.max() / kept.min():,.1f}" if len(kept) else "—"),
        Figure("Wrong train labels", f"{int(plan.noisy[train_rows].sum()):,}"),
        Figure("Duplicated items", f"{int((plan.duplicate_of >= 0).sum()):,}"),
    ]


def _share(x: float) -> str:
    return f"{x:.1%}" if np.isfinite(x) else "—"


def grade_figures(g: Grade) -> list[Figure]:
    return [
        Figure("Wrong labels (truth)", f"{g.corrupted:,}"),
        Figure("Flagged by the detector", f"{g.flagged:,}"),
        Figure("Precision", _share(g.precision), "Share of the flagged items that are really wrong."),
        Figure("Recall", _share(g.recall), "Share of the wrong labels the detector found."),
    ]


def slice_values(meta: pd.DataFrame) -> dict[str, list[str]]:
    """Each slice column (``core.data.slices``) with its values, sorted: what a recipe can thin."""
    return {col: sorted(set(values.tolist())) for col, values in slice_columns(meta).items()}


def identity_matrix(names: list[str]) -> pd.DataFrame:
    """A noise matrix that changes nothing: P(given | true) = 1 on the diagonal."""
    return pd.DataFrame(np.eye(len(names)), index=names, columns=names)


def matrix_rows(matrix: pd.DataFrame) -> tuple[tuple[float, ...], ...]:
    """An edited noise matrix as the recipe stores it."""
    return tuple(tuple(float(x) for x in row) for row in matrix.to_numpy())


def source_line(label: str, ds: Dataset) -> str:
    """The version recipes start from, its items and classes."""
    return f"**From:** {label} — {len(ds):,} items, {ds.n_classes} classes"
