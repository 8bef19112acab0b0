"""Build the classifier a run trains, from the registry (``core.models.registry``).

Fine-tune modes (``RunConfig.finetune``):

- ``full`` — every weight trains.
- ``last_n`` — only the top ``last_n_blocks`` blocks of the backbone and the head train; the
  frozen part stays in eval mode (``Built.train_mode``).
- ``linear_probe`` — the backbone runs once over the dataset (``core.embed``, cached by content
  hash), and the run trains ``build_linear_head`` on those vectors: seconds on a CPU for 60k items.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from core.models.preprocess import ImageSpec
from core.models.registry import spec

if TYPE_CHECKING:
    from core.train.config import RunConfig


@dataclass
class Built:
    """A classifier ready to train, and what the training loop needs to feed it.

    ``net(batch)`` returns logits (B, K); ``batch`` is a dict of token tensors for ``feed ==
    "tokens"``, else a float tensor. ``frozen`` lists the modules kept in eval mode while the rest
    trains (``train_mode``).
    """

    net: nn.Module
    feed: str  # "tokens" | "image" | "vector"
    arch: str  # "transformer" | "mobilenet_v2" | "efficientnet_lite0" | "resnet18" | "small_cnn" | "mlp" | "linear"
    frozen: list[nn.Module] = field(default_factory=list)
    tokenizer: Any = None
    image: ImageSpec | None = None

    def train_mode(self) -> None:
        self.net.train()
        for m in self.frozen:
            m.eval()

    def n_trainable(self) -> int:
        return sum(p.numel() for p in self.net.parameters() if p.requires_grad)


def freeze(modules: list[nn.Module]) -> list[nn.Module]:
    """Stop gradients in ``modules``; return them (the caller keeps them in eval mode)."""
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)
    return modules


def _builder(path: str) -> Callable[..., Built]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def build(cfg: RunConfig, *, modality: str, n_classes: int, item_shape: tuple[int, ...] = (), n_features: int = 0) -> Built:
    """Build the classifier of ``cfg`` (model already resolved, finetune "full" or "last_n").

    Parameters
    ----------
    cfg : RunConfig
        ``cfg.model`` must not be "auto" (use ``cfg.resolved(modality)``).
    modality : str
    n_classes : int
        K, the number of classes present in the train split.
    item_shape : tuple
        Image items: (H, W) or (H, W, 3).
    n_features : int
        Tabular: columns after encoding.
    """
    if cfg.finetune == "linear_probe":
        raise ValueError("a linear probe is built by build_linear_head on precomputed features")
    s = spec(cfg.model)
    if s.modality != modality:
        raise ValueError(f"model {cfg.model!r} reads {s.modality}, but this dataset is {modality}")
    return _builder(s.builder)(cfg, n_classes=n_classes, item_shape=tuple(item_shape), n_features=n_features)


def build_linear_head(d: int, n_classes: int) -> Built:
    """The linear probe: one linear layer on standardised backbone features."""
    return Built(nn.Linear(d, n_classes), feed="vector", arch="linear")


def image_backbone(model: str, item_shape: tuple[int, ...], *, image_size: int | None = None) -> tuple[nn.Module, ImageSpec, int]:
    """A pretrained image model's frozen trunk: (net in eval mode returning pooled features of width
    d, the ImageSpec that feeds it, d). Built exactly as a fine-tuning run builds it."""
    from core.models.vision import strip_head
    from core.train.config import RunConfig

    cfg = RunConfig(model=model, finetune="full", image_size=int(image_size or 0))
    built = build(cfg, modality="image", n_classes=1, item_shape=item_shape)
    d = strip_head(built)
    assert built.image is not None
    return freeze([built.net.eval()])[0], built.image, d
