"""How a classifier trained on incomplete data hallucinates, in numbers (pure numpy, no torch).

Every metric is re-exported here: ``from core import metrics as M; M.summary(probs, labels, tau=0.9)``.

- ``classification`` — accuracy, confusion, per class, macro-F1, balanced accuracy, worst-class recall.
- ``calibration`` — ECE, reliability bins, classwise ECE, head / medium / tail ECE, Brier, NLL.
- ``hallucination`` — hallucination rate, forced-known rate, AUROC, energy, unknown-class detection.
- ``selective_prediction`` — risk–coverage (with the tie rule), AURC, E-AURC, abstention points.
- ``entities`` — token classification (NER): IOB2 decoding, seqeval's entity scores, SemEval
  categories, spurious / wrong-type / forced-known entity rates, token ECE, type confusion, the most
  confident hallucinated entities; ``entity_summary`` (``ENTITY_SUMMARY_KEYS``), ``entity_per_type``.
- ``summaries`` — ``summary``: every scalar above in one dict (``SUMMARY_KEYS``), computed by the
  same helpers as the single functions.
- ``per_slice`` — ``metrics_by_slice``: the summary of each slice of the rows.
- ``keys`` — how metric rows are named in the store (per class, per slice, after temperature
  scaling), and which metrics are better when lower.
- ``results`` — ``RunResults``: one run's metrics, best step, per-class and per-slice values and
  evaluation artifacts, read without torch (for pages and reports).

Conventions shared by every metric function:

``probs``
    ``float`` array (n, K): softmax probabilities over the K *training* classes; rows sum to 1
    within ``SUM_TOLERANCE`` and lie in [0, 1]. ``conf = probs.max(axis=1)``, ``pred =
    probs.argmax(axis=1)`` (ties go to the lowest class index).
``labels``
    ``int`` array (n,): the true class in [0, K), or ``UNKNOWN_LABEL`` (-1) for an input whose class
    was absent from training. ``unknown_mask`` (bool (n,)), where accepted, marks further unknown
    rows (their label is then ignored, whatever it is).
Known and unknown rows
    Unknown rows are left out of every known-class metric (accuracy, F1, ECE, Brier, NLL,
    hallucination rate, risk–coverage, ...) and used only by ``forced_known_rate`` and the
    unknown-detection AUROCs.
Undefined values
    A metric with nothing to average over (no known rows, no unknown rows, one AUROC side empty)
    is ``nan``, never an exception. Invalid inputs raise ``core.errors.DataError`` (a
    ``ValueError``) whose message says what to change.
"""

from core.metrics._validate import SUM_TOLERANCE, UNKNOWN_LABEL
from core.metrics.calibration import (
    DEFAULT_N_BINS,
    GROUPS,
    NLL_CLIP,
    ReliabilityBins,
    brier,
    classwise_ece,
    ece,
    ece_by_group,
    ece_from_conf,
    group_of_classes,
    nll,
    reliability_bins,
)
from core.metrics.classification import accuracy, balanced_accuracy, confusion, macro_f1, per_class, worst_class_recall
from core.metrics.entities import (
    ENTITY_SUMMARY_KEYS,
    PER_TYPE_KEYS,
    EntityError,
    EntityEvaluation,
    SpanCategories,
    SpanCounts,
    TypeConfusion,
    confident_errors,
    decode,
    entity_per_type,
    entity_summary,
    evaluate_entities,
    span_categories,
    token_arrays,
    token_ece_by_type,
    token_reliability,
    type_confusion,
)
from core.metrics.hallucination import (
    DEFAULT_TAU,
    auroc,
    energy_score,
    forced_known_rate,
    hallucination_from_conf,
    hallucination_rate,
    unknown_detection_auroc,
)
from core.metrics.per_slice import metrics_by_slice
from core.metrics.selective_prediction import aurc, excess_aurc, risk_coverage, risk_coverage_from_conf, selective, selective_from_conf
from core.metrics.summaries import SUMMARY_KEYS, summary

__all__ = [
    "DEFAULT_N_BINS",
    "DEFAULT_TAU",
    "ENTITY_SUMMARY_KEYS",
    "GROUPS",
    "NLL_CLIP",
    "PER_TYPE_KEYS",
    "SUMMARY_KEYS",
    "SUM_TOLERANCE",
    "UNKNOWN_LABEL",
    "EntityError",
    "EntityEvaluation",
    "ReliabilityBins",
    "SpanCategories",
    "SpanCounts",
    "TypeConfusion",
    "accuracy",
    "aurc",
    "auroc",
    "balanced_accuracy",
    "brier",
    "classwise_ece",
    "confident_errors",
    "confusion",
    "decode",
    "ece",
    "ece_by_group",
    "ece_from_conf",
    "energy_score",
    "entity_per_type",
    "entity_summary",
    "evaluate_entities",
    "excess_aurc",
    "forced_known_rate",
    "group_of_classes",
    "hallucination_from_conf",
    "hallucination_rate",
    "macro_f1",
    "metrics_by_slice",
    "nll",
    "per_class",
    "reliability_bins",
    "risk_coverage",
    "risk_coverage_from_conf",
    "selective",
    "selective_from_conf",
    "span_categories",
    "summary",
    "token_arrays",
    "token_ece_by_type",
    "token_reliability",
    "type_confusion",
    "unknown_detection_auroc",
    "worst_class_recall",
]
