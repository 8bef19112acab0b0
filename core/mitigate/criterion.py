"""Criteria: the training loss from logits and targets, which may use the train split's class counts."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F


class Criterion(Protocol):
    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch. ``target`` is class indices (B,) or class probabilities (B, K)
        (an augmenter such as MixUp makes soft targets)."""
        ...


class CrossEntropy:
    """Plain cross-entropy, in float32 whatever the autocast dtype (the default)."""

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target)


def make_criterion(name: str, class_counts: np.ndarray) -> Criterion:
    """The criterion called ``name`` (``core.mitigate.config.LOSSES``); ``class_counts`` (K,) are
    the train items per model class, for losses that re-weight."""
    if name == "cross_entropy":
        return CrossEntropy()
    raise ValueError(f"no loss named {name!r}")
