"""What several benchmarks share: a seeded draw of a version that keeps its splits' proportions, a
t interval over seeds, and a temporary home that shares the usual home's embedding cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
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


def share_features(home: Path) -> None:
    """Point ``home``'s feature cache at the usual home's, unless ``home`` has one of its own
    already: embeddings made before are reused, and those made here stay for the next benchmark.
    Call it before ``GAPSCOPE_HOME`` is set to ``home``."""
    from core.embed.cache import cache_dir

    features, mine = cache_dir(), home / "cache" / "features"
    if mine.exists() or mine.is_symlink() or features.resolve() == mine.resolve():
        return
    features.mkdir(parents=True, exist_ok=True)
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.symlink_to(features, target_is_directory=True)


def temporary_home(prefix: str) -> Path:
    """A new ``GAPSCOPE_HOME`` (set in the environment; the caller removes it) for a benchmark's
    runs and versions, sharing the usual home's feature cache (``share_features``)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    share_features(home)
    os.environ["GAPSCOPE_HOME"] = str(home)
    return home
