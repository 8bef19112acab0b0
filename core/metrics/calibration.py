"""Calibration of the known-class rows: how far confidence is from accuracy, and proper scores.

- ``ece``: expected calibration error of the top-label confidence.
- ``reliability_bins``: the bins behind a reliability diagram (``ReliabilityBins``).
- ``classwise_ece``: the ECE of every class's probability against "is this class", averaged.
- ``ece_by_group``: the ECE of each class group's items; the groups (head / medium / tail by
  training count) come from ``core.metrics.groups.group_of_classes``, the one rule every page uses.
- ``brier`` and ``nll``: multi-class Brier score and negative log-likelihood.

Usage::

    from core import metrics as M
    M.ece(probs, labels, n_bins=15)             # probs (n, K) softmax, labels (n,) in [0, K) or -1
    M.ece_by_group(probs, labels, M.group_of_classes(train_counts))

Bins: ``n_bins`` equal-width bins over [0, 1] with edges ``np.linspace(0, 1, n_bins + 1)``, right-
closed ``(lower, upper]`` except the first, ``[0, upper]``, so a confidence of exactly 0 counts. A
confidence exactly on an inner edge goes to the lower bin (bin ``b`` holds ``b < conf * n_bins <=
b + 1``; 1.0 is in the last bin). Every binned error here is ``sum_b |hits_b - conf_b| / n``
(``_gap``), i.e. ``sum_b (n_b / n) |acc_b - conf_b|``. Unknown-class rows are left out; with no
known rows a value is ``nan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import DataError
from core.metrics._common import NAN, conf_pred
from core.metrics._validate import _as_conf, _as_flags, _as_groups, _check_n_bins, _known
from core.metrics.groups import GROUPS, group_of_classes

__all__ = [
    "DEFAULT_N_BINS",
    "GROUPS",
    "NLL_CLIP",
    "ReliabilityBins",
    "brier",
    "classwise_ece",
    "ece",
    "ece_by_group",
    "group_of_classes",
    "nll",
    "reliability_bins",
]

DEFAULT_N_BINS = 15
#: The smallest probability ``nll`` takes the log of.
NLL_CLIP = 1e-12


# ------------------------------------------------------------------ on validated arrays


def _bin_index(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each value in [0, 1]: ``b`` with ``b < x * n_bins <= b + 1``, clipped to [0, n_bins - 1].

    That is right-closed bins ``(b / n_bins, (b + 1) / n_bins]``, the first one also holding 0.
    """
    d = x * n_bins
    b = d.astype(np.intp)  # floor, as d >= 0 (tiny negatives from the tolerance truncate to 0)
    b -= b == d  # a value exactly on an edge belongs to the lower bin
    np.clip(b, 0, n_bins - 1, out=b)
    return b


def _bin_sums(b: np.ndarray, conf: np.ndarray, hit: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum of conf, number of hits) per bin id ``b`` in [0, size)."""
    return np.bincount(b, weights=conf, minlength=size), np.bincount(b, weights=hit.astype(np.float64), minlength=size)


def _gap(s_hit: np.ndarray, s_conf: np.ndarray) -> np.ndarray:
    """Calibration gap ``sum_b |hits_b - conf_b|`` over the last axis (bins); divide by the items."""
    return np.abs(s_hit - s_conf).sum(axis=-1)


def _ece_from(conf: np.ndarray, hit: np.ndarray, n_bins: int, conf_bin: np.ndarray | None = None) -> float:
    n = conf.shape[0]
    if n == 0:
        return NAN
    b = _bin_index(conf, n_bins) if conf_bin is None else conf_bin
    s_conf, s_hit = _bin_sums(b, conf, hit, n_bins)
    return float(_gap(s_hit, s_conf) / n)


def _classwise_from(p: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[float, np.ndarray]:
    m, k = p.shape
    if m == 0:
        return NAN, np.full(k, np.nan)
    b = _bin_index(p, n_bins) + (np.arange(k) * n_bins)[None, :]
    s_p = np.bincount(b.ravel(), weights=p.ravel(), minlength=k * n_bins)
    # targets are one-hot: only the (item, true class) cells contribute
    s_y = np.bincount(b[np.arange(m), y], minlength=k * n_bins).astype(np.float64)
    per = _gap(s_y.reshape(k, n_bins), s_p.reshape(k, n_bins)) / m
    return float(per.mean()), per


def _group_names(g: np.ndarray) -> list[str]:
    return list(GROUPS) + sorted(set(g.tolist()) - set(GROUPS))


def _ece_by_group_from(
    conf_bin: np.ndarray, conf: np.ndarray, hit: np.ndarray, y: np.ndarray, g: np.ndarray, n_bins: int
) -> dict[str, float]:
    names = _group_names(g)
    code = {name: i for i, name in enumerate(names)}
    item_group = np.array([code[v] for v in g.tolist()], dtype=np.intp)[y]
    s_conf, s_hit = _bin_sums(item_group * n_bins + conf_bin, conf, hit, len(names) * n_bins)
    n_g = np.bincount(item_group, minlength=len(names))
    gap = _gap(s_hit.reshape(-1, n_bins), s_conf.reshape(-1, n_bins))
    return {name: (float(gap[i] / n_g[i]) if n_g[i] else NAN) for i, name in enumerate(names)}


def _brier_from(p: np.ndarray, y: np.ndarray) -> float:
    if p.shape[0] == 0:
        return NAN
    py = p[np.arange(p.shape[0]), y]
    return float(np.mean(np.einsum("ij,ij->i", p, p) - 2.0 * py + 1.0))


def _nll_from(p: np.ndarray, y: np.ndarray) -> float:
    if p.shape[0] == 0:
        return NAN
    py = p[np.arange(p.shape[0]), y]
    return float(-np.log(np.maximum(py, NLL_CLIP)).mean())


def _groups_for(k: int, train_counts: Any, groups: Any, head: int, tail: int) -> np.ndarray | None:
    """The group of each of the K classes from ``groups`` or ``train_counts`` (not both); None without either."""
    if groups is not None and train_counts is not None:
        raise DataError("Pass either train_counts= or groups=, not both.")
    if groups is not None:
        return _as_groups(groups, k)
    if train_counts is None:
        return None
    tc = np.asarray(train_counts)
    if tc.ndim != 1 or tc.shape[0] != k:
        raise DataError(f"train_counts must have one count per class ({k}, the columns of probs); got shape {tc.shape}.")
    return group_of_classes(tc, head=head, tail=tail)


# ------------------------------------------------------------------ public


def ece_from_conf(conf, correct, *, n_bins: int = DEFAULT_N_BINS) -> float:
    """:func:`ece` from each item's confidence in its answer and whether the answer was right — for
    answers that are not a choice among fixed classes (a language model's generated answer)."""
    c = _as_conf(conf)
    return _ece_from(c, _as_flags(correct, c.shape[0], name="correct"), _check_n_bins(n_bins))


def ece(probs, labels, *, n_bins: int = DEFAULT_N_BINS, unknown_mask=None) -> float:
    """Expected calibration error of the top-label confidence over known-class rows.

    Parameters
    ----------
    probs : array_like, shape (n, K)
    labels : array_like of int, shape (n,)
        -1 rows (and ``unknown_mask`` rows) are excluded.
    n_bins : int, default 15
        Equal-width bins over [0, 1], right-closed, first bin includes 0 (see the module docstring).
    unknown_mask : array_like of bool, shape (n,), optional

    Returns
    -------
    float
        ``sum_b (n_b / n) |acc_b - conf_b|``; ``nan`` with no known rows.
    """
    nb = _check_n_bins(n_bins)
    p, y = _known(probs, labels, unknown_mask)
    conf, pred = conf_pred(p)
    return _ece_from(conf, pred == y, nb)


@dataclass(frozen=True)
class ReliabilityBins:
    """Reliability-diagram bins; every array has shape (n_bins,).

    Attributes
    ----------
    lower, upper : ndarray of float
        Bin edges; a bin holds ``lower < conf <= upper`` (the first one also ``conf == 0``).
    count : ndarray of int
        Items in the bin.
    mean_conf : ndarray of float
        Mean top-label confidence in the bin (``nan`` when empty).
    accuracy : ndarray of float
        Share of correct predictions in the bin (``nan`` when empty).
    """

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    mean_conf: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """ECE from the bins (equal to :func:`ece` of the same rows, up to rounding)."""
        n = self.count.sum()
        if n == 0:
            return NAN
        filled = self.count > 0
        s_hit = np.where(filled, self.count * self.accuracy, 0.0)
        s_conf = np.where(filled, self.count * self.mean_conf, 0.0)
        return float(_gap(s_hit, s_conf) / n)

    def to_dict(self) -> dict[str, np.ndarray]:
        """Columns as a dict (e.g. for ``pandas.DataFrame``)."""
        return {"lower": self.lower, "upper": self.upper, "count": self.count, "mean_conf": self.mean_conf, "accuracy": self.accuracy}


def reliability_bins(probs, labels, *, n_bins: int = DEFAULT_N_BINS, unknown_mask=None) -> ReliabilityBins:
    """Per-bin count, mean confidence and accuracy of the known-class rows.

    Parameters
    ----------
    probs : array_like, shape (n, K)
    labels : array_like of int, shape (n,)
    n_bins : int, default 15
    unknown_mask : array_like of bool, shape (n,), optional

    Returns
    -------
    ReliabilityBins
        Arrays of shape (n_bins,); empty bins have ``count == 0`` and ``nan`` conf / accuracy.
    """
    nb = _check_n_bins(n_bins)
    p, y = _known(probs, labels, unknown_mask)
    conf, pred = conf_pred(p)
    b = _bin_index(conf, nb)
    count = np.bincount(b, minlength=nb)
    s_conf, s_hit = _bin_sums(b, conf, pred == y, nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_conf = np.where(count > 0, s_conf / count, np.nan)
        acc = np.where(count > 0, s_hit / count, np.nan)
    edges = np.linspace(0.0, 1.0, nb + 1)
    return ReliabilityBins(edges[:-1].copy(), edges[1:].copy(), count.astype(np.int64), mean_conf, acc)


def classwise_ece(probs, labels, *, n_bins: int = DEFAULT_N_BINS, unknown_mask=None) -> tuple[float, np.ndarray]:
    """Classwise ECE: for each class c, ECE of ``p_c`` against ``1[y == c]``, averaged over classes.

    Every class gets its own ``n_bins`` bins of ``probs[:, c]`` over all known rows (not only the
    rows predicted as c); the mean is unweighted over all K training classes, including classes
    absent from the test split (their target is all zeros, so their ECE is the mean of ``p_c``
    per bin).

    Parameters
    ----------
    probs : array_like, shape (n, K)
    labels : array_like of int, shape (n,)
    n_bins : int, default 15
    unknown_mask : array_like of bool, shape (n,), optional

    Returns
    -------
    mean : float
        Average of the per-class ECEs (``nan`` with no known rows).
    per_class : ndarray of float, shape (K,)
    """
    nb = _check_n_bins(n_bins)
    p, y = _known(probs, labels, unknown_mask)
    return _classwise_from(p, y, nb)


def ece_by_group(probs, labels, groups_per_class, *, n_bins: int = DEFAULT_N_BINS, unknown_mask=None) -> dict[str, float]:
    """Top-label ECE of the known rows of each class group (by the item's *true* class).

    Parameters
    ----------
    probs : array_like, shape (n, K)
    labels : array_like of int, shape (n,)
    groups_per_class : array_like of str, shape (K,)
        Group name of each class, e.g. from :func:`group_of_classes`.
    n_bins : int, default 15
    unknown_mask : array_like of bool, shape (n,), optional

    Returns
    -------
    dict[str, float]
        Always has ``"head"``, ``"medium"`` and ``"tail"`` (``nan`` when the group has no test
        items), plus any other group name found in ``groups_per_class``.
    """
    nb = _check_n_bins(n_bins)
    p, y = _known(probs, labels, unknown_mask)
    g = _as_groups(groups_per_class, p.shape[1])
    conf, pred = conf_pred(p)
    return _ece_by_group_from(_bin_index(conf, nb), conf, pred == y, y, g, nb)


def brier(probs, labels, *, unknown_mask=None) -> float:
    """Multi-class Brier score: mean over known items of ``sum_k (p_k - onehot_k)^2`` (range [0, 2])."""
    return _brier_from(*_known(probs, labels, unknown_mask))


def nll(probs, labels, *, unknown_mask=None) -> float:
    """Negative log-likelihood: mean over known items of ``-log(max(p_y, 1e-12))`` (natural log)."""
    return _nll_from(*_known(probs, labels, unknown_mask))
