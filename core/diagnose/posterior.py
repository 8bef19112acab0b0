"""Which given labels are wrong, and how many: the detector's flagging rule after confident learning.

Confident learning (``core.diagnose.confident``) estimates the noise — the matrix
``T[i, j] = P(given = i | true = j)`` — well, but flags items pair by pair ``(given i, true j)``,
``round(n·Q[i, j])`` of each, and never an item whose given label is its model's argmax. Measured on
the detector's own blend of probe and neighbour votes (``benchmarks/bench_detector_edge.py``), that
flags the wrong *number* of items: 2,533–2,564 for 2,000 true flips under 20 % symmetric noise,
785–800 for 321 when the noise sits in the five rarest classes, 1,456–1,505 for 2,000 on a
two-class table whose minority label is mostly flips. And ranking pair by pair spends the
count on small noisy cells. This module keeps the estimate and replaces the flagging:

- :func:`mislabel_posterior` ranks every item by the probability that its given label is wrong,
  by Bayes' rule under the estimated noise, ``1 − T[y, y]·B[y] / Σ_j T[y, j]·B[j]`` (``B`` the
  blend). Under symmetric noise it ranks as the blend's probability of the given label; under
  structured noise (pair flips, look-alike classes) it discounts the share of the given label
  that the flips themselves taught the probe, which a plain probability cannot.
- :func:`shrink_noise_matrix` first pulls each column's off-diagonal entries towards their mean by
  the share of their spread that sampling alone explains (James–Stein): a rare true class's
  entries rest on a few items, and without the shrinkage their noise decides its items' rank.
- :func:`issue_counts` gives three estimates of how many items to flag, each wrong somewhere
  else: confident learning's count; the noise share read off labels injected from the estimated
  noise (:func:`injected_noise_share`, a mixture-proportion estimate); and the count that
  maximises the expected F1 under the posterior (:func:`expected_f1_count`). Their median is
  the number flagged. On the benchmark's 7 tasks × 3 seeds confident learning's count was the one
  to keep on look-alike classes and on text, the injected share on the table, the expected-F1
  count on symmetric and tail noise; the median picked the good one or a value between.

These are a few lines of numpy on the (n, K) blend; cleanlab has no such rule to call (its
``find_label_issues`` offers the pair-wise and per-class prune rules), so they are written here.
"""

from __future__ import annotations

import numpy as np

from core.diagnose.arrays import as_labels, as_probs, check_labels_fit
from core.errors import DataError

INJECTED_MIN_MASS = 0.5  # the injected labels' share a threshold must cover before its ratio counts
_THRESHOLD_QUANTILES = np.linspace(0.005, 0.7, 140)  # thresholds tried, as quantiles of the given labels' scores


def shrink_noise_matrix(noise_matrix: np.ndarray, true_counts: np.ndarray) -> np.ndarray:
    """Each column's off-diagonal ``P(given = i | true = j)`` pulled towards its mean.

    For true class j with ``n_j`` (estimated) items and off-diagonal entries of mean ``m`` and
    variance ``v``: sampling alone gives each entry a variance of about ``m(1 − m)/n_j``, so the
    entries move to ``b·m + (1 − b)·entry`` with ``b = min(1, m(1 − m)/(n_j·v))``. Structure that
    stands far above sampling (a pair flip: one entry 0.3, the rest 0) keeps ``b ≈ 0``; spread
    that sampling explains (symmetric noise on a rare class) is flattened. Columns still sum to 1.

    Parameters
    ----------
    noise_matrix : ndarray of shape (K, K)
        Columns sum to 1 (``core.diagnose.confident.estimate_noise``).
    true_counts : ndarray of shape (K,)
        Estimated items per true class (the confident joint's column sums).
    """
    T = np.array(noise_matrix, dtype=np.float64)
    K = T.shape[0]
    if T.shape != (K, K) or np.shape(true_counts) != (K,):
        raise DataError(f"noise_matrix must be (K, K) and true_counts (K,); got {T.shape} and {np.shape(true_counts)}.")
    if K < 3:  # one off-diagonal entry per column: nothing to pool
        return T
    off = ~np.eye(K, dtype=bool)
    n = np.maximum(np.asarray(true_counts, dtype=np.float64), 1.0)
    for j in range(K):
        o = T[off[:, j], j]
        m, v = float(o.mean()), float(o.var())
        sampling = m * (1.0 - m) / n[j]
        b = 1.0 if v <= sampling else sampling / v
        T[off[:, j], j] = b * m + (1.0 - b) * o
    return T


def mislabel_posterior(labels: np.ndarray, blend: np.ndarray, noise_matrix: np.ndarray) -> np.ndarray:
    """P(the given label is wrong | item, given label), by Bayes' rule under class-conditional noise.

    ``r = 1 − T[y, y]·B[y] / Σ_j T[y, j]·B[j]``, reading the blend ``B`` as the class posterior
    and ``T[y, j] = P(given y | true j)``. An item whose blend gives its label nothing scores 1.

    Returns
    -------
    r : ndarray of shape (n,), in [0, 1]
    """
    y = as_labels(labels)
    B = as_probs(blend, len(y))
    check_labels_fit(y, B.shape[1])
    T = np.asarray(noise_matrix, dtype=np.float64)
    rows = np.arange(len(y))
    num = T[y, y] * B[rows, y]
    den = (T[y, :] * B).sum(axis=1)
    return np.clip(1.0 - num / np.maximum(den, 1e-300), 0.0, 1.0)


def injected_noise_share(labels: np.ndarray, blend: np.ndarray, noise_matrix: np.ndarray, keep: np.ndarray) -> float:
    """The share of wrong labels, estimated against labels drawn from the estimated noise.

    Inject: give each kept item (``keep``; the items confident learning does not flag, so that real
    flips do not stand in for clean ones) each other label ``i`` with weight
    ``T[i, y] / (1 − T[y, y])``. Its blend score for that label, ``B[i]``, is what a real flip of
    that kind scores: the out-of-fold probe and the neighbours' votes do not read the item's own
    label. With ``F(t)`` the share of items whose given label scores below ``t`` and ``H(t)`` the
    injected labels' share, ``F = π·H + (1 − π)·G`` (``G``, the clean labels, unknown), so
    ``F(t)/H(t) ≥ π`` with equality where no clean label scores below ``t``: the estimate is the
    smallest ratio over thresholds where ``H(t) ≥ 0.5`` (below, too few injected labels to trust).
    A mixture-proportion estimate (Scott 2015) with the noise component simulated.

    Returns
    -------
    float
        The estimated share in [0, 1], or NaN when no noise is estimated (nothing to inject) or no
        tried threshold reaches ``H(t) ≥ 0.5``.
    """
    y = as_labels(labels)
    B = as_probs(blend, len(y))
    n = len(y)
    rows = np.arange(n)
    W = np.asarray(noise_matrix, dtype=np.float64)[:, y].T.copy()  # W[x, i] = P(given i | true y(x))
    W[rows, y] = 0.0
    W /= np.maximum(W.sum(axis=1, keepdims=True), 1e-300)
    W[~np.asarray(keep, dtype=bool)] = 0.0
    total = W.sum()
    if total <= 0:
        return float("nan")
    s = B[rows, y]
    ts = np.quantile(s, _THRESHOLD_QUANTILES)
    F = np.searchsorted(np.sort(s), ts, side="left") / n
    inj = W > 0
    scores, weights = B[inj], W[inj]
    order = np.argsort(scores, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(weights[order])]) / total
    H = cum[np.searchsorted(scores[order], ts, side="left")]
    ok = H >= INJECTED_MIN_MASS
    if not ok.any():
        return float("nan")
    return float(min(1.0, np.min(F[ok] / H[ok])))


def expected_f1_count(posterior: np.ndarray) -> int:
    """How many of the most suspicious items to flag to maximise the expected F1.

    With ``r`` sorted high to low, flagging the top N has expected true positives ``Σ_{≤N} r`` and
    expected F1 ``2·Σ_{≤N} r / (N + Σ r)`` (Jansche 2005's plug-in); 0 when ``Σ r = 0``.
    """
    r = np.sort(np.asarray(posterior, dtype=np.float64))[::-1]
    total = float(r.sum())
    if total <= 0:
        return 0
    f1 = 2.0 * np.cumsum(r) / (np.arange(1, len(r) + 1) + total)
    return int(f1.argmax()) + 1


def issue_counts(
    labels: np.ndarray, blend: np.ndarray, noise_matrix: np.ndarray, posterior: np.ndarray, cl_flags: np.ndarray
) -> dict[str, float]:
    """The three estimates of how many items to flag (see the module's docstring).

    Returns
    -------
    dict
        ``confident_learning``: how many confident learning flags (``cl_flags``); ``injected``: n ×
        :func:`injected_noise_share` (absent when NaN); ``expected_f1``: :func:`expected_f1_count`.
    """
    y = as_labels(labels)
    flags = np.asarray(cl_flags, dtype=bool)
    out = {"confident_learning": float(flags.sum())}
    share = injected_noise_share(y, blend, noise_matrix, keep=~flags)
    if np.isfinite(share):
        out["injected"] = share * len(y)
    out["expected_f1"] = float(expected_f1_count(posterior))
    return out


def flag_most_likely_wrong(labels: np.ndarray, posterior: np.ndarray, count: int, min_keep: int) -> np.ndarray:
    """The ``count`` items of highest ``posterior``, never leaving a class with fewer than ``min_keep``."""
    y = as_labels(labels)
    r = np.asarray(posterior, dtype=np.float64)
    mask = np.zeros(len(y), bool)
    mask[np.argsort(-r, kind="stable")[: max(int(count), 0)]] = True
    K = int(y.max()) + 1 if len(y) else 0
    for c in range(K):
        members = np.flatnonzero(y == c)
        excess = min_keep - int((~mask[members]).sum())
        if excess > 0:  # unflag the class's least suspicious flags
            flagged = members[mask[members]]
            mask[flagged[np.argsort(r[flagged], kind="stable")[:excess]]] = False
    return mask
