"""The one rule for which meta columns are *slices* (domain, source, rater agreement, …).

Used by the profile (counts per slice on the Data page) and by training (every metric per slice
at each evaluation), so both show the same slices with the same values:

- a column with 2 to ``MAX_SLICE_VALUES`` distinct values is a slice as it is;
- a numeric column with more values is cut into quartiles (an interval per row), unless it is
  an integer column whose values are all distinct — an identifier such as ``source_item``;
- any other column (file names, free text) is not a slice; neither is a column with one value;
- bookkeeping is never a slice: ``source_item`` (the parent version's row) and the simulator's
  ground truth (``sim_*``, which says which labels it corrupted).

A missing value is its own slice value, ``"(missing)"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_SLICE_VALUES = 50
MISSING = "(missing)"
BOOKKEEPING = frozenset({"source_item"})
TRUTH_PREFIX = "sim_"


def slice_values(column: pd.Series) -> np.ndarray | None:
    """The slice value (a string) of each row of ``column``, or None when it is not a slice."""
    distinct = column.nunique(dropna=True) + int(column.isna().any())
    if distinct < 2:
        return None
    if distinct <= MAX_SLICE_VALUES:
        key = column.astype("string")
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        if pd.api.types.is_integer_dtype(column) and column.is_unique:
            return None  # an identifier, not a group
        key = pd.qcut(column.astype(float), 4, duplicates="drop").astype("string")
    else:
        return None
    return key.fillna(MISSING).to_numpy(dtype=object)


def slice_columns(meta: pd.DataFrame) -> dict[str, np.ndarray]:
    """``{column: slice value per row}`` for every meta column that is a slice, in column order."""
    out: dict[str, np.ndarray] = {}
    for col in meta.columns:
        if str(col) in BOOKKEEPING or str(col).startswith(TRUTH_PREFIX):
            continue
        values = slice_values(meta[col])
        if values is not None:
            out[str(col)] = values
    return out
