"""Rough estimates made before a run starts: its time (shown on the Train page, never used for
decisions) and the disk it needs (a run that cannot fit is refused at submit).

Throughputs are the registry's training samples per second, measured on a 2-core CPU
(``benchmarks/bench_train.py``), scaled by a fixed factor on a GPU. Evaluation passes
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


def evaluations(cfg: RunConfig, n_train: int, batch: int) -> int:
    """How many evaluations a run of ``cfg`` makes: one per epoch, or one every ``eval_every_steps``."""
    if not cfg.eval_every_steps:
        return cfg.epochs
    return max(1, int(np.ceil(n_train / max(1, batch))) * cfg.epochs // cfg.eval_every_steps)


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
    evals = evaluations(cfg, n_train, batch)
    if cfg.finetune == "linear_probe":  # one feature pass over everything (cached afterwards), then a cheap head
        return STARTUP_S + (n_train + n_eval) / rate + cfg.epochs * n_train / 50_000
    return STARTUP_S + cfg.epochs * n_train / rate + evals * n_eval / (3 * rate)


#: What a run writes besides its checkpoints and predictions: the log, evaluation artifacts, summary (bytes).
RUN_FILES_BYTES = 4 * 2**20
#: One prediction row in SQLite (run, step, split, item, label, pred, conf) with its index share.
PREDICTION_ROW_BYTES = 64


def disk_bytes(cfg: RunConfig, *, modality: str, n_train: int, n_test: int, n_classes: int) -> int:
    """About how many bytes a run of ``cfg`` needs on disk: three checkpoints (``best.pt``,
    ``last.pt`` and the temporary file an atomic write makes) and, at each evaluation (and the
    temperature-scaled and threshold-moved ones), a prediction row and the held-out probabilities
    of every test item, plus the run's other files. "auto" counts as the larger of its choices."""
    if cfg.model == registry.AUTO:
        models = {registry.resolve_auto(modality, image_px=px) for px in (0, 28)}
    else:
        models = {cfg.model}
    weights = max(registry.weights_bytes(m) for m in models)
    if cfg.max_train_items:
        n_train = min(n_train, cfg.max_train_items)
    batch = planned_batch(cfg.batch_size, modality=modality, finetune=cfg.finetune, gpu=False, n_train=n_train, image_side=None)
    evals = evaluations(cfg, n_train, batch) + 2
    per_item = PREDICTION_ROW_BYTES + 4 * n_classes
    return 3 * weights + evals * n_test * per_item + RUN_FILES_BYTES
