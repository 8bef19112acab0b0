"""Selective prediction: answering only the most confident known-class inputs, and what that costs.

- ``risk_coverage``: the risk–coverage curve (error rate of the k most confident, k = 1..m).
- ``aurc`` / ``excess_aurc``: the area under it, and that area above an oracle's.
- ``selective``: one operating point — answer only at confidence ≥ a threshold.
- ``risk_coverage_from_conf`` / ``selective_from_conf``: the same curve and point from per-item
  confidences and correctness, for stored predictions (no probabilities needed).

Usage::

    from core import metrics as M
    coverage, risk = M.risk_coverage(probs, labels)          # labels: -1 = unknown class, left out
    M.selective(probs, labels, 0.7)                          # {"coverage": …, "risk": …}
    coverage, risk = M.risk_coverage_from_conf(preds.conf, preds.pred == preds.label)

The tie rule: items are sorted by confidence, descending; ``risk[k-1]`` is the error rate of the
top k at coverage ``k/m`` and ``AURC = mean(risk)``. Tied confidences are not broken by input
order: inside a block of tied items the risk is its expectation under a random order of the
block, so the curve does not depend on how the rows happen to be sorted. With no rows the curve
is empty and a scalar is ``nan``.
"""

from __future__ import annotations

import numpy as np

from core.metrics._common import NAN, conf_pred, tie_blocks
from core.metrics._validate import _as_conf, _as_flags, _check_tau, _known

__all__ = ["aurc", "excess_aurc", "risk_coverage", "risk_coverage_from_conf", "selective", "selective_from_conf"]


# ------------------------------------------------------------------ on validated arrays


def _coverage(m: int) -> np.ndarray:
    """Coverages ``k / m`` for k = 1..m."""
    return np.arange(1, m + 1) / max(m, 1)


def _risk_from(conf: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Risk at each coverage k/n, most confident first, with the tie rule (see the module docstring)."""
    n = conf.shape[0]
    if n == 0:
        return np.zeros(0)
    order = np.argsort(-conf)  # order inside tied blocks is irrelevant, see below
    starts, sizes, bid = tie_blocks(conf[order])
    block_err = np.add.reduceat(err[order].astype(np.float64), starts)
    before = np.cumsum(block_err) - block_err
    k = np.arange(1, n + 1, dtype=np.float64)
    # expected errors among the first (k - start) items of a tied block taken in random order
    expected = before[bid] + (k - starts[bid]) * (block_err / sizes)[bid]
    return expected / k


def _aurc_from(risk: np.ndarray) -> float:
    return float(risk.mean()) if risk.size else NAN


def _oracle_aurc(n: int, n_err: int) -> float:
    """AURC of a ranking that puts all ``n - n_err`` correct items first."""
    if n == 0:
        return NAN
    k = np.arange(1, n + 1, dtype=np.float64)
    return float((np.maximum(0.0, k - (n - n_err)) / k).mean())


def _excess_aurc_from(risk: np.ndarray, n_err: int) -> float:
    return _aurc_from(risk) - _oracle_aurc(risk.shape[0], n_err) if risk.size else NAN


def _selective_from(conf: np.ndarray, hit: np.ndarray, threshold: float) -> dict[str, float]:
    m = conf.shape[0]
    if m == 0:
        return {"coverage": NAN, "risk": NAN}
    answered = conf >= threshold
    n = int(answered.sum())
    return {"coverage": n / m, "risk": float((~hit[answered]).mean()) if n else NAN}


# ------------------------------------------------------------------ public


def risk_coverage(probs, labels, *, unknown_mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Risk-coverage curve of the known rows, accepting the most confident first.

    Parameters
    ----------
    probs : array_like, shape (n, K)
    labels : array_like of int, shape (n,)
    unknown_mask : array_like of bool, shape (n,), optional

    Returns
    -------
    coverage : ndarray of float, shape (m,)
        ``k / m`` for k = 1..m (m = known rows).
    risk : ndarray of float, shape (m,)
        Error rate of the k most confident rows; within tied confidences, the expected error
        rate under a random order of the tied rows.
    """
    p, y = _known(probs, labels, unknown_mask)
    conf, pred = conf_pred(p)
    return _coverage(p.shape[0]), _risk_from(conf, pred != y)


def risk_coverage_from_conf(conf, correct) -> tuple[np.ndarray, np.ndarray]:
    """:func:`risk_coverage` from each item's top-label confidence and whether it was right.

    Parameters
    ----------
    conf : array_like of float, shape (m,)
        Top-label confidence in [0, 1] of each known-class item (leave unknown-class items out).
    correct : array_like of bool, shape (m,)
        Whether the item's prediction equals its label.

    Returns
    -------
    coverage, risk : ndarray of float, shape (m,)
        As :func:`risk_coverage`, with the same tie rule.
    """
    c = _as_conf(conf)
    hit = _as_flags(correct, c.shape[0], name="correct")
    return _coverage(c.shape[0]), _risk_from(c, ~hit)


def selective(probs, labels, threshold: float, *, unknown_mask=None) -> dict[str, float]:
    """Answering only at confidence ≥ ``threshold``, on the known rows: the share answered
    (``coverage``) and the error rate among the answered (``risk``, ``nan`` when none is).

    Parameters
    ----------
    probs : array_like, shape (n, K)
    labels : array_like of int, shape (n,)
    threshold : float
        In [0, 1]; 0 answers everything (coverage 1, risk = 1 − accuracy).
    unknown_mask : array_like of bool, shape (n,), optional
    """
    t = _check_tau(threshold)
    p, y = _known(probs, labels, unknown_mask)
    conf, pred = conf_pred(p)
    return _selective_from(conf, pred == y, t)


def selective_from_conf(conf, correct, threshold: float) -> dict[str, float]:
    """:func:`selective` from each known item's top-label confidence and whether it was right
    (``conf`` and ``correct`` as in :func:`risk_coverage_from_conf`)."""
    t = _check_tau(threshold)
    c = _as_conf(conf)
    return _selective_from(c, _as_flags(correct, c.shape[0], name="correct"), t)


def aurc(probs, labels, *, unknown_mask=None) -> float:
    """Area under the risk-coverage curve: ``mean(risk)`` over coverages k/m, k = 1..m; ``nan`` if m = 0."""
    return _aurc_from(risk_coverage(probs, labels, unknown_mask=unknown_mask)[1])


def excess_aurc(probs, labels, *, unknown_mask=None) -> float:
    """AURC minus the AURC of an oracle that ranks all correct rows first (E-AURC, >= 0)."""
    p, y = _known(probs, labels, unknown_mask)
    conf, pred = conf_pred(p)
    err = pred != y
    return _excess_aurc_from(_risk_from(conf, err), int(err.sum()))
