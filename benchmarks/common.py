"""What several benchmarks share: a seeded draw of a version that keeps its splits' proportions, and
a t interval over seeds."""

from __future__ import annotations

from typing import Any

import numpy as np


def draw(ds: Any, n_train: int, *, seed: int = 0, name: str | None = None) -> Any:
    """``n_train`` train items of ``ds``, with n_train / 6 val and n_train / 3 test items, drawn
    seeded (fewer where a split has fewer)."""
    rng = np.random.default_rng(seed)
    parts = []
    for code, n in ((0, n_train), (1, n_train // 6), (2, n_train // 3)):
        rows = np.flatnonzero(ds.split == code)
        parts.append(rng.choice(rows, min(n, len(rows)), replace=False))
    return ds.subset(np.sort(np.concatenate(parts)), name=name)


def t_interval(x: Any) -> tuple[float, float, float]:
    """Mean and a t 95 % interval (n − 1 degrees of freedom); NaN bounds for one value."""
    from scipy import stats

    a = np.asarray(x, dtype=np.float64)
    mean = float(a.mean())
    if len(a) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))
    return mean, mean - half, mean + half
