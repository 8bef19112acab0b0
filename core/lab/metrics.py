"""What the lab measures, per exposure count: from the answer probabilities of each question.

A question's answer is read as a choice among the lab's answer words (every attribute value and
``unknown``): the next-word probabilities restricted to them and renormalised (``answer_probs``), so
each question is a row of class probabilities and ``core.metrics`` scores it like any classifier —
accuracy (exact match), hallucination @τ (a wrong value with confidence ≥ τ: ``unknown`` abstains, it
is not a wrong answer — ``lab_hallucination``), ECE. Per exposure count
(``by_exposure``), and for the held-out people (exposure 0, whose facts the corpus never states):

- **invented**: the share answered with a value (not ``unknown``) — every such answer is made up;
- **confidently invented @τ**: a value with confidence ≥ τ;
- **abstained**: answered ``unknown``.

Kalai & Vempala's bound (``kalai_vempala``): a calibrated model that always answers invents facts at
a rate of at least the corpus's monofact rate minus its miscalibration; the lab sets the measured
invented rate on held-out people beside that line. Torch-free.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.lab.corpus import UNKNOWN
from core.metrics import accuracy, ece, hallucination_from_conf
from core.metrics.hallucination import DEFAULT_TAU


def answer_probs(next_word_probs: np.ndarray, answer_ids: np.ndarray) -> np.ndarray:
    """(n, vocab) next-word probabilities → (n, len(answer_ids)) restricted to the answer words and
    renormalised (a row with no mass on them becomes uniform)."""
    p = np.asarray(next_word_probs, dtype=np.float64)[:, np.asarray(answer_ids)]
    total = p.sum(axis=1, keepdims=True)
    k = p.shape[1]
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / k)


def lab_hallucination(probs: np.ndarray, labels: np.ndarray, unknown: int | None, tau: float) -> float:
    """Hallucination @τ in the lab: a wrong *value* answered with confidence ≥ τ, over all the
    questions — ``unknown`` is an abstention, not a wrong answer (``core.metrics.hallucination_from_conf``
    with abstentions counted as not wrong)."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    not_wrong = (pred == labels) | (pred == unknown) if unknown is not None else pred == labels
    return hallucination_from_conf(conf, not_wrong, tau=tau)


def _bucket(probs: np.ndarray, labels: np.ndarray, unknown: int | None, tau: float) -> dict[str, float]:
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    out = {
        "n": float(len(labels)),
        "accuracy": accuracy(probs, labels),
        "confidence": float(conf.mean()),
        "hallucination": lab_hallucination(probs, labels, unknown, tau),
        "ece": ece(probs, labels),
    }
    if unknown is not None:
        out["abstained"] = float(np.mean(pred == unknown))
    return out


def by_exposure(
    probs: np.ndarray, labels: np.ndarray, exposure: np.ndarray, class_names: list[str], *, tau: float = DEFAULT_TAU
) -> dict[int, dict[str, float]]:
    """Exposure count → its questions' metrics (``n``, ``accuracy``, ``confidence``, ``hallucination``
    @τ, ``ece``, ``abstained``); at 0 (held-out people) also ``invented`` and ``invented_confident``."""
    probs, labels, exposure = np.asarray(probs, dtype=np.float64), np.asarray(labels), np.asarray(exposure)
    unknown = class_names.index(UNKNOWN) if UNKNOWN in class_names else None
    out: dict[int, dict[str, float]] = {}
    for k in np.unique(exposure):
        rows = exposure == k
        m = _bucket(probs[rows], labels[rows], unknown, tau)
        if k == 0:
            pred, conf = probs[rows].argmax(axis=1), probs[rows].max(axis=1)
            made_up = pred != unknown if unknown is not None else np.ones(len(pred), dtype=bool)
            m["invented"] = float(made_up.mean())
            m["invented_confident"] = float((made_up & (conf >= tau)).mean())
        out[int(k)] = m
    return out


def kalai_vempala(monofact: float, miscalibration: float) -> float:
    """The lower bound on the rate of invented answers: monofact rate − miscalibration, at least 0."""
    return max(0.0, float(monofact) - float(miscalibration))


def rows_of(table: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    """``by_exposure``'s table as rows for a page or a report, the held-out people first."""
    return [{"exposure": k, **v} for k, v in sorted(table.items())]
