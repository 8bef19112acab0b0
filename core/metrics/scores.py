"""Metrics that show how a classifier trained on incomplete data *hallucinates*.

Everything here is pure, vectorised numpy: a ``summary`` of 70,000 x 10 predictions (with logits)
takes a few tens of milliseconds.

Inputs and conventions shared by every function
-----------------------------------------------
``probs``
    ``float`` array, shape (n, K): softmax probabilities over the K *training* classes. Rows must
    sum to 1 within ``SUM_TOLERANCE`` and lie in [0, 1]. ``conf = probs.max(axis=1)`` and
    ``pred = probs.argmax(axis=1)`` (ties go to the lowest class index, as ``numpy.argmax``).
``labels``
    ``int`` array, shape (n,): true class index in [0, K), or ``UNKNOWN_LABEL`` (-1) for an input
    whose class was absent from training. ``unknown_mask`` (bool, shape (n,)), where a function
    accepts it, marks further unknown rows (their label is then ignored, whatever it is).
Known vs unknown rows
    Unknown rows are *excluded* from every known-class metric (accuracy, F1, ECE, Brier, NLL,
    hallucination rate, risk-coverage, ...) and used only by ``forced_known_rate`` and the
    unknown-detection AUROCs.
Undefined values
    A metric with nothing to average over (no known rows, no unknown rows, one AUROC side empty)
    is ``nan``, never an exception.
Bins (ECE, classwise ECE, reliability diagram)
    ``n_bins`` equal-width bins over [0, 1] with edges ``np.linspace(0, 1, n_bins + 1)``; bins are
    right-closed, ``(lower, upper]``, except the first, which is ``[0, upper]`` so that a
    confidence of exactly 0 is counted. A confidence that sits exactly on an inner edge goes to
    the lower bin (bin ``b`` holds ``b < conf * n_bins <= b + 1``; 1.0 is in the last bin).
Risk-coverage / AURC
    Items are sorted by ``conf`` descending; ``risk[k-1]`` is the error rate of the top-k items at
    coverage ``k/n`` (k = 1..n) and ``AURC = mean(risk)``. Tied confidences are not broken by
    input order: inside a block of tied items the risk is its expectation under a random order of
    the block, so the curve does not depend on how the rows happen to be sorted.
Macro averages and absent classes
    ``macro_f1`` averages per-class F1 over *all* K training classes, with F1 = 2TP / (2TP + FP + FN)
    and 0 where that is 0/0, exactly ``sklearn.metrics.f1_score(y, pred, labels=range(K),
    average="macro", zero_division=0)``: a class absent from the test split *and* never predicted
    counts as F1 = 0. Per-class ``recall`` is ``nan`` for a class with no support and ``precision``
    is ``nan`` for a class that is never predicted; ``balanced_accuracy`` and
    ``worst_class_recall`` ignore classes with no support, as
    ``sklearn.metrics.balanced_accuracy_score`` does.

Invalid inputs raise ``core.errors.DataError`` (a ``ValueError``) whose message says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import DataError

__all__ = [
    "DEFAULT_N_BINS",
    "DEFAULT_TAU",
    "GROUPS",
    "NLL_CLIP",
    "SUMMARY_KEYS",
    "SUM_TOLERANCE",
    "UNKNOWN_LABEL",
    "ReliabilityBins",
    "accuracy",
    "aurc",
    "auroc",
    "brier",
    "classwise_ece",
    "confusion",
    "ece",
    "ece_by_group",
    "energy_score",
    "excess_aurc",
    "forced_known_rate",
    "group_of_classes",
    "hallucination_rate",
    "metrics_by_slice",
    "nll",
    "per_class",
    "reliability_bins",
    "risk_coverage",
    "selective",
    "summary",
    "unknown_detection_auroc",
]

UNKNOWN_LABEL = -1
DEFAULT_TAU = 0.9
DEFAULT_N_BINS = 15
NLL_CLIP = 1e-12
SUM_TOLERANCE = 1e-3
GROUPS = ("head", "medium", "tail")

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

_NAN = float("nan")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _as_probs(probs: Any, *, name: str = "probs") -> np.ndarray:
    try:
        p = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{name} must be a numeric array of shape (n_items, n_classes); it could not be read "
            f"as numbers ({exc}). Pass the softmax output as a 2-D float array."
        ) from None
    if p.ndim != 2:
        raise DataError(f"{name} must be 2-D with shape (n_items, n_classes); got shape {p.shape}. For a single item use probs[None, :].")
    if p.shape[1] < 1:
        raise DataError(f"{name} has no class columns (shape {p.shape}); pass one column per training class.")
    if p.size == 0:
        return p
    finite = np.isfinite(p)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise DataError(
            f"{name} contains NaN or inf (first at row {row}). Remove those rows or fix the model output before computing metrics."
        )
    lo, hi = float(p.min()), float(p.max())
    if lo < -SUM_TOLERANCE or hi > 1.0 + SUM_TOLERANCE:
        raise DataError(
            f"{name} must hold probabilities in [0, 1]; found values from {lo:.4g} to {hi:.4g}. "
            "These look like logits: pass scipy.special.softmax(logits, axis=1) instead "
            "(and the logits themselves as logits=)."
        )
    dev = np.abs(np.einsum("ij->i", p) - 1.0)
    if (dev > SUM_TOLERANCE).any():
        row = int(np.argmax(dev))
        raise DataError(
            f"Each row of {name} must sum to 1 (tolerance {SUM_TOLERANCE}); row {row} sums to "
            f"{p[row].sum():.6g}. Apply softmax over the training classes, or renormalise with "
            "probs / probs.sum(axis=1, keepdims=True)."
        )
    return p


def _as_int_vector(values: Any, n: int, *, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise DataError(f"{name} must be 1-D with one entry per item; got shape {a.shape}.")
    if a.shape[0] != n:
        raise DataError(
            f"{name} has {a.shape[0]} entries but probs has {n} rows; pass one {name[:-1] or name} per row of probs, in the same order."
        )
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise DataError(
            f"{name} must hold integer class indices; got dtype {a.dtype}. Encode classes as "
            "0..K-1 (and -1 for classes absent from training)."
        )
    if np.issubdtype(a.dtype, np.floating) and a.size and (not np.isfinite(a).all() or (a != np.round(a)).any()):
        raise DataError(
            f"{name} must hold whole-number class indices; found non-integer or NaN values. "
            "Encode classes as 0..K-1 and mark unknown classes with -1."
        )
    return a.astype(np.int64, copy=False)


def _as_mask(mask: Any, n: int, *, name: str = "unknown_mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 1 or m.shape[0] != n:
        raise DataError(f"{name} must be a 1-D boolean array with one entry per row of probs ({n}); got shape {m.shape}.")
    if m.dtype != bool:
        raise DataError(
            f"{name} must be boolean (True = input from a class absent from training); got dtype "
            f"{m.dtype}. Build it with e.g. labels == -1."
        )
    return m


def _as_labels(labels: Any, n: int, k: int, unknown_mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Validated (labels int64 (n,), unknown bool (n,))."""
    y = _as_int_vector(labels, n, name="labels")
    unknown = y == UNKNOWN_LABEL
    if unknown_mask is not None:
        unknown = unknown | _as_mask(unknown_mask, n)
    bad = ~unknown & ((y < 0) | (y >= k))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"labels must be class indices in [0, {k}) (one per column of probs) or {UNKNOWN_LABEL} "
            f"for inputs from classes absent from training; row {row} has label {int(y[row])}. "
            f"Mark unseen classes with {UNKNOWN_LABEL} or pass unknown_mask=."
        )
    return y, unknown


def _as_logits(logits: Any, shape: tuple[int, int]) -> np.ndarray:
    try:
        z = np.asarray(logits, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("logits must be a numeric array of shape (n_items, n_classes).") from None
    if z.shape != shape:
        raise DataError(
            f"logits must have the same shape as probs {shape}; got {z.shape}. Pass the pre-softmax "
            "outputs of the same items, in the same order."
        )
    if z.size and not np.isfinite(z).all():
        raise DataError("logits contain NaN or inf; fix the model output or drop those rows.")
    return z


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, (bool, np.bool_)) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise DataError(f"n_bins must be a positive integer (e.g. 15); got {n_bins!r}.")
    return int(n_bins)


def _check_tau(tau: Any) -> float:
    t = float(tau)
    if not 0.0 <= t <= 1.0:
        raise DataError(f"tau is a confidence threshold and must lie in [0, 1]; got {tau!r}.")
    return t


def _check_temperature(temperature: Any) -> float:
    t = float(temperature)
    if not (np.isfinite(t) and t > 0):
        raise DataError(f"temperature must be a positive number (e.g. 1.0); got {temperature!r}.")
    return t


def _known(probs: Any, labels: Any, unknown_mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return the known rows: (probs (m, K), labels (m,))."""
    p = _as_probs(probs)
    y, unknown = _as_labels(labels, p.shape[0], p.shape[1], unknown_mask)
    if unknown.any():
        keep = ~unknown
        return p[keep], y[keep]
    return p, y


def _pred_from(probs_or_pred: Any, n_classes: int, *, name: str = "probs_or_pred") -> np.ndarray:
    a = np.asarray(probs_or_pred)
    if a.ndim == 2:
        p = _as_probs(a, name=name)
        if p.shape[1] != n_classes:
            raise DataError(f"{name} has {p.shape[1]} columns but n_classes={n_classes}; pass one column per class.")
        return p.argmax(axis=1)
    pred = _as_int_vector(a, a.shape[0] if a.ndim == 1 else -1, name="predictions")
    if pred.size and (pred.min() < 0 or pred.max() >= n_classes):
        raise DataError(
            f"predictions must be class indices in [0, {n_classes}); found {int(pred.min())}..{int(pred.max())}. "
            "Pass probs.argmax(axis=1) or the probabilities themselves."
        )
    return pred


def _check_n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise DataError(f"n_classes must be a positive integer; got {n_classes!r}.")
    return int(n_classes)


# --------------------------------------------------------------------------------------------
# Core computations on validated arrays
# --------------------------------------------------------------------------------------------


def _bin_index(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each value in [0, 1]: ``b`` with ``b < x * n_bins <= b + 1``, clipped to [0, n_bins - 1].

    That is right-closed bins ``(b / n_bins, (b + 1) / n_bins]``, the first one also holding 0.
    """
    d = x * n_bins
    b = d.astype(np.intp)  # floor, as d >= 0 (tiny negatives from the tolerance truncate to 0)
    b -= b == d  # a value exactly on an edge belongs to the lower bin
    np.clip(b, 0, n_bins - 1, out=b)
    return b


def _ece_from(conf: np.ndarray, hit: np.ndarray, n_bins: int, conf_bin: np.ndarray | None = None) -> float:
    # sum_b (n_b / n) |acc_b - conf_b| == sum_b |sum_{i in b} hit_i - sum_{i in b} conf_i| / n
    n = conf.shape[0]
    if n == 0:
        return _NAN
    b = _bin_index(conf, n_bins) if conf_bin is None else conf_bin
    s_conf = np.bincount(b, weights=conf, minlength=n_bins)
    s_hit = np.bincount(b, weights=hit.astype(np.float64), minlength=n_bins)
    return float(np.abs(s_hit - s_conf).sum() / n)


def _classwise_from(p: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[float, np.ndarray]:
    m, k = p.shape
    if m == 0:
        return _NAN, np.full(k, np.nan)
    b = _bin_index(p, n_bins) + (np.arange(k) * n_bins)[None, :]
    b = b.ravel()
    s_p = np.bincount(b, weights=p.ravel(), minlength=k * n_bins)
    # targets are one-hot: only the (item, true class) cells contribute
    s_y = np.bincount(b.reshape(m, k)[np.arange(m), y], minlength=k * n_bins).astype(np.float64)
    per = np.abs(s_y - s_p).reshape(k, n_bins).sum(axis=1) / m
    return float(per.mean()), per


def _counts(pred: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def _prf(cm: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        denom = (support + predicted).astype(np.float64)
        f1 = np.where(denom > 0, 2.0 * tp / denom, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def _tie_blocks(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted values: (block start of each block, block sizes, block id of each position)."""
    n = sorted_values.shape[0]
    new_block = np.empty(n, dtype=bool)
    new_block[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new_block[1:])
    starts = np.flatnonzero(new_block)
    sizes = np.diff(np.append(starts, n))
    return starts, sizes, np.cumsum(new_block) - 1


def _auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return _NAN
    # Mann-Whitney U with average ranks for ties (a tied pair counts 1/2)
    order = np.argsort(scores)
    starts, sizes, bid = _tie_blocks(scores[order])
    avg_rank = starts + (sizes + 1) / 2.0  # 1-based average rank of each block
    rank_sum = avg_rank[bid[positive[order]]].sum()
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _risk_from(conf: np.ndarray, err: np.ndarray) -> np.ndarray:
    n = conf.shape[0]
    if n == 0:
        return np.zeros(0)
    order = np.argsort(-conf)  # order inside tied blocks is irrelevant, see below
    starts, sizes, bid = _tie_blocks(conf[order])
    block_err = np.add.reduceat(err[order].astype(np.float64), starts)
    before = np.cumsum(block_err) - block_err
    k = np.arange(1, n + 1, dtype=np.float64)
    # expected errors among the first (k - start) items of a tied block taken in random order
    expected = before[bid] + (k - starts[bid]) * (block_err / sizes)[bid]
    return expected / k


def _oracle_aurc(n: int, n_err: int) -> float:
    if n == 0:
        return _NAN
    k = np.arange(1, n + 1, dtype=np.float64)
    return float((np.maximum(0.0, k - (n - n_err)) / k).mean())


def _brier_from(p: np.ndarray, y: np.ndarray) -> float:
    if p.shape[0] == 0:
        return _NAN
    py = p[np.arange(p.shape[0]), y]
    return float(np.mean(np.einsum("ij,ij->i", p, p) - 2.0 * py + 1.0))


def _nll_from(p: np.ndarray, y: np.ndarray) -> float:
    if p.shape[0] == 0:
        return _NAN
    py = p[np.arange(p.shape[0]), y]
    return float(-np.log(np.maximum(py, NLL_CLIP)).mean())


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


def _conf_pred(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = p.argmax(axis=1)
    return np.take_along_axis(p, pred[:, None], axis=1)[:, 0], pred


# --------------------------------------------------------------------------------------------
# Hallucination / unknown classes
# --------------------------------------------------------------------------------------------


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
    if p.shape[0] == 0:
        return _NAN
    wrong = p.argmax(axis=1) != y
    return float(np.count_nonzero(wrong & (p.max(axis=1) >= t)) / p.shape[0])


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
    n_u = int(np.count_nonzero(u))
    if n_u == 0:
        return _NAN
    return float(np.count_nonzero(p[u].max(axis=1) >= t) / n_u)


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
        return _auroc(-p.max(axis=1), u)
    if method == "energy":
        if logits is None:
            raise DataError('method="energy" needs the logits: pass logits=<array (n, K)>, or use method="msp".')
        return _auroc(_energy(_as_logits(logits, p.shape), _check_temperature(temperature)), u)
    raise DataError(f'method must be "msp" or "energy"; got {method!r}.')


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def ece(probs, labels, *, n_bins: int = DEFAULT_N_BINS, unknown_mask=None) -> float:
    """Expected calibration error of the top-label confidence over known-class rows.

    Parameters
    ----------
    probs : array_like, shape (n, K)
    labels : array_like of int, shape (n,)
        -1 rows (and ``unknown_mask`` rows) are excluded.
    n_bins : int, default 15
        Equal-width bins over [0, 1], right-closed, first bin includes 0 (see module docstring).
    unknown_mask : array_like of bool, shape (n,), optional

    Returns
    -------
    float
        ``sum_b (n_b / n) |acc_b - conf_b|``; ``nan`` with no known rows.
    """
    nb = _check_n_bins(n_bins)
    p, y = _known(probs, labels, unknown_mask)
    return _ece_from(p.max(axis=1), p.argmax(axis=1) == y, nb)


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
        """ECE recomputed from the bins (equal to :func:`ece`)."""
        n = self.count.sum()
        if n == 0:
            return _NAN
        gap = np.where(self.count > 0, np.abs(self.accuracy - self.mean_conf), 0.0)
        return float((self.count * gap).sum() / n)

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
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == y).astype(np.float64)
    b = _bin_index(conf, nb)
    count = np.bincount(b, minlength=nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_conf = np.where(count > 0, np.bincount(b, weights=conf, minlength=nb) / count, np.nan)
        acc = np.where(count > 0, np.bincount(b, weights=hit, minlength=nb) / count, np.nan)
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


def group_of_classes(train_counts, *, head: int = 100, tail: int = 20) -> np.ndarray:
    """Head / medium / tail group of each class from its number of training items.

    Parameters
    ----------
    train_counts : array_like of int, shape (K,)
        Training items per class.
    head : int, default 100
        A class with *more than* ``head`` items is ``"head"``.
    tail : int, default 20
        A class with *fewer than* ``tail`` items is ``"tail"``; the rest
        (``tail <= count <= head``) is ``"medium"``.

    Returns
    -------
    ndarray of str, shape (K,)
    """
    c = np.asarray(train_counts)
    if c.ndim != 1:
        raise DataError(f"train_counts must be 1-D (one count per class); got shape {c.shape}.")
    if c.size and (not np.issubdtype(c.dtype, np.number) or c.dtype == bool or not np.isfinite(c).all() or (c < 0).any()):
        raise DataError("train_counts must be non-negative numbers of training items per class.")
    if tail > head:
        raise DataError(f"tail ({tail}) must not exceed head ({head}); e.g. head=100, tail=20.")
    out = np.full(c.shape[0], "medium", dtype="<U6")
    out[c > head] = "head"
    out[c < tail] = "tail"
    return out


def _groups_array(groups_per_class: Any, k: int) -> np.ndarray:
    g = np.asarray(groups_per_class)
    if g.ndim != 1 or g.shape[0] != k:
        raise DataError(
            f"groups_per_class must have one entry per class ({k}); got shape {g.shape}. Build it with group_of_classes(train_counts)."
        )
    return g.astype(str)


def _group_names(g: np.ndarray) -> list[str]:
    return list(GROUPS) + sorted(set(g.tolist()) - set(GROUPS))


def _ece_by_group_from(
    conf_bin: np.ndarray, conf: np.ndarray, hit: np.ndarray, y: np.ndarray, g: np.ndarray, n_bins: int
) -> dict[str, float]:
    names = _group_names(g)
    code = {name: i for i, name in enumerate(names)}
    item_group = np.array([code[v] for v in g.tolist()], dtype=np.intp)[y]
    flat = item_group * n_bins + conf_bin
    size = len(names) * n_bins
    s_conf = np.bincount(flat, weights=conf, minlength=size).reshape(-1, n_bins)
    s_hit = np.bincount(flat, weights=hit.astype(np.float64), minlength=size).reshape(-1, n_bins)
    n_g = np.bincount(item_group, minlength=len(names))
    gap = np.abs(s_hit - s_conf).sum(axis=1)
    return {name: (float(gap[i] / n_g[i]) if n_g[i] else _NAN) for i, name in enumerate(names)}


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
    g = _groups_array(groups_per_class, p.shape[1])
    conf, pred = _conf_pred(p)
    return _ece_by_group_from(_bin_index(conf, nb), conf, pred == y, y, g, nb)


def brier(probs, labels, *, unknown_mask=None) -> float:
    """Multi-class Brier score: mean over known items of ``sum_k (p_k - onehot_k)^2`` (range [0, 2])."""
    return _brier_from(*_known(probs, labels, unknown_mask))


def nll(probs, labels, *, unknown_mask=None) -> float:
    """Negative log-likelihood: mean over known items of ``-log(max(p_y, 1e-12))`` (natural log)."""
    return _nll_from(*_known(probs, labels, unknown_mask))


# --------------------------------------------------------------------------------------------
# Selective prediction
# --------------------------------------------------------------------------------------------


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
    m = p.shape[0]
    return np.arange(1, m + 1) / max(m, 1), _risk_from(p.max(axis=1), p.argmax(axis=1) != y)


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
    if p.shape[0] == 0:
        return {"coverage": _NAN, "risk": _NAN}
    conf, pred = _conf_pred(p)
    answered = conf >= t
    n = int(answered.sum())
    return {"coverage": n / p.shape[0], "risk": float((pred[answered] != y[answered]).mean()) if n else _NAN}


def aurc(probs, labels, *, unknown_mask=None) -> float:
    """Area under the risk-coverage curve: ``mean(risk)`` over coverages k/m, k = 1..m; ``nan`` if m = 0."""
    _, risk = risk_coverage(probs, labels, unknown_mask=unknown_mask)
    return float(risk.mean()) if risk.size else _NAN


def excess_aurc(probs, labels, *, unknown_mask=None) -> float:
    """AURC minus the AURC of an oracle that ranks all correct rows first (E-AURC, >= 0)."""
    p, y = _known(probs, labels, unknown_mask)
    err = p.argmax(axis=1) != y
    if p.shape[0] == 0:
        return _NAN
    return float(_risk_from(p.max(axis=1), err).mean() - _oracle_aurc(p.shape[0], int(err.sum())))


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def accuracy(probs, labels, *, unknown_mask=None) -> float:
    """Share of known rows whose argmax equals the label; ``nan`` with no known rows."""
    p, y = _known(probs, labels, unknown_mask)
    return float(np.mean(p.argmax(axis=1) == y)) if p.shape[0] else _NAN


def _pred_and_labels(probs_or_pred: Any, labels: Any, n_classes: Any, unknown_mask: Any) -> tuple[np.ndarray, np.ndarray, int]:
    k = _check_n_classes(n_classes)
    pred = _pred_from(probs_or_pred, k)
    y, unknown = _as_labels(labels, pred.shape[0], k, unknown_mask)
    return pred[~unknown], y[~unknown], k


def confusion(pred, labels, n_classes: int, *, unknown_mask=None) -> np.ndarray:
    """Confusion matrix of the known rows, rows = true class, columns = predicted class.

    Parameters
    ----------
    pred : array_like of int, shape (n,), or probabilities of shape (n, K)
        Predicted class indices (probabilities are turned into their argmax).
    labels : array_like of int, shape (n,)
        -1 rows (and ``unknown_mask`` rows) are left out.
    n_classes : int
        K.
    unknown_mask : array_like of bool, shape (n,), optional

    Returns
    -------
    ndarray of int64, shape (K, K)
        Equal to ``sklearn.metrics.confusion_matrix(labels, pred, labels=range(K))``.
    """
    p, y, k = _pred_and_labels(pred, labels, n_classes, unknown_mask)
    return _counts(p, y, k)


def per_class(probs_or_pred, labels, n_classes: int, *, unknown_mask=None) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support over the known rows.

    Parameters
    ----------
    probs_or_pred : array_like, shape (n, K) probabilities or (n,) predicted class indices
    labels : array_like of int, shape (n,)
    n_classes : int
    unknown_mask : array_like of bool, shape (n,), optional

    Returns
    -------
    dict[str, ndarray]
        ``precision`` (float, ``nan`` for a class never predicted), ``recall`` (float, ``nan`` for
        a class with no support), ``f1`` (float, ``2TP / (2TP + FP + FN)``, 0 where that is 0/0 as
        sklearn's ``zero_division=0``) and ``support`` (int64); each shape (K,).
    """
    p, y, k = _pred_and_labels(probs_or_pred, labels, n_classes, unknown_mask)
    return _prf(_counts(p, y, k))


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


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
    out = dict.fromkeys(SUMMARY_KEYS, _NAN)
    k = p.shape[1]
    conf_all, pred_all = _conf_pred(p)
    known = ~unknown
    n_known = int(np.count_nonzero(known))
    n_unknown = p.shape[0] - n_known
    out["n_known"] = float(n_known)
    out["n_unknown"] = float(n_unknown)

    if n_unknown:
        out["forced_known_rate"] = float(np.count_nonzero(conf_all[unknown] >= tau) / n_unknown)
    out["unknown_auroc_msp"] = _auroc(-conf_all, unknown)
    if logits is not None:
        out["unknown_auroc_energy"] = _auroc(_energy(logits, temperature), unknown)

    if n_known == 0:
        return out
    if n_unknown:
        pk, yk, conf, pred = p[known], y[known], conf_all[known], pred_all[known]
    else:
        pk, yk, conf, pred = p, y, conf_all, pred_all
    hit = pred == yk
    stats = _prf(_counts(pred, yk, k))
    recall = stats["recall"]
    risk = _risk_from(conf, ~hit)
    conf_bin = _bin_index(conf, n_bins)
    out.update(
        accuracy=float(hit.mean()),
        macro_f1=float(stats["f1"].mean()),
        balanced_accuracy=float(np.nanmean(recall)),
        worst_class_recall=float(np.nanmin(recall)),
        hallucination_rate=float(np.count_nonzero(~hit & (conf >= tau)) / n_known),
        ece=_ece_from(conf, hit, n_bins, conf_bin),
        classwise_ece=_classwise_from(pk, yk, n_bins)[0],
        brier=_brier_from(pk, yk),
        nll=_nll_from(pk, yk),
        aurc=float(risk.mean()),
    )
    out["excess_aurc"] = out["aurc"] - _oracle_aurc(n_known, int(n_known - hit.sum()))
    if groups is not None:
        by_group = _ece_by_group_from(conf_bin, conf, hit, yk, groups, n_bins)
        for name in GROUPS:
            out[f"ece_{name}"] = by_group[name]
    return out


def _prepare(probs, labels, *, tau, unknown_mask, logits, train_counts, groups, head, tail, n_bins, temperature):
    p = _as_probs(probs)
    y, unknown = _as_labels(labels, p.shape[0], p.shape[1], unknown_mask)
    z = None if logits is None else _as_logits(logits, p.shape)
    if groups is not None and train_counts is not None:
        raise DataError("Pass either train_counts= or groups=, not both.")
    g = None
    if groups is not None:
        g = _groups_array(groups, p.shape[1])
    elif train_counts is not None:
        tc = np.asarray(train_counts)
        if tc.ndim != 1 or tc.shape[0] != p.shape[1]:
            raise DataError(f"train_counts must have one count per class ({p.shape[1]}, the columns of probs); got shape {tc.shape}.")
        g = group_of_classes(tc, head=head, tail=tail)
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
    head: int = 100,
    tail: int = 20,
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
        Group thresholds used with ``train_counts``.
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


def metrics_by_slice(probs, labels, slices, *, min_items: int = 1, **kw) -> dict[str, dict[str, float]]:
    """:func:`summary` of each slice of the rows (e.g. per domain or source).

    Parameters
    ----------
    probs : array_like, shape (n, K)
    labels : array_like of int, shape (n,)
    slices : array_like, shape (n,)
        Slice value of each row (any hashable values: str, int, ...).
    min_items : int, default 1
        Slices with fewer rows are left out.
    **kw
        Options of :func:`summary` (``tau``, ``unknown_mask``, ``logits``, ``train_counts``,
        ``groups``, ``head``, ``tail``, ``n_bins``, ``temperature``); per-row arrays
        (``unknown_mask``, ``logits``) are sliced along with ``probs``, per-class ones are not.

    Returns
    -------
    dict[str, dict[str, float]]
        ``str(slice value)`` -> summary dict, in sorted order of the slice values; each summary
        also has ``"n"``, the rows in the slice.
    """
    allowed = {"tau", "unknown_mask", "logits", "train_counts", "groups", "head", "tail", "n_bins", "temperature"}
    unexpected = sorted(set(kw) - allowed)
    if unexpected:
        raise DataError(f"metrics_by_slice got unknown option(s) {unexpected}; allowed: {sorted(allowed)}.")
    opts_in = dict(
        tau=DEFAULT_TAU,
        unknown_mask=None,
        logits=None,
        train_counts=None,
        groups=None,
        head=100,
        tail=20,
        n_bins=DEFAULT_N_BINS,
        temperature=1.0,
    )
    opts_in.update(kw)
    p, y, unknown, z, g, opts = _prepare(probs, labels, **opts_in)
    n = p.shape[0]
    s = np.asarray(slices)
    if s.ndim != 1 or s.shape[0] != n:
        raise DataError(f"slices must be 1-D with one value per row of probs ({n}); got shape {s.shape}.")
    try:
        values, inverse = np.unique(s, return_inverse=True)
        keys = [str(v) for v in values.tolist()]
        if len(set(keys)) != len(keys):
            raise TypeError
    except TypeError:  # unorderable mix (e.g. None and str) or values printing alike
        values, inverse = np.unique(s.astype(str), return_inverse=True)
        keys = [str(v) for v in values.tolist()]
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(keys)))
    out: dict[str, dict[str, float]] = {}
    start = 0
    for key, stop in zip(keys, bounds.tolist()):
        idx = order[start:stop]
        start = stop
        if idx.size < max(int(min_items), 1):
            continue
        res = {"n": float(idx.size)}
        res.update(_summary_validated(p[idx], y[idx], unknown[idx], None if z is None else z[idx], g, **opts))
        out[key] = res
    return out
