"""Classification metrics of the known-class rows: accuracy, confusion matrix, per-class
precision / recall / F1, macro-F1, balanced accuracy and worst-class recall.

Each public function validates its inputs and ignores unknown-class rows (label -1, or marked by
``unknown_mask``)::

    from core import metrics as M
    M.accuracy(probs, labels)                   # probs (n, K) softmax, labels (n,) in [0, K) or -1
    M.macro_f1(probs.argmax(1), labels, K)      # predicted classes or probabilities, and K
    M.per_class(probs, labels, K)["recall"]     # (K,), nan for a class without support

Conventions: ``macro_f1`` averages per-class F1 = 2TP / (2TP + FP + FN) over *all* K training
classes, 0 where that is 0/0 — exactly ``sklearn.metrics.f1_score(y, pred, labels=range(K),
average="macro", zero_division=0)``, so a class absent from the test split and never predicted
counts as F1 = 0. Per-class ``recall`` is ``nan`` for a class with no support and ``precision`` is
``nan`` for a class never predicted; ``balanced_accuracy`` and ``worst_class_recall`` ignore
classes with no support, as ``sklearn.metrics.balanced_accuracy_score`` does. With no known rows
every scalar is ``nan``.

The ``_…_from`` helpers take already-validated known rows (or their confusion counts); ``summary``
calls them too, so each number has one implementation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.metrics._common import NAN
from core.metrics._validate import _as_labels, _check_n_classes, _known, _pred_from

__all__ = ["accuracy", "balanced_accuracy", "confusion", "macro_f1", "per_class", "worst_class_recall"]


# ------------------------------------------------------------------ on validated arrays


def _accuracy_from(hit: np.ndarray) -> float:
    """Share of True in ``hit`` (prediction == label per known row); ``nan`` when empty."""
    return float(hit.mean()) if hit.shape[0] else NAN


def _counts(pred: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts (K, K): rows = true class, columns = predicted class."""
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def _prf(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support of confusion counts."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        denom = (support + predicted).astype(np.float64)
        f1 = np.where(denom > 0, 2.0 * tp / denom, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def _macro_f1_from(stats: dict[str, np.ndarray]) -> float:
    """Mean per-class F1 over all K classes (``stats`` from ``_prf``); ``nan`` with no rows."""
    return float(stats["f1"].mean()) if stats["support"].sum() else NAN


def _balanced_accuracy_from(stats: dict[str, np.ndarray]) -> float:
    """Mean recall over the classes with support; ``nan`` with no rows."""
    return float(np.nanmean(stats["recall"])) if stats["support"].sum() else NAN


def _worst_class_recall_from(stats: dict[str, np.ndarray]) -> float:
    """Lowest recall over the classes with support; ``nan`` with no rows."""
    return float(np.nanmin(stats["recall"])) if stats["support"].sum() else NAN


# ------------------------------------------------------------------ public


def _pred_and_labels(probs_or_pred: Any, labels: Any, n_classes: Any, unknown_mask: Any) -> tuple[np.ndarray, np.ndarray, int]:
    k = _check_n_classes(n_classes)
    pred = _pred_from(probs_or_pred, k)
    y, unknown = _as_labels(labels, pred.shape[0], k, unknown_mask)
    if unknown.any():
        return pred[~unknown], y[~unknown], k
    return pred, y, k


def accuracy(probs, labels, *, unknown_mask=None) -> float:
    """Share of known rows whose argmax equals the label; ``nan`` with no known rows."""
    p, y = _known(probs, labels, unknown_mask)
    return _accuracy_from(p.argmax(axis=1) == y)


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


def macro_f1(probs_or_pred, labels, n_classes: int, *, unknown_mask=None) -> float:
    """Macro-F1 of the known rows over all ``n_classes`` classes (sklearn's ``average="macro",
    zero_division=0`` with ``labels=range(K)``); ``nan`` with no known rows.

    ``probs_or_pred`` is probabilities (n, K) or predicted class indices (n,).
    """
    return _macro_f1_from(per_class(probs_or_pred, labels, n_classes, unknown_mask=unknown_mask))


def balanced_accuracy(probs_or_pred, labels, n_classes: int, *, unknown_mask=None) -> float:
    """Mean per-class recall over the classes present among the known rows (as
    ``sklearn.metrics.balanced_accuracy_score``); ``nan`` with no known rows."""
    return _balanced_accuracy_from(per_class(probs_or_pred, labels, n_classes, unknown_mask=unknown_mask))


def worst_class_recall(probs_or_pred, labels, n_classes: int, *, unknown_mask=None) -> float:
    """Lowest per-class recall over the classes present among the known rows; ``nan`` with none."""
    return _worst_class_recall_from(per_class(probs_or_pred, labels, n_classes, unknown_mask=unknown_mask))
