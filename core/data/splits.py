"""Train / val / test splits: made (stratified, seeded) or read from a user's split column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import DataError

SPLIT_ALIASES = {
    "train": 0, "training": 0, "tr": 0,
    "val": 1, "valid": 1, "validation": 1, "dev": 1,
    "test": 2, "testing": 2, "eval": 2, "te": 2,
}  # fmt: skip


def stratified_split(
    labels: np.ndarray, *, val: float = 0.1, test: float = 0.1, seed: int = 0, holdout_from: np.ndarray | None = None
) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) with the same class mix in every split.

    Per class, ``floor(n * val)`` items go to val and ``floor(n * test)`` to test, chosen by a
    seeded shuffle; the rest stay in train. A class with fewer than ``1 / val`` items therefore
    stays wholly in train (the coverage table shows it), rather than losing its only examples.

    Parameters
    ----------
    labels : (n,) int array
    holdout_from : (n,) bool array, optional
        Only these rows may move to val/test (e.g. the given train split when only test is given).
    """
    labels = np.asarray(labels)
    out = np.zeros(len(labels), dtype=np.int8)
    rng = np.random.default_rng(seed)
    allowed = np.ones(len(labels), bool) if holdout_from is None else np.asarray(holdout_from, bool)
    for c in np.unique(labels):
        idx = np.flatnonzero((labels == c) & allowed)
        rng.shuffle(idx)
        n_val, n_test = int(len(idx) * val), int(len(idx) * test)
        out[idx[:n_val]] = 1
        out[idx[n_val : n_val + n_test]] = 2
    return out


def parse_split_column(values: pd.Series) -> np.ndarray:
    """Map a user's split column (train/val/test and common aliases) to split codes."""
    norm = values.astype("string").str.strip().str.lower().fillna("")
    unknown = sorted(set(norm.unique()) - set(SPLIT_ALIASES))
    unknown = ["(blank)" if u == "" else u for u in unknown]
    if unknown:
        raise DataError(
            f"The split column has values {unknown[:5]} that are not train/val/test. "
            "Rename them to train, val or test, or choose no split column and let Gapscope make one."
        )
    return norm.map(SPLIT_ALIASES).to_numpy(np.int8)


def scoring_problem(split: np.ndarray) -> str | None:
    """Why a run of a version with these split codes could not be scored (no test items), or None.
    ``stratified_split`` leaves a class of fewer than ``1 / test`` items wholly in train."""
    if int((np.asarray(split) == 2).sum()):
        return None
    return (
        "This version has no test items, so a run could not be scored: every metric would be empty. When Gapscope makes "
        "the split, a class of fewer than 10 items stays wholly in train. Add items, or upload with train/ val/ test "
        "folders (a split column for a table)."
    )
