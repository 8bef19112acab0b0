"""The callbacks every run uses: when to log and evaluate, stop requests, early stopping,
checkpoints, and the writer that sends metrics, predictions and artifacts to the run's sink."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from core.jsonable import to_jsonable
from core.metrics.keys import PER_CLASS, SLICE_METRICS, per_class_key, slice_key, variant_split
from core.train.checkpoints import save_checkpoint
from core.train.dynamics import Dynamics
from core.train.events import Callback, Control, EvalResult, State
from core.train.progress import fmt_seconds
from core.train.run_data import RunData

if TYPE_CHECKING:
    from core.models.build import Built
    from core.train.sink import RunSink

LOG_MIN_INTERVAL_S = 0.25  # train points are written at most this often, whatever log_every_steps says


class Cadence(Callback):
    """When to log and evaluate: a train point at step 1, every ``log_every_steps`` steps (at most
    every ``LOG_MIN_INTERVAL_S``) and at the last step; an evaluation every ``eval_every_steps``
    steps and at the last, or, with 0, at the end of each epoch."""

    def __init__(self, *, log_every_steps: int, eval_every_steps: int) -> None:
        self.log_every, self.eval_every = log_every_steps, eval_every_steps
        self.last_log = time.monotonic()

    def on_step_end(self, state: State, control: Control) -> None:
        last = state.step == state.total_steps
        due = state.step % self.log_every == 0 and time.monotonic() - self.last_log >= LOG_MIN_INTERVAL_S
        control.should_log = control.should_log or state.step == 1 or last or due
        if self.eval_every and (state.step % self.eval_every == 0 or last):
            control.should_evaluate = True

    def on_log(self, state: State, control: Control, logs: dict[str, float]) -> None:
        self.last_log = time.monotonic()

    def on_epoch_end(self, state: State, control: Control) -> None:
        if not self.eval_every:
            control.should_evaluate = True


class StopOnRequest(Callback):
    """Stops after the current step once the watchdog has seen ``stop_requested`` in the store."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_step_end(self, state: State, control: Control) -> None:
        if self.event.is_set():
            control.stop("requested")


class EarlyStopping(Callback):
    def __init__(self, patience: int) -> None:
        self.patience, self.bad = patience, 0

    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None:
        self.bad = 0 if result.is_best else self.bad + 1
        if self.patience and self.bad >= self.patience and not control.should_stop:
            control.stop("early_stopping")
            print(f"early stopping: no better val {result.metric_name} for {self.bad} evaluations", flush=True)


class Checkpointer(Callback):
    """``best.pt`` at each evaluation that is the run's result so far (val improved, or every one
    with ``checkpoint="last"``), ``last.pt`` at the end."""

    def __init__(self, sink: RunSink, built: Built, meta: dict[str, Any]) -> None:
        self.sink, self.built, self.meta = sink, built, meta

    def save(self, which: str, state: State, metric: float) -> None:
        save_checkpoint(
            self.sink.files.checkpoint_path(which), self.built.net, step=state.step, epoch=state.epoch, metric=metric, **self.meta
        )

    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None:
        if result.is_best:
            self.save("best", state, result.metric)

    def on_train_end(self, state: State, control: Control) -> None:
        self.save("last", state, float("nan"))


class DynamicsRecorder(Callback):
    """Closes each epoch of the run's training dynamics and writes them at the end (``core.train.dynamics``)."""

    def __init__(self, sink: RunSink, dynamics: Dynamics, data: RunData) -> None:
        self.sink, self.dynamics, self.data = sink, dynamics, data

    def on_epoch_end(self, state: State, control: Control) -> None:
        self.dynamics.end_epoch()

    def on_train_end(self, state: State, control: Control) -> None:
        if float(self.dynamics.count.sum()) > 0:  # a run stopped within an epoch: that epoch's passes count too
            self.dynamics.end_epoch()
        train = np.asarray(self.data.train)
        self.sink.files.write_dynamics(self.dynamics.arrays(train, self.data.rows[train]))


class MetricWriter(Callback):
    """Writes train points, evaluations and progress through the run's sink, and a line to the log.

    ``write_eval`` is also how the evaluations re-scored after training are written, as a
    ``core.metrics.keys.VARIANTS`` variant ("ts": temperature scaling, "tm": threshold moving).
    """

    def __init__(self, sink: RunSink, data: RunData) -> None:
        self.sink, self.data = sink, data

    def on_log(self, state: State, control: Control, logs: dict[str, float]) -> None:
        self.sink.add_metrics(state.step, "train", logs, epoch=state.epoch)
        msg = (
            f"epoch {state.epoch:.2f} · step {state.step}/{state.total_steps} · loss {logs['loss']:.4f} · "
            f"{logs['samples_per_s']:,.0f} samples/s · ETA {fmt_seconds(logs['eta_s'])}"
        )
        self.sink.progress(msg, progress=state.step / max(1, state.total_steps))
        print(msg, flush=True)

    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None:
        self.write_eval(result)
        v, t = result.reports["val"].summary if "val" in result.reports else {}, result.reports["test"].summary
        print(
            f"eval step {state.step}: val {result.metric_name} {v.get(result.metric_name, float('nan')):.4f} · "
            f"test acc {t['accuracy']:.4f} · halluc@τ {t['hallucination_rate']:.4f} · ECE {t['ece']:.4f}"
            f"{' · best' if result.is_best else ''}",
            flush=True,
        )

    def write_eval(self, result: EvalResult, *, variant: str | None = None) -> None:
        """Metric rows, test predictions, held-out probabilities and the artifacts file of one evaluation.

        The metric rows go last, the val split's last of all: a reader that sees an evaluation's
        val rows (which decide the best step) finds its test rows, predictions and artifacts too.
        """
        data, files = self.data, self.sink.files
        parts, rows_by_split = {}, {}
        for split, rep in result.reports.items():
            name = variant_split(split, variant) if variant else split
            values: dict[str, float | None] = dict(rep.summary)
            for metric in PER_CLASS:
                values.update({per_class_key(metric, c): v for c, v in zip(data.classes.tolist(), rep.per_class[metric].tolist())})
            if rep.temperature is not None:
                values["temperature"] = rep.temperature
            if rep.offsets is not None:
                values.update({per_class_key("offset", c): float(b) for c, b in zip(data.classes.tolist(), rep.offsets.tolist())})
            for col, per_value in rep.slices.items():
                for value, summ in per_value.items():
                    values.update({slice_key(col, value, metric): summ.get(metric) for metric in SLICE_METRICS})
            rows_by_split[split] = (name, values)
            parts[name] = to_jsonable(
                {"reliability": rep.reliability.to_dict(), "confusion": rep.confusion, "unknown_confusion": rep.unknown_confusion}
            )
            if split == "test":
                rows = data.rows[data.test]
                self.sink.add_predictions(result.step, name, rows, data.labels[data.test], data.classes[rep.pred], rep.probs.max(axis=1))
            # full held-out probabilities: test for diagnosing label noise with this run (core.diagnose),
            # val for the label-free estimates on a shifted target (core.shift.estimate)
            held = data.test if split == "test" else data.val
            files.write_heldout_probs(result.step, name, data.rows[held], rep.probs.astype(np.float32), data.classes)
        files.write_eval(result.step, result.epoch, data.classes, data.absent, parts)
        for split in sorted(rows_by_split, key=lambda s: s == "val"):
            name, values = rows_by_split[split]
            self.sink.add_metrics(result.step, name, values, epoch=result.epoch)
