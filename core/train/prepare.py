"""Everything a run needs before its first step: data, device, model, inputs and seams."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from core.data.dataset import Dataset
from core.hardware import limit_torch_threads, torch_device
from core.mitigate.seams import seams
from core.models.build import build, build_linear_head
from core.models.preprocess import to_nchw, tokenise
from core.models.tabular import tabular_matrix
from core.train.config import RunConfig
from core.train.inputs import Inputs
from core.train.loop import Job
from core.train.splits import split_data

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
    device = torch_device(cfg.device)
    torch.manual_seed(cfg.seed)  # before any weight is initialised
    if device.type == "cpu":
        # The CPU kernels this loop uses (conv, matmul, index_select, embedding backward) are
        # deterministic for a fixed thread count; torch.use_deterministic_algorithms would add
        # nothing here but ~3 s of start-up (it imports the compiler stack), so it stays off.
        limit_torch_threads()
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    k = len(data.classes)
    if cfg.finetune == "linear_probe":
        X = backbone_features(ds, cfg, device=str(device), progress=progress)[data.rows]
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
    run_seams = seams(cfg.mitigations, modality=ds.modality, train_labels=data.y[data.train], class_counts=data.train_counts)
    return Job(cfg, data, built, inputs, device, cfg.learning_rate(ds.modality), run_seams)
