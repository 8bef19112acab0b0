"""Scores per train item from a run's training dynamics (``RunFiles.dynamics()``).

- ``data_map``: per item, **confidence** (mean over epochs of the given label's probability),
  **variability** (its standard deviation over epochs) and **correctness** (the share of epochs it
  was right), and a region: *ambiguous* — the third of items whose probability moved most —, else
  *hard to learn* when confidence is below 0.5, else *easy*. Hard-to-learn items are often label
  errors; ambiguous ones teach the most (Swayamdipta et al. 2020).
- ``el2n``: the mean L2 norm of softmax − one-hot over the first epochs (a fifth of them, at least
  one): high early error = an important (or mislabelled) item (Paul et al. 2021).
- ``forgetting``: forgetting events (right, then wrong at a later presentation); an item never
  right counts as forgotten more than any other (Toneva et al. 2019).

Epochs that did not draw an item (resampling) are left out of its means.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError

__all__ = ["REGIONS", "data_map", "el2n", "forgetting"]

REGIONS = ("easy", "ambiguous", "hard to learn")
AMBIGUOUS_SHARE = 1 / 3  # the most variable third


def checked(dyn: dict[str, Any] | None) -> dict[str, Any]:
    if dyn is None:
        raise DataError("this run kept no training dynamics: train a classification run (runs keep them since this version).")
    if len(dyn["p_given"]) == 0:
        raise DataError("the run ended before its first epoch closed: no training dynamics to score. Train it longer.")
    return dyn


def _nanmean(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an item no epoch drew: NaN, said as such
        return np.nanmean(a.astype(np.float64), axis=0)


def data_map(dyn: dict[str, Any] | None) -> pd.DataFrame:
    """One row per train item: row, confidence, variability, correctness, region."""
    d = checked(dyn)
    p = d["p_given"].astype(np.float64)
    conf = _nanmean(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var = np.nanstd(p, axis=0)
    correct = _nanmean(d["right"])
    cut = np.nanquantile(var, 1 - AMBIGUOUS_SHARE) if np.isfinite(var).any() else np.inf
    region = np.where(var >= cut, "ambiguous", np.where(conf < 0.5, "hard to learn", "easy"))
    if p.shape[0] < 2:  # one epoch: no variability to speak of
        region = np.where(conf < 0.5, "hard to learn", "easy")
    return pd.DataFrame({"row": d["rows"], "confidence": conf, "variability": var, "correctness": correct, "region": region})


def el2n(dyn: dict[str, Any] | None, *, epochs: int | None = None) -> np.ndarray:
    """Per train item: the mean EL2N over its first ``epochs`` epochs (default a fifth, at least 1)."""
    d = checked(dyn)
    e = d["el2n"]
    k = epochs if epochs is not None else max(1, round(len(e) / 5))
    return _nanmean(e[: max(1, min(k, len(e)))])


def forgetting(dyn: dict[str, Any] | None) -> np.ndarray:
    """Per train item: forgetting events; an item never right scores above every other."""
    d = checked(dyn)
    events = d["forgetting"].astype(np.float64)
    never = np.nan_to_num(_nanmean(d["right"]), nan=0.0) == 0
    return np.where(never, events.max(initial=0) + 1.0, events)
