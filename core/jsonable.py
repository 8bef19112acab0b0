"""The one conversion of Gapscope values to what JSON can hold.

numpy arrays become lists, numpy scalars Python numbers, tuples lists, paths strings, and every
non-finite float (NaN, ±inf) ``None`` — JSON has no NaN, and a metric that is undefined is stored
as null everywhere (SQLite rows, run files, reports).
"""

from __future__ import annotations

import math
from pathlib import PurePath
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """A copy of ``obj`` made of dict, list, str, int, float (finite), bool and None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, PurePath):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def finite_or_none(value: Any) -> float | None:
    """``float(value)`` when it is a finite number, else None (how a metric value is stored)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
