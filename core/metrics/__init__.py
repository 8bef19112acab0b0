"""How a classifier trained on incomplete data hallucinates, in numbers.

- ``core.metrics.scores`` — the metrics themselves (pure numpy), re-exported here:
  ``from core import metrics as M; M.summary(probs, labels, tau=0.9)``.
- ``core.metrics.keys`` — how metric rows are named in the store (per class, per slice, after
  temperature scaling), and which metrics are better when lower.
- ``core.metrics.results`` — ``RunResults``: one run's metrics, best step, per-class and
  per-slice values and evaluation artifacts, read without torch (for pages and reports).
"""

from core.metrics.scores import (
    DEFAULT_N_BINS,
    DEFAULT_TAU,
    GROUPS,
    NLL_CLIP,
    SUM_TOLERANCE,
    SUMMARY_KEYS,
    UNKNOWN_LABEL,
    ReliabilityBins,
    accuracy,
    aurc,
    auroc,
    brier,
    classwise_ece,
    confusion,
    ece,
    ece_by_group,
    energy_score,
    excess_aurc,
    forced_known_rate,
    group_of_classes,
    hallucination_rate,
    metrics_by_slice,
    nll,
    per_class,
    reliability_bins,
    risk_coverage,
    summary,
    unknown_detection_auroc,
)

__all__ = [
    "DEFAULT_N_BINS",
    "DEFAULT_TAU",
    "GROUPS",
    "NLL_CLIP",
    "SUMMARY_KEYS",
    "SUM_TOLERANCE",
    "UNKNOWN_LABEL",
    "ReliabilityBins",
    "accuracy",
    "aurc",
    "auroc",
    "brier",
    "classwise_ece",
    "confusion",
    "ece",
    "ece_by_group",
    "energy_score",
    "excess_aurc",
    "forced_known_rate",
    "group_of_classes",
    "hallucination_rate",
    "metrics_by_slice",
    "nll",
    "per_class",
    "reliability_bins",
    "risk_coverage",
    "summary",
    "unknown_detection_auroc",
]  # fmt: skip
