"""Metric names as people read them, and per-class metric names with class names in them.

The store names metrics with ``core.metrics.keys`` (``macro_f1``, ``recall/3``,
``slice/domain=tweets/accuracy``); pages, tables and exports show these instead:

- ``metric_name("macro_f1")`` → "macro-F1"; ``metric_name("recall/3", classes)`` → "recall of
  sneaker"; ``metric_name("slice/domain=tweets/accuracy")`` → "accuracy on domain = tweets".
- ``class_labels(class_names)``: one label per class, unique: the name, with its index added only
  where two classes share a name ("cat (2)", "cat (5)").
- ``export_name("recall/3", labels)`` → "recall/sneaker": the export's per-class column names.

Torch-free and numpy-free: pages import it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from core.metrics.keys import parse_key, per_class_key

__all__ = ["METRIC_NAMES", "class_labels", "export_name", "metric_name"]

#: Every metric the store holds, in words (units and τ where they matter).
METRIC_NAMES = {
    "n_known": "known-class items",
    "n_unknown": "unknown-class items",
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "balanced_accuracy": "balanced accuracy",
    "worst_class_recall": "worst-class recall",
    "hallucination_rate": "hallucination rate @τ",
    "forced_known_rate": "forced-known rate @τ",
    "unknown_auroc_msp": "unknown-class AUROC (max softmax)",
    "unknown_auroc_energy": "unknown-class AUROC (energy)",
    "ece": "ECE",
    "classwise_ece": "classwise ECE",
    "ece_head": "ECE of head classes",
    "ece_medium": "ECE of medium classes",
    "ece_tail": "ECE of tail classes",
    "brier": "Brier score",
    "nll": "NLL (log loss)",
    "aurc": "AURC",
    "excess_aurc": "excess AURC",
    "abstain_coverage": "coverage when abstaining",
    "abstain_risk": "error rate when abstaining",
    "temperature": "temperature",
    "loss": "train loss",
    "lr": "learning rate",
    "samples_per_s": "items per second",
    "eta_s": "seconds left",
    "train_runtime_s": "training time (s)",
    "train_samples_per_s": "training items per second",
    "first_step_s": "first step (s)",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "offset": "logit offset",
    "n": "items",
    # token classification (core.metrics.entities); per type: "<metric> of <type>"
    "n_tokens": "tokens",
    "n_true_spans": "true entities",
    "n_pred_spans": "predicted entities",
    "token_accuracy": "token accuracy",
    "entity_precision_micro": "entity micro-precision",
    "entity_recall_micro": "entity micro-recall",
    "entity_f1_micro": "entity micro-F1",
    "entity_precision_macro": "entity macro-precision",
    "entity_recall_macro": "entity macro-recall",
    "entity_f1_macro": "entity macro-F1",
    "n_correct_spans": "correct entities",
    "n_incorrect_type_spans": "entities of the wrong type",
    "n_partial_spans": "partly overlapping entities",
    "n_partial_wrong_type_spans": "partly overlapping entities of the wrong type",
    "n_spurious_spans": "spurious entities",
    "n_partial_true_spans": "true entities found in part",
    "n_missed_spans": "missed entities",
    "spurious_rate": "spurious-entity rate",
    "n_confident_spurious": "confident spurious entities @τ",
    "confident_spurious_rate": "confident spurious-entity rate @τ",
    "n_type_hallucinations": "confident entities of the wrong type @τ",
    "type_hallucination_rate": "type hallucination rate @τ",
    "n_dropped_type_mentions": "mentions of types absent from train",
    "n_forced_known_type": "unseen-type mentions given a known type @τ",
    "forced_known_type_rate": "forced-known type rate @τ",
    "missed_rate": "missed-entity rate",
    "token_ece": "token ECE",
    "token_ece_outside": "token ECE of O tokens",
    "token_nll": "token NLL (log loss)",
    "o_offset": "O offset (fitted on val)",
    "support": "support (true entities)",
    "predicted": "predicted entities",
    "correct": "correct entities",
    "incorrect_type": "entities of the wrong type",
    "partial": "partly overlapping entities",
    "spurious": "spurious entities",
    "confident_spurious": "confident spurious entities @τ",
    "missed": "missed entities",
}


def class_labels(class_names: Sequence[object]) -> list[str]:
    """One unique label per class: its name, or "name (index)" where names collide."""
    names = [str(c) for c in class_names]
    seen = Counter(names)
    return [f"{n} ({i})" if seen[n] > 1 else n for i, n in enumerate(names)]


def metric_name(key: str, class_names: Sequence[object] | None = None) -> str:
    """A stored metric name in words; a name this module does not know, with spaces for "_"."""
    parsed = parse_key(key)
    what = METRIC_NAMES.get(parsed.metric, parsed.metric.replace("_", " "))
    if parsed.kind == "class" and parsed.cls is not None:
        labels = class_labels(class_names) if class_names is not None else []
        return f"{what} of {labels[parsed.cls] if 0 <= parsed.cls < len(labels) else f'class {parsed.cls}'}"
    if parsed.kind == "slice":
        return f"{what} on {parsed.column} = {parsed.value}"
    return what


def export_name(key: str, labels: Sequence[str]) -> str:
    """``recall/3`` → ``recall/<label of class 3>`` (``labels`` from ``class_labels``); any other
    key, or a class without a label, as it is."""
    parsed = parse_key(key)
    if parsed.kind != "class" or parsed.cls is None or not 0 <= parsed.cls < len(labels) or key != per_class_key(parsed.metric, parsed.cls):
        return key
    return f"{parsed.metric}/{labels[parsed.cls]}"
