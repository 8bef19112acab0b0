"""Everything a run needs before its first step: data, device, model, inputs and seams."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from core.data.dataset import Dataset
from core.hardware import limit_torch_threads, torch_device
from core.mitigate.checks import check
from core.mitigate.in_run_cleaning import decisions
from core.mitigate.label_spreading import spread_labels
from core.mitigate.resample import resample_features
from core.mitigate.seams import seams
from core.mitigate.settings import FEATURE_SAMPLERS
from core.models.build import build, build_linear_head
from core.models.preprocess import to_nchw, tokenise
from core.models.tabular import tabular_matrix
from core.shift.weights import WEIGHT_COLUMN
from core.train.config import RunConfig
from core.train.inputs import Inputs
from core.train.loop import Job
from core.train.run_data import RunData, split_data
from core.train.speed import REFERENCE_BATCH, Speed, auto_batch, scaled_lr
from core.train.speed import plan as plan_speed

GPU_RESIDENT_BYTES = 4 << 30  # image datasets up to this size live on the GPU as uint8
Progress = Callable[..., None]  # progress(done, total[, what])


def backbone_features(ds: Dataset, cfg: RunConfig, *, device: str = "auto", progress: Progress | None = None) -> np.ndarray:
    """Pooled features of every item of ``ds`` from ``cfg.model``'s frozen pretrained backbone,
    float32 (n, d), through ``core.embed`` — cached by content hash, so the second linear probe on the
    same data starts training at once."""
    from core.embed.embeddings import embed

    if ds.modality not in ("text", "image"):
        raise ValueError("a linear probe needs a pretrained backbone: text or image data")
    size = (cfg.image_size or None) if ds.modality == "image" else None
    return np.asarray(embed(ds, backbone=cfg.model, device=device, image_size=size, progress=progress), dtype=np.float32)


def prepare(ds: Dataset, cfg: RunConfig, *, progress: Progress | None = None) -> Job:
    """Resolve ``cfg`` for ``ds``, split, pick the device, build the model and make the inputs."""
    image_px = min(np.shape(ds.items)[1:3]) if ds.modality == "image" else None
    cfg = cfg.resolved(ds.modality, image_px=image_px)
    data = split_data(ds, cfg)
    if cfg.mitigations.clean.action != "none":
        data = clean_train(data, ds, cfg, progress=progress)
    device = torch_device(cfg.device)
    torch.manual_seed(cfg.seed)  # before any weight is initialised
    if device.type == "cpu":
        # The CPU kernels this loop uses (conv, matmul, index_select, embedding backward) are
        # deterministic for a fixed thread count; torch.use_deterministic_algorithms would add
        # nothing here but ~3 s of start-up (it imports the compiler stack), so it stays off.
        limit_torch_threads()
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    k = len(data.classes)
    scale: tuple[np.ndarray, np.ndarray] | None = None
    if cfg.finetune == "linear_probe":
        X = backbone_features(ds, cfg, device=str(device), progress=progress)[data.rows]
        mu, sd = X[data.train].mean(0), X[data.train].std(0) + 1e-6  # standardise with train statistics
        X = (X - mu) / sd
        built = build_linear_head(X.shape[1], k)
        scale = (mu, sd)
        inputs = Inputs("vector", device, x=torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device))
    elif ds.modality == "tabular":
        X = tabular_matrix(ds.items)[data.rows]
        built = build(cfg, modality="tabular", n_classes=k, n_features=X.shape[1])
        inputs = Inputs("vector", device, x=torch.from_numpy(np.ascontiguousarray(X)).to(device))
    elif ds.modality == "text":
        built = build(cfg, modality="text", n_classes=k)
        if progress:
            progress(0, 0, f"tokenising {len(data.rows):,} texts")
        texts = ds.items[data.rows]
        tokens = tokenise(texts, built.tokenizer, cfg.max_length)
        inputs = Inputs("tokens", device, tokens=tokens, texts=texts, tokenizer=built.tokenizer, max_length=cfg.max_length)
    else:
        items = np.asarray(ds.items[data.rows], dtype=np.uint8)
        built = build(cfg, modality="image", n_classes=k, item_shape=tuple(items.shape[1:]))
        x = to_nchw(items)  # uint8 (n, C, H, W)
        if device.type == "cuda":
            assert built.image is not None
            built.image.channels_last = True
            built.net.to(memory_format=torch.channels_last)
            x = x.to(device) if x.numel() <= GPU_RESIDENT_BYTES else x.pin_memory()
        inputs = Inputs("image", device, x=x, image=built.image)
    built.net.to(device)
    cfg, speed = fast_path(cfg, ds.modality, data, inputs, built.image.size[0] if built.image is not None else None)
    names = [ds.class_names[c] for c in data.classes]
    problems = check(
        cfg.mitigations,
        modality=ds.modality,
        finetune=cfg.finetune,
        train_counts=dict(zip(names, data.train_counts.tolist())),
        n_unlabelled=len(data.pool),
        epochs=cfg.epochs,
        item_weights=WEIGHT_COLUMN in ds.meta.columns,
    )
    if problems:
        raise ValueError(problems[0])
    if cfg.mitigations.semi.method == "label_spreading":
        data = spread_to_pool(data, ds, cfg, progress=progress)
    if cfg.mitigations.resample.method in FEATURE_SAMPLERS:
        data = resample_train_features(data, inputs, cfg, names)
    counts = np.bincount(data.y[data.train], minlength=k)  # what the model trains on (feature resampling changes it)
    image_shape = tuple(np.shape(ds.items)[1:]) if ds.modality == "image" else ()
    run_seams = seams(
        cfg.mitigations,
        modality=ds.modality,
        y=data.y,
        class_counts=counts,
        class_names=names,
        image_shape=image_shape,
        aug_group=speed.aug_group,
        item_weights=item_weights(ds, data),
        epochs=cfg.epochs,
    )
    if cfg.mitigations.adversarial.method != "none":
        run_seams.adversary = _adversary(cfg, ds, built, inputs, device)
    return Job(cfg, data, built, inputs, device, cfg.learning_rate(ds.modality), run_seams, speed=speed, input_scale=scale)


def _adversary(cfg: RunConfig, ds: Dataset, built: Any, inputs: Inputs, device: torch.device) -> Any:
    """Adversarial training's seam: pixels through the run's normalisation, or a table's numeric columns."""
    from core.robust.attack import make_adversary

    if ds.modality == "image":
        return make_adversary(cfg.mitigations.adversarial, image=built.image, device=device, seed=cfg.seed)
    from core.models.tabular import TabularEncoder

    n_numeric = len(TabularEncoder.fit(ds.items).numeric)
    n_features = int(inputs.x.shape[1])  # type: ignore[union-attr]
    return make_adversary(cfg.mitigations.adversarial, n_features=n_features, n_numeric=n_numeric, device=device, seed=cfg.seed)


def item_weights(ds: Dataset, data: RunData) -> np.ndarray | None:
    """Each local position's importance weight (``core.shift.weights``), or None without them."""
    if WEIGHT_COLUMN not in ds.meta.columns:
        return None
    return np.asarray(ds.meta[WEIGHT_COLUMN].to_numpy(dtype=np.float64)[data.rows], dtype=np.float64)


def fast_path(cfg: RunConfig, modality: str, data: RunData, inputs: Inputs, image_side: int | None) -> tuple[RunConfig, Speed]:
    """The run's batch (``batch_size=0``: ``core.train.speed.auto_batch``, the lr scaled with it)
    and its fast path on this device; token widths padded and cuDNN autotuning set to match."""
    device = inputs.device
    if not cfg.batch_size:
        batch = auto_batch(feed=inputs.feed, device_type=device.type, n_train=len(data.train), image_side=image_side)
        if batch == REFERENCE_BATCH:
            cfg = dataclasses.replace(cfg, batch_size=batch)
        else:
            base = cfg.learning_rate(modality)
            cfg = dataclasses.replace(cfg, batch_size=batch, lr=scaled_lr(base, batch))
            print(
                f"batch {batch} (auto, on {device}); learning rate {base:g} at batch {REFERENCE_BATCH} → {cfg.lr:g} (√ scaling)", flush=True
            )
    steps = -(-len(data.train) // cfg.batch_size) * cfg.epochs
    speed = plan_speed(fast_path=cfg.fast_path, compile_mode=cfg.compile, device_type=device.type, feed=inputs.feed, steps=steps)
    inputs.pad_tokens_to = speed.pad_tokens_to
    if inputs.tokens is not None:
        inputs.tokens = inputs.tokens.padded(speed.pad_tokens_to)
        if device.type == "cuda" and inputs.tokens.ids.numel() * 8 <= GPU_RESIDENT_BYTES:
            inputs.tokens = inputs.tokens.to(device)  # indexed on the device: no copy per step
    if device.type == "cuda":
        # Without fixed shapes every new shape would be tuned again; the old behaviour is kept there.
        torch.backends.cudnn.benchmark = speed.autotune if speed.fixed_shapes else True
    print(speed.describe(), flush=True)
    return cfg, speed


def spread_to_pool(data: RunData, ds: Dataset, cfg: RunConfig, *, progress: Progress | None = None) -> RunData:
    """Label spreading (``core.mitigate.label_spreading``) on the dataset's embeddings: pool items whose spread
    label is confident enough join train with it, for this run."""
    from core.embed.embeddings import embed

    semi = cfg.mitigations.semi
    X = np.asarray(embed(ds, progress=progress), dtype=np.float32)
    chosen, labels, _ = spread_labels(
        X[data.rows[data.train]], data.y[data.train], X[data.rows[data.pool]], k=semi.k_neighbors, threshold=semi.threshold, seed=cfg.seed
    )
    y = data.y.copy()
    y[data.pool[chosen]] = labels
    print(f"label spreading: {len(chosen):,} of {len(data.pool):,} pool items join train (confidence ≥ {semi.threshold:g})", flush=True)
    return dataclasses.replace(data, train=np.r_[data.train, data.pool[chosen]], y=y)


def clean_train(data: RunData, ds: Dataset, cfg: RunConfig, *, progress: Progress | None = None) -> RunData:
    """The run's data with train items dropped or relabelled by ``cfg.mitigations.clean``
    (``core.mitigate.in_run_cleaning``); val and test are left as they are. A relabelled item whose new class
    has no train item is left out (the model has no output for it)."""

    def diagnosing(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(round(100 * fraction), 100, f"diagnosing for in-run cleaning: {stage}")

    drop, relabel = decisions(cfg.mitigations.clean, ds, progress=diagnosing)
    train_rows = data.rows[data.train]
    lookup = np.full(ds.n_classes, -1, np.int64)
    lookup[data.classes] = np.arange(len(data.classes))
    y, labels = data.y.copy(), data.labels.copy()
    keep = ~np.isin(train_rows, drop)
    moved = 0
    for j, row in enumerate(train_rows):
        new = relabel.get(int(row))
        if new is None or not keep[j]:
            continue
        if lookup[new] < 0:
            keep[j] = False
            continue
        pos = data.train[j]
        y[pos], labels[pos] = lookup[new], new
        moved += 1
    train = data.train[keep]
    counts = np.bincount(y[train], minlength=len(data.classes))
    if (counts == 0).sum() > len(data.classes) - 2:
        raise ValueError(
            "in-run cleaning would leave fewer than two classes to train on; clean less (a lower threshold, or fewer decisions)."
        )
    print(f"in-run cleaning: {int((~keep).sum()):,} train items left out, {moved:,} relabelled (of {len(train_rows):,})", flush=True)
    return dataclasses.replace(data, train=train, y=y, labels=labels, train_counts=counts)


def resample_train_features(data: RunData, inputs: Inputs, cfg: RunConfig, class_names: list[str]) -> RunData:
    """Feature-space resampling (SMOTE and friends) of the train vectors, once, before training.

    Kept originals keep their positions; synthetic points are appended to ``inputs`` as new local
    positions (dataset row -1) that only the train split uses, so evaluation is untouched.
    """
    assert inputs.x is not None
    settings = cfg.mitigations.resample
    index = {name: i for i, name in enumerate(class_names)}
    X = inputs.x.index_select(0, torch.from_numpy(data.train).to(inputs.x.device)).cpu().numpy()
    X_res, y_res, origin = resample_features(
        X,
        data.y[data.train],
        settings.method,
        k_neighbors=settings.k_neighbors,
        targets={index[c]: n for c, n in settings.targets.items() if c in index},
        seed=cfg.seed,
    )
    synthetic = origin < 0
    n, m = len(data.y), int(synthetic.sum())
    inputs.x = torch.cat([inputs.x, torch.from_numpy(X_res[synthetic]).to(inputs.x.device)])
    new = np.arange(n, n + m)
    print(
        f"{settings.method}: {len(X):,} train vectors → {len(X_res):,} ({m:,} synthetic, {len(X) - int((~synthetic).sum()):,} removed)",
        flush=True,
    )
    return dataclasses.replace(
        data,
        rows=np.r_[data.rows, np.full(m, -1, np.int64)],
        train=np.r_[data.train[origin[~synthetic]], new],
        y=np.r_[data.y, y_res[synthetic]],
        labels=np.r_[data.labels, data.classes[y_res[synthetic]]],
        slices={col: np.r_[values, np.full(m, "(synthetic)", dtype=object)] for col, values in data.slices.items()},
    )
