"""Who a run fails: its metrics per group of a sensitive column, and the gaps between groups.

- ``sensitive_groups``: each item's group in a meta column (numeric columns with many values cut
  into quantile bins over the whole version, so every run of it gets the same groups);
- ``group_table``: per group — items, accuracy, ECE, hallucination @τ and recall per class — through
  fairlearn's ``MetricFrame`` with the project's own metric functions (``core.metrics``), then the
  difference (largest − smallest) and ratio (smallest / largest) between groups;
- ``binary_gaps``: for two-class tasks, demographic parity and equalized odds differences of the
  decisions for the positive class — computed here from (weighted) rates, so a bootstrap can resample
  them as one matrix product (``gap_rates``), and checked against fairlearn's in the tests;
- ``bootstrap_gaps``: percentile intervals of those gaps and of accuracy, for one set of decisions or
  the paired change between two on the same items.

Torch-free.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.data.dataset import Dataset
from core.errors import DataError
from core.metrics import accuracy, ece, hallucination_rate

NUMERIC_BINS = 4  # quantile bins for a numeric sensitive column with many values
MAX_GROUPS = 30
MISSING = "(missing)"
NOT_SENSITIVE = ("importance_weight", "instance_weight", "source_item", "mean_rating", "rating_std", "n_raters", "agreement")
N_BOOT, LEVEL = 1000, 0.95


def sensitive_columns(ds: Dataset) -> list[str]:
    """Meta columns that can group people or sources: 2 to ``MAX_GROUPS`` distinct values, or numeric
    (binned); the simulator's truth (``sim_*``) and weights left out."""
    out = []
    for c in ds.meta.columns:
        if str(c).startswith("sim_") or c in NOT_SENSITIVE:
            continue
        col = ds.meta[c]
        distinct = col.nunique(dropna=True)
        if (
            pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and distinct > MAX_GROUPS
        ) or 2 <= distinct <= MAX_GROUPS:
            out.append(str(c))
    return out


def sensitive_groups(ds: Dataset, rows: np.ndarray, column: str, *, bins: int = NUMERIC_BINS) -> np.ndarray:
    """Each of ``rows``' group in meta column ``column`` as text; a numeric column with more than
    ``MAX_GROUPS`` values is cut at its quantiles over the whole version ("age 15–33")."""
    if column not in ds.meta.columns:
        raise DataError(f"this version has no column {column!r} to group by; choose one of {', '.join(sensitive_columns(ds)) or 'none'}.")
    col = ds.meta[column]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and col.nunique(dropna=True) > MAX_GROUPS:
        edges = np.unique(np.nanquantile(col.to_numpy(dtype=np.float64), np.linspace(0, 1, bins + 1)))
        cut = pd.cut(col, edges, include_lowest=True, duplicates="drop")
        names = [f"{column} {iv.left:g}–{iv.right:g}" for iv in cut.cat.categories]
        labels = np.array([names[c] if c >= 0 else MISSING for c in cut.cat.codes.to_numpy()], dtype=object)
    else:
        labels = np.array([MISSING if pd.isna(v) else str(v) for v in col.to_numpy()], dtype=object)
    return labels[np.asarray(rows, dtype=np.int64)]


def group_table(probs: np.ndarray, y: np.ndarray, groups: np.ndarray, class_names: list[str], *, tau: float) -> pd.DataFrame:
    """Rows: each group, then "difference" and "ratio"; columns: items, accuracy, ECE, hallucination
    @τ, recall of each class. ``probs`` (n, K) over the dataset's classes, ``y`` dataset classes."""
    from fairlearn.metrics import MetricFrame

    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y, dtype=np.int64)
    pred = probs.argmax(axis=1)

    def on_probs(fn: Any) -> Any:  # MetricFrame splits 1-D sample parameters only: each group's rows, to index ``probs`` with
        return lambda y_true, y_pred, rows: fn(probs[rows], y_true)

    metrics: dict[str, Any] = {
        "items": lambda y_true, y_pred: float(len(y_true)),
        "accuracy": lambda y_true, y_pred: accuracy(np.eye(len(class_names))[y_pred], y_true),
        "ECE": on_probs(ece),
        f"hallucination @{tau:g}": on_probs(lambda p, t: hallucination_rate(p, t, tau=tau)),
    }
    for k, name in enumerate(class_names):
        metrics[f"recall: {name}"] = lambda y_true, y_pred, k=k: float((y_pred[y_true == k] == k).mean()) if (y_true == k).any() else np.nan
    params = {name: {"rows": np.arange(len(y))} for name in ("ECE", f"hallucination @{tau:g}")}
    frame = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=pd.Series(groups, name="group"), sample_params=params)
    table = frame.by_group.astype(float)
    measured = table.drop(columns="items")
    table.loc["difference"] = [np.nan, *(measured.max() - measured.min()).tolist()]
    ratio = measured.min() / measured.max()
    table.loc["ratio"] = [np.nan, *ratio.where(measured.max() > 0).tolist()]
    return table


def gap_rates(weights: np.ndarray, y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    """Demographic parity difference, equalized odds difference and accuracy of binary decisions
    ``pred`` (1 = positive) against ``y`` (1 = positive), for each row of ``weights`` (r, n) — how
    often each item counts (1 everywhere: the plain figures; bootstrap counts: a resample). The
    definitions are fairlearn's: the largest minus the smallest group's selection rate; the larger of
    the true- and false-positive rates' differences."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    names = np.unique(groups)
    sel, tpr, fpr = [], [], []
    for g in names:
        at = groups == g
        n, pos, neg = w[:, at].sum(1), w[:, at & y].sum(1), w[:, at & ~y].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sel.append(w[:, at & pred].sum(1) / n)
            tpr.append(w[:, at & y & pred].sum(1) / pos)
            fpr.append(w[:, at & ~y & pred].sum(1) / neg)

    def spread(rates: list[np.ndarray]) -> np.ndarray:
        r = np.vstack(rates)
        return np.nanmax(r, axis=0) - np.nanmin(r, axis=0)

    with np.errstate(invalid="ignore"):
        acc = (w * (y == pred)).sum(1) / w.sum(1)
    return {
        "demographic_parity_difference": spread(sel),
        "equalized_odds_difference": np.maximum(spread(tpr), spread(fpr)),
        "accuracy": acc,
    }


def binary_gaps(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """``gap_rates`` of one set of binary decisions."""
    return {k: float(v[0]) for k, v in gap_rates(np.ones((1, len(y))), y, pred, groups).items()}


def bootstrap_gaps(y: np.ndarray, pred_a: np.ndarray, groups: np.ndarray, pred_b: np.ndarray | None = None, *, n_boot: int = N_BOOT,
                   seed: int = 0, level: float = LEVEL) -> dict[str, dict[str, float]]:  # fmt: skip
    """Each gap (and accuracy) of ``pred_a`` with a percentile bootstrap interval over the items; with
    ``pred_b`` (the same items), also ``pred_b``'s and the paired change b − a with its interval."""
    from core.compare.intervals import bootstrap_weights

    rng = np.random.default_rng(seed)
    w = bootstrap_weights(len(y), n_boot, rng)
    tail = 100 * (1 - level) / 2
    plain_a, boot_a = binary_gaps(y, pred_a, groups), gap_rates(w, y, pred_a, groups)
    out: dict[str, dict[str, float]] = {}
    boot_b = gap_rates(w, y, pred_b, groups) if pred_b is not None else None
    plain_b = binary_gaps(y, pred_b, groups) if pred_b is not None else None
    for k, v in plain_a.items():
        lo, hi = np.nanpercentile(boot_a[k], [tail, 100 - tail])
        row = {"a": v, "a_low": float(lo), "a_high": float(hi)}
        if boot_b is not None and plain_b is not None:
            d = boot_b[k] - boot_a[k]
            dlo, dhi = np.nanpercentile(d, [tail, 100 - tail])
            row.update(b=plain_b[k], delta=plain_b[k] - v, low=float(dlo), high=float(dhi))
        out[k] = row
    return out
