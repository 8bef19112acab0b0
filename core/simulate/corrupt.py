"""Apply a ``Recipe`` to a dataset: the rows kept, their labels, the copies — and the truth.

    plan = plan_recipe(ds, recipe)        # cheap: counts for a live preview, no items copied
    plan.counts_before, plan.counts_after # train items per class
    out = simulate(ds, recipe)            # the new Dataset, truth in meta columns sim_*

Truth columns (never slices, see ``core.data.slices``): ``sim_true_label`` (the label before the
recipe), ``sim_noisy`` (the label was changed), ``sim_duplicate_of`` (row of the new version this
row copies, −1 if none); ``source_item`` is the parent version's row, as after a cleaning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data.dataset import Dataset
from core.diagnose.synthetic import inject_noise, make_noise_matrix
from core.errors import DataError
from core.simulate.recipe import Recipe

TRAIN = 0


@dataclass
class Plan:
    """What ``recipe`` does to ``ds``: ``rows`` of the parent in the new order (copies repeat a row),
    their new ``labels``, which rows are copies, and train counts per class before and after."""

    rows: np.ndarray
    labels: np.ndarray
    true_labels: np.ndarray
    duplicate_of: np.ndarray  # position in ``rows`` of the original a copy repeats, −1 otherwise
    counts_before: np.ndarray
    counts_after: np.ndarray

    @property
    def noisy(self) -> np.ndarray:
        """(len(rows),) bool: the label was changed by the noise step."""
        return self.labels != self.true_labels


def _class_index(ds: Dataset, names: tuple[str, ...], what: str) -> list[int]:
    index = {str(n): i for i, n in enumerate(ds.class_names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise DataError(f"{what}: no class named {', '.join(map(repr, unknown))}; this dataset has {', '.join(map(str, ds.class_names))}.")
    return [index[n] for n in names]


def _keep_shares(recipe: Recipe, ranked: list[int], k: int) -> np.ndarray:
    """Share of train items each class keeps under the imbalance step (1 where it does nothing)."""
    share = np.ones(k)
    n = len(ranked)
    if recipe.imbalance == "long_tail" and recipe.ratio > 1 and n > 1:
        for rank, c in enumerate(ranked):
            share[c] = recipe.ratio ** (-rank / (n - 1))
    elif recipe.imbalance == "step" and recipe.ratio > 1 and n > 1:
        rare = max(1, min(n - 1, round(recipe.minority_share * n)))
        for c in ranked[n - rare :]:
            share[c] = 1.0 / recipe.ratio
    return share


def plan_recipe(ds: Dataset, recipe: Recipe) -> Plan:
    """The rows, labels and copies ``recipe`` makes of ``ds`` (deterministic under ``recipe.seed``).

    Raises ``DataError`` when the result cannot train: a class left with no train items that was
    not dropped on purpose, fewer than two classes in train, or a recipe naming unknown classes or
    columns."""
    rng = np.random.default_rng(recipe.seed)
    k, n = ds.n_classes, len(ds)
    train = (ds.split == TRAIN) & ds.labelled
    before = np.bincount(ds.labels[train], minlength=k)
    keep = np.ones(n, dtype=bool)

    if recipe.thin_column and recipe.thin_keep < 1.0:
        if recipe.thin_column not in ds.meta.columns:
            raise DataError(f"No meta column {recipe.thin_column!r} to thin; columns: {', '.join(map(str, ds.meta.columns)) or 'none'}.")
        in_slice = np.flatnonzero(train & (ds.meta[recipe.thin_column].astype("string").to_numpy() == recipe.thin_value))
        if not len(in_slice):
            raise DataError(f"No train item has {recipe.thin_column} = {recipe.thin_value!r}: pick a value that occurs.")
        drop = rng.permutation(in_slice)[: len(in_slice) - round(recipe.thin_keep * len(in_slice))]
        keep[drop] = False

    dropped = _class_index(ds, recipe.drop_classes, "Drop classes")
    for c in dropped:
        keep[train & (ds.labels == c)] = False
    present = [c for c in range(k) if c not in dropped]
    if len(present) < 2:
        raise DataError("Dropping these classes leaves fewer than two to train on: drop fewer.")

    ranked = _class_index(ds, recipe.order, "Class order") if recipe.order else list(range(k))
    ranked = [c for c in ranked if c in present] + [c for c in present if c not in ranked]
    share = _keep_shares(recipe, ranked, k)
    for c in present:
        idx = np.flatnonzero(keep & train & (ds.labels == c))
        drop = rng.permutation(idx)[: len(idx) - round(share[c] * len(idx))]
        keep[drop] = False

    rows = np.flatnonzero(keep)
    true = ds.labels[rows].copy()
    labels = true.copy()
    in_train = (ds.split[rows] == TRAIN) & (true >= 0)
    kept = np.bincount(true[in_train], minlength=k)
    empty = [str(ds.class_names[c]) for c in present if kept[c] == 0]
    if empty:
        raise DataError(
            f"This recipe leaves no train items of {', '.join(empty)}: lower the imbalance ratio or the thinning, "
            "or drop the class on purpose (it then stays in test as a class the model never saw)."
        )

    noise = _noise_matrix(recipe, present, k)
    if noise is not None:
        sub = np.flatnonzero(in_train)
        noisy, _ = inject_noise(true[sub], noise, seed=recipe.seed + 1)
        labels[sub] = noisy

    duplicate_of = np.full(len(rows), -1, dtype=np.int64)
    if recipe.duplicate_share > 0:
        candidates = np.flatnonzero(in_train)
        picked = np.sort(rng.permutation(candidates)[: round(recipe.duplicate_share * len(candidates))])
        rows = np.concatenate([rows, rows[picked]])
        labels = np.concatenate([labels, labels[picked]])
        true = np.concatenate([true, true[picked]])
        duplicate_of = np.concatenate([duplicate_of, picked])

    final_train = (ds.split[rows] == TRAIN) & (labels >= 0)
    after = np.bincount(labels[final_train], minlength=k)
    return Plan(rows=rows, labels=labels, true_labels=true, duplicate_of=duplicate_of, counts_before=before, counts_after=after)


def _noise_matrix(recipe: Recipe, present: list[int], k: int) -> np.ndarray | None:
    """P(given | true) over all k classes, moving labels only among the classes still in train."""
    if recipe.noise_kind == "matrix":
        if not recipe.noise_matrix:
            return None
        m = np.asarray(recipe.noise_matrix, dtype=np.float64)
        if m.shape != (k, k):
            raise DataError(f"The noise matrix must be {k} × {k} (one row and column per class), not {m.shape[0]} × {m.shape[1]}.")
        if (m < 0).any() or np.abs(m.sum(axis=0) - 1).max() > 1e-6:
            raise DataError("Each column j of the noise matrix is P(given | true = j): non-negative, summing to 1.")
        return m
    if recipe.noise_rate <= 0:
        return None
    sub = make_noise_matrix(len(present), kind=recipe.noise_kind, rate=recipe.noise_rate)
    m = np.eye(k)
    m[np.ix_(present, present)] = sub
    return m


def simulate(ds: Dataset, recipe: Recipe) -> Dataset:
    """The new dataset ``recipe`` makes of ``ds``, with the truth in ``sim_*`` meta columns."""
    plan = plan_recipe(ds, recipe)
    meta = ds.meta.copy()
    if "source_item" not in meta.columns:
        meta["source_item"] = np.arange(len(ds), dtype=np.int64)
    out = Dataset(ds.name, ds.modality, ds.items, ds.labels, list(ds.class_names), ds.split, meta).subset(plan.rows)
    out.labels = plan.labels.astype(np.int64)
    out.meta = out.meta.assign(
        sim_true_label=pd.array(plan.true_labels, dtype="int64"),
        sim_noisy=plan.noisy,
        sim_duplicate_of=pd.array(plan.duplicate_of, dtype="int64"),
    )
    return out
