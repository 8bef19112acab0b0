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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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


@dataclass
class RunModel:
    """A finished classifier run's result model, loaded once: the net in eval mode on ``device``,
    the run's resolved config, its version's dataset ``ds``, the model's ``classes`` (K,), the
    checkpoint's ``step`` and the run's fitted ``temperature``. ``inputs(target)`` makes a target's
    model inputs as the run made its own; ``encoder`` is the table's ``TabularEncoder`` (tabular
    runs only). Explanations (``core.explain``) and ``apply_run`` both start here."""

    built: Any
    cfg: RunConfig
    ds: Dataset
    classes: np.ndarray
    step: int
    temperature: float
    device: torch.device
    ckpt: dict = field(repr=False)
    encoder: Any = None

    @property
    def probe(self) -> bool:
        return self.cfg.finetune == "linear_probe"

    def inputs(self, target: Dataset) -> Any:
        """``core.train.inputs.Inputs`` for every item of ``target`` (the run's modality)."""
        from core.train.inputs import Inputs

        dev = self.device
        if self.probe:
            return Inputs("vector", dev, x=torch.from_numpy(_probe_features(target, self.cfg, self.ckpt)))
        if self.ds.modality == "tabular":
            return Inputs("vector", dev, x=torch.from_numpy(np.ascontiguousarray(self.encoder.transform(target.items))))
        if self.ds.modality == "text":
            from core.models.preprocess import tokenise

            texts = np.asarray(target.items, dtype=object)
            tokens = tokenise(list(texts), self.built.tokenizer, self.cfg.max_length)
            return Inputs("tokens", dev, tokens=tokens, texts=texts, tokenizer=self.built.tokenizer, max_length=self.cfg.max_length)
        from core.models.preprocess import to_nchw

        items = np.asarray(target.items, dtype=np.uint8)
        if items.shape[3:] != np.shape(self.ds.items)[3:]:
            raise DataError(
                f"the target's images have shape {items.shape[1:]}, the run's {np.shape(self.ds.items)[1:]}; give images with the same channels."
            )
        return Inputs("image", dev, x=to_nchw(items), image=self.built.image)


def load_run_model(store: Store, run_id: int, *, device: str = "auto") -> RunModel:
    """Run ``run_id``'s result model (``best.pt``: the run's result under either checkpoint rule),
    rebuilt from its stored config. A token run, or one without a saved model, is a ``DataError``."""
    from core.metrics.results import RunResults
    from core.models.build import build, build_linear_head

    res = RunResults(store, run_id)
    ds = store.load_dataset(store.run(run_id).version_id)
    if ds.modality == "tokens":
        raise DataError("a token-classification run is not applied to new items here yet; pick a classifier run.")
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
    encoder = None
    if cfg.finetune == "linear_probe":
        built = build_linear_head(_head_width(ckpt), k)
    elif ds.modality == "tabular":
        from core.models.tabular import TabularEncoder

        encoder = TabularEncoder.fit(ds.items)
        built = build(cfg, modality="tabular", n_classes=k, n_features=len(encoder.names))
    elif ds.modality == "text":
        built = build(cfg, modality="text", n_classes=k)
    else:
        built = build(cfg, modality="image", n_classes=k, item_shape=tuple(np.shape(ds.items)[1:]))
    built.net.load_state_dict(ckpt["model"])
    built.net.to(dev).eval()
    summary = res.summary() or {}
    temperature = float(summary.get("temperature", 1.0) or 1.0)
    return RunModel(built, cfg, ds, classes, int(ckpt.get("step", 0)), temperature, dev, ckpt, encoder)


def _head_width(ckpt: dict) -> int:
    """The input width of a linear probe's head, read from its saved weight."""
    return int(np.shape(ckpt["model"]["weight"])[1])


def apply_run(store: Store, run_id: int, target: Dataset, *, device: str = "auto", batch_size: int = 64) -> Applied:
    """Class probabilities of run ``run_id``'s result model on every item of ``target``."""
    from core.train.evaluate import predict_logits

    model = load_run_model(store, run_id, device=device)
    if target.modality != model.ds.modality:
        raise DataError(
            f"run {run_id} was trained on {model.ds.modality} data; the target holds {target.modality} data. "
            f"Pick a {model.ds.modality} target."
        )
    inputs = model.inputs(target)
    dev, k = model.device, len(model.classes)
    logits = predict_logits(model.built, inputs, np.arange(len(target)), n_classes=k, batch_size=batch_size, autocast=lambda: autocast(dev))
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return Applied(p / p.sum(axis=1, keepdims=True), model.classes, model.step, model.temperature)


def _probe_features(target: Dataset, cfg: RunConfig, ckpt: dict) -> np.ndarray:
    from core.train.prepare import backbone_features

    if "input_mean" not in ckpt:
        raise DataError("this linear-probe run was saved without its feature scaling; train it again to apply it to a target.")
    mu, sd = np.asarray(ckpt["input_mean"], np.float32), np.asarray(ckpt["input_std"], np.float32)
    return np.ascontiguousarray((backbone_features(target, cfg) - mu) / sd, dtype=np.float32)
