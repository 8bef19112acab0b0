"""Every scalar metric of one set of predictions in a flat dict: ``summary``.

Usage::

    from core import metrics as M
    s = M.summary(probs, labels, tau=0.9, logits=logits, train_counts=counts)
    s["hallucination_rate"], s["ece"], s["macro_f1"]           # keys: M.SUMMARY_KEYS, always all

``summary`` validates its inputs once and then calls the same ``_…_from`` helpers the per-metric
functions use (``classification``, ``calibration``, ``hallucination``, ``selective_prediction``), so
``summary(...)["ece"] == ece(...)`` and so on: no number is computed twice. It shares the top-label
confidence, the prediction and the ECE bins between the metrics that need them.
``metrics_by_slice`` (``core.metrics.per_slice``) runs the same validated core on each slice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.metrics._common import NAN, conf_pred
from core.metrics._validate import _as_labels, _as_logits, _as_probs, _check_n_bins, _check_tau, _check_temperature
from core.metrics.calibration import (
    DEFAULT_N_BINS,
    GROUPS,
    _bin_index,
    _brier_from,
    _classwise_from,
    _ece_by_group_from,
    _ece_from,
    _groups_for,
    _nll_from,
)
from core.metrics.classification import (
    _accuracy_from,
    _balanced_accuracy_from,
    _counts,
    _macro_f1_from,
    _prf,
    _worst_class_recall_from,
)
from core.metrics.groups import HEAD_ABOVE, TAIL_BELOW
from core.metrics.hallucination import DEFAULT_TAU, _energy_auroc_from, _forced_known_from, _hallucination_from, _msp_auroc_from
from core.metrics.selective_prediction import _aurc_from, _excess_aurc_from, _risk_from

__all__ = ["SUMMARY_KEYS", "summary"]

#: Keys of ``summary``'s dict, in order. Every key is always present (``nan`` where undefined).
SUMMARY_KEYS = (
    "n_known",
    "n_unknown",
    "accuracy",
    "macro_f1",
    "balanced_accuracy",
    "worst_class_recall",
    "hallucination_rate",
    "forced_known_rate",
    "unknown_auroc_msp",
    "unknown_auroc_energy",
    "ece",
    "classwise_ece",
    "ece_head",
    "ece_medium",
    "ece_tail",
    "brier",
    "nll",
    "aurc",
    "excess_aurc",
)

#: ``summary``'s options and their defaults (``metrics_by_slice`` passes the same ones).
OPTIONS: dict[str, Any] = {
    "tau": DEFAULT_TAU,
    "unknown_mask": None,
    "logits": None,
    "train_counts": None,
    "groups": None,
    "head": HEAD_ABOVE,
    "tail": TAIL_BELOW,
    "n_bins": DEFAULT_N_BINS,
    "temperature": 1.0,
}


def _known_metrics(
    p: np.ndarray, y: np.ndarray, conf: np.ndarray, pred: np.ndarray, groups: np.ndarray | None, tau: float, n_bins: int
) -> dict[str, float]:
    """The known-class metrics of validated known rows (at least one)."""
    hit = pred == y
    stats = _prf(_counts(pred, y, p.shape[1]))
    risk = _risk_from(conf, ~hit)
    conf_bin = _bin_index(conf, n_bins)
    out = {
        "accuracy": _accuracy_from(hit),
        "macro_f1": _macro_f1_from(stats),
        "balanced_accuracy": _balanced_accuracy_from(stats),
        "worst_class_recall": _worst_class_recall_from(stats),
        "hallucination_rate": _hallucination_from(conf, hit, tau),
        "ece": _ece_from(conf, hit, n_bins, conf_bin),
        "classwise_ece": _classwise_from(p, y, n_bins)[0],
        "brier": _brier_from(p, y),
        "nll": _nll_from(p, y),
        "aurc": _aurc_from(risk),
        "excess_aurc": _excess_aurc_from(risk, int(np.count_nonzero(~hit))),
    }
    if groups is not None:
        by_group = _ece_by_group_from(conf_bin, conf, hit, y, groups, n_bins)
        out.update({f"ece_{name}": by_group[name] for name in GROUPS})
    return out


def _summary_validated(
    p: np.ndarray,
    y: np.ndarray,
    unknown: np.ndarray,
    logits: np.ndarray | None,
    groups: np.ndarray | None,
    tau: float,
    n_bins: int,
    temperature: float,
) -> dict[str, float]:
    """``summary`` of validated arrays: probs (n, K), labels (n,), the unknown rows (n,), options."""
    out = dict.fromkeys(SUMMARY_KEYS, NAN)
    conf_all, pred_all = conf_pred(p)
    known = ~unknown
    n_known = int(np.count_nonzero(known))
    n_unknown = p.shape[0] - n_known
    out["n_known"] = float(n_known)
    out["n_unknown"] = float(n_unknown)
    out["forced_known_rate"] = _forced_known_from(conf_all[unknown], tau)
    out["unknown_auroc_msp"] = _msp_auroc_from(conf_all, unknown)
    if logits is not None:
        out["unknown_auroc_energy"] = _energy_auroc_from(logits, temperature, unknown)
    if n_known == 0:
        return out
    if n_unknown:
        out.update(_known_metrics(p[known], y[known], conf_all[known], pred_all[known], groups, tau, n_bins))
    else:
        out.update(_known_metrics(p, y, conf_all, pred_all, groups, tau, n_bins))
    return out


def _prepare(probs, labels, *, tau, unknown_mask, logits, train_counts, groups, head, tail, n_bins, temperature):
    """Validated (probs, labels, unknown, logits or None, groups or None, options of ``_summary_validated``)."""
    p = _as_probs(probs)
    y, unknown = _as_labels(labels, p.shape[0], p.shape[1], unknown_mask)
    z = None if logits is None else _as_logits(logits, p.shape)
    g = _groups_for(p.shape[1], train_counts, groups, head, tail)
    return p, y, unknown, z, g, dict(tau=_check_tau(tau), n_bins=_check_n_bins(n_bins), temperature=_check_temperature(temperature))


def summary(
    probs,
    labels,
    *,
    tau: float = DEFAULT_TAU,
    unknown_mask=None,
    logits=None,
    train_counts=None,
    groups=None,
    head: int = HEAD_ABOVE,
    tail: int = TAIL_BELOW,
    n_bins: int = DEFAULT_N_BINS,
    temperature: float = 1.0,
) -> dict[str, float]:
    """Every scalar metric in one flat dict with the stable keys ``SUMMARY_KEYS``.

    Parameters
    ----------
    probs : array_like, shape (n, K)
        Softmax probabilities over the K training classes.
    labels : array_like of int, shape (n,)
        True class in [0, K), or -1 for inputs from classes absent from training.
    tau : float, default 0.9
        Threshold of ``hallucination_rate`` and ``forced_known_rate``.
    unknown_mask : array_like of bool, shape (n,), optional
        Further unknown-class rows.
    logits : array_like, shape (n, K), optional
        Needed for ``unknown_auroc_energy`` (``nan`` without).
    train_counts : array_like of int, shape (K,), optional
        Training items per class; groups classes into head / medium / tail with ``head`` /
        ``tail`` (see :func:`group_of_classes`). Without it (or ``groups``) ``ece_head``,
        ``ece_medium`` and ``ece_tail`` are ``nan``.
    groups : array_like of str, shape (K,), optional
        Precomputed group per class, instead of ``train_counts``.
    head, tail : int, default 100, 20
        Group thresholds used with ``train_counts`` (``core.metrics.groups``: the rule the Data page
        shows; keep the defaults so a run's groups are the page's groups).
    n_bins : int, default 15
        Bins of ``ece``, ``classwise_ece`` and ``ece_<group>``.
    temperature : float, default 1.0
        T of the energy score.

    Returns
    -------
    dict[str, float]
        Keys ``SUMMARY_KEYS``: ``n_known``, ``n_unknown``, ``accuracy``, ``macro_f1``,
        ``balanced_accuracy``, ``worst_class_recall``, ``hallucination_rate``,
        ``forced_known_rate``, ``unknown_auroc_msp``, ``unknown_auroc_energy``, ``ece``,
        ``classwise_ece``, ``ece_head``, ``ece_medium``, ``ece_tail``, ``brier``, ``nll``,
        ``aurc``, ``excess_aurc``; ``nan`` where undefined.
    """
    p, y, unknown, z, g, opts = _prepare(
        probs,
        labels,
        tau=tau,
        unknown_mask=unknown_mask,
        logits=logits,
        train_counts=train_counts,
        groups=groups,
        head=head,
        tail=tail,
        n_bins=n_bins,
        temperature=temperature,
    )
    return _summary_validated(p, y, unknown, z, g, **opts)
