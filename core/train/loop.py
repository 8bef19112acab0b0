"""The training loop: one loop for text, image and tabular models.

``fit`` only trains: which items an epoch draws (sampler), how a batch is changed (augmenter) and
scored (criterion) are the run's seams (``core.mitigate``); when to log, evaluate, checkpoint or
stop is decided by callbacks through ``Control`` (``core.train.events``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.hardware import autocast
from core.mitigate.seams import Seams
from core.models.build import Built
from core.train.config import RunConfig
from core.train.distributed import SINGLE, Dist, agree, shard, wrap
from core.train.dynamics import Dynamics
from core.train.evaluate import evaluate
from core.train.events import BestEval, Callback, Control, Events, State
from core.train.inputs import Inputs
from core.train.progress import Throughput
from core.train.run_data import RunData
from core.train.schedule import make_optimizer
from core.train.speed import OFF, Speed


@dataclass
class Job:
    """Everything the loop needs, prepared by ``core.train.prepare.prepare``."""

    cfg: RunConfig
    data: RunData
    built: Built
    inputs: Inputs
    device: torch.device
    lr: float
    seams: Seams
    dist: Dist = SINGLE  # this process's share of a torchrun run (core.train.distributed)
    speed: Speed = OFF  # the GPU fast path (core.train.speed)
    evaluator: Callable[..., Any] | None = None  # scores val and test; default core.train.evaluate.evaluate (token runs: their own)
    input_scale: tuple[np.ndarray, np.ndarray] | None = None  # a linear probe's feature (mean, std) from train: kept in its checkpoints
    dynamics: Dynamics | None = None  # per train item and epoch, from the training forward passes (core.train.dynamics)

    def autocast(self) -> Any:
        return autocast(self.device)


def fit(job: Job, state: State, callbacks: list[Callback]) -> tuple[Control, BestEval | None]:
    """Train ``job`` for ``cfg.epochs``; return the control (why it stopped) and the best evaluation."""
    cfg, data, net, seams, dist = job.cfg, job.data, job.built.net, job.seams, job.dist
    model = wrap(net, dist, job.device)  # trains through DDP when distributed; ``net`` keeps the weights
    if job.speed.compile:  # compiled at the first step (the worker says so), cached under GAPSCOPE_HOME
        model = torch.compile(model, dynamic=False)  # type: ignore[assignment]
    opt, sched, params = make_optimizer(
        net,
        lr=job.lr,
        weight_decay=cfg.mitigations.loss.weight_decay or cfg.weight_decay,  # weight balancing replaces the run's own
        warmup_ratio=cfg.warmup_ratio,
        total_steps=lambda: state.total_steps,
        device=job.device,
    )
    _refuse_two_stage_on_ddp(job)
    rng = np.random.default_rng(cfg.seed)
    control, best, event = Control(), None, Events(callbacks)
    meter = Throughput(state, eval_items=len(data.val) + len(data.test), batch_size=cfg.batch_size)
    loss_sum = torch.zeros((), device=job.device)  # summed on the device: no host sync per step
    event("on_train_begin", state, control)
    job.built.train_mode()
    began = time.perf_counter()
    for epoch in range(cfg.epochs):
        state.epoch_index = epoch
        seams.stage.begin_epoch(epoch, job.built, opt)  # classifier re-training: the second stage may start
        event("on_epoch_begin", state, control)
        y_dev = torch.from_numpy(data.y).to(job.device)  # per epoch: pseudo-labelling may have changed it
        order = seams.sampler.epoch(data.train, epoch, rng)
        seams.criterion.begin_epoch(epoch, cfg.epochs, drawn=data.y[order])  # the loss's prior follows the draws
        view = job.inputs.epoch(order, text_augmenter=seams.text_augmenter, labels=data.y, rng=rng)
        batches = view.batches(cfg.batch_size, rng, drop_last=job.speed.fixed_shapes)
        shares = [shard(batch, dist) for batch in batches]  # this process's share; the whole batch without torchrun
        on_device = view.to_device(shares)  # one index copy per epoch, none per step
        for b, (batch, pos, where) in enumerate(zip(batches, shares, on_device)):
            x, y = seams.augmenter(view.raw(pos, where), y_dev.index_select(0, where.rows))
            if isinstance(x, dict) and "targets" in x:  # a batch that carries its own targets (the words of a token run)
                y = x.pop("targets")
            x = job.inputs.prepare(x)
            if seams.adversary is not None:  # adversarial training: the batch as the model reads it, attacked
                x = seams.adversary(net, x, y, job.built.train_mode)
            with job.autocast():
                logits = model(x)
            loss = seams.criterion(logits, y)
            if job.dynamics is not None:
                job.dynamics.record(where.rows, logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            loss_sum += loss.detach()
            state.step += 1
            state.samples += len(batch)
            state.epoch = epoch + (b + 1) / len(batches)
            meter.step(len(batch))
            event("on_step_end", state, control)
            if dist.active and agree(control.should_stop, dist, job.device) and not control.should_stop:
                control.stop("requested")  # another process saw the stop request: all stop at this step
            if control.should_log:
                logs = {"loss": float(loss_sum) / meter.steps, "lr": opt.param_groups[0]["lr"], **meter.read()}  # the one host sync
                if state.step == 1:  # the first step's warm-up: tuning, compiling, lazy kernel loading
                    logs["first_step_s"] = time.perf_counter() - began
                event("on_log", state, control, logs)
                loss_sum.zero_()
                meter.restart()
                control.should_log = False
            if control.should_evaluate and control.stop_reason != "requested":
                best = _evaluate(job, state, control, best, event, meter)
            if control.should_stop:
                break
        if control.should_stop:
            break
        event("on_epoch_end", state, control)
        if control.should_evaluate:
            best = _evaluate(job, state, control, best, event, meter)
            if control.should_stop:
                break
    state.train_time_s = meter.training_seconds()
    event("on_train_end", state, control)
    return control, best


def _refuse_two_stage_on_ddp(job: Job) -> None:
    if job.dist.active and job.seams.stage.active:
        raise ValueError(
            "classifier re-training (cRT) freezes the features mid-run, which torchrun's DDP cannot follow: train it on one process."
        )


def _evaluate(job: Job, state: State, control: Control, best: BestEval | None, event: Events, meter: Throughput) -> BestEval | None:
    t = time.perf_counter()
    result = (job.evaluator or evaluate)(job, state, best)
    event("on_evaluate", state, control, result)
    if job.dist.active and agree(control.should_stop, job.dist, job.device) and not control.should_stop:
        control.stop("early_stopping")  # the processes' evaluations may differ in the last bit: stop together
    control.should_evaluate = False
    state.n_evals += 1
    dt = time.perf_counter() - t
    state.eval_time_s += dt
    meter.evaluated(dt)
    return BestEval.of(result) if result.is_best else best
