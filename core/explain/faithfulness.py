"""Deletion curves: remove an item's most attributed parts first and watch the class's probability.

A faithful attribution names the parts the model relies on, so removing them first makes the
probability fall faster than removing parts at random (Samek et al. 2017; Petsiuk et al. 2018).
The curve is read at a fixed grid of removed fractions; its area (the mean over that grid, by the
trapezoid rule) is the figure compared — lower is more faithful. Torch-free: the caller removes
the parts and scores the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FRACTIONS = np.linspace(0.0, 1.0, 21)


def removal_counts(n_parts: int, fractions: np.ndarray = FRACTIONS) -> np.ndarray:
    """How many parts are removed at each fraction (0 … n_parts)."""
    return np.round(np.asarray(fractions) * n_parts).astype(np.int64)


def order_by(values: np.ndarray) -> np.ndarray:
    """Parts from the most to the least attributed (largest value first; ties by position)."""
    v = np.asarray(values, np.float64).ravel()
    return np.lexsort((np.arange(len(v)), -v))


def deletion_curve(score: Callable[[list[np.ndarray]], np.ndarray], order: np.ndarray, fractions: np.ndarray = FRACTIONS) -> np.ndarray:
    """The class's probability after removing the first k parts of ``order`` at every fraction:
    ``score`` takes a list of removed-part index arrays and returns one probability each."""
    counts = removal_counts(len(order), fractions)
    return np.asarray(score([np.asarray(order[:k]) for k in counts]), dtype=np.float64)


def area(curve: np.ndarray, fractions: np.ndarray = FRACTIONS) -> float:
    """Area under a deletion curve over the removed fraction (0 … 1)."""
    c = np.asarray(curve, np.float64)
    f = np.asarray(fractions, np.float64)
    return float(np.sum((c[1:] + c[:-1]) * np.diff(f)) / 2.0)
