"""Hallucination and the open-set part: confident wrong answers on known classes, confident known
answers to inputs from classes absent from training, and how well a score separates the two.

- ``hallucination_rate``: share of known-class inputs answered wrongly with confidence ≥ τ.
- ``forced_known_rate``: share of unknown-class inputs given a known label with confidence ≥ τ.
- ``auroc``: rank-based area under the ROC curve (ties count 1/2), as ``roc_auc_score``.
- ``energy_score``: ``-T logsumexp(logits / T)`` per item, higher = more likely unknown.
- ``unknown_detection_auroc``: AUROC of telling unknown-class inputs from known ones, by maximum
  softmax probability or by energy.

Usage::

    from core import metrics as M
    M.hallucination_rate(probs, labels, tau=0.9)     # labels: -1 = class absent from training
    M.forced_known_rate(probs, labels == -1, tau=0.9)
    M.unknown_detection_auroc(probs, labels == -1, method="energy", logits=logits)

A confidence equal to τ counts as confident. A rate with no rows to count over, or an AUROC with
one side empty, is ``nan``.
"""

from __future__ import annotations

import numpy as np

from core.errors import DataError
from core.metrics._common import NAN, conf_pred, tie_blocks
from core.metrics._validate import _as_conf, _as_flags, _as_logits, _as_mask, _as_probs, _check_tau, _check_temperature, _known

__all__ = ["DEFAULT_TAU", "auroc", "energy_score", "forced_known_rate", "hallucination_rate", "unknown_detection_auroc"]

#: Default confidence threshold τ of the hallucination and forced-known rates.
DEFAULT_TAU = 0.9


# ------------------------------------------------------------------ on validated arrays


def _hallucination_from(conf: np.ndarray, hit: np.ndarray, tau: float) -> float:
    """Share of known rows with ``not hit`` and ``conf >= tau``; ``nan`` when there are none."""
    n = conf.shape[0]
    return float(np.count_nonzero(~hit & (conf >= tau)) / n) if n else NAN


def _forced_known_from(conf_unknown: np.ndarray, tau: float) -> float:
    """Share of unknown rows (their confidences) with ``conf >= tau``; ``nan`` when there are none."""
    n = conf_unknown.shape[0]
    return float(np.count_nonzero(conf_unknown >= tau) / n) if n else NAN


def _auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return NAN
    # Mann-Whitney U with average ranks for ties (a tied pair counts 1/2)
    order = np.argsort(scores)
    starts, sizes, bid = tie_blocks(scores[order])
    avg_rank = starts + (sizes + 1) / 2.0  # 1-based average rank of each block
    rank_sum = avg_rank[bid[positive[order]]].sum()
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _row_max(a: np.ndarray) -> np.ndarray:
    # column by column: much faster than a.max(axis=1) for the few columns of a classifier
    if a.shape[1] > 64:
        return a.max(axis=1)
    m = a[:, 0].copy()
    for j in range(1, a.shape[1]):
        np.maximum(m, a[:, j], out=m)
    return m


def _energy(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits if temperature == 1.0 else logits / temperature
    if z.shape[0] == 0:
        return np.zeros(0)
    m = _row_max(z)
    buf = z - m[:, None]
    np.exp(buf, out=buf)
    lse = m + np.log(np.einsum("ij->i", buf))  # stable logsumexp
    return -temperature * lse


def _msp_auroc_from(conf: np.ndarray, unknown: np.ndarray) -> float:
    """Unknown-detection AUROC by maximum softmax probability (lower confidence = more unknown)."""
    return _auroc(-conf, unknown)


def _energy_auroc_from(logits: np.ndarray, temperature: float, unknown: np.ndarray) -> float:
    """Unknown-detection AUROC by energy (higher = more unknown)."""
    return _auroc(_energy(logits, temperature), unknown)


# ------------------------------------------------------------------ public


def hallucination_rate(probs, labels, *, tau: float = DEFAULT_TAU, unknown_mask=None) -> float:
    """Share of known-class inputs answered wrongly with confidence >= ``tau``.

    Parameters
    ----------
    probs : array_like, shape (n, K)
        Softmax probabilities over the K training classes.
    labels : array_like of int, shape (n,)
        True class in [0, K), or -1 for classes absent from training (excluded).
    tau : float, default 0.9
        Confidence threshold; ``conf == tau`` counts as confident.
    unknown_mask : array_like of bool, shape (n,), optional
        Extra rows to exclude as unknown-class inputs.

    Returns
    -------
    float
        ``#{known i : pred_i != y_i and conf_i >= tau} / #known``; ``nan`` with no known rows.
    """
    t = _check_tau(tau)
    p, y = _known(probs, labels, unknown_mask)
    conf, pred = conf_pred(p)
    return _hallucination_from(conf, pred == y, t)


def hallucination_from_conf(conf, correct, *, tau: float = DEFAULT_TAU) -> float:
    """:func:`hallucination_rate` from each item's confidence in its answer and whether it was right
    (the share wrong with confidence ≥ ``tau``) — for generated answers."""
    t = _check_tau(tau)
    c = _as_conf(conf)
    return _hallucination_from(c, _as_flags(correct, c.shape[0], name="correct"), t)


def forced_known_rate(probs, unknown_mask, *, tau: float = DEFAULT_TAU) -> float:
    """Share of unknown-class inputs that get a (necessarily wrong) known label with conf >= ``tau``.

    Parameters
    ----------
    probs : array_like, shape (n, K)
        Softmax probabilities over the K training classes.
    unknown_mask : array_like of bool, shape (n,)
        True for inputs whose class was absent from training (e.g. ``labels == -1``).
    tau : float, default 0.9
        Confidence threshold; ``conf == tau`` counts.

    Returns
    -------
    float
        ``#{unknown i : conf_i >= tau} / #unknown``; ``nan`` when there are no unknown rows.
    """
    t = _check_tau(tau)
    p = _as_probs(probs)
    u = _as_mask(unknown_mask, p.shape[0])
    return _forced_known_from(conf_pred(p[u])[0], t)


def auroc(scores_pos_higher, is_positive) -> float:
    """Area under the ROC curve, rank-based (Mann-Whitney U), ties as average ranks.

    Parameters
    ----------
    scores_pos_higher : array_like of float, shape (n,)
        Scores where *higher* means "more likely positive".
    is_positive : array_like of bool, shape (n,)
        Ground truth.

    Returns
    -------
    float
        P(score_pos > score_neg) + 0.5 P(score_pos == score_neg), equal to
        ``sklearn.metrics.roc_auc_score``; ``nan`` when either class is empty.
    """
    s = np.asarray(scores_pos_higher, dtype=np.float64)
    if s.ndim != 1:
        raise DataError(f"scores must be 1-D (one score per item); got shape {s.shape}.")
    pos = _as_mask(is_positive, s.shape[0], name="is_positive")
    if s.size and not np.isfinite(s).all():
        raise DataError("scores contain NaN or inf; drop those items or fix the scores first.")
    return _auroc(s, pos)


def energy_score(logits, *, temperature: float = 1.0) -> np.ndarray:
    """Energy ``E = -T * logsumexp(logits / T)`` per item, shape (n,); higher = more unknown."""
    t = _check_temperature(temperature)
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise DataError(f"logits must be 2-D with shape (n_items, n_classes); got shape {z.shape}.")
    z = _as_logits(z, z.shape)
    return _energy(z, t)


def unknown_detection_auroc(probs, unknown_mask, *, method: str = "msp", logits=None, temperature: float = 1.0) -> float:
    """AUROC of separating unknown-class inputs (positives) from known ones.

    Parameters
    ----------
    probs : array_like, shape (n, K)
        Softmax probabilities over the training classes.
    unknown_mask : array_like of bool, shape (n,)
        True for inputs from classes absent from training (the positives).
    method : {"msp", "energy"}, default "msp"
        ``"msp"``: max-softmax probability, lower = more unknown (score ``-conf``).
        ``"energy"``: ``E = -T logsumexp(logits / T)``, higher = more unknown; needs ``logits``.
    logits : array_like, shape (n, K), optional
        Pre-softmax outputs of the same items; required for ``method="energy"``.
    temperature : float, default 1.0
        T of the energy score.

    Returns
    -------
    float
        AUROC in [0, 1] (0.5 = chance); ``nan`` if there are no unknown or no known rows.
    """
    p = _as_probs(probs)
    u = _as_mask(unknown_mask, p.shape[0])
    if method == "msp":
        return _msp_auroc_from(conf_pred(p)[0], u)
    if method == "energy":
        if logits is None:
            raise DataError('method="energy" needs the logits: pass logits=<array (n, K)>, or use method="msp".')
        return _energy_auroc_from(_as_logits(logits, p.shape), _check_temperature(temperature), u)
    raise DataError(f'method must be "msp" or "energy"; got {method!r}.')
