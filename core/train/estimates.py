"""Rough run-time estimates shown before a run starts (Train page) — never used for decisions.

Throughputs are the registry's training samples per second, measured on the development machine
(2-core CPU; ``benchmarks/bench_train.py``), scaled by a fixed factor on a GPU. Evaluation passes
are counted at three times the training speed (no backward pass). Torch-free.
"""

from __future__ import annotations

import numpy as np

from core.data.dataset import Dataset
from core.models import registry
from core.train.config import RunConfig
from core.train.speed import planned_batch

GPU_SPEEDUP = 25.0
STARTUP_S = 8.0  # process start, imports, model load
DEFAULT_SAMPLES_PER_S = 40.0  # a model the registry has no figure for


def samples_per_second(model: str, finetune: str, *, gpu: bool) -> float:
    rate = registry.spec(model).throughput(finetune) or DEFAULT_SAMPLES_PER_S
    return rate * (GPU_SPEEDUP if gpu else 1.0)


def estimate_seconds(cfg: RunConfig, ds: Dataset, *, gpu: bool = False) -> float:
    """Seconds for ``cfg`` on ``ds``: start-up + epochs × train items / rate + evaluations."""
    n_train = int((ds.split == 0).sum())
    if cfg.max_train_items:
        n_train = min(n_train, cfg.max_train_items)
    n_eval = int((ds.split != 0).sum())
    image_px = int(min(ds.items.shape[1:3])) if ds.modality == "image" else None
    model = cfg.resolve_model(ds.modality, image_px=image_px)
    rate = samples_per_second(model, cfg.finetune, gpu=gpu)
    batch = planned_batch(cfg.batch_size, modality=ds.modality, finetune=cfg.finetune, gpu=gpu, n_train=n_train, image_side=image_px)
    steps_per_epoch = int(np.ceil(n_train / batch))
    evals = cfg.epochs if not cfg.eval_every_steps else max(1, steps_per_epoch * cfg.epochs // cfg.eval_every_steps)
    if cfg.finetune == "linear_probe":  # one feature pass over everything (cached afterwards), then a cheap head
        return STARTUP_S + (n_train + n_eval) / rate + cfg.epochs * n_train / 50_000
    return STARTUP_S + cfg.epochs * n_train / rate + evals * n_eval / (3 * rate)
