"""A training run as its own process, from claim to final status.

    GAPSCOPE_HOME=~/.gapscope python -m core.train RUN_ID

reads the run's ``RunConfig``, trains, and writes everything it learns through the run's sink
(``core.train.sink``) while it goes. ``core.runners.local.LocalRunner`` starts it; the shell works
just as well.

What it writes
--------------
``metrics`` rows (names: ``core.metrics.keys``), by split:

- ``train`` — ``loss`` (mean over the steps since the last point), ``lr``, ``samples_per_s`` and
  ``eta_s``, at step 1 and every ``log_every_steps`` steps (at most ~4 points a second); at the end
  ``train_runtime_s`` and ``train_samples_per_s`` (wall clock of the loop, evaluations and their
  writes excluded, logging included).
- ``val`` and ``test`` — at every evaluation (each epoch, or every ``eval_every_steps``): every
  ``core.metrics.SUMMARY_KEYS`` key, per class (precision, recall, F1 of each class present in
  train) and per slice (``core.data.slices``). Rows of a class absent from the train split are
  *unknown*: they count only in ``forced_known_rate``, the unknown AUROCs and ``n_unknown``.
- ``val_ts`` and ``test_ts`` — after training, with temperature scaling fitted on val: the same
  keys for the result's logits divided by T, at the result's step (the best evaluation by val, or the
  last with ``checkpoint="last"``), plus ``temperature``. "Before" is the ``val``/``test`` rows at that step; "after" the ``*_ts`` rows.

``predictions`` rows: per test item, at every evaluation (split ``test``) and after temperature
scaling (split ``test_ts``): ``item`` = row in the dataset version, ``label`` = its class,
``pred`` = predicted class (dataset class index), ``conf`` = top-label probability.

``runs`` row: ``status`` (running → finished | stopped | failed), ``progress`` (0..1),
``message`` (epoch, step, loss, samples/s, ETA; at the end the outcome), ``heartbeat_at``
(every ~2 s from a watchdog thread, which also polls ``stop_requested`` every 0.5 s).

Files: see ``core.store.artifacts`` (checkpoints, per-evaluation artifacts, held-out
probabilities, ``config.json``, ``summary.json``).

Determinism: on the CPU the same config and seed give the same metrics (seeded init, dropout and
shuffling; the CPU kernels used are deterministic for a fixed thread count). On CUDA the loop runs
bf16 autocast, channels_last convolutions and cudnn autotuning: fast, not bit-exact.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from core.data.dataset import Dataset
from core.jsonable import to_jsonable
from core.lab.settings import LAB_MODEL
from core.store.database import Store
from core.store.space import disk_full_message, disk_low, is_disk_full
from core.store.status import RunStatus
from core.train import distributed
from core.train.callbacks import Cadence, Checkpointer, DynamicsRecorder, EarlyStopping, MetricWriter, StopOnRequest
from core.train.config import RunConfig
from core.train.dynamics import Dynamics
from core.train.evaluate import logit_adjusted, temperature_scaled, threshold_moved
from core.train.events import BestEval, Callback, State
from core.train.loop import Job, fit
from core.train.prepare import prepare
from core.train.pseudo_labels import PseudoLabeller
from core.train.sink import QuietSink, RunSink, StoreSink, launcher_process, this_process
from core.train.speed import compile_cache


class StopRequested(Exception):
    """Raised from a progress callback when a stop arrives before training starts."""


class Terminated(BaseException):
    """SIGTERM / SIGINT arrived (the runner's fallback after a stop request's grace period)."""


class Watchdog(threading.Thread):
    """Heartbeat every ``beat_s`` and poll for a stop request every ``poll_s``, off the main thread,
    so the training loop never waits on the database and long evaluations still heartbeat."""

    def __init__(self, sink: RunSink, *, poll_s: float = 0.5, beat_s: float = 2.0) -> None:
        super().__init__(daemon=True, name=f"gapscope-watchdog-{sink.run_id}")
        self.sink, self.poll_s, self.beat_s = sink, poll_s, beat_s
        self.stop_event = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        last_beat = -math.inf
        while True:
            try:
                if time.monotonic() - last_beat >= self.beat_s:
                    requested = self.sink.heartbeat()
                    last_beat = time.monotonic()
                else:
                    requested = self.sink.stop_requested()
                if requested:
                    self.stop_event.set()
            except Exception as err:  # a busy database: try again next tick
                print(f"watchdog: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            if self._halt.wait(self.poll_s):
                return

    def close(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def train_run(store: Store, run_id: int, *, callbacks: list[Callback] | None = None, watchdog_poll_s: float = 0.5) -> RunStatus:
    """Run ``run_id`` of the local store to its end in this process (this rank's share of it under
    torchrun: rank 0 writes, the others write nothing); return the final status."""
    dist = distributed.from_env()
    if dist.is_main:
        return run_with_sink(StoreSink(store, run_id), store.load_dataset, callbacks=callbacks, watchdog_poll_s=watchdog_poll_s, dist=dist)
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"gapscope-run{run_id}-rank{dist.rank}-") as scratch:
        quiet = QuietSink.on_store(store, run_id, scratch)
        return run_with_sink(quiet, store.load_dataset, callbacks=callbacks, watchdog_poll_s=watchdog_poll_s, dist=dist)


def run_with_sink(
    sink: RunSink,
    load_dataset: Callable[[int], Dataset],
    *,
    callbacks: list[Callback] | None = None,
    watchdog_poll_s: float = 0.5,
    dist: distributed.Dist = distributed.SINGLE,
) -> RunStatus:
    """Claim the run, train it, and write exactly one final status: "finished", "stopped" (a stop
    request, or SIGTERM after one) or "failed" (message = the error)."""
    if sink.stop_requested():
        sink.finish(RunStatus.STOPPED, "stopped before it started")
        return RunStatus.STOPPED
    blocked = sink.claim(*(launcher_process() if dist.active else this_process()))  # torchrun leads the process group
    if blocked is not None:
        print(f"run {sink.run_id} is {blocked}; nothing to do", flush=True)
        return blocked
    sink.files.folder.mkdir(parents=True, exist_ok=True)
    watchdog = Watchdog(sink, poll_s=watchdog_poll_s)
    watchdog.start()
    status, message = RunStatus.FAILED, ""
    try:
        status, message = _run(sink, load_dataset, watchdog, callbacks or [], dist)
    except StopRequested:
        status, message = RunStatus.STOPPED, "stopped before training began"
    except Terminated as sig:
        status = RunStatus.STOPPED if sink.stop_requested() else RunStatus.FAILED
        message = f"terminated by {sig}"
    except Exception as err:
        status, message = RunStatus.FAILED, f"{type(err).__name__}: {err}"
        home = sink.files.folder.parent.parent
        if is_disk_full(err, home) or disk_low(home):  # the reason, not a traceback from inside torch.save
            message = f"{disk_full_message(home, f'go on with run {sink.run_id}')} ({message})"
        else:
            with contextlib.suppress(OSError):  # the log itself may be on the full disk
                traceback.print_exc()
    finally:
        watchdog.close()
        distributed.close(dist)
        sink.finish(status, message)
        with contextlib.suppress(OSError):
            print(f"run {sink.run_id} {status}: {message}", flush=True)
    return status


def plan(job: Job, run_id: int) -> State:
    """The loop's starting state: steps per epoch of the run's sampler, steps and evaluations in all."""
    cfg = job.cfg
    first = job.inputs.epoch(job.seams.sampler.epoch(job.data.train, 0, np.random.default_rng(0)))
    steps_per_epoch = len(first.batches(cfg.batch_size, np.random.default_rng(0), drop_last=job.speed.fixed_shapes))
    total = steps_per_epoch * cfg.epochs
    evals = (total // cfg.eval_every_steps + (total % cfg.eval_every_steps > 0)) if cfg.eval_every_steps else cfg.epochs
    return State(run_id=run_id, total_steps=total, steps_per_epoch=steps_per_epoch, evals_planned=evals)


def _run(
    sink: RunSink, load_dataset: Callable[[int], Dataset], watchdog: Watchdog, extra: list[Callback], dist: distributed.Dist
) -> tuple[RunStatus, str]:
    cfg = _config(sink, dist)
    if cfg.model == LAB_MODEL:  # the knowledge-gap lab: its own corpus, model and evaluation, the same sink
        from core.lab.run import run_lab

        return run_lab(sink, cfg, watchdog.stop_event.is_set)
    last_write = [0.0]

    def progress(done: int, total: int, what: str = "extracting features") -> None:
        if watchdog.stop_event.is_set():
            raise StopRequested()
        if time.monotonic() - last_write[0] >= 1.0 or done >= total:
            last_write[0] = time.monotonic()
            sink.progress(f"{what} {done:,}/{total:,}" if total else what)

    t0 = time.perf_counter()
    ds = load_dataset(cfg.version_id)
    tokens = ds.modality == "tokens"
    if tokens:  # token classification: the same loop, sink and callbacks with words as the scored units
        from core.tokens.train import prepare_tokens

        job = prepare_tokens(ds, cfg, progress=progress)
    else:
        job = prepare(ds, cfg, progress=progress)
    if dist.active:
        _join(job, dist)
    elif not tokens:  # per train item and epoch, from the training passes (one process: its own share is everything)
        job.dynamics = Dynamics(len(job.data.rows), job.device)
    cfg, data = job.cfg, job.data
    sink.files.write_json("config.json", cfg.to_dict())
    state = plan(job, sink.run_id)
    _announce(sink, job, ds, state, ready_s=time.perf_counter() - t0)
    writer = _token_writer(sink, job, ds) if tokens else MetricWriter(sink, data)
    control, best = fit(job, state, _callbacks(job, sink, watchdog, writer, extra))
    if not dist.is_main:  # rank 0 writes the run's results and status
        return RunStatus.FINISHED, f"rank {dist.rank} of {dist.world} done at step {state.step}"
    sink.add_metrics(
        state.step,
        "train",
        {"train_runtime_s": state.train_time_s, "train_samples_per_s": state.samples / max(state.train_time_s, 1e-9)},
        epoch=state.epoch,
    )
    summary: dict[str, Any] = {
        "status": RunStatus.FINISHED.value,
        "steps": state.step,
        "epochs": state.epoch,
        "best_step": None if best is None else best.step,  # the result's step, by the rule in "checkpoint"
        "best_metric": None if best is None else best.metric,
        "metric": cfg.early_stopping_metric,
        "checkpoint": cfg.checkpoint,
        "train_runtime_s": state.train_time_s,
        "eval_time_s": state.eval_time_s,
    }
    if control.stop_reason == "requested":
        summary["status"] = RunStatus.STOPPED.value
        sink.files.write_json("summary.json", to_jsonable(summary))
        return RunStatus.STOPPED, f"stopped at step {state.step}/{state.total_steps}"
    message = f"done: {state.step} steps"
    if best is not None:
        if cfg.checkpoint == "last":
            message += f" · result at the last evaluation, step {best.step} (val {cfg.early_stopping_metric} {best.metric:.4f})"
        else:
            over = f" (mean of {cfg.selection_window} evaluations)" if cfg.selection_window > 1 else ""
            message += f" · best val {cfg.early_stopping_metric}{over} {best.metric:.4f} at step {best.step}"
        if tokens:
            from core.tokens.train import after_training_tokens

            message += after_training_tokens(job, best, writer, summary)  # type: ignore[arg-type]
        else:
            message += _after_training(job, best, writer, summary)
    if control.stop_reason == "early_stopping":
        message += " (early stopping)"
    sink.files.write_json("summary.json", to_jsonable(summary))
    return RunStatus.FINISHED, message


def _token_writer(sink: RunSink, job: Job, ds: Dataset) -> MetricWriter:
    from core.tokens.spans import mention_counts
    from core.tokens.train import TokenMetricWriter

    inputs = job.inputs
    mentions = mention_counts(inputs.tags[i] for i in job.data.train)  # type: ignore[attr-defined]
    return TokenMetricWriter(sink, job, list(ds.class_names), dict(mentions))


def _config(sink: RunSink, dist: distributed.Dist) -> RunConfig:
    """The run's validated config; under torchrun on GPUs, each process on its own GPU."""
    cfg = RunConfig.from_dict(sink.config())
    cfg.validate()
    if dist.active and cfg.device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            cfg = dataclasses.replace(cfg, device=f"cuda:{dist.local_rank}")  # one GPU per process
    return cfg


def _join(job: Job, dist: distributed.Dist) -> None:
    """Join the run's other processes; on the CPU they share the cores."""
    distributed.init(dist, job.device)
    job.dist = dist
    if job.device.type == "cpu":
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads() // dist.world))


def _announce(sink: RunSink, job: Job, ds: Dataset, state: State, *, ready_s: float) -> None:
    """What is about to train, in the log and in the run's status line."""
    cfg, data = job.cfg, job.data
    print(
        f"run {sink.run_id}: {cfg.display_name()} on {ds.name} ({ds.modality}) · device {job.device} · "
        f"{len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test · {len(data.classes)} classes "
        f"({len(data.absent)} absent from train) · {job.built.n_trainable():,} trainable parameters · "
        f"{state.total_steps} steps · ready in {ready_s:.1f}s",
        flush=True,
    )
    first = ""
    if job.speed.compile:
        compile_cache(sink.files.folder.parent.parent)
        first = " · compiling the model at the first step (kept for later runs of this shape)"
    elif job.speed.autotune:
        first = " · the first step tunes cuDNN for this batch shape"
    sink.progress(f"training: {state.total_steps} steps{first}")


def _callbacks(job: Job, sink: RunSink, watchdog: Watchdog, writer: MetricWriter, extra: list[Callback]) -> list[Callback]:
    cfg = job.cfg
    meta = {"classes": job.data.classes.tolist(), "config": cfg.to_dict(), "arch": job.built.arch}
    if job.input_scale is not None:  # what core.train.apply needs to feed a target to a linear probe
        meta["input_mean"], meta["input_std"] = (np.asarray(a, dtype=np.float64).tolist() for a in job.input_scale)
    callbacks = [
        Cadence(log_every_steps=cfg.log_every_steps, eval_every_steps=cfg.eval_every_steps),
        StopOnRequest(watchdog.stop_event),
        EarlyStopping(cfg.patience),
        writer,
        Checkpointer(sink, job.built, meta),
        *([DynamicsRecorder(sink, job.dynamics, job.data)] if job.dynamics is not None else []),
        *extra,
    ]
    semi = cfg.mitigations.semi
    if semi.method == "pseudo_label":
        callbacks.insert(1, PseudoLabeller(job, threshold=semi.threshold, rounds=semi.rounds, sink=sink))
    return callbacks


def _after_training(job: Job, best: BestEval, writer: MetricWriter, summary: dict[str, Any]) -> str:
    """Temperature scaling and threshold moving of the result's evaluation (when the run asks for
    them and has a val split); what they did, for the run's final message."""
    cfg, data = job.cfg, job.data
    if "val" not in best.logits:
        return ""
    decision = cfg.mitigations.decision
    message = ""
    t = 1.0
    if cfg.temperature_scaling:
        scaled = temperature_scaled(best, data, tau=cfg.tau, abstain=decision.abstain_below)
        writer.write_eval(scaled, variant="ts")
        t = scaled.reports["test"].temperature or 1.0
        summary["temperature"] = t
        before = best.summaries["test"]["hallucination_rate"]
        after = scaled.reports["test"].summary["hallucination_rate"]
        message += f" · T={t:.2f}: test hallucination {_pct(before)} → {_pct(after)}"
        print(f"temperature scaling: T = {t:.3f}", flush=True)
    if decision.threshold_moving:
        moved = threshold_moved(best, data, tau=cfg.tau, temperature=t, abstain=decision.abstain_below)
        writer.write_eval(moved, variant="tm")
        f1 = moved.reports["test"].summary["macro_f1"]
        offsets = moved.reports["test"].offsets
        if offsets is not None and not np.any(offsets):
            message += " · threshold moving: no offsets (fitted on half of val, they did not help the other half)"
        else:
            message += f" · threshold moving: test macro-F1 {best.summaries['test']['macro_f1']:.3f} → {f1:.3f}"
        print(f"threshold moving: offsets {[] if offsets is None else np.round(offsets, 2).tolist()}", flush=True)
    if decision.logit_adjustment:
        adjusted, la_tau = logit_adjusted(best, data, tau=cfg.tau, temperature=t, abstain=decision.abstain_below)
        writer.write_eval(adjusted, variant="la")
        summary["logit_adjustment_tau"] = la_tau
        f1 = adjusted.reports["test"].summary["macro_f1"]
        message += f" · logit adjustment τ={la_tau:g} (on val): test macro-F1 {best.summaries['test']['macro_f1']:.3f} → {f1:.3f}"
        print(f"post-hoc logit adjustment: τ = {la_tau:g}", flush=True)
    return message


def _pct(v: Any) -> str:
    return "n/a" if v is None or not math.isfinite(float(v)) else f"{100 * float(v):.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.train", description="Train one stored run (GAPSCOPE_HOME from the environment).")
    parser.add_argument("run_id", type=int)
    args = parser.parse_args(argv)

    def on_signal(signum: int, frame: Any) -> None:
        raise Terminated(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = train_run(Store(), args.run_id)
    return 0 if status in (RunStatus.FINISHED, RunStatus.STOPPED) else 1
