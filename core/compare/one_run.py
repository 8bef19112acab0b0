"""One run at its result (the evaluation its checkpoint rule picks), as the Runs page shows it: the
line that says which evaluation that is (``checkpoint_line``, also on Compare and in the report),
each number beside its change after temperature scaling, the before/after tables of temperature scaling and threshold moving, the
risk–coverage curve with an abstention point, the test items per class and slice, and the most
confident wrong answers (also each run's gallery on the Compare page).

Every value is read at ``RunResults.result_step`` (the best val evaluation by the run's selection
metric, or the last evaluation; a reader may override the run's rule); ``None`` or NaN
where a metric does not apply or the run has not been evaluated yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core import metrics as M
from core.charts import metric_title
from core.metrics.keys import VARIANTS

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from core.metrics.results import RunResults

TS_METRICS = ["accuracy", "hallucination_rate", "ece", "nll", "brier", "forced_known_rate"]
TM_METRICS = ["macro_f1", "balanced_accuracy", "worst_class_recall", "accuracy", "hallucination_rate", "ece"]
SLICE_METRICS = ["accuracy", "hallucination_rate", "ece"]
GALLERY = 12  # wrong answers a gallery shows


def checkpoint_line(res: RunResults) -> str:
    """Which evaluation a run's numbers are read at, in one line: "test scores at step 32, the best
    val macro-F1" / "test scores at step 60, the last evaluation" ("so far" while it trains)."""
    step = res.result_step
    if step is None:
        return "no evaluation yet"
    so_far = " so far" if res.status.active else ""
    if res.checkpoint == "last":
        which = "the latest evaluation so far" if so_far else "the last evaluation"
    elif res.split_rows("val").empty:
        which = f"the {'latest' if so_far else 'last'} evaluation (no val split to choose the best by)"
    else:
        window = int(res.config.get("selection_window", 1) or 1)
        over = f" over {window} evaluations" if window > 1 else ""
        which = f"the best val {metric_title(res.stopping_metric)}{over}{so_far}"
    return f"test scores at step {step}, {which}"


def uses_decisions(res: RunResults) -> bool:
    """Whether the run made decisions after scoring: abstention below a confidence, or threshold moving."""
    decision = res.mitigations.decision
    return bool(
        decision.abstain_below > 0 or decision.threshold_moving or decision.logit_adjustment
        or res.variant_step("tm") is not None or res.variant_step("la") is not None
    )  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """A test metric at the result's evaluation, and its change after temperature scaling."""

    value: float | None
    change: float | None  # temperature-scaled − plain; None without temperature-scaled rows


def readings(res: RunResults, names: Iterable[str]) -> dict[str, Reading]:
    """``name → Reading`` at the run's result, the evaluation its checkpoint rule picks."""
    step = res.result_step
    scaled = step is not None and res.scaled_step == step
    out = {}
    for name in names:
        value = res.at(name, step)
        after = res.at(name, step, "test_ts") if scaled else None
        out[name] = Reading(value, None if value is None or after is None else after - value)
    return out


def result_epoch(res: RunResults) -> float | None:
    """The epoch (fractional with evaluations inside epochs) of the result's evaluation, when stored."""
    step = res.result_step
    if step is None:
        return None
    epoch = res.metrics.loc[res.metrics["step"] == step, "epoch"].dropna()
    return float(epoch.iloc[0]) if len(epoch) else None


def temperature_table(res: RunResults, names: Sequence[str] = TS_METRICS) -> pd.DataFrame | None:
    """Rows ``names``; columns "before" and "after temperature scaling" (test split, the result's
    evaluation; NaN where a metric does not apply). None when the run has no scaled rows there."""
    step = res.result_step
    if step is None or res.scaled_step != step:
        return None
    return pd.DataFrame(
        {"before": [res.at(n, step) for n in names], "after temperature scaling": [res.at(n, step, "test_ts") for n in names]},
        index=list(names),
    ).astype(float)


def threshold_table(res: RunResults, names: Sequence[str] = TM_METRICS) -> pd.DataFrame | None:
    """Rows ``names``; columns "before" (temperature-scaled when the run scaled), "after threshold
    moving" and "after post-hoc logit adjustment" where the run did them, test split. None when it
    did neither."""
    variants = [(v, VARIANTS[v]) for v in ("tm", "la") if res.variant_step(v) is not None]
    if not variants:
        return None
    scaled = res.variant_step("ts") is not None
    columns = {"before": [res.latest(n, "test_ts") if scaled else res.at(n, res.result_step) for n in names]}
    for v, words in variants:
        columns[words] = [res.latest(n, f"test_{v}") for n in names]
    return pd.DataFrame(columns, index=list(names)).astype(float)


def class_recall(res: RunResults, classes: Iterable[int]) -> dict[int, float]:
    """Recall per class at the result's evaluation, of the classes the evaluation scored (``classes``)."""
    wanted = set(int(c) for c in classes)
    return {c: v for c, v in res.per_class("recall", step=res.result_step).items() if c in wanted}


def slice_columns(res: RunResults) -> list[str]:
    """The slice columns the result's evaluation (else the latest) scored, sorted."""
    return sorted(_slices(res)["column"].unique())


def slice_table(res: RunResults, column: str, metrics: Sequence[str] = SLICE_METRICS) -> pd.DataFrame:
    """One row per value of slice ``column``, one column per metric in ``metrics``."""
    rows = _slices(res)
    table = rows[rows["column"] == column].pivot(index="value", columns="metric", values="score")
    return table.reindex(columns=list(metrics))


def _slices(res: RunResults) -> pd.DataFrame:
    step = res.result_step
    return res.slices(step=step) if step is not None else res.slices()


# ------------------------------------------------------------------ answers


def result_predictions(res: RunResults) -> pd.DataFrame:
    """The test predictions of the result's evaluation (columns item, label, pred, conf); empty before one."""
    step = res.result_step
    return res.predictions("test", step=step) if step is not None else res.predictions("test").iloc[:0]


def confident_errors(preds: pd.DataFrame, n: int = GALLERY) -> pd.DataFrame:
    """The ``n`` most confident wrong answers, most confident first."""
    return preds[preds["pred"] != preds["label"]].sort_values("conf", ascending=False).head(n)


@dataclass(frozen=True)
class ErrorCount:
    total: int  # answers
    wrong: int
    confident: int  # wrong with confidence ≥ τ


def error_count(preds: pd.DataFrame, tau: float) -> ErrorCount:
    wrong = preds["pred"] != preds["label"]
    return ErrorCount(len(preds), int(wrong.sum()), int((wrong & (preds["conf"] >= tau)).sum()))


@dataclass(frozen=True)
class Decisions:
    """Answering only above a confidence, on the test items of known classes."""

    coverage: np.ndarray  # the risk–coverage curve (``core.metrics.risk_coverage_from_conf``: ties by expectation)
    risk: np.ndarray
    answered: float  # share answered at the threshold (NaN without items)
    error: float  # error rate among the answered (NaN when none is)
    change: float | None  # ``error`` − the error rate answering all; None when none is answered


def decisions(preds: pd.DataFrame, classes: Iterable[int], threshold: float) -> Decisions:
    """Risk–coverage of the predictions whose label is one of ``classes`` (the classes the model
    was trained on), and the operating point at ``threshold``."""
    known = preds[preds["label"].isin(set(int(c) for c in classes))]
    conf = known["conf"].to_numpy(dtype=np.float64)
    correct = known["pred"].to_numpy() == known["label"].to_numpy()
    coverage, risk = M.risk_coverage_from_conf(conf, correct)
    point = M.selective_from_conf(conf, correct, threshold)
    everything = M.selective_from_conf(conf, correct, 0.0)
    answered_any = bool((conf >= threshold).any())
    change = point["risk"] - everything["risk"] if answered_any else None
    return Decisions(coverage, risk, point["coverage"], point["risk"], change)
