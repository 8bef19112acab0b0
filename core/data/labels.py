"""Label columns → class indices and names, refusing columns that cannot be labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import DataError

MAX_CLASSES = 1000  # a "label" column with more distinct values is almost surely not a label


def encode_labels(values: pd.Series, *, column: str = "label") -> tuple[np.ndarray, list[str], list[str]]:
    """Turn a label column into (codes, class_names, warnings), rejecting columns that are not labels.

    Rows without a label must be removed by the caller first. Class names are sorted naturally
    (numbers as numbers), so digits come out 0..9.
    """
    if len(values) == 0:
        raise DataError("The dataset has no labelled rows. Add rows with a value in the label column.")
    as_str = values.astype(str).str.strip()
    uniques = pd.unique(as_str)
    if len(uniques) > MAX_CLASSES:
        raise DataError(
            f"Column '{column}' has {len(uniques):,} distinct values; a label column has at most "
            f"{MAX_CLASSES:,}. Pick the column that holds the class, or bin this one into classes first."
        )
    if len(uniques) < 2:
        raise DataError(
            f"Every row has the same label ('{uniques[0]}'). A classifier needs at least two classes: "
            "add examples of another class, or pick a different label column."
        )

    def key(s: str):
        try:
            return (0, float(s), s)
        except ValueError:
            return (1, 0.0, s)

    class_names = sorted(uniques, key=key)
    lookup = {c: i for i, c in enumerate(class_names)}
    codes = as_str.map(lookup).to_numpy(np.int64)
    warnings = []
    counts = np.bincount(codes, minlength=len(class_names))
    singletons = [class_names[i] for i in np.flatnonzero(counts == 1)]
    if singletons:
        warnings.append(
            f"{len(singletons)} class(es) have a single example ({', '.join(map(str, singletons[:5]))}"
            f"{'…' if len(singletons) > 5 else ''}); they stay in train and cannot be evaluated."
        )
    return codes, class_names, warnings
