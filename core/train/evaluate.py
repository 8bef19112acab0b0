"""Evaluation: logits on val and test, every metric per split, class and slice, which evaluation is
best, and temperature scaling of the best one."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from core import metrics as M
from core.metrics.keys import improves, selection_value
from core.train.events import BestEval, EvalResult, SplitReport, State
from core.train.run_data import RunData

if TYPE_CHECKING:
    from core.models.build import Built
    from core.train.inputs import Inputs
    from core.train.loop import Job


def report(
    logits: np.ndarray, idx: np.ndarray, data: RunData, *, tau: float, temperature: float = 1.0,
    offsets: np.ndarray | None = None, abstain: float = 0.0,
) -> SplitReport:  # fmt: skip
    """Every metric of the local positions ``idx``: summary, per class, reliability bins, confusion of
    the known rows and of the unknown ones, and per slice. The logits are divided by ``temperature``
    and shifted by per-class ``offsets`` (threshold moving) first; with ``abstain`` > 0 the summary
    also has the coverage and risk of answering only at confidence ≥ ``abstain``."""
    y = data.y[idx]
    z = logits.astype(np.float64) / temperature  # the energy score needs these unshifted
    if offsets is not None:
        z = z + offsets[None, :]
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    k = len(data.classes)
    pred = probs.argmax(axis=1)
    unknown_conf = np.zeros((len(data.absent), k), np.int64)
    true = data.labels[idx]
    for i, c in enumerate(data.absent):
        unknown_conf[i] = np.bincount(pred[true == c], minlength=k)
    by_slice = {
        col: M.metrics_by_slice(probs, y, values[idx], tau=tau, logits=z, train_counts=data.train_counts)
        for col, values in data.slices.items()
    }
    summary = M.summary(probs, y, tau=tau, logits=z, train_counts=data.train_counts)
    if abstain > 0:
        chosen = M.selective(probs, y, abstain)
        summary.update(abstain_coverage=chosen["coverage"], abstain_risk=chosen["risk"])
    return SplitReport(
        summary=summary,
        per_class=M.per_class(probs, y, k), reliability=M.reliability_bins(probs, y), confusion=M.confusion(pred, y, k),
        unknown_confusion=unknown_conf, probs=probs, pred=pred, slices=by_slice,
        temperature=temperature if temperature != 1.0 else None, offsets=offsets,
    )  # fmt: skip


@torch.inference_mode()
def predict_logits(
    built: Built, inputs: Inputs, idx: np.ndarray, *, n_classes: int, batch_size: int, autocast: Callable[[], Any], pad: bool = False
) -> np.ndarray:
    """Logits (len(idx), K) float32 for local positions ``idx``; text is batched by length. With
    ``pad`` every batch has ``batch_size`` rows (the last one repeats its last row; the extra logits
    are dropped), so the net meets one batch shape. The indices go to the device once."""
    built.net.eval()
    lengths = inputs.lengths
    perm = np.arange(len(idx)) if lengths is None else np.argsort(lengths[idx], kind="stable")
    order = idx[perm]
    n = len(order)
    if pad and n % batch_size:
        order = np.r_[order, np.repeat(order[-1:], batch_size - n % batch_size)]
    on_device = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(inputs.device, non_blocking=True)
    outs = []
    for s in range(0, len(order), batch_size):
        with autocast():
            outs.append(built.net(inputs.batch(order[s : s + batch_size], on_device[s : s + batch_size])).float())
    logits = torch.cat(outs)[:n].cpu().numpy() if outs else np.zeros((0, n_classes), np.float32)
    back = np.empty_like(logits)
    back[perm] = logits  # row j was computed for idx[perm[j]]: put it back in the order of idx
    return back


def predict(job: Job, idx: np.ndarray) -> np.ndarray:
    """``predict_logits`` with the run's evaluation batch: twice the train batch (at least 64), or
    on the fast path the train batch itself, padded, so evaluation adds no new batch shape."""
    fixed = job.speed.fixed_shapes
    bs = job.cfg.batch_size if fixed else max(64, 2 * job.cfg.batch_size)
    return predict_logits(job.built, job.inputs, idx, n_classes=len(job.data.classes), batch_size=bs, autocast=job.autocast, pad=fixed)


def evaluate(job: Job, state: State, best: BestEval | None) -> EvalResult:
    """Score val and test at the current step. ``is_best`` says the evaluation is the run's result so
    far (kept as ``best.pt``): by the selection metric on val (``core.metrics.keys.improves``), or
    always with ``checkpoint="last"`` or without a val split."""
    cfg, data = job.cfg, job.data
    reports, logits = {}, {}
    for split, idx in (("val", data.val), ("test", data.test)):
        if len(idx) == 0 and split == "val":
            continue
        z = predict(job, idx)
        logits[split] = z
        reports[split] = report(z, idx, data, tau=cfg.tau, abstain=cfg.mitigations.decision.abstain_below)
    job.built.train_mode()
    name = cfg.early_stopping_metric
    raw = float(reports["val"].summary[name]) if "val" in reports else float("nan")
    state.val_history.append(raw)
    value = selection_value(state.val_history, cfg.selection_window)
    is_best = cfg.checkpoint == "last" or "val" not in reports or improves(name, value, None if best is None else best.metric)
    if is_best:
        state.best_metric, state.best_step = value, state.step
    return EvalResult(state.step, state.epoch, name, value, is_best, reports, logits)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """T > 0 minimising the NLL of softmax(logits / T) on the known rows (LBFGS over log T)."""
    known = y >= 0
    if known.sum() == 0:
        return 1.0
    z = torch.tensor(logits[known], dtype=torch.float64)
    t = torch.tensor(y[known], dtype=torch.int64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(math.exp(float(log_t.detach())), 0.05, 20.0))


def temperature_scaled(best: BestEval, data: RunData, *, tau: float, abstain: float = 0.0) -> EvalResult:
    """The best evaluation re-scored with T fitted on its val logits: an ``EvalResult`` at the best
    step whose reports carry ``temperature`` (written as the ``val_ts`` / ``test_ts`` splits)."""
    t = fit_temperature(best.logits["val"], data.y[data.val])
    reports = {
        split: report(best.logits[split], idx, data, tau=tau, temperature=t, abstain=abstain)
        for split, idx in (("val", data.val), ("test", data.test))
    }
    for rep in reports.values():
        rep.temperature = t
    return EvalResult(best.step, best.epoch, best.metric_name, best.metric, False, reports, {})


def fit_class_offsets(
    logits: np.ndarray, y: np.ndarray, *, grid: np.ndarray | None = None, rounds: int = 2, cross_check: bool = True
) -> np.ndarray:
    """Per-class offsets b (K,) added to the logits that maximise macro-F1 on the known rows
    (threshold moving: argmax of z + b). Coordinate ascent over ``grid`` (default −3…3 in steps of
    0.25), ``rounds`` passes over the classes, starting from 0; ties keep the smaller change.

    With ``cross_check`` the offsets must first earn their place: fitted on one half of the rows
    (stratified by class) they must raise macro-F1 on the other half, on average over both ways
    round; otherwise they are all 0. On a small val split the full fit always finds offsets that
    flip a few items its way, which a test split does not reward."""
    grid = np.linspace(-3.0, 3.0, 25) if grid is None else grid
    known = y >= 0
    z, t = np.asarray(logits, dtype=np.float64)[known], y[known]
    k = z.shape[1]
    if len(t) == 0:
        return np.zeros(k)
    if cross_check:
        half = np.zeros(len(t), dtype=bool)
        for c in np.unique(t):
            half[np.flatnonzero(t == c)[::2]] = True
        gain = 0.0
        for fit, check in ((half, ~half), (~half, half)):
            if not check.any() or not fit.any():
                return np.zeros(k)
            b = _ascend(z[fit], t[fit], k, grid, rounds)
            gain += M.macro_f1((z[check] + b).argmax(1), t[check], k) - M.macro_f1(z[check].argmax(1), t[check], k)
        if gain <= 0:
            return np.zeros(k)
    return _ascend(z, t, k, grid, rounds)


def _ascend(z: np.ndarray, t: np.ndarray, k: int, grid: np.ndarray, rounds: int) -> np.ndarray:
    b = np.zeros(k)
    best = M.macro_f1((z + b).argmax(1), t, k)
    for _ in range(rounds):
        for c in range(k):
            for v in sorted(grid, key=abs):
                trial = b.copy()
                trial[c] = v
                score = M.macro_f1((z + trial).argmax(1), t, k)
                if score > best + 1e-12:
                    best, b = score, trial
    return b


LA_GRID = np.round(np.arange(0.0, 2.01, 0.25), 2)  # τ of post-hoc logit adjustment, tried on val


def fit_logit_adjustment(logits: np.ndarray, y: np.ndarray, train_counts: np.ndarray, *, grid: np.ndarray = LA_GRID) -> float:
    """τ of post-hoc logit adjustment (Menon et al. 2021: answer by argmax z − τ · log π, π the train
    class prior) with the best macro-F1 on the known rows given — the val split; ties keep the
    smaller τ, and τ = 0 (no change) unless another value does better."""
    known = y >= 0
    z, t = np.asarray(logits, dtype=np.float64)[known], y[known]
    k = z.shape[1]
    if len(t) == 0:
        return 0.0
    log_prior = np.log(np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0) / max(float(np.sum(train_counts)), 1.0))
    best_tau, best = 0.0, M.macro_f1(z.argmax(1), t, k)
    for tau in grid:
        score = M.macro_f1((z - tau * log_prior).argmax(1), t, k)
        if score > best + 1e-12:
            best_tau, best = float(tau), score
    return best_tau


def logit_adjusted(
    best: BestEval, data: RunData, *, tau: float, temperature: float = 1.0, abstain: float = 0.0
) -> tuple[EvalResult, float]:
    """The best evaluation answered by post-hoc logit adjustment with τ fitted on val only (after
    temperature ``temperature``): written as the ``val_la`` / ``test_la`` splits; and that τ."""
    z_val = best.logits["val"] / temperature
    la_tau = fit_logit_adjustment(z_val, data.y[data.val], data.train_counts)
    log_prior = np.log(np.maximum(data.train_counts.astype(np.float64), 1.0) / max(float(data.train_counts.sum()), 1.0))
    offsets = -la_tau * log_prior
    reports = {
        split: report(best.logits[split], idx, data, tau=tau, temperature=temperature, offsets=offsets, abstain=abstain)
        for split, idx in (("val", data.val), ("test", data.test))
    }
    return EvalResult(best.step, best.epoch, best.metric_name, best.metric, False, reports, {}), la_tau


def threshold_moved(best: BestEval, data: RunData, *, tau: float, temperature: float = 1.0, abstain: float = 0.0) -> EvalResult:
    """The best evaluation with per-class offsets fitted on val (after temperature ``temperature``):
    an ``EvalResult`` at the best step written as the ``val_tm`` / ``test_tm`` splits."""
    offsets = fit_class_offsets(best.logits["val"] / temperature, data.y[data.val])
    reports = {
        split: report(best.logits[split], idx, data, tau=tau, temperature=temperature, offsets=offsets, abstain=abstain)
        for split, idx in (("val", data.val), ("test", data.test))
    }
    return EvalResult(best.step, best.epoch, best.metric_name, best.metric, False, reports, {})
