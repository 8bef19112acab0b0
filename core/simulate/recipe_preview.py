"""What the Simulate page shows of a recipe before it is saved, and of the detector's self-check:
figures from a ``Plan`` and a ``Grade``, the imbalance ratio step by step (and why it is not the
ratio asked for when noise or copies moved it), the slices a recipe can thin, a neutral noise
matrix. Pure functions; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data.dataset import Dataset
from core.data.overview import Figure
from core.data.slices import slice_columns
from core.simulate.corrupt import TRAIN, Plan
from core.simulate.grade import Grade
from core.simulate.recipe import Recipe


def per_class(names: list[str], counts: np.ndarray) -> dict[str, float]:
    """Counts by class name, for a before / after chart."""
    return {names[c]: float(n) for c, n in enumerate(counts)}


def imbalance_ratio(counts: np.ndarray) -> float:
    """Largest ÷ smallest of the classes with items (NaN when none has any)."""
    kept = np.asarray(counts)[np.asarray(counts) > 0]
    return float(kept.max() / kept.min()) if len(kept) else float("nan")


def _ratio(x: float) -> str:
    return f"{x:,.1f}" if np.isfinite(x) else "—"


def plan_figures(ds: Dataset, plan: Plan) -> list[Figure]:
    """Train items after the recipe (and the change), the imbalance of the given labels, wrong train
    labels and copies."""
    after, before = int(plan.counts_after.sum()), int(plan.counts_before.sum())
    train_rows = (ds.split[plan.rows] == TRAIN) & (plan.labels >= 0)
    return [
        Figure("Train items", f"{after:,}", delta=f"{after - before:+,}"),
        Figure("Imbalance ratio (given labels)", _ratio(imbalance_ratio(plan.counts_after))),
        Figure("Wrong train labels", f"{int(plan.noisy[train_rows].sum()):,}"),
        Figure("Duplicated items", f"{int((plan.duplicate_of >= 0).sum()):,}"),
    ]


@dataclass(frozen=True)
class RatioSteps:
    """The train split's imbalance ratio (largest ÷ smallest class with items) as the recipe's steps
    make it: ``before`` the recipe; ``shaped`` by thinning, dropping and the imbalance step (the
    true labels); ``noisy`` once noise has moved labels (copies not yet made); ``after`` every step,
    as the preview's figure. ``shaped_counts`` and ``noisy_counts`` are the train items per class
    the two middle ratios come from."""

    before: float
    shaped: float
    noisy: float
    after: float
    shaped_counts: tuple[int, ...]
    noisy_counts: tuple[int, ...]


def ratio_steps(ds: Dataset, plan: Plan) -> RatioSteps:
    """The imbalance ratio after each step of ``plan`` (see ``RatioSteps``)."""
    k = len(plan.counts_after)
    originals = (ds.split[plan.rows] == TRAIN) & (plan.true_labels >= 0) & (plan.duplicate_of < 0)
    shaped = np.bincount(plan.true_labels[originals], minlength=k)
    noisy = np.bincount(plan.labels[originals], minlength=k)
    return RatioSteps(
        before=imbalance_ratio(plan.counts_before),
        shaped=imbalance_ratio(shaped),
        noisy=imbalance_ratio(noisy),
        after=imbalance_ratio(plan.counts_after),
        shaped_counts=tuple(int(n) for n in shaped),
        noisy_counts=tuple(int(n) for n in noisy),
    )


def _shaped_by(recipe: Recipe) -> str:
    """What made the ``shaped`` ratio, in words ("the long tail")."""
    steps = []
    if recipe.thin_column and recipe.thin_keep < 1.0:
        steps.append(f"thinning {recipe.thin_column} = {recipe.thin_value}")
    if recipe.drop_classes:
        steps.append("dropping classes")
    if recipe.imbalance == "long_tail" and recipe.ratio > 1.0:
        steps.append("the long tail")
    elif recipe.imbalance == "step" and recipe.ratio > 1.0:
        steps.append("the step imbalance")
    return " and ".join(steps) or "the train split as it is"


def _net_moves(steps: RatioSteps, names: list[str]) -> str:
    """'class a (200 → 146) lost 54 net, class b (20 → 74) gained 54 net': the largest and the
    smallest class before the noise."""
    shaped, noisy = np.asarray(steps.shaped_counts), np.asarray(steps.noisy_counts)
    present = np.flatnonzero(shaped > 0)
    big, small = present[np.argmax(shaped[present])], present[np.argmin(shaped[present])]

    def change(c: int) -> str:
        d = int(noisy[c] - shaped[c])
        if not d:
            return f"class {names[c]} kept {shaped[c]:,}"
        return f"class {names[c]} ({shaped[c]:,} → {noisy[c]:,}) {'gained' if d > 0 else 'lost'} {abs(d):,} net"

    return f"{change(big)}, {change(small)}"


def ratio_words(recipe: Recipe, steps: RatioSteps, names: list[str]) -> str | None:
    """Why the previewed ratio is not the one the imbalance step made, when noise or copies moved it:
    'Imbalance 2.0 after noise (10.0 from the long tail alone): 30% symmetric noise moved labels
    between the classes: class a (200 → 146) lost 54 net, class b (20 → 74) gained 54 net.' None when nothing
    after the imbalance step changed the figure shown. ``names`` are the class names."""
    moved: list[tuple[str, str]] = []
    if _ratio(steps.noisy) != _ratio(steps.shaped):
        noise = "the noise matrix" if recipe.noise_kind == "matrix" else f"{recipe.noise_rate:.0%} {recipe.noise_kind} noise"
        moved.append(("noise", f"{noise} moved labels between the classes: {_net_moves(steps, names)}"))
    if _ratio(steps.after) != _ratio(steps.noisy):
        moved.append(
            ("copies", f"copying {recipe.duplicate_share:.0%} of the train items at random added more to some classes than to others")
        )
    if not moved:
        return None
    after = " and ".join(name for name, _ in moved)
    why = "; ".join(why for _, why in moved)
    return f"Imbalance {_ratio(steps.after)} after {after} ({_ratio(steps.shaped)} from {_shaped_by(recipe)} alone): {why}."


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
