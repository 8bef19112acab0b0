"""Small array routines the metric modules share (not part of the public API).

- ``NAN``: the value of a metric with nothing to average over.
- ``conf_pred(p)``: top-label confidence and predicted class of validated probabilities.
- ``tie_blocks(sorted_values)``: the blocks of equal values in a sorted array, used wherever ties
  must not depend on the input order (AUROC's average ranks, the risk–coverage tie rule).
"""

from __future__ import annotations

import numpy as np

NAN = float("nan")


def conf_pred(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence (n,), predicted class (n,)) of probabilities (n, K); ties go to the lowest class."""
    pred = p.argmax(axis=1)
    return np.take_along_axis(p, pred[:, None], axis=1)[:, 0], pred


def tie_blocks(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted values: (block start of each block, block sizes, block id of each position)."""
    n = sorted_values.shape[0]
    new_block = np.empty(n, dtype=bool)
    new_block[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new_block[1:])
    starts = np.flatnonzero(new_block)
    sizes = np.diff(np.append(starts, n))
    return starts, sizes, np.cumsum(new_block) - 1
