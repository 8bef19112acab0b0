"""Rough run-time estimates shown before a run starts (Train page) — never used for decisions.

Throughputs are training samples per second measured on the development machine (2-core CPU;
``benchmarks/bench_train.py``), scaled by a fixed factor on a GPU. Evaluation passes are counted at
three times the training speed (no backward pass).
"""

from __future__ import annotations

import numpy as np

from core.data import Dataset
from core.runconfig import RunConfig

# samples / s on the 2-core CPU, by (model, finetune); "*" = any mode
CPU_SAMPLES_PER_S = {
    ("small_cnn", "*"): 2500.0,
    ("mlp", "*"): 20000.0,
    ("mobilenet_v2", "full"): 45.0,
    ("mobilenet_v2", "last_n"): 90.0,
    ("mobilenet_v2", "linear_probe"): 150.0,  # dominated by the one-time feature pass; cached afterwards
    # EfficientNet-Lite0 at 64 px, timed side by side with MobileNetV2 on a shared 2-core CPU and
    # scaled by the ratio to its rows above: full ≈ 0.6×, last_n ≈ 1×, feature pass ≈ 0.8×.
    ("efficientnet_lite0", "full"): 28.0,
    ("efficientnet_lite0", "last_n"): 90.0,
    ("efficientnet_lite0", "linear_probe"): 120.0,  # the feature pass is not cached (core.models._local_features)
    ("resnet18", "*"): 60.0,
    ("minilm", "full"): 40.0,
    ("minilm", "last_n"): 80.0,
    ("minilm", "linear_probe"): 150.0,
}
GPU_SPEEDUP = 25.0
STARTUP_S = 8.0  # process start, imports, model load


def samples_per_second(model: str, finetune: str, *, gpu: bool) -> float:
    rate = CPU_SAMPLES_PER_S.get((model, finetune)) or CPU_SAMPLES_PER_S.get((model, "*"))
    if rate is None:  # a user's own transformers folder or .pth: assume a MiniLM/ResNet-sized model
        rate = 40.0
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
    steps_per_epoch = int(np.ceil(n_train / cfg.batch_size))
    evals = cfg.epochs if not cfg.eval_every_steps else max(1, steps_per_epoch * cfg.epochs // cfg.eval_every_steps)
    if cfg.finetune == "linear_probe":  # one feature pass over everything, then a cheap head
        return STARTUP_S + (n_train + n_eval) / rate + cfg.epochs * n_train / 50_000
    return STARTUP_S + cfg.epochs * n_train / rate + evals * n_eval / (3 * rate)
