"""How metric rows are named — the one codec the training loop writes with and every reader parses with.

A metric row is (run, step, split, name, value). Splits: ``train``, ``val``, ``test``, and after
temperature scaling ``val_ts`` / ``test_ts`` (``scaled_split``). Names:

- a ``core.metrics.SUMMARY_KEYS`` key (``accuracy``, ``hallucination_rate``, …), or a train
  key (``loss``, ``lr``, ``samples_per_s``, ``eta_s``, ``train_runtime_s``,
  ``train_samples_per_s``, ``first_step_s``: seconds from the model on its device to the end of the
  first step, compiling and tuning included), or ``temperature``;
- per class: ``<metric>/<c>`` for ``PER_CLASS`` metrics, ``c`` the class index in the dataset
  (into ``class_names``), e.g. ``recall/3``; per entity type the same for ``PER_TYPE`` metrics,
  ``c`` the type's index into the run's entity types (``per_type_keys``), e.g. ``spurious/2``;
- per slice: ``slice/<column>=<value>/<metric>`` for ``SLICE_METRICS``, e.g.
  ``slice/domain=tweets/accuracy``. ``/``, ``=`` and ``%`` inside a column name or value are
  percent-escaped, so any value round-trips.

This module is torch-free and numpy-free: pages import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

PER_CLASS = ("precision", "recall", "f1")
#: Per entity type of a token-classification run (``core.metrics.entities.entity_per_type``), stored
#: as ``<metric>/<t>`` with ``t`` the type's index into the run's entity types (``per_type_keys``).
PER_TYPE = (
    "precision", "recall", "f1", "support", "predicted", "correct", "incorrect_type", "partial",
    "spurious", "confident_spurious", "missed", "ece",
)  # fmt: skip
CLASS_KEYS = tuple(dict.fromkeys((*PER_CLASS, "offset", *PER_TYPE)))  # offset: threshold moving's logit offset of the class
SLICE_METRICS = ("n", "accuracy", "macro_f1", "hallucination_rate", "ece", "forced_known_rate")
SLICE_PREFIX = "slice/"
#: Variants of an evaluation scored after training, as split suffixes: "test_ts" is the test split
#: after temperature scaling, "test_tm" after threshold moving (on top of temperature scaling).
VARIANTS = {"ts": "after temperature scaling", "tm": "after threshold moving", "la": "after post-hoc logit adjustment"}
SCALED_SUFFIX = "_ts"
ABSTAIN_KEYS = ("abstain_coverage", "abstain_risk")  # at the run's abstention threshold, known rows
TRAIN_KEYS = ("loss", "lr", "samples_per_s", "eta_s", "train_runtime_s", "train_samples_per_s", "first_step_s")

#: Metrics for which a *lower* value is better; every other metric: higher is better.
LOWER_IS_BETTER = frozenset({
    "hallucination_rate", "forced_known_rate", "ece", "classwise_ece", "ece_head", "ece_medium",
    "ece_tail", "brier", "nll", "aurc", "excess_aurc", "loss",
    # token classification (core.metrics.entities)
    "spurious_rate", "confident_spurious_rate", "type_hallucination_rate", "forced_known_type_rate",
    "missed_rate", "token_ece", "token_ece_outside", "token_nll",
})  # fmt: skip

_SAFE = ""  # quote everything but letters, digits and _.-~ … then put readable characters back
_READABLE = {"%20": " ", "%28": "(", "%29": ")", "%2C": ",", "%5B": "[", "%5D": "]", "%3A": ":", "%2B": "+", "%27": "'"}


def _escape(text: str) -> str:
    out = quote(str(text), safe=_SAFE)
    for code, char in _READABLE.items():
        out = out.replace(code, char)
    return out


def per_class_key(metric: str, cls: int) -> str:
    """``recall/3``: ``metric`` of dataset class ``cls``."""
    return f"{metric}/{int(cls)}"


def per_type_keys(per_type: Mapping[str, Mapping[str, float]], types: Sequence[str]) -> dict[str, float]:
    """``{"f1/2": …}``: ``entity_per_type``'s values under per-class keys, the class index being the
    type's index in ``types`` (the run's entity types, its ``class_names``); a type not in ``types``
    is left out."""
    index = {t: i for i, t in enumerate(types)}
    return {per_class_key(m, index[t]): float(v) for t, values in per_type.items() if t in index for m, v in values.items()}


def slice_key(column: str, value: str, metric: str) -> str:
    """``slice/domain=tweets/accuracy``: ``metric`` on the rows whose ``column`` is ``value``."""
    return f"{SLICE_PREFIX}{_escape(column)}={_escape(value)}/{metric}"


def variant_split(split: str, variant: str) -> str:
    """The split name of ``split``'s scores in a ``VARIANTS`` variant (``test``, ``tm`` → ``test_tm``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    return f"{split}_{variant}"


def scaled_split(split: str) -> str:
    """The split name of ``split``'s scores after temperature scaling (``test`` → ``test_ts``)."""
    return variant_split(split, "ts")


@dataclass(frozen=True)
class MetricKey:
    """A parsed metric name. ``kind`` is "summary" (anything plain), "class" or "slice"."""

    kind: str
    metric: str
    cls: int | None = None
    column: str | None = None
    value: str | None = None


def parse_key(name: str) -> MetricKey:
    """The inverse of ``per_class_key`` / ``slice_key``; a plain name is kind "summary"."""
    if name.startswith(SLICE_PREFIX):
        rest, _, metric = name[len(SLICE_PREFIX) :].rpartition("/")
        column, sep, value = rest.partition("=")
        if sep and metric:
            return MetricKey("slice", metric, column=unquote(column), value=unquote(value))
    head, sep, tail = name.partition("/")
    if sep and head in CLASS_KEYS and tail.lstrip("-").isdigit():
        return MetricKey("class", head, cls=int(tail))
    return MetricKey("summary", name)


def selection_value(history: Sequence[float], window: int = 1) -> float:
    """The value an evaluation is judged by: the mean of the last ``window`` val values of the
    selection metric (this evaluation's and those before it; undefined ones left out, NaN when all
    are). A window of 2 or 3 asks a result to have been good for more than one evaluation, which on
    a small val split picks it less by chance."""
    tail = [float(v) for v in history[-max(1, int(window)) :] if v is not None and math.isfinite(float(v))]
    return sum(tail) / len(tail) if tail else float("nan")


def best_index(metric: str, values: Sequence[float], window: int = 1) -> int | None:
    """Which of a run's successive val values of ``metric`` the "best" rule picks (``improves`` on
    ``selection_value``; the first of equals); None when there are none."""
    best_i, best = None, None
    for i in range(len(values)):
        v = selection_value(values[: i + 1], window)
        if improves(metric, v, best):
            best_i, best = i, v
    return best_i


def improves(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` of ``metric`` beats ``best`` (None: there is no best yet).

    A NaN value never beats an existing best; any finite value beats a NaN best. This is the rule
    that picks the best checkpoint, and the one readers use to name the best evaluation.
    """
    if best is None:
        return True
    if not math.isfinite(value):
        return False
    if not math.isfinite(best):
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best
