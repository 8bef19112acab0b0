"""Two to six runs side by side: their metrics at each run's result (the evaluation its checkpoint
rule picks), the change against the first (the reference) with its 95 % interval and verdict
(``core.compare.intervals``), the verdicts in words, curves, recall per class and ECE per class
group, whether they can be compared at all, and the settings that differ, in words; and the table
of every stored run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.charts import metric_title
from core.compare.intervals import NO_INTERVAL, Comparison
from core.compare.setting_words import setting_name, setting_value
from core.metrics.keys import LOWER_IS_BETTER
from core.metrics.results import RunResults
from core.store.status import RunStatus

if TYPE_CHECKING:
    from core.store.database import Store
    from core.store.rows import RunRow

METRICS = [
    "accuracy",
    "macro_f1",
    "balanced_accuracy",
    "worst_class_recall",
    "hallucination_rate",
    "forced_known_rate",
    "ece",
    "classwise_ece",
    "nll",
    "brier",
    "unknown_auroc_msp",
]
MAX_RUNS = 6


def label(res: RunResults) -> str:
    return f"#{res.run_id} · {res.row.name or res.config.get('model', '')}"


def metric_table(results: list[RunResults], metrics: list[str] = METRICS, split: str = "test") -> pd.DataFrame:
    """Rows ``metrics``, one column per run (``label``): the value at the run's result, the evaluation its checkpoint rule picks (NaN
    where undefined, e.g. the forced-known rate without unknown classes). Metrics no run has are left out."""
    table = pd.DataFrame(
        {label(r): [np.nan if (v := r.at(m, r.result_step, split)) is None else v for m in metrics] for r in results}, index=metrics
    )
    return table.dropna(how="all")


def deltas(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's column minus the first (the reference); the first column is all 0."""
    return table.sub(table.iloc[:, 0], axis=0)


def verdict(metric: str, delta: float, *, tolerance: float = 1e-9) -> str:
    """The direction of a change ``delta`` of ``metric`` alone: "better", "worse" or "same"
    (``LOWER_IS_BETTER`` decides the sign). Verdicts shown to people also need an interval:
    ``cell_verdict``."""
    if not np.isfinite(delta) or abs(delta) <= tolerance:
        return "same"
    return "better" if (delta < 0) == (metric in LOWER_IS_BETTER) else "worse"


def cell_verdict(metric: str, delta: float, comparison: Comparison | None) -> str:
    """What a change is called: "same" when it is 0 (or undefined); else the interval's verdict
    ("better", "worse", "no clear difference"); "no interval" when the metric or the runs have none."""
    if verdict(metric, delta) == "same":
        return "same"
    iv = None if comparison is None else comparison.intervals.get(metric)
    return NO_INTERVAL if iv is None else iv.verdict


@dataclass(frozen=True)
class DeltaTable:
    """The Compare table: rows are metrics; columns "Δ <run>" (each run but the reference against
    the reference) first, then each run's value. ``verdicts`` has the same shape ("" in the value
    columns), ``text`` the cells as shown: values to 4 decimals, a change with its 95 % interval."""

    values: pd.DataFrame
    verdicts: pd.DataFrame
    text: pd.DataFrame


def delta_table(table: pd.DataFrame, comparisons: Mapping[str, Comparison] | None = None) -> DeltaTable:
    """``metric_table`` with the change of every run but the first against the first, in front.
    ``comparisons``: run label → its ``Comparison`` with the reference (no intervals without)."""
    d = deltas(table)
    comparisons = comparisons or {}
    changed = [f"Δ {col}" for col in table.columns[1:]]
    values = pd.concat([d[table.columns[1:]].set_axis(changed, axis=1), table], axis=1)
    verdicts = pd.DataFrame("", index=table.index, columns=values.columns)
    text = values.map(lambda v: "—" if pd.isna(v) else f"{v:.4f}")
    for col, name in zip(table.columns[1:], changed):
        comp = comparisons.get(col)
        verdicts[name] = [cell_verdict(m, d.loc[m, col], comp) for m in table.index]
        text[name] = [_change_text(d.loc[m, col], None if comp is None else comp.intervals.get(m)) for m in table.index]
    return DeltaTable(values, verdicts, text)


def _change_text(delta: float, iv: Any) -> str:
    if pd.isna(delta):
        return "—"
    if abs(delta) <= 1e-9:
        return "0"
    return f"{delta:+.4f}" + ("" if iv is None else f" [{iv.low:+.4f}, {iv.high:+.4f}]")


def verdict_words(name: str, reference: str, comparison: Comparison | None, metrics: Sequence[str]) -> str:
    """One sentence on run ``name`` against ``reference``: the metrics whose 95 % interval says
    better or worse; every other change is "no clear difference". Never better/worse without one."""
    if comparison is None or not comparison.intervals:
        why = comparison.why_none if comparison is not None and comparison.why_none else "no interval"
        return f"{name} against {reference}: {why}, so no verdict."
    ivs = [comparison.intervals[m] for m in metrics if m in comparison.intervals]
    better = [metric_title(iv.metric) for iv in ivs if iv.verdict == "better"]
    worse = [metric_title(iv.metric) for iv in ivs if iv.verdict == "worse"]
    parts = []
    if better:
        parts.append(f"better on {', '.join(better)}")
    if worse:
        parts.append(f"worse on {', '.join(worse)}")
    rest = "no clear difference on the rest" if parts else "no clear difference on any metric"
    words = f"{name} against {reference}: " + "; ".join([*parts, rest])
    if comparison.mcnemar is not None:
        t = comparison.mcnemar
        words += f" (accuracy: {t.b_only:,} items only it gets right, {t.a_only:,} only the reference; McNemar p = {t.p_value:.2g})"
    return words + "."


def curves(results: Sequence[RunResults], split: str, metric: str) -> dict[str, pd.DataFrame]:
    """``label → rows`` of ``metric`` on ``split`` by step, with ``epoch`` filled in by the step
    where it is missing; runs without such rows are left out."""
    out = {}
    for res in results:
        m = res.metrics
        part = m[(m["split"] == split) & (m["name"] == metric)].sort_values("step")
        if len(part):
            out[label(res)] = part.assign(epoch=part["epoch"].fillna(part["step"]))
    return out


def result_marks(results: Sequence[RunResults], split: str, metric: str) -> dict[str, tuple[float, float]]:
    """``label → (epoch, value)`` of ``metric`` on ``split`` at each run's result's step, where the
    curve (``curves``) has a point there: the star on the Compare page's curves."""
    out = {}
    for lbl, part in curves(results, split, metric).items():
        res = next(r for r in results if label(r) == lbl)
        at = part[part["step"] == res.result_step]
        if len(at) and pd.notna(at["value"].iloc[-1]):
            out[lbl] = (float(at["epoch"].iloc[-1]), float(at["value"].iloc[-1]))
    return out


def recall_by_class(results: Sequence[RunResults]) -> dict[str, dict[str, float]]:
    """``label → {class name: test recall}`` at each run's result, the evaluation its checkpoint rule picks."""
    out = {}
    for res in results:
        names = res.store.version(int(res.row.version_id)).class_names
        out[label(res)] = {str(names[c]): v for c, v in res.per_class("recall", step=res.result_step).items()}
    return out


def ece_by_group(results: Sequence[RunResults], groups: Sequence[str] = ("head", "medium", "tail")) -> dict[str, dict[str, float]]:
    """``label → {class group: test ECE}`` at each run's result, the evaluation its checkpoint rule picks (groups without a value left out)."""
    return {label(res): {g: v for g in groups if (v := res.at(f"ece_{g}", res.result_step)) is not None} for res in results}


def run_list(rows: Sequence[RunRow], version_labels: Mapping[int, str]) -> pd.DataFrame:
    """Every run as the Runs page lists it: run, name, dataset (its version's label, else "v<id>"),
    status (``RunRow.label``), progress (0..1), message, started (a timestamp, NaT before the start)."""
    return pd.DataFrame(
        [
            {
                "run": r.id,
                "name": r.name,
                "dataset": version_labels.get(r.version_id, f"v{r.version_id}"),
                "status": r.label,
                "progress": float(r.progress or 0.0),
                "message": r.message,
                "started": pd.to_datetime(r.started_at, unit="s") if r.started_at else pd.NaT,
            }
            for r in rows
        ],
        columns=["run", "name", "dataset", "status", "progress", "message", "started"],
    )


def default_run(rows: Sequence[RunRow], asked: int | None = None) -> int:
    """The run the Runs page opens on: ``asked`` (a link from the Train page) when it is stored,
    else one that is training now, else the first of ``rows`` (the newest)."""
    ids = [r.id for r in rows]
    if asked in ids:
        return int(asked)
    return next((r.id for r in rows if r.status == RunStatus.RUNNING), ids[0])


def compatibility(store: Store, results: list[RunResults]) -> list[str]:
    """What cannot be compared between these runs, in sentences (empty: everything can)."""
    notes = []
    versions = [store.version(int(r.row.version_id)) for r in results]
    if len({v.dataset_id for v in versions}) > 1:
        notes.append(
            "These runs trained on different datasets: their metrics are side by side, but no test item is shared, "
            "so there is no example-level diff."
        )
    elif len({tuple(v.class_names) for v in versions}) > 1:
        notes.append("These runs have different class sets: per-class bars and confusion matrices are not comparable.")
    tau = {r.tau for r in results}
    if len(tau) > 1:
        notes.append(
            f"The runs count hallucinations at different τ ({', '.join(f'{t:g}' for t in sorted(tau))}): compare those rates with care."
        )
    unfinished = [label(r) for r in results if r.status.active]
    if unfinished:
        notes.append(f"Still training: {', '.join(unfinished)} — their numbers are the best so far.")
    lost = [label(r) for r in results if r.status == RunStatus.LOST]
    if lost:
        notes.append(
            f"Lost: {', '.join(lost)} — the worker stopped sending a heartbeat and no runner is watching; "
            "its numbers are the last it stored."
        )
    return notes


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(results: list[RunResults], *, ignore: tuple[str, ...] = ("name",)) -> pd.DataFrame:
    """Settings whose values differ between the runs, in words (``setting_words``: "loss" /
    "Balanced softmax"); one column per run. The version a run trained on is a setting too."""
    flat = [{"dataset version": store_label(r), **_flatten(r.config)} for r in results]
    keys = [k for k in dict.fromkeys(k for f in flat for k in f) if k not in ignore]
    rows = {k: [f.get(k, _MISSING) for f in flat] for k in keys}
    differ = {
        setting_name(k): ["—" if v is _MISSING else setting_value(k, v) for v in vals]
        for k, vals in rows.items()
        if len({repr(v) for v in vals}) > 1
    }
    return pd.DataFrame(differ, index=[label(r) for r in results]).T


_MISSING = object()  # a setting a run was stored without


def store_label(res: RunResults) -> str:
    return res.store.version(int(res.row.version_id)).label
