"""The loop's state, its control object and its events (as transformers' ``TrainerCallback``).

The loop (``core.train.loop.fit``) fires, in order: ``on_train_begin``; per epoch
``on_epoch_begin``, per step ``on_step_end`` (then ``on_log`` if ``control.should_log``, then an
evaluation and ``on_evaluate`` if ``control.should_evaluate``), ``on_epoch_end`` (which may ask for
an evaluation too); finally ``on_train_end``. Callbacks decide *when* (``Cadence``) and *what*
(writers, checkpoints, early stopping) through ``Control``; the loop only trains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.metrics.calibration import ReliabilityBins


@dataclass
class State:
    """What the loop knows; callbacks read it."""

    run_id: int
    total_steps: int
    steps_per_epoch: int
    step: int = 0
    epoch: float = 0.0  # fractional: 1.5 = half-way through the second epoch
    epoch_index: int = 0  # the epoch being trained, from 0
    samples: int = 0
    train_time_s: float = 0.0  # at the end: wall-clock seconds of training (evaluations excluded)
    eval_time_s: float = 0.0  # evaluations, with their metric, prediction and checkpoint writes
    n_evals: int = 0
    evals_planned: int = 0
    best_metric: float = float("nan")  # the selection value of the best evaluation (``keys.selection_value``)
    best_step: int | None = None
    val_history: list[float] = field(default_factory=list)  # the val selection metric at each evaluation
    started: float = field(default_factory=time.time)


@dataclass
class Control:
    """What callbacks ask of the loop. ``should_log`` and ``should_evaluate`` are reset by the loop
    once done; ``should_stop`` stays."""

    should_stop: bool = False
    stop_reason: str = ""  # "requested" | "early_stopping"
    should_log: bool = False
    should_evaluate: bool = False

    def stop(self, reason: str) -> None:
        if not self.should_stop:
            self.should_stop, self.stop_reason = True, reason


@dataclass
class SplitReport:
    """Every metric of one split at one evaluation (``core.train.evaluate.report``)."""

    summary: dict[str, float]  # core.metrics.SUMMARY_KEYS
    per_class: dict[str, np.ndarray]  # "precision" / "recall" / "f1" → (K,)
    reliability: ReliabilityBins
    confusion: np.ndarray  # (K, K) rows true, columns predicted
    unknown_confusion: np.ndarray  # (len(absent), K): what classes absent from train were called
    probs: np.ndarray  # (m, K)
    pred: np.ndarray  # (m,) model class
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # column → value → summary
    temperature: float | None = None  # set when the logits were divided by a fitted T
    offsets: np.ndarray | None = None  # (K,) per-class logit offsets of threshold moving


@dataclass
class EvalResult:
    step: int
    epoch: float
    metric_name: str
    metric: float  # the stopping metric on val (NaN without a val split)
    is_best: bool
    reports: dict[str, SplitReport]  # split → report
    logits: dict[str, np.ndarray]  # split → float32 (m, K)


@dataclass
class BestEval:
    """The best evaluation so far: what ``best.pt`` holds and temperature scaling starts from."""

    step: int
    epoch: float
    metric_name: str
    metric: float
    logits: dict[str, np.ndarray]  # split → float32 (m, K)
    summaries: dict[str, dict[str, float]]  # split → summary (the "before" of temperature scaling)

    @classmethod
    def of(cls, result: EvalResult) -> BestEval:
        return cls(
            result.step,
            result.epoch,
            result.metric_name,
            result.metric,
            result.logits,
            {split: rep.summary for split, rep in result.reports.items()},
        )


class Callback:
    """Hooks of the loop; each may change ``control``."""

    def on_train_begin(self, state: State, control: Control) -> None: ...
    def on_epoch_begin(self, state: State, control: Control) -> None: ...
    def on_step_end(self, state: State, control: Control) -> None: ...
    def on_log(self, state: State, control: Control, logs: dict[str, float]) -> None: ...
    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None: ...
    def on_epoch_end(self, state: State, control: Control) -> None: ...
    def on_train_end(self, state: State, control: Control) -> None: ...


class Events:
    """Fires an event on every callback, in order."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def __call__(self, event: str, state: State, control: Control, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(state, control, *args)
