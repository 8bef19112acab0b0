"""Input checks shared by every metric: each turns an array-like into a validated numpy array or
raises ``core.errors.DataError`` (a ``ValueError``) whose message says what to change.

``_as_probs`` (softmax rows), ``_as_labels`` (class indices, -1 = unknown class, plus an optional
``unknown_mask``), ``_as_logits``, ``_as_mask``, ``_as_conf`` and ``_as_flags`` (per-item
confidences and booleans), ``_check_n_bins`` / ``_check_tau`` / ``_check_temperature`` /
``_check_n_classes`` (scalar options), ``_as_groups`` (a group name per class), and two
combinations: ``_known`` (validated probs and labels of the known rows) and ``_pred_from``
(predicted classes from probabilities or from class indices).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import DataError

#: Label of an input whose class was absent from training.
UNKNOWN_LABEL = -1
#: How far a row of probabilities may sum from 1 (float32 softmax rounding passes).
SUM_TOLERANCE = 1e-3


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


def _as_conf(conf: Any) -> np.ndarray:
    """Validated top-label confidences: 1-D float64 in [0, 1]."""
    try:
        c = np.asarray(conf, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("conf must be a 1-D array of top-label confidences in [0, 1] (e.g. probs.max(axis=1)).") from None
    if c.ndim != 1:
        raise DataError(f"conf must be 1-D with one confidence per item; got shape {c.shape}. Pass probs.max(axis=1).")
    if c.size and not (np.isfinite(c).all() and c.min() >= 0.0 and c.max() <= 1.0 + SUM_TOLERANCE):
        raise DataError("conf must hold confidences in [0, 1] without NaN; pass the top softmax probability of each item.")
    return c


def _as_flags(values: Any, n: int, *, name: str) -> np.ndarray:
    """Validated 1-D boolean array with one entry per item."""
    f = np.asarray(values)
    if f.ndim != 1 or f.shape[0] != n:
        raise DataError(f"{name} must be 1-D with one entry per item ({n}, as conf); got shape {f.shape}.")
    if f.dtype != bool:
        raise DataError(f"{name} must be boolean; got dtype {f.dtype}. Build it with e.g. pred == labels.")
    return f


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


def _check_n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise DataError(f"n_classes must be a positive integer; got {n_classes!r}.")
    return int(n_classes)


def _as_groups(groups_per_class: Any, k: int) -> np.ndarray:
    g = np.asarray(groups_per_class)
    if g.ndim != 1 or g.shape[0] != k:
        raise DataError(
            f"groups_per_class must have one entry per class ({k}); got shape {g.shape}. Build it with group_of_classes(train_counts)."
        )
    return g.astype(str)


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
