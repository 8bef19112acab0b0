"""Head / medium / tail: the one rule that groups classes by their number of training items.

The Data page colours classes by it, the training loop scores ``ece_head`` / ``ece_medium`` /
``ece_tail`` with it, and Compare and the report read those scores, so a class is "tail" in the same
place everywhere for the same train counts.

The rule is the long-tail literature's split (ImageNet-LT / Places-LT, Liu et al. 2019, "Large-Scale
Long-Tailed Recognition in an Open World"): head = more than 100 training items, tail = fewer than
20, medium in between. The thresholds are absolute, not scaled to the data: how hard a class is to
learn depends on how many examples it has, not on how many its neighbours have, and fixed
thresholds keep a run's group scores comparable with every other run's. On a small dataset whose
classes all have fewer than 20 items every class is tail; ``rule_words`` and the Data page say so
instead of shifting the thresholds.
"""

from __future__ import annotations

import numpy as np

from core.errors import DataError

__all__ = ["GROUPS", "HEAD_ABOVE", "TAIL_BELOW", "group_counts", "group_of_classes", "rule_words"]

#: A class with more than this many training items is "head".
HEAD_ABOVE = 100
#: A class with fewer than this many training items is "tail".
TAIL_BELOW = 20
#: The groups, in the order pages list them.
GROUPS = ("head", "medium", "tail")


def group_of_classes(train_counts, *, head: int = HEAD_ABOVE, tail: int = TAIL_BELOW) -> np.ndarray:
    """Head / medium / tail group of each class from its number of training items.

    Parameters
    ----------
    train_counts : array_like of int, shape (K,)
        Training items per class.
    head : int, default ``HEAD_ABOVE`` (100)
        A class with *more than* ``head`` items is ``"head"``.
    tail : int, default ``TAIL_BELOW`` (20)
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


def group_counts(groups) -> dict[str, int]:
    """Classes per group, every group of ``GROUPS`` present (0 when empty)."""
    values = np.asarray(groups).tolist()
    return {g: values.count(g) for g in GROUPS}


def rule_words(head: int = HEAD_ABOVE, tail: int = TAIL_BELOW) -> str:
    """The rule as a page says it: "head: more than 100 train items; medium: 20–100; tail: fewer than 20"."""
    return f"head: more than {head} train items; medium: {tail}–{head}; tail: fewer than {tail}"
