"""Metrics per slice of the rows (per domain, source, rater group, ...): ``metrics_by_slice``.

Usage::

    from core import metrics as M
    by_domain = M.metrics_by_slice(probs, labels, domain, tau=0.9, logits=logits, min_items=20)
    by_domain["news"]["hallucination_rate"]                  # a summary dict, plus "n"

The inputs are validated once for all rows; each slice then gets the same ``summary`` core
(``core.metrics.summaries``), so a slice's numbers equal ``summary`` of its rows exactly. Which
column is a slice is decided elsewhere (``core.data.slices``).
"""

from __future__ import annotations

import numpy as np

from core.errors import DataError
from core.metrics.summaries import OPTIONS, _prepare, _summary_validated

__all__ = ["metrics_by_slice"]


def _slice_keys(s: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(``str`` of each distinct value in sorted order, the key index of each row)."""
    try:
        values, inverse = np.unique(s, return_inverse=True)
        keys = [str(v) for v in values.tolist()]
        if len(set(keys)) != len(keys):
            raise TypeError
    except TypeError:  # unorderable mix (e.g. None and str) or values printing alike
        values, inverse = np.unique(s.astype(str), return_inverse=True)
        keys = [str(v) for v in values.tolist()]
    return keys, inverse.reshape(-1)


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
    unexpected = sorted(set(kw) - set(OPTIONS))
    if unexpected:
        raise DataError(f"metrics_by_slice got unknown option(s) {unexpected}; allowed: {sorted(OPTIONS)}.")
    p, y, unknown, z, g, opts = _prepare(probs, labels, **{**OPTIONS, **kw})
    n = p.shape[0]
    s = np.asarray(slices)
    if s.ndim != 1 or s.shape[0] != n:
        raise DataError(f"slices must be 1-D with one value per row of probs ({n}); got shape {s.shape}.")
    keys, inverse = _slice_keys(s)
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
