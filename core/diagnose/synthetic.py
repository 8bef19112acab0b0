"""Synthetic label noise with a known noise matrix, for tests, benchmarks and the detector's self-check."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.diagnose.arrays import as_labels, check_labels_fit, round_preserving_total
from core.errors import DataError


def make_noise_matrix(K: int, *, kind: str = "symmetric", rate: float = 0.2) -> np.ndarray:
    """A noise matrix ``P(given=i | true=j)`` (K, K), columns summing to 1.

    Parameters
    ----------
    K : int
        Number of classes (≥ 2).
    kind : {"symmetric", "pairflip"}
        ``symmetric`` moves ``rate`` of each class uniformly to the other K - 1 classes;
        ``pairflip`` moves ``rate`` of class j to class ``(j + 1) % K``.
    rate : float
        Share of each class that gets a wrong label, in [0, 1).

    Returns
    -------
    noise_matrix : ndarray of shape (K, K)
    """
    if K < 2:
        raise DataError(f"K must be at least 2 to have label noise, got {K}.")
    if not 0.0 <= rate < 1.0:
        raise DataError(f"rate must be in [0, 1), got {rate}.")
    if kind == "symmetric":
        M = np.full((K, K), rate / (K - 1))
    elif kind == "pairflip":
        M = np.zeros((K, K))
        M[(np.arange(K) + 1) % K, np.arange(K)] = rate
    else:
        raise DataError(f"kind must be 'symmetric' or 'pairflip', got {kind!r}.")
    np.fill_diagonal(M, 1.0 - rate)
    return M


def inject_noise(labels: Any, noise_matrix: Any, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Relabel items according to a noise matrix, with exact per-class counts.

    For each true class j with m items, ``round(m · noise_matrix[i, j])`` of them (rounded to
    keep the total m) get label i, chosen by a seeded shuffle — so the realised noise matrix
    equals the requested one up to rounding.

    Parameters
    ----------
    labels : array-like of shape (n,)
        True labels in ``[0, K)``.
    noise_matrix : array-like of shape (K, K)
        ``P(given=i | true=j)``, columns summing to 1.
    seed : int, default 0

    Returns
    -------
    noisy_labels : ndarray of shape (n,), int64
    is_flipped : ndarray of shape (n,), bool
    """
    y = as_labels(labels)
    M = np.asarray(noise_matrix, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise DataError(f"noise_matrix must be square (K, K), got shape {M.shape}.")
    K = M.shape[0]
    check_labels_fit(y, K, "noise_matrix")
    if (M < 0).any() or np.abs(M.sum(axis=0) - 1.0).max() > 1e-6:
        raise DataError("noise_matrix columns must be non-negative and sum to 1 (column j = P(given | true=j)).")
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    for j in range(K):
        idx = np.flatnonzero(y == j)
        if not len(idx):
            continue
        cnt = round_preserving_total(M[:, j] * len(idx), len(idx))
        perm = rng.permutation(idx)
        noisy[perm] = np.repeat(np.arange(K), cnt)
    return noisy, noisy != y
