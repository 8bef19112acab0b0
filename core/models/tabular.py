"""Tabular models: columns → a standardised numeric matrix, and an MLP trained from scratch.

``tabular_features`` is torch-free (the Diagnose page embeds tables with it); the MLP needs torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import DataError

if TYPE_CHECKING:
    from core.models.build import Built
    from core.train.config import RunConfig

MAX_ONE_HOT = 50  # categorical columns with more distinct values are left out of tabular features


def tabular_features(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Numeric matrix for tabular data: float32 (n, d) and the d column names.

    - numeric and boolean columns, in the given order: non-finite values → the column median
      (0 if the column has none), then standardised to mean 0, standard deviation 1 (population
      std; a constant column becomes all 0);
    - then categorical columns (anything else) with at most ``MAX_ONE_HOT`` distinct values:
      one 0/1 column per value, named ``"col=value"``, values sorted as strings; a missing value
      becomes its own ``"col=missing"`` column, last. Columns with more values are left out.
    """
    blocks: list[np.ndarray] = []
    names: list[str] = []
    n = len(df)
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    for c in numeric:
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        v = np.where(np.isfinite(v), v, np.nan)
        finite = v[~np.isnan(v)]
        v = np.where(np.isnan(v), float(np.median(finite)) if finite.size else 0.0, v)
        std = v.std()
        blocks.append(((v - v.mean()) / (std if std > 0 else 1.0))[:, None])
        names.append(str(c))
    for c in df.columns:
        if c in numeric:
            continue
        col = df[c]
        missing = col.isna().to_numpy()
        values = col[~missing].astype(str)
        cats = sorted(values.unique())
        if len(cats) > MAX_ONE_HOT:
            continue
        as_str = col.astype(str).to_numpy()
        for cat in cats:
            blocks.append(((as_str == cat) & ~missing).astype(np.float64)[:, None])
            names.append(f"{c}={cat}")
        if missing.any():
            blocks.append(missing.astype(np.float64)[:, None])
            names.append(f"{c}=missing")
    if not blocks:
        raise DataError(
            "No column can be turned into features: every column is text-like with more than "
            f"{MAX_ONE_HOT} distinct values. Add numeric or categorical columns, or load the file as text."
        )
    return np.hstack(blocks).astype(np.float32).reshape(n, -1), names


def tabular_matrix(items: pd.DataFrame) -> np.ndarray:
    """Tabular items → C-contiguous float32 (n, d) from ``tabular_features``."""
    X, _ = tabular_features(items)
    return np.ascontiguousarray(X, dtype=np.float32)


def build_mlp(cfg: RunConfig, *, n_classes: int, n_features: int = 0, **_: Any) -> Built:
    """An MLP on the standardised columns, from scratch."""
    from core.models.build import Built
    from core.models.nets import MLP

    return Built(MLP(n_features, n_classes), feed="vector", arch="mlp")
