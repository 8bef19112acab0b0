"""The training loop: one loop for text, image and tabular data, run as its own process.

    GAPSCOPE_HOME=~/.gapscope python -m core.train RUN_ID

reads the run's ``RunConfig`` from the store, trains, and writes everything it learns back to the
store while it goes (``core.jobs.LocalRunner`` starts it; the shell works just as well).

What it writes
--------------
``metrics`` rows (``store.add_metrics``), by split:

- ``train`` — ``loss`` (mean over the steps since the last point), ``lr``, ``samples_per_s`` and
  ``eta_s``, at step 1 and every ``log_every_steps`` steps (at most ~4 points a second); at the end
  ``train_runtime_s`` and ``train_samples_per_s`` (wall clock of the loop, evaluations and their
  writes excluded, logging included).
- ``val`` and ``test`` — at every evaluation (each epoch, or every ``eval_every_steps``):
  every ``core.metrics.SUMMARY_KEYS`` key, plus ``precision/<c>``, ``recall/<c>`` and ``f1/<c>``
  for each class ``c`` present in train (``c`` is the class index in the dataset, i.e. into
  ``class_names``). Rows of a class absent from the train split are *unknown*: they count only in
  ``forced_known_rate``, ``unknown_auroc_msp`` / ``unknown_auroc_energy`` and ``n_unknown``.
  Per slice (each meta column with 2–20 values, e.g. VADER's ``domain``):
  ``slice/<column>=<value>/<metric>`` for ``SLICE_METRICS`` (n, accuracy, macro-F1,
  hallucination rate, ECE, forced-known rate).
- ``val_ts`` and ``test_ts`` — after training, with temperature scaling fitted on val: the same
  keys for the best checkpoint's logits divided by T, at the *best* evaluation's step, plus
  ``temperature``. "Before" is the ``val``/``test`` rows at that step; "after" the ``*_ts`` rows.

``predictions`` rows: per test item, at every evaluation (split ``test``) and after temperature
scaling (split ``test_ts``): ``item`` = row in the dataset version, ``label`` = its class,
``pred`` = predicted class (dataset class index), ``conf`` = top-label probability.

``runs`` row: ``status`` (running → finished | stopped | failed), ``progress`` (0..1),
``message`` (epoch, step, loss, samples/s, ETA; at the end the outcome), ``heartbeat_at``
(every ~2 s from a watchdog thread, which also polls ``stop_requested`` every 0.5 s).

Files under ``GAPSCOPE_HOME/runs/<id>/`` (never deleted by Gapscope):

- ``best.pt`` / ``last.pt`` — ``{"model": state_dict, "step", "epoch", "classes", "config",
  "arch", "metric"}``; load with ``load_checkpoint`` (``torch.load(weights_only=True)``).
  ``best`` is chosen by ``early_stopping_metric`` on val.
- ``evals/<step>.json`` — per evaluation, per split: reliability bins (15 bins) and confusion
  matrix over the known classes (``classes`` = their dataset indices, in the model's output
  order), and ``unknown_confusion`` (rows: classes absent from train, columns: what they were
  called); the best step's file also gets ``val_ts`` / ``test_ts`` bins. Read with
  ``load_eval_artifacts(run_id, step)``.
- ``config.json`` (the resolved config), ``summary.json`` (outcome), ``log.txt`` (this
  process's stdout and stderr, written by the runner).

Determinism: on the CPU the same config and seed give the same metrics (seeded init, dropout and
shuffling; the CPU kernels used are deterministic for a fixed thread count). On CUDA the loop runs bf16 autocast,
channels_last convolutions and cudnn autotuning: fast, not bit-exact.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core import metrics as M
from core import paths
from core.data import Dataset
from core.models import Built, backbone_features, build, build_linear_head, tabular_matrix
from core.runconfig import LOWER_IS_BETTER, RunConfig
from core.store import Store

PER_CLASS = ("precision", "recall", "f1")
MAX_SLICE_VALUES = 20  # a meta column with more distinct values is not scored per slice
SLICE_METRICS = ("n", "accuracy", "macro_f1", "hallucination_rate", "ece", "forced_known_rate")
LOG_MIN_INTERVAL_S = 0.25  # train points are written at most this often, whatever log_every_steps says
GPU_RESIDENT_BYTES = 4 << 30  # image datasets up to this size live on the GPU as uint8


# ====================================================================== files of a run


def run_dir(run_id: int, *, home: str | Path | None = None) -> Path:
    return Path(home if home is not None else paths.home()) / "runs" / str(int(run_id))


def eval_steps(run_id: int, *, home: str | Path | None = None) -> list[int]:
    """Steps that have an evaluation artifacts file, ascending."""
    folder = run_dir(run_id, home=home) / "evals"
    return sorted(int(p.stem) for p in folder.glob("*.json")) if folder.exists() else []


def load_eval_artifacts(run_id: int, step: int | None = None, *, home: str | Path | None = None) -> dict[str, Any]:
    """Reliability bins and confusion matrices of one evaluation (the latest when ``step`` is None).

    Returns
    -------
    dict
        ``step``, ``epoch``, ``classes`` (dataset class index of each model output, length K),
        ``absent_classes`` (dataset classes missing from train), and per split present
        (``val``, ``test``, and after temperature scaling ``val_ts``, ``test_ts``) a dict with
        ``reliability`` (``lower``, ``upper``, ``count``, ``mean_conf``, ``accuracy``: arrays of
        shape (15,), ``nan`` for empty bins), ``confusion`` (int (K, K), rows true, columns
        predicted) and ``unknown_confusion`` (int (len(absent_classes), K)).
        Empty dict when the run has no evaluation yet.
    """
    steps = eval_steps(run_id, home=home)
    if not steps:
        return {}
    if step is None:
        step = steps[-1]
    path = run_dir(run_id, home=home) / "evals" / f"{int(step)}.json"
    if not path.exists():
        raise KeyError(f"run {run_id} has no evaluation at step {step}; it has {steps}")
    raw = json.loads(path.read_text())
    for split, part in raw.items():
        if isinstance(part, dict) and "reliability" in part:
            part["reliability"] = {k: np.array(v, dtype=np.int64 if k == "count" else np.float64) for k, v in part["reliability"].items()}
            for k in ("confusion", "unknown_confusion"):
                if k in part:
                    part[k] = np.array(part[k], dtype=np.int64).reshape(-1, len(raw["classes"]))
    return raw


def load_heldout_probs(run_id: int, n_classes: int, *, split: str = "test", step: int | None = None,
                       home: str | Path | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """(dataset rows, probabilities over all ``n_classes`` dataset classes) of a run's held-out
    split at ``step`` (default: the latest evaluation); classes absent from train get 0. None
    when the run has no such file (no evaluation yet, or a run from before they were written)."""
    steps = eval_steps(run_id, home=home) if step is None else [step]
    for st in reversed(steps):
        path = run_dir(run_id, home=home) / "evals" / f"{int(st)}_{split}_probs.npz"
        if path.exists():
            with np.load(path) as z:
                rows, probs, classes = z["rows"], z["probs"], z["classes"]
            full = np.zeros((len(rows), n_classes), np.float32)
            full[:, classes] = probs
            return rows, full
    return None


def load_checkpoint(run_id: int, which: str = "best", *, home: str | Path | None = None) -> dict[str, Any]:
    """``best.pt`` or ``last.pt`` of a run, loaded with ``weights_only=True``."""
    return torch.load(run_dir(run_id, home=home) / f"{which}.pt", map_location="cpu", weights_only=True)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(obj, default=_json_default, allow_nan=False))
    os.replace(tmp, path)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [_json_default(x) for x in v.tolist()] if v.dtype.kind == "f" else v.tolist()
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    raise TypeError(f"cannot write {type(v).__name__} to JSON")


def _clean(obj: Any) -> Any:
    """NaN → None everywhere (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# ====================================================================== data


@dataclass
class Data:
    """The rows a run uses, in *local* positions 0..n-1 (``rows`` maps them to the dataset).

    ``y`` is the compact label the model learns (index into ``classes``), or -1 for a row whose
    class is absent from train (an *unknown*).
    """

    rows: np.ndarray  # (n,) dataset row of each local position
    train: np.ndarray  # local positions
    val: np.ndarray
    test: np.ndarray
    y: np.ndarray  # (n,) int64 compact labels, -1 unknown
    labels: np.ndarray  # (n,) dataset class of each local position
    classes: np.ndarray  # (K,) dataset class index of each model output
    absent: np.ndarray  # dataset classes not in train
    train_counts: np.ndarray  # (K,) train items per model class
    slices: dict[str, np.ndarray] = field(default_factory=dict)  # meta column → (n,) value per local position


def split_data(ds: Dataset, cfg: RunConfig) -> Data:
    tr = np.flatnonzero(ds.split == 0)
    if cfg.max_train_items and len(tr) > cfg.max_train_items:
        rng = np.random.default_rng(cfg.seed)
        tr = np.sort(rng.choice(tr, cfg.max_train_items, replace=False))
    va, te = np.flatnonzero(ds.split == 1), np.flatnonzero(ds.split == 2)
    if len(tr) == 0:
        raise ValueError("the train split is empty. Give the dataset some train rows (or a split column with 'train').")
    classes = np.unique(ds.labels[tr])
    if len(classes) < 2:
        raise ValueError(f"the train split holds a single class ({ds.class_names[classes[0]]}). A classifier needs two or more: add examples of another class.")
    lookup = np.full(ds.n_classes, -1, np.int64)
    lookup[classes] = np.arange(len(classes))
    rows = np.concatenate([tr, va, te])
    n_tr, n_va = len(tr), len(va)
    local = np.arange(len(rows))
    y = lookup[ds.labels[rows]]
    # low-cardinality meta columns (domain, source, …) become slices scored at every evaluation
    slices = {
        str(col): ds.meta[col].astype(str).to_numpy()[rows]
        for col in ds.meta.columns if 2 <= ds.meta[col].nunique(dropna=False) <= MAX_SLICE_VALUES
    }
    return Data(
        rows=rows, train=local[:n_tr], val=local[n_tr:n_tr + n_va], test=local[n_tr + n_va:], y=y,
        labels=ds.labels[rows], classes=classes,
        absent=np.setdiff1d(np.arange(ds.n_classes), classes), train_counts=np.bincount(y[:n_tr], minlength=len(classes)),
        slices=slices,
    )


class Inputs:
    """Model inputs for local positions, built once; ``batch(idx)`` makes one batch on ``device``.

    - tokens: texts tokenised once up front into an (n, longest) int64 matrix plus lengths; a batch
      is cut to its own longest text.
    - image: uint8 (n, C, H, W), on the GPU when it fits; converted to float per batch.
    - vector: float32 (n, d) (tabular columns or frozen-backbone features).
    """

    def __init__(self, feed: str, device: torch.device, *, x: torch.Tensor | None = None, lengths: np.ndarray | None = None,
                 pad_id: int = 0, image: Any = None) -> None:
        self.feed, self.device, self.x, self.image = feed, device, x, image
        self.lengths = lengths
        self.pad_id = pad_id
        self._lengths_t = torch.from_numpy(lengths).to(device) if lengths is not None else None

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, idx: np.ndarray) -> Any:
        if self.feed == "tokens":
            width = int(self.lengths[idx].max())
            ids = self.x[torch.from_numpy(idx)][:, :width].to(self.device, non_blocking=True)
            lens = self._lengths_t[torch.from_numpy(idx).to(self.device)]
            mask = (torch.arange(width, device=self.device)[None, :] < lens[:, None]).long()
            return {"input_ids": ids, "attention_mask": mask}
        take = torch.from_numpy(idx).to(self.x.device)
        xb = self.x.index_select(0, take).to(self.device, non_blocking=True)
        return self.image.prepare(xb) if self.feed == "image" else xb


def tokenise(texts: np.ndarray, tokenizer: Any, max_length: int) -> tuple[torch.Tensor, np.ndarray, int]:
    """All texts → (int64 (n, longest) ids padded with the pad id, lengths (n,), pad id)."""
    enc = tokenizer([("" if t is None else str(t)) for t in texts], truncation=True, max_length=max_length,
                    padding=False, return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    lengths = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    mat = np.full((len(enc), max(1, int(lengths.max(initial=1)))), pad, dtype=np.int64)
    for i, e in enumerate(enc):
        mat[i, : len(e)] = e
    return torch.from_numpy(mat), lengths, pad


def epoch_batches(idx: np.ndarray, batch_size: int, rng: np.random.Generator, lengths: np.ndarray | None = None) -> list[np.ndarray]:
    """One epoch of shuffled batches of ``idx``.

    With ``lengths`` (text) the batches are *bucketed*: the shuffled order is cut into chunks of
    50 batches, each chunk is sorted by length and cut into batches, and the batches are shuffled
    again — every batch holds texts of similar length, so it pads little, and the order stays
    random. A last batch of a single item is dropped (batch norm cannot train on it).
    """
    perm = rng.permutation(idx)
    if lengths is None:
        batches = [perm[i:i + batch_size] for i in range(0, len(perm), batch_size)]
    else:
        chunk = batch_size * 50
        batches = []
        for s in range(0, len(perm), chunk):
            c = perm[s:s + chunk]
            c = c[np.argsort(lengths[c], kind="stable")]
            batches += [c[i:i + batch_size] for i in range(0, len(c), batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches = batches[:-1]
    return [b for b in batches if len(b) >= 2] or batches


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ====================================================================== loop state & callbacks


@dataclass
class State:
    """What the loop knows; callbacks read it."""

    run_id: int
    total_steps: int
    steps_per_epoch: int
    step: int = 0
    epoch: float = 0.0
    samples: int = 0
    train_time_s: float = 0.0  # at the end: wall-clock seconds of training (evaluations excluded)
    eval_time_s: float = 0.0  # evaluations, with their metric, prediction and checkpoint writes
    n_evals: int = 0
    evals_planned: int = 0
    best_metric: float = float("nan")
    best_step: int | None = None
    started: float = field(default_factory=time.time)


@dataclass
class Control:
    """What callbacks ask of the loop (as in transformers' ``TrainerControl``)."""

    should_stop: bool = False
    stop_reason: str = ""  # "requested" | "early_stopping"


@dataclass
class EvalResult:
    step: int
    epoch: float
    metric_name: str
    metric: float
    is_best: bool
    reports: dict[str, dict[str, Any]]  # split → report (see _report)
    logits: dict[str, np.ndarray]  # split → float32 (m, K)


class Callback:
    """Hooks of the loop; each may set ``control.should_stop``."""

    def on_train_begin(self, state: State, control: Control) -> None: ...
    def on_log(self, state: State, control: Control, logs: dict[str, float]) -> None: ...
    def on_step_end(self, state: State, control: Control) -> None: ...
    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None: ...
    def on_train_end(self, state: State, control: Control) -> None: ...


class StopOnRequest(Callback):
    """Stops after the current step once the watchdog has seen ``stop_requested`` in the store."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_step_end(self, state: State, control: Control) -> None:
        if self.event.is_set() and not control.should_stop:
            control.should_stop, control.stop_reason = True, "requested"


class EarlyStopping(Callback):
    def __init__(self, patience: int) -> None:
        self.patience, self.bad = patience, 0

    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None:
        self.bad = 0 if result.is_best else self.bad + 1
        if self.patience and self.bad >= self.patience and not control.should_stop:
            control.should_stop, control.stop_reason = True, "early_stopping"
            print(f"early stopping: no better val {result.metric_name} for {self.bad} evaluations", flush=True)


class Checkpointer(Callback):
    """``best.pt`` whenever val improves, ``last.pt`` at the end (state dicts, atomic writes)."""

    def __init__(self, folder: Path, built: Built, meta: dict[str, Any]) -> None:
        self.folder, self.built, self.meta = folder, built, meta

    def save(self, name: str, state: State, metric: float) -> None:
        sd = {k: v.detach().to("cpu", copy=True) for k, v in self.built.net.state_dict().items()}
        payload = {"model": sd, "step": state.step, "epoch": state.epoch, "metric": float(metric), **self.meta}
        tmp = self.folder / f".{name}.pt.part"
        torch.save(payload, tmp)
        os.replace(tmp, self.folder / f"{name}.pt")

    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None:
        if result.is_best:
            self.save("best", state, result.metric)

    def on_train_end(self, state: State, control: Control) -> None:
        self.save("last", state, float("nan"))


class StoreWriter(Callback):
    """Writes train points, evaluations and progress to the store, and a line to the log."""

    def __init__(self, store: Store, run_id: int, data: Data, *, folder: Path) -> None:
        self.store, self.run_id, self.data, self.folder = store, run_id, data, folder

    def on_log(self, state: State, control: Control, logs: dict[str, float]) -> None:
        self.store.add_metrics(self.run_id, state.step, "train", logs, epoch=state.epoch)
        msg = (f"epoch {state.epoch:.2f} · step {state.step}/{state.total_steps} · loss {logs['loss']:.4f} · "
               f"{logs['samples_per_s']:,.0f} samples/s · ETA {_fmt_s(logs['eta_s'])}")
        self.store.set_run_status(self.run_id, None, only_if=Store.LIVE_STATUSES,
                                  progress=state.step / max(1, state.total_steps), message=msg)
        print(msg, flush=True)

    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None:
        write_eval(self.store, self.run_id, self.data, result, folder=self.folder)
        v, t = result.reports.get("val", {}).get("summary", {}), result.reports["test"]["summary"]
        print(f"eval step {state.step}: val {result.metric_name} {v.get(result.metric_name, float('nan')):.4f} · "
              f"test acc {t['accuracy']:.4f} · halluc@τ {t['hallucination_rate']:.4f} · ECE {t['ece']:.4f}"
              f"{' · best' if result.is_best else ''}", flush=True)


def _fmt_s(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# ====================================================================== evaluation


def _report(logits: np.ndarray, idx: np.ndarray, data: Data, *, tau: float, temperature: float = 1.0) -> dict[str, Any]:
    """Every metric of the local positions ``idx``: summary, per class, reliability bins,
    confusion of the known rows and of the unknown ones."""
    y = data.y[idx]
    z = logits.astype(np.float64) / temperature  # the energy score needs these unshifted
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    k = len(data.classes)
    summary = M.summary(probs, y, tau=tau, logits=z, train_counts=data.train_counts)
    pc = M.per_class(probs, y, k)
    rel = M.reliability_bins(probs, y)
    pred = probs.argmax(axis=1)
    unknown_conf = np.zeros((len(data.absent), k), np.int64)
    true = data.labels[idx]
    for i, c in enumerate(data.absent):
        unknown_conf[i] = np.bincount(pred[true == c], minlength=k)
    by_slice = {
        col: M.metrics_by_slice(probs, y, values[idx], tau=tau, logits=z, train_counts=data.train_counts)
        for col, values in data.slices.items()
    }
    return {"summary": summary, "per_class": pc, "reliability": rel.to_dict(), "confusion": M.confusion(pred, y, k),
            "unknown_confusion": unknown_conf, "probs": probs, "pred": pred, "slices": by_slice}


def write_eval(store: Store, run_id: int, data: Data, result: EvalResult, *, folder: Path, suffix: str = "") -> None:
    """Metrics rows, test predictions and the artifacts file of one evaluation."""
    art_path = folder / "evals" / f"{result.step}.json"
    art = json.loads(art_path.read_text()) if art_path.exists() else {
        "step": result.step, "epoch": result.epoch, "classes": data.classes.tolist(), "absent_classes": data.absent.tolist()}
    for split, rep in result.reports.items():
        name = split + suffix
        values = dict(rep["summary"])
        for key in PER_CLASS:
            values.update({f"{key}/{c}": v for c, v in zip(data.classes.tolist(), rep["per_class"][key].tolist())})
        if "temperature" in rep:
            values["temperature"] = rep["temperature"]
        for col, per_value in rep.get("slices", {}).items():  # e.g. "slice/domain=tweets/accuracy"
            for value, summ in per_value.items():
                values.update({f"slice/{col}={value}/{key}": summ.get(key) for key in SLICE_METRICS})
        store.add_metrics(run_id, result.step, name, values, epoch=result.epoch)
        art[name] = _clean({"reliability": rep["reliability"], "confusion": rep["confusion"], "unknown_confusion": rep["unknown_confusion"]})
        if split == "test":
            rows = data.rows[data.test]
            store.add_predictions(run_id, result.step, name, rows, data.labels[data.test], data.classes[rep["pred"]],
                                  rep["probs"].max(axis=1))
            # full held-out probabilities, for diagnosing label noise with this run (core.diagnose)
            art_path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(folder / "evals" / f"{result.step}_{name}_probs.npz", rows=rows.astype(np.int64),
                     probs=rep["probs"].astype(np.float32), classes=data.classes.astype(np.int64))
    _write_json(art_path, art)


@torch.inference_mode()
def predict_logits(built: Built, inputs: Inputs, idx: np.ndarray, *, n_classes: int, batch_size: int, autocast: Any) -> np.ndarray:
    """Logits (len(idx), K) float32 for local positions ``idx``; text is batched by length."""
    built.net.eval()
    perm = np.arange(len(idx)) if inputs.lengths is None else np.argsort(inputs.lengths[idx], kind="stable")
    order = idx[perm]
    outs = []
    for s in range(0, len(order), batch_size):
        with autocast():
            outs.append(built.net(inputs.batch(order[s:s + batch_size])).float())
    logits = torch.cat(outs).cpu().numpy() if outs else np.zeros((0, n_classes), np.float32)
    back = np.empty_like(logits)
    back[perm] = logits  # row j was computed for idx[perm[j]]: put it back in the order of idx
    return back


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


# ====================================================================== the loop


@dataclass
class Job:
    """Everything the loop needs, prepared by ``prepare``."""

    cfg: RunConfig
    data: Data
    built: Built
    inputs: Inputs
    device: torch.device
    lr: float

    def autocast(self) -> Any:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def evaluate(job: Job, state: State, best: dict[str, Any]) -> EvalResult:
    cfg, data = job.cfg, job.data
    bs = max(64, 2 * cfg.batch_size)
    reports, logits = {}, {}
    for split, idx in (("val", data.val), ("test", data.test)):
        if len(idx) == 0 and split == "val":
            continue
        z = predict_logits(job.built, job.inputs, idx, n_classes=len(data.classes), batch_size=bs, autocast=job.autocast)
        logits[split] = z
        reports[split] = _report(z, idx, data, tau=cfg.tau)
    job.built.train_mode()
    name = cfg.early_stopping_metric
    value = float(reports["val"]["summary"][name]) if "val" in reports else float("nan")
    prev = best.get("metric", float("nan"))
    if "val" not in reports:
        is_best = True  # without a val split the latest evaluation is the one kept
    elif not math.isfinite(value):
        is_best = best.get("step") is None
    elif not math.isfinite(prev):
        is_best = True
    else:
        is_best = value < prev if name in LOWER_IS_BETTER else value > prev
    if is_best:
        best.update(metric=value, step=state.step, epoch=state.epoch, logits=logits)
        state.best_metric, state.best_step = value, state.step
    return EvalResult(state.step, state.epoch, name, value, is_best, reports, logits)


def fit(job: Job, state: State, callbacks: list[Callback]) -> tuple[Control, dict[str, Any]]:
    """Train ``job`` for ``cfg.epochs``; returns the control (why it stopped) and the best evaluation."""
    cfg, built, inputs, data = job.cfg, job.built, job.inputs, job.data
    net = built.net
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},  # biases and norms: no decay
    ]
    cuda = job.device.type == "cuda"
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=job.lr, fused=True if cuda else None, foreach=None if cuda else True)
    warmup = int(round(cfg.warmup_ratio * state.total_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, state.total_steps, warmup))
    rng = np.random.default_rng(cfg.seed)
    y_dev = torch.from_numpy(data.y).to(job.device)
    control, best = Control(), {}
    for cb in callbacks:
        cb.on_train_begin(state, control)

    loss_sum = torch.zeros((), device=job.device)
    t_fit = time.perf_counter()
    # the current logging window: steps, samples, start, and evaluation time inside it (excluded)
    window = {"steps": 0, "samples": 0, "t": t_fit, "eval_s": 0.0, "wall": time.monotonic()}
    built.train_mode()
    for epoch in range(cfg.epochs):
        batches = epoch_batches(data.train, cfg.batch_size, rng, inputs.lengths)
        for b, idx in enumerate(batches):
            x, y = inputs.batch(idx), y_dev[torch.from_numpy(idx).to(job.device)]
            with job.autocast():
                logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            loss_sum += loss.detach()  # stays on the device: no host sync per step
            state.step += 1
            state.samples += len(idx)
            state.epoch = epoch + (b + 1) / len(batches)
            window["steps"] += 1
            window["samples"] += len(idx)

            last = state.step == state.total_steps
            due = state.step == 1 or last or (state.step % cfg.log_every_steps == 0 and time.monotonic() - window["wall"] >= LOG_MIN_INTERVAL_S)
            if due:
                loss_value = float(loss_sum) / window["steps"]  # the one host sync
                now = time.perf_counter()
                span = max(now - window["t"] - window["eval_s"], 1e-9)
                per_step = max(now - t_fit - state.eval_time_s, 1e-9) / state.step
                per_eval = (state.eval_time_s / state.n_evals if state.n_evals
                            else per_step * (len(data.val) + len(data.test)) / max(1, cfg.batch_size) / 3)
                evals_left = max(0, state.evals_planned - state.n_evals)
                logs = {"loss": loss_value, "lr": opt.param_groups[0]["lr"], "samples_per_s": window["samples"] / span,
                        "eta_s": (state.total_steps - state.step) * per_step + evals_left * per_eval}
                for cb in callbacks:
                    cb.on_log(state, control, logs)
                loss_sum.zero_()
                window.update(steps=0, samples=0, t=time.perf_counter(), eval_s=0.0, wall=time.monotonic())
            for cb in callbacks:
                cb.on_step_end(state, control)
            eval_due = (state.step % cfg.eval_every_steps == 0 or last) if cfg.eval_every_steps else b == len(batches) - 1
            if eval_due and control.stop_reason != "requested":
                t_eval = time.perf_counter()
                result = evaluate(job, state, best)
                for cb in callbacks:
                    cb.on_evaluate(state, control, result)
                state.n_evals += 1
                dt = time.perf_counter() - t_eval
                state.eval_time_s += dt
                window["eval_s"] += dt
            if control.should_stop:
                break
        if control.should_stop:
            break
    state.train_time_s = time.perf_counter() - t_fit - state.eval_time_s  # wall clock of training, evaluations excluded
    for cb in callbacks:
        cb.on_train_end(state, control)
    return control, best


# ====================================================================== a whole run


class StopRequested(Exception):
    """Raised from a progress callback when a stop arrives before training starts."""


class Terminated(BaseException):
    """SIGTERM / SIGINT arrived (the runner's fallback after a stop request's grace period)."""


class Watchdog(threading.Thread):
    """Heartbeat every ``beat_s`` and poll ``stop_requested`` every ``poll_s``, off the main thread,
    so the training loop never waits on the database and long evaluations still heartbeat."""

    def __init__(self, store: Store, run_id: int, *, poll_s: float = 0.5, beat_s: float = 2.0) -> None:
        super().__init__(daemon=True, name=f"gapscope-watchdog-{run_id}")
        self.store, self.run_id, self.poll_s, self.beat_s = store, run_id, poll_s, beat_s
        self.stop_event = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        last_beat = -math.inf
        while True:
            try:
                if time.monotonic() - last_beat >= self.beat_s:
                    requested = self.store.heartbeat(self.run_id)
                    last_beat = time.monotonic()
                else:
                    requested = self.store.stop_requested(self.run_id)
                if requested:
                    self.stop_event.set()
            except Exception as err:  # a busy database: try again next tick
                print(f"watchdog: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            if self._halt.wait(self.poll_s):
                return

    def close(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def pick_device(cfg: RunConfig) -> torch.device:
    from core.device import detect

    info = detect(None if cfg.device == "auto" else cfg.device)
    if info.kind == "cuda" and cfg.device.startswith("cuda:"):
        return torch.device(cfg.device)
    return torch.device(info.kind)


def prepare(store: Store, run_id: int, cfg: RunConfig, *, progress: Any = None) -> tuple[Job, Dataset]:
    """Load the data, resolve and build the model, and make the inputs (tokenised / features)."""
    ds = store.load_dataset(cfg.version_id)
    image_px = min(np.shape(ds.items)[1:3]) if ds.modality == "image" else None
    cfg = cfg.resolved(ds.modality, image_px=image_px)
    data = split_data(ds, cfg)
    device = pick_device(cfg)
    torch.manual_seed(cfg.seed)  # before any weight is initialised
    if device.type == "cpu":
        # The CPU kernels this loop uses (conv, matmul, index_select, embedding backward) are
        # deterministic for a fixed thread count; torch.use_deterministic_algorithms would add
        # nothing here but ~3 s of start-up (it imports the compiler stack), so it stays off.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if torch.get_num_threads() > cores:
            torch.set_num_threads(cores)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    k = len(data.classes)
    if cfg.finetune == "linear_probe":
        feats = backbone_features(ds, cfg, device=str(device), progress=progress)
        X = np.asarray(feats, dtype=np.float32)[data.rows]
        mu, sd = X[data.train].mean(0), X[data.train].std(0) + 1e-6  # standardise with train statistics
        X = (X - mu) / sd
        built = build_linear_head(X.shape[1], k)
        inputs = Inputs("vector", device, x=torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device))
    elif ds.modality == "tabular":
        X = tabular_matrix(ds.items)[data.rows]
        built = build(cfg, modality="tabular", n_classes=k, n_features=X.shape[1])
        inputs = Inputs("vector", device, x=torch.from_numpy(np.ascontiguousarray(X)).to(device))
    elif ds.modality == "text":
        built = build(cfg, modality="text", n_classes=k)
        if progress:
            progress(0, 0, f"tokenising {len(data.rows):,} texts")
        ids, lengths, pad = tokenise(ds.items[data.rows], built.tokenizer, cfg.max_length)
        inputs = Inputs("tokens", device, x=ids, lengths=lengths, pad_id=pad)
    else:
        items = np.asarray(ds.items[data.rows], dtype=np.uint8)
        built = build(cfg, modality="image", n_classes=k, item_shape=tuple(items.shape[1:]))
        x = torch.from_numpy(np.ascontiguousarray(items))
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()  # uint8 (n, C, H, W)
        if device.type == "cuda":
            built.image.channels_last = True
            built.net.to(memory_format=torch.channels_last)
            x = x.to(device) if x.numel() <= GPU_RESIDENT_BYTES else x.pin_memory()
        inputs = Inputs("image", device, x=x, image=built.image)
    built.net.to(device)
    return Job(cfg, data, built, inputs, device, cfg.learning_rate(ds.modality)), ds


def train_run(store: Store, run_id: int, *, callbacks: list[Callback] | None = None, watchdog_poll_s: float = 0.5) -> str:
    """Run ``run_id`` to its end in this process; return the final status.

    Writes status "running" (with this process's pid) first, and at the end exactly one of
    "finished", "stopped" (a stop request, or SIGTERM after one) or "failed" (message = the error).
    """
    from core.jobs import process_start_time  # the runner's notion of "this exact process"

    row = store.run(run_id)
    if store.stop_requested(run_id):
        store.set_run_status(run_id, "stopped", only_if=Store.LIVE_STATUSES, finished_at=time.time(), message="stopped before it started")
        return "stopped"
    claimed = store.set_run_status(run_id, "running", only_if=("queued", "running"), pid=os.getpid(),
                                   pid_started=process_start_time(os.getpid()), heartbeat_at=time.time(),
                                   started_at=row["started_at"] or time.time(), message="loading data")
    if not claimed:
        print(f"run {run_id} is {row['status']}; nothing to do", flush=True)
        return row["status"]
    folder = run_dir(run_id, home=store.home)
    folder.mkdir(parents=True, exist_ok=True)
    watchdog = Watchdog(store, run_id, poll_s=watchdog_poll_s)
    watchdog.start()
    status, message = "failed", ""
    try:
        status, message = _run(store, run_id, folder, watchdog, callbacks or [])
    except StopRequested:
        status, message = "stopped", "stopped before training began"
    except Terminated as sig:
        status = "stopped" if store.stop_requested(run_id) else "failed"
        message = f"terminated by {sig}"
    except Exception as err:
        traceback.print_exc()
        status, message = "failed", f"{type(err).__name__}: {err}"
    finally:
        watchdog.close()
        store.set_run_status(run_id, status, only_if=Store.LIVE_STATUSES, message=message[:2000],
                             finished_at=time.time(), heartbeat_at=time.time(),
                             **({"progress": 1.0} if status == "finished" else {}))
        print(f"run {run_id} {status}: {message}", flush=True)
    return status


def _run(store: Store, run_id: int, folder: Path, watchdog: Watchdog, extra: list[Callback]) -> tuple[str, str]:
    cfg = RunConfig.from_dict(store.run(run_id)["config"])
    cfg.validate()
    last_write = [0.0]

    def progress(done: int, total: int, what: str = "extracting features") -> None:
        if watchdog.stop_event.is_set():
            raise StopRequested()
        if time.monotonic() - last_write[0] >= 1.0 or done >= total:
            last_write[0] = time.monotonic()
            store.set_run_status(run_id, None, only_if=Store.LIVE_STATUSES, message=f"{what} {done:,}/{total:,}" if total else what)

    t0 = time.perf_counter()
    job, ds = prepare(store, run_id, cfg, progress=progress)
    cfg, data = job.cfg, job.data
    _write_json(folder / "config.json", cfg.to_dict())
    steps_per_epoch = len(epoch_batches(data.train, cfg.batch_size, np.random.default_rng(0), job.inputs.lengths))
    total = steps_per_epoch * cfg.epochs
    state = State(run_id=run_id, total_steps=total, steps_per_epoch=steps_per_epoch,
                  evals_planned=(total // cfg.eval_every_steps + (total % cfg.eval_every_steps > 0)) if cfg.eval_every_steps else cfg.epochs)
    print(f"run {run_id}: {cfg.display_name()} on {ds.name} ({ds.modality}) · device {job.device} · "
          f"{len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test · {len(data.classes)} classes "
          f"({len(data.absent)} absent from train) · {job.built.n_trainable():,} trainable parameters · "
          f"{total} steps · ready in {time.perf_counter() - t0:.1f}s", flush=True)
    store.set_run_status(run_id, None, only_if=Store.LIVE_STATUSES, message=f"training: {total} steps")
    meta = {"classes": data.classes.tolist(), "config": cfg.to_dict(), "arch": job.built.arch}
    callbacks = [StopOnRequest(watchdog.stop_event), EarlyStopping(cfg.patience),
                 StoreWriter(store, run_id, data, folder=folder), Checkpointer(folder, job.built, meta), *extra]
    control, best = fit(job, state, callbacks)
    store.add_metrics(run_id, state.step, "train", {
        "train_runtime_s": state.train_time_s, "train_samples_per_s": state.samples / max(state.train_time_s, 1e-9)}, epoch=state.epoch)
    summary: dict[str, Any] = {"status": "finished", "steps": state.step, "epochs": state.epoch, "best_step": best.get("step"),
                               "best_metric": best.get("metric"), "metric": cfg.early_stopping_metric,
                               "train_runtime_s": state.train_time_s, "eval_time_s": state.eval_time_s}
    if control.stop_reason == "requested":
        summary["status"] = "stopped"
        _write_json(folder / "summary.json", _clean(summary))
        return "stopped", f"stopped at step {state.step}/{state.total_steps}"
    message = f"done: {state.step} steps"
    if best.get("step") is not None:
        message += f" · best val {cfg.early_stopping_metric} {best['metric']:.4f} at step {best['step']}"
    if cfg.temperature_scaling and best.get("step") is not None and "val" in best["logits"]:
        t = fit_temperature(best["logits"]["val"], data.y[data.val])
        reports = {}
        for split, idx in (("val", data.val), ("test", data.test)):
            rep = _report(best["logits"][split], idx, data, tau=cfg.tau, temperature=t)
            rep["temperature"] = t
            reports[split] = rep
        result = EvalResult(best["step"], best["epoch"], cfg.early_stopping_metric, best["metric"], False, reports, {})
        write_eval(store, run_id, data, result, folder=folder, suffix="_ts")
        summary["temperature"] = t
        before = store.metrics(run_id, since_step=best["step"] - 1)
        h = before[(before.step == best["step"]) & (before.name == "hallucination_rate") & (before.split == "test")]["value"]
        after = reports["test"]["summary"]["hallucination_rate"]
        if len(h):
            message += f" · T={t:.2f}: test hallucination {_pct(h.iloc[0])} → {_pct(after)}"
        print(f"temperature scaling: T = {t:.3f}", flush=True)
    if control.stop_reason == "early_stopping":
        message += " (early stopping)"
    _write_json(folder / "summary.json", _clean(summary))
    return "finished", message


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
    return 0 if status in ("finished", "stopped") else 1


if __name__ == "__main__":
    raise SystemExit(main())
