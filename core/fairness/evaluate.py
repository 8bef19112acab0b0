"""A finished run's fairness by one sensitive column, from the probabilities it kept at its result
(no model is loaded), and the record kept with the run (``fairness.json``: one entry per column).

For two-class tasks the record holds the gaps of the run's own decisions (the most probable class)
with bootstrap intervals over the test items, and — when asked — the decisions of a threshold per
group fitted on val (``core.fairness.mitigate.fit_thresholds``) with the paired change. Compare and
the report read the records (``fairness_rows``). Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import DataError
from core.fairness.groups import bootstrap_gaps, group_table, sensitive_groups
from core.fairness.mitigate import CONSTRAINTS, fit_thresholds
from core.store.artifacts import RunFiles

if TYPE_CHECKING:
    from core.metrics.results import RunResults
    from core.store import Store

NAME = "fairness.json"
GAP_WORDS = {
    "equalized_odds_difference": "equalized odds difference",
    "demographic_parity_difference": "demographic parity difference",
    "accuracy": "accuracy",
}


def _held_out(res: RunResults, n_classes: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    got = res.files.heldout_probs(n_classes, split=split, step=res.result_step)
    if got is None:
        raise DataError(f"run {res.run_id} kept no {split} probabilities at its result; wait until it has evaluated, or train it again.")
    return got


def positive_class(ds: Any) -> int:
    """The default positive class of a two-class task: the one with fewer train items."""
    counts = np.bincount(ds.labels[(ds.split == 0) & ds.labelled], minlength=ds.n_classes)
    return int(np.argmin(counts))


def run_fairness(
    store: Store, run_id: int, column: str, *, positive: int | None = None, constraint: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """Measure run ``run_id`` by ``column`` (and fit thresholds per group under ``constraint``), keep
    the record with the run and return it."""
    from core.metrics.results import RunResults

    res = RunResults(store, run_id)
    if res.is_tokens:
        raise DataError("fairness by group reads one answer per item; a token-classification run has one per word.")
    ds = store.load_dataset(res.row.version_id)
    rows, probs = _held_out(res, ds.n_classes, "test")
    y = ds.labels[rows]
    groups = sensitive_groups(ds, rows, column)
    tau = res.tau
    table = group_table(probs, y, groups, list(ds.class_names), tau=tau)
    record: dict[str, Any] = {"run": run_id, "step": res.result_step, "column": column, "tau": tau, "n": len(rows),
                              "table": {"index": [str(i) for i in table.index], "columns": list(table.columns),
                                        "data": table.to_numpy().tolist()}}  # fmt: skip
    if ds.n_classes == 2:
        pos = positive_class(ds) if positive is None else int(positive)
        pred = probs.argmax(axis=1) == pos
        record.update(positive=pos, gaps=bootstrap_gaps(y == pos, pred, groups, seed=seed))
        if constraint is not None:
            vrows, vprobs = _held_out(res, ds.n_classes, "val")
            after = fit_thresholds(vprobs[:, pos], ds.labels[vrows] == pos, sensitive_groups(ds, vrows, column), probs[:, pos], groups,
                                   constraint=constraint, seed=seed)  # fmt: skip
            record["thresholds"] = {"constraint": constraint, "change": bootstrap_gaps(y == pos, pred, groups, after.astype(bool), seed=seed),
                                    "before_by_group": rates_by_group(y == pos, pred, groups),
                                    "after_by_group": rates_by_group(y == pos, after.astype(bool), groups)}  # fmt: skip
    save(res.files, record)
    return record


def paired_change(store: Store, reference: int, other: int, column: str, *, seed: int = 0) -> dict[str, dict[str, float]] | None:
    """Run ``other``'s gaps and accuracy against run ``reference``'s on the same test items (the
    decisions for the reference's positive class), each change with a paired bootstrap interval;
    None when the two do not share their test items, or the task is not two-class."""
    from core.metrics.results import RunResults

    a, b = RunResults(store, reference), RunResults(store, other)
    ds_a, ds_b = store.load_dataset(a.row.version_id), store.load_dataset(b.row.version_id)
    if ds_a.n_classes != 2 or ds_b.n_classes != 2 or list(ds_a.class_names) != list(ds_b.class_names):
        return None
    rows_a, probs_a = _held_out(a, 2, "test")
    rows_b, probs_b = _held_out(b, 2, "test")
    ids_a, ids_b = ds_a.item_ids()[rows_a], ds_b.item_ids()[rows_b]
    if not np.array_equal(ids_a, ids_b) or not np.array_equal(ds_a.labels[rows_a], ds_b.labels[rows_b]):
        return None
    pos = positive_class(ds_a)
    y = ds_a.labels[rows_a] == pos
    return bootstrap_gaps(y, probs_a.argmax(1) == pos, sensitive_groups(ds_a, rows_a, column), probs_b.argmax(1) == pos, seed=seed)


def change_rows(labelled: list[tuple[str, dict[str, dict[str, float]]]]) -> pd.DataFrame:
    """One row per run compared with the reference: each gap and accuracy, reference → run, with the
    change's interval."""
    return pd.DataFrame([
        {"run": name, **{GAP_WORDS[k]: f"{ch[k]['a']:.4f} → {ch[k]['b']:.4f} ({ch[k]['delta']:+.4f} [{ch[k]['low']:+.4f}, {ch[k]['high']:+.4f}])"
                         for k in GAP_WORDS if k in ch}}
        for name, ch in labelled
    ])  # fmt: skip


def rates_by_group(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict[str, dict[str, float]]:
    """Per group of binary decisions ``pred`` against ``y`` (1 = positive): the share answered
    positive, the true- and false-positive rates (NaN without positives / negatives) and accuracy."""
    out = {}
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    for g in np.unique(groups):
        at = groups == g
        pos, neg = at & y, at & ~y
        out[str(g)] = {
            "selection_rate": float(pred[at].mean()),
            "tpr": float(pred[pos].mean()) if pos.any() else float("nan"),
            "fpr": float(pred[neg].mean()) if neg.any() else float("nan"),
            "accuracy": float((pred[at] == y[at]).mean()),
        }
    return out


def save(files: RunFiles, record: dict[str, Any]) -> None:
    kept = files.read_json(NAME) or {}
    kept[record["column"]] = record
    files.write_json(NAME, kept)


def load(files: RunFiles) -> dict[str, dict[str, Any]]:
    """Column → record, for every column the run was measured by."""
    return files.read_json(NAME) or {}


def records_by_column(results: Sequence[RunResults]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Column → (run label, record) of every run measured by it at its current result (what Compare
    and the report show)."""
    from core.compare.runs import label

    by_column: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for r in results:
        for column, rec in load(r.files).items():
            if rec.get("step") == r.result_step:
                by_column.setdefault(column, []).append((label(r), rec))
    return by_column


def table_of(record: dict[str, Any]) -> pd.DataFrame:
    t = record["table"]
    return pd.DataFrame(t["data"], index=t["index"], columns=t["columns"], dtype=float)  # JSON's null back to NaN


def fairness_rows(labelled: list[tuple[str, dict[str, Any]]]) -> pd.DataFrame:
    """One row per run (and per run with thresholds per group): accuracy and the two gaps, each with
    its 95 % interval, and for the thresholds the change against the run's own decisions."""
    rows = []
    for name, rec in labelled:
        gaps = rec.get("gaps")
        if not gaps:
            continue
        rows.append(
            {
                "run": name,
                **{GAP_WORDS[k]: _with_interval(gaps[k]["a"], gaps[k]["a_low"], gaps[k]["a_high"]) for k in GAP_WORDS if k in gaps},
            }
        )
        th = rec.get("thresholds")
        if th:
            change = th["change"]
            rows.append({
                "run": f"{name} + thresholds per group ({CONSTRAINTS[th['constraint']]})",
                **{GAP_WORDS[k]: f"{change[k]['b']:.4f} (change {change[k]['delta']:+.4f} [{change[k]['low']:+.4f}, {change[k]['high']:+.4f}])"
                   for k in GAP_WORDS if k in change},
            })  # fmt: skip
    return pd.DataFrame(rows)


def _with_interval(v: float, lo: float, hi: float) -> str:
    return f"{v:.4f} [{lo:.4f}, {hi:.4f}]"
