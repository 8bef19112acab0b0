"""Outliers: items far from their nearest neighbours in embedding space."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.diagnose.knn import knn_graph
from core.errors import DataError


def outlier_scores(X: Any, *, k: int = 10) -> np.ndarray:
    """Mean cosine distance (1 - similarity) to the k nearest neighbours; higher = more isolated.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k : int, default 10
        Capped at n - 1.

    Returns
    -------
    scores : ndarray of shape (n,), float64, in [0, 2]
    """
    _, sims = knn_graph(X, k=k)
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0])
    return 1.0 - sims.astype(np.float64).mean(axis=1)


def outliers(X: Any, *, k: int = 10, quantile: float = 0.99) -> np.ndarray:
    """Indices of items whose :func:`outlier_scores` exceed the given quantile.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k : int, default 10
    quantile : float, default 0.99
        In (0, 1); 0.99 keeps about the most isolated 1%.

    Returns
    -------
    indices : ndarray of shape (m,), int64
        Most isolated first.
    """
    if not 0.0 < quantile < 1.0:
        raise DataError(f"quantile must be strictly between 0 and 1, got {quantile}.")
    s = outlier_scores(X, k=k)
    if s.size == 0:
        return np.zeros(0, np.int64)
    cut = np.quantile(s, quantile)
    idx = np.flatnonzero(s > cut)
    return idx[np.argsort(-s[idx], kind="stable")]
