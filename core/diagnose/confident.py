"""Confident learning (Northcutt, Jiang & Chuang, JAIR 2021), written from the paper.

Per-class thresholds, the (calibrated) confident joint, the joint ``Q``, the noise matrix
``P(given | true)``, per-class noise rates, label-quality scores, and the pruning rules that turn
them into flags (``flag_issues``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.diagnose.arrays import as_labels, as_probs, check_labels_fit, round_preserving_total
from core.errors import DataError

EPS = 1e-6  # tolerance for p >= threshold comparisons (as in the paper's reference code)

#: ``method`` values accepted by ``core.diagnose.label_issues.find_label_issues``.
ISSUE_METHODS = (
    "auto",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "blend_prune_by_noise_rate",
    "posterior",
    "blend_posterior",
)
#: What each rule flags, as the Diagnose page says it.
ISSUE_METHOD_TITLES = {
    "prune_by_noise_rate": "confident learning, the items least likely to be their label, as many per class as its estimated noise",
    "prune_by_class": "confident learning, per class the items of lowest self-confidence",
    "both": "confident learning, flagged by both the noise-rate and the per-class rule",
    "confident_learning": "confident learning, items confidently assigned to another class",
    "predicted_neq_given": "every item whose predicted class is not its label",
    "blend_prune_by_noise_rate": "probe and nearest-neighbour votes blended, then pruned by the estimated noise rate",
    "posterior": "the items most likely mislabelled under confident learning's noise estimate, as many as the median of three estimates",
    "blend_posterior": "probe and nearest-neighbour votes blended; the items most likely mislabelled under the estimated noise, "
    "as many as the median of three estimates",
}


def confident_thresholds(labels: Any, probs: Any) -> np.ndarray:
    """Per-class thresholds ``t_j`` = mean predicted probability of class j over items labelled j.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)

    Returns
    -------
    thresholds : ndarray of shape (K,)
        A class with no labelled item gets ``t_j = 1.0`` (only a prediction of certainty can
        count as confidently that class).
    """
    y = as_labels(labels)
    P = as_probs(probs, len(y))
    K = P.shape[1]
    check_labels_fit(y, K)
    counts = np.bincount(y, minlength=K).astype(np.float64)
    sums = np.zeros(K)
    np.add.at(sums, y, P[np.arange(len(y)), y])
    return np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)


def _confident_assignment(P: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each item, the class it confidently belongs to (argmax among p_j >= t_j), or -1."""
    above = P >= thresholds[None, :] - EPS
    masked = np.where(above, P, -np.inf)
    guess = masked.argmax(axis=1)
    guess[~above.any(axis=1)] = -1
    return guess


def confident_joint(labels: Any, probs: Any, *, thresholds: Any = None, calibrate: bool = True) -> np.ndarray:
    """The confident joint ``C[i, j]``: items labelled i that confidently belong to class j.

    An item confidently belongs to j when ``p_j >= t_j``; when several classes pass their
    threshold, the one with the largest probability wins; items passing none are not counted.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)
    thresholds : array-like of shape (K,), optional
        Defaults to :func:`confident_thresholds`.
    calibrate : bool, default True
        Rescale each row so it sums to the number of items given that label
        (``C[i] / C[i].sum() * count_i``); the result is then a count estimate of the joint of
        given and true labels. A labelled class with no confident item keeps its count on the
        diagonal.

    Returns
    -------
    C : ndarray of shape (K, K)
        int64 counts when ``calibrate=False``, float64 otherwise.
    """
    y = as_labels(labels)
    P = as_probs(probs, len(y))
    K = P.shape[1]
    check_labels_fit(y, K)
    t = confident_thresholds(y, P) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if t.shape != (K,):
        raise DataError(f"thresholds must have shape ({K},), one per class; got {t.shape}.")
    guess = _confident_assignment(P, t)
    ok = guess >= 0
    raw = np.bincount(y[ok] * K + guess[ok], minlength=K * K).reshape(K, K).astype(np.int64)
    if not calibrate:
        return raw
    counts = np.bincount(y, minlength=K).astype(np.float64)
    C = raw.astype(np.float64)
    row = C.sum(axis=1)
    empty = (row == 0) & (counts > 0)
    C[empty, empty.nonzero()[0]] = 1.0  # diagonal
    row = C.sum(axis=1)
    return C / np.maximum(row, 1.0)[:, None] * counts[:, None]


def estimate_noise(labels: Any, probs: Any, *, joint_counts: Any = None) -> dict[str, np.ndarray]:
    """Estimate the joint, the noise matrix and per-class noise rates from the confident joint.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)
    joint_counts : array-like of shape (K, K), optional
        A calibrated confident joint; computed when omitted.

    Returns
    -------
    dict with
        ``confident_joint`` (K, K): calibrated counts ``C[given, true]``;
        ``joint`` (K, K): ``Q = C / n``, the estimated ``P(given=i, true=j)``;
        ``noise_matrix`` (K, K): ``P(given=i | true=j)``, columns sum to 1 (a true class never
        seen confidently gets an identity column);
        ``noise_rate_per_class`` (K,): ``1 - noise_matrix[j, j]``, the share of items of true
        class j that carry another label;
        ``thresholds`` (K,).
    """
    y = as_labels(labels)
    P = as_probs(probs, len(y))
    K = P.shape[1]
    t = confident_thresholds(y, P)
    C = confident_joint(y, P, thresholds=t) if joint_counts is None else np.asarray(joint_counts, float)
    Q = C / max(C.sum(), 1e-12)
    col = Q.sum(axis=0)
    nm = np.where(col[None, :] > 0, Q / np.where(col > 0, col, 1.0)[None, :], np.eye(K))
    return {
        "confident_joint": C,
        "joint": Q,
        "noise_matrix": nm,
        "noise_rate_per_class": 1.0 - np.diag(nm),
        "thresholds": t,
    }


def label_quality_scores(labels: Any, probs: Any, *, method: str = "self_confidence") -> np.ndarray:
    """Per-item label quality from predicted probabilities, in [0, 1] (lower = more suspicious).

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)
    method : {"self_confidence", "normalized_margin"}
        ``self_confidence`` is ``p_given``; ``normalized_margin`` is
        ``(p_given - max_{k≠given} p_k + 1) / 2``.

    Returns
    -------
    scores : ndarray of shape (n,)
    """
    y = as_labels(labels)
    P = as_probs(probs, len(y))
    check_labels_fit(y, P.shape[1])
    rows = np.arange(len(y))
    p_given = P[rows, y]
    if method == "self_confidence":
        return p_given
    if method == "normalized_margin":
        other = P.copy()
        other[rows, y] = -np.inf
        best_other = other.max(axis=1) if P.shape[1] > 1 else np.zeros(len(y))
        return (p_given - best_other + 1.0) / 2.0
    raise DataError(f"method must be 'self_confidence' or 'normalized_margin', got {method!r}.")


def _prune_counts(C: np.ndarray, counts: np.ndarray, min_keep: int) -> np.ndarray:
    """Integer numbers to prune per (given i, true j≠i): round(C[i, j]), leaving min_keep per class."""
    K = len(counts)
    N = np.zeros((K, K), np.int64)
    for i in range(K):
        if counts[i] == 0:
            continue
        N[i] = round_preserving_total(C[i], int(counts[i]))
        off = N[i].sum() - N[i, i]
        allowed = max(int(counts[i]) - min_keep, 0)
        if off > allowed:  # scale the off-diagonals down so min_keep items survive
            scaled = np.where(np.arange(K) == i, 0.0, N[i] * allowed / off)
            N[i] = round_preserving_total(scaled, allowed)
        N[i, i] = 0
    return N


def _class_members(y: np.ndarray, K: int) -> list[np.ndarray]:
    order = np.argsort(y, kind="stable")
    return np.split(order, np.cumsum(np.bincount(y, minlength=K))[:-1])


def _prune_by_noise_rate(y: np.ndarray, P: np.ndarray, N: np.ndarray) -> np.ndarray:
    """For each off-diagonal (i, j) flag the N[i, j] items labelled i with largest p_j - p_i."""
    mask = np.zeros(len(y), bool)
    members = _class_members(y, P.shape[1])
    for i, j in zip(*np.nonzero(N)):
        idx = members[i]
        m = min(int(N[i, j]), len(idx))
        margin = P[idx, j] - P[idx, i]
        top = np.argpartition(-margin, m - 1)[:m] if m < len(idx) else np.arange(len(idx))
        mask[idx[top]] = True
    return mask


def _prune_by_class(y: np.ndarray, P: np.ndarray, N: np.ndarray) -> np.ndarray:
    """For each class i flag the sum_j N[i, j] items labelled i with the lowest p_i."""
    mask = np.zeros(len(y), bool)
    members = _class_members(y, P.shape[1])
    for i in np.flatnonzero(N.sum(axis=1)):
        idx = members[i]
        m = min(int(N[i].sum()), len(idx))
        low = np.argpartition(P[idx, i], m - 1)[:m] if m < len(idx) else np.arange(len(idx))
        mask[idx[low]] = True
    return mask


def flag_issues(y: np.ndarray, P: np.ndarray, method: str, min_keep: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Items flagged by the pruning rule ``method`` on probabilities ``P``, and the noise estimates."""
    est = estimate_noise(y, P)
    K = P.shape[1]
    counts = np.bincount(y, minlength=K)
    N = _prune_counts(est["confident_joint"], counts, min_keep)
    if method == "prune_by_noise_rate":
        mask = _prune_by_noise_rate(y, P, N)
    elif method == "prune_by_class":
        mask = _prune_by_class(y, P, N)
    elif method == "both":
        mask = _prune_by_noise_rate(y, P, N) & _prune_by_class(y, P, N)
    elif method == "confident_learning":
        g = _confident_assignment(P, est["thresholds"])
        mask = (g >= 0) & (g != y)
    elif method == "predicted_neq_given":
        mask = np.zeros(len(y), bool)
    else:  # pragma: no cover - guarded by the caller
        raise AssertionError(method)
    # never flag an item whose given label is (tied for) the model's prediction
    Pb = P.copy()
    Pb[np.arange(len(y)), y] += 1e-12
    mask &= Pb.argmax(axis=1) != y
    if method == "predicted_neq_given":
        mask = Pb.argmax(axis=1) != y
    return mask, est
