"""Tabular models: columns → a standardised numeric matrix, and an MLP trained from scratch.

``tabular_features`` is torch-free (the Diagnose page embeds tables with it); the MLP needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import DataError

if TYPE_CHECKING:
    from core.models.build import Built
    from core.train.config import RunConfig

MAX_ONE_HOT = 50  # categorical columns with more distinct values are left out of tabular features


@dataclass(frozen=True)
class TabularEncoder:
    """The column → feature rule ``tabular_features`` describes, fitted on one table and applied to
    any table with the same columns (a target the run never saw is encoded as its train data was)."""

    numeric: list[tuple[str, float, float, float]]  # (column, median fill, mean, std)
    categorical: list[tuple[str, list[str], bool]]  # (column, categories, a "missing" column)

    @classmethod
    def fit(cls, df: pd.DataFrame) -> TabularEncoder:
        numeric_cols = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
        numeric = []
        for c in numeric_cols:
            v = _finite(df[c])
            finite = v[~np.isnan(v)]
            fill = float(np.median(finite)) if finite.size else 0.0
            v = np.where(np.isnan(v), fill, v)
            std = float(v.std())
            numeric.append((str(c), fill, float(v.mean()), std if std > 0 else 1.0))
        categorical = []
        for c in df.columns:
            if c in numeric_cols:
                continue
            missing = df[c].isna().to_numpy()
            cats = sorted(df[c][~missing].astype(str).unique())
            if len(cats) <= MAX_ONE_HOT:
                categorical.append((str(c), cats, bool(missing.any())))
        if not numeric and not any(cats or has_missing for _, cats, has_missing in categorical):
            raise DataError(
                "No column can be turned into features: every column is text-like with more than "
                f"{MAX_ONE_HOT} distinct values. Add numeric or categorical columns, or load the file as text."
            )
        return cls(numeric, categorical)

    @property
    def names(self) -> list[str]:
        out = [c for c, *_ in self.numeric]
        for c, cats, has_missing in self.categorical:
            out += [f"{c}={cat}" for cat in cats] + ([f"{c}=missing"] if has_missing else [])
        return out

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """float32 (n, d): unseen categories get all-zero columns; a missing value where the fitted
        table had none, too."""
        absent = [c for c, *_ in self.numeric if c not in df.columns] + [c for c, *_ in self.categorical if c not in df.columns]
        if absent:
            raise DataError(f"the table lacks the column(s) {absent} the model was trained with; give a table with the same columns.")
        n = len(df)
        blocks: list[np.ndarray] = []
        for c, fill, mean, std in self.numeric:
            v = _finite(df[c])
            blocks.append(((np.where(np.isnan(v), fill, v) - mean) / std)[:, None])
        for c, cats, has_missing in self.categorical:
            col = df[c]
            missing = col.isna().to_numpy()
            as_str = col.astype(str).to_numpy()
            blocks += [((as_str == cat) & ~missing).astype(np.float64)[:, None] for cat in cats]
            if has_missing:
                blocks.append(missing.astype(np.float64)[:, None])
        return np.hstack(blocks).astype(np.float32).reshape(n, -1) if blocks else np.zeros((n, 0), np.float32)


def _finite(s: pd.Series) -> np.ndarray:
    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(v), v, np.nan)


def tabular_features(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Numeric matrix for tabular data: float32 (n, d) and the d column names.

    - numeric and boolean columns, in the given order: non-finite values → the column median
      (0 if the column has none), then standardised to mean 0, standard deviation 1 (population
      std; a constant column becomes all 0);
    - then categorical columns (anything else) with at most ``MAX_ONE_HOT`` distinct values:
      one 0/1 column per value, named ``"col=value"``, values sorted as strings; a missing value
      becomes its own ``"col=missing"`` column, last. Columns with more values are left out.

    ``TabularEncoder.fit(df)`` is this rule fitted; ``.transform`` applies it to another table.
    """
    enc = TabularEncoder.fit(df)
    return enc.transform(df), enc.names


def tabular_matrix(items: pd.DataFrame) -> np.ndarray:
    """Tabular items → C-contiguous float32 (n, d) from ``tabular_features``."""
    X, _ = tabular_features(items)
    return np.ascontiguousarray(X, dtype=np.float32)


def build_mlp(cfg: RunConfig, *, n_classes: int, n_features: int = 0, **_: Any) -> Built:
    """An MLP on the standardised columns, from scratch."""
    from core.models.build import Built
    from core.models.nets import MLP

    return Built(MLP(n_features, n_classes), feed="vector", arch="mlp")
