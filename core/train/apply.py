"""A finished run's model applied to items it never saw: a target for ``core.shift``'s estimates.

``apply_run(store, run_id, target)`` rebuilds the run's model from its stored config, loads its
result checkpoint (``best.pt``: the run's result under either checkpoint rule) and returns its
class probabilities on every item of ``target`` — a dataset of the run's modality (another
version, rows of one, an upload without labels). Inputs are made as the run made them: text
tokenised with the run's tokenizer and length, images through the model's preprocessing, a table
through ``TabularEncoder`` fitted on the run's own version (so a target is standardised and
one-hot encoded as the train data was), a linear probe's backbone features standardised with the
train statistics its checkpoint keeps. Token runs are not applied here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from core.data.dataset import Dataset
from core.errors import DataError
from core.hardware import autocast, limit_torch_threads, torch_device
from core.train.checkpoints import load_checkpoint
from core.train.config import RunConfig

if TYPE_CHECKING:
    from core.store import Store


@dataclass(frozen=True)
class Applied:
    """A run's probabilities on a target: ``probs`` (n, K) over the model's classes ``classes`` (K,
    dataset class indices), the checkpoint's ``step``, and the ``temperature`` the run fitted (1.0
    without temperature scaling) — the probabilities here are *not* divided by it."""

    probs: np.ndarray
    classes: np.ndarray
    step: int
    temperature: float

    def labels_as_model_classes(self, labels: np.ndarray) -> np.ndarray:
        """Dataset class indices → positions in ``classes``; -1 for a class the model lacks (or no label)."""
        pos = {int(c): i for i, c in enumerate(self.classes.tolist())}
        return np.array([pos.get(int(y), -1) for y in np.asarray(labels).tolist()], dtype=np.int64)


def apply_run(store: Store, run_id: int, target: Dataset, *, device: str = "auto", batch_size: int = 64) -> Applied:
    """Class probabilities of run ``run_id``'s result model on every item of ``target``."""
    from core.metrics.results import RunResults
    from core.models.build import build, build_linear_head
    from core.train.evaluate import predict_logits
    from core.train.inputs import Inputs

    res = RunResults(store, run_id)
    ds = store.load_dataset(store.run(run_id).version_id)
    if ds.modality == "tokens":
        raise DataError("a token-classification run is not applied to a shift target yet; pick a classifier run.")
    if target.modality != ds.modality:
        raise DataError(
            f"run {run_id} was trained on {ds.modality} data; the target holds {target.modality} data. Pick a {ds.modality} target."
        )
    if not res.files.checkpoint_path("best").exists():
        raise DataError(f"run {run_id} has no saved model yet; wait until it has evaluated once, or pick a finished run.")
    ckpt = load_checkpoint(run_id, "best", home=store.home)
    image_px = min(np.shape(ds.items)[1:3]) if ds.modality == "image" else None
    cfg = RunConfig.from_dict(res.resolved_config()).resolved(ds.modality, image_px=image_px)
    classes = np.asarray(ckpt["classes"], dtype=np.int64)
    k = len(classes)
    dev = torch_device(device)
    if dev.type == "cpu":
        limit_torch_threads()
    if cfg.finetune == "linear_probe":
        inputs = Inputs("vector", dev, x=torch.from_numpy(_probe_features(target, cfg, ckpt)))
        built = build_linear_head(int(inputs.x.shape[1]), k)  # type: ignore[union-attr]
    elif ds.modality == "tabular":
        from core.models.tabular import TabularEncoder

        x = TabularEncoder.fit(ds.items).transform(target.items)
        built = build(cfg, modality="tabular", n_classes=k, n_features=x.shape[1])
        inputs = Inputs("vector", dev, x=torch.from_numpy(np.ascontiguousarray(x)))
    elif ds.modality == "text":
        from core.models.preprocess import tokenise

        built = build(cfg, modality="text", n_classes=k)
        texts = np.asarray(target.items, dtype=object)
        tokens = tokenise(list(texts), built.tokenizer, cfg.max_length)
        inputs = Inputs("tokens", dev, tokens=tokens, texts=texts, tokenizer=built.tokenizer, max_length=cfg.max_length)
    else:
        from core.models.preprocess import to_nchw

        items = np.asarray(target.items, dtype=np.uint8)
        if items.shape[3:] != np.shape(ds.items)[3:]:
            raise DataError(
                f"the target's images have shape {items.shape[1:]}, the run's {np.shape(ds.items)[1:]}; give images with the same channels."
            )
        built = build(cfg, modality="image", n_classes=k, item_shape=tuple(np.shape(ds.items)[1:]))
        inputs = Inputs("image", dev, x=to_nchw(items), image=built.image)
    built.net.load_state_dict(ckpt["model"])
    built.net.to(dev)
    logits = predict_logits(built, inputs, np.arange(len(target)), n_classes=k, batch_size=batch_size, autocast=lambda: autocast(dev))
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    summary = res.summary() or {}
    return Applied(p / p.sum(axis=1, keepdims=True), classes, int(ckpt.get("step", 0)), float(summary.get("temperature", 1.0) or 1.0))


def _probe_features(target: Dataset, cfg: RunConfig, ckpt: dict) -> np.ndarray:
    from core.train.prepare import backbone_features

    if "input_mean" not in ckpt:
        raise DataError("this linear-probe run was saved without its feature scaling; train it again to apply it to a target.")
    mu, sd = np.asarray(ckpt["input_mean"], np.float32), np.asarray(ckpt["input_std"], np.float32)
    return np.ascontiguousarray((backbone_features(target, cfg) - mu) / sd, dtype=np.float32)
