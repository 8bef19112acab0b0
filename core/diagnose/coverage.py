"""Coverage: classes missing or too thin in a split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.data.dataset import SPLITS
from core.diagnose.arrays import as_labels, check_labels_fit
from core.errors import DataError


def coverage(
    labels: Any,
    split: Any,
    n_classes: int,
    *,
    min_count: int = 5,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-class counts per split, and the gaps: missing, too few, unseen in train.

    Only splits that hold at least one item count: a dataset without a val split does not
    report every class as missing from val.

    Parameters
    ----------
    labels : array-like of shape (n,)
    split : array-like of shape (n,)
        Split codes: 0 train, 1 val, 2 test.
    n_classes : int
        K (classes with no item still get a row).
    min_count : int, default 5
        Fewer items than this in a present split sets ``below_min_<split>``.
    class_names : sequence of str of length K, optional

    Returns
    -------
    DataFrame with one row per class and columns ``class``, ``name``, ``train``, ``val``,
    ``test``, ``total``, ``missing_in`` (tuple of split names where the class has no item),
    ``below_min_train``, ``below_min_val``, ``below_min_test`` (bool) and ``unseen_in_train``
    (bool: in val or test but never in train).
    """
    y = as_labels(labels)
    sp = as_labels(split, len(y), name="split")
    if sp.size and sp.max() > 2:
        raise DataError("split codes must be 0 (train), 1 (val) or 2 (test).")
    K = int(n_classes)
    check_labels_fit(y, K, "n_classes")
    if class_names is not None and len(class_names) != K:
        raise DataError(f"class_names has {len(class_names)} names but n_classes is {K}; pass one name per class.")
    names = [str(c) for c in class_names] if class_names is not None else [str(c) for c in range(K)]
    table = np.bincount(sp * K + y, minlength=3 * K).reshape(3, K)
    present = np.bincount(sp, minlength=3) > 0
    df = pd.DataFrame({"class": np.arange(K), "name": names})
    for s, nm in enumerate(SPLITS):
        df[nm] = table[s]
    df["total"] = table.sum(axis=0)
    df["missing_in"] = [tuple(SPLITS[s] for s in range(3) if present[s] and table[s, c] == 0) for c in range(K)]
    for s, nm in enumerate(SPLITS):
        df[f"below_min_{nm}"] = present[s] & (table[s] < min_count)
    df["unseen_in_train"] = (table[0] == 0) & (table[1:].sum(axis=0) > 0)
    return df
