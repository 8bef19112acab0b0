"""Augmenters: change a training batch on the device, or texts before they are tokenised.

- ``Augmenter``: (raw batch on the training device, targets) → (batch, targets). Raw means before
  the model's normalisation: uint8 (B, C, H, W) images, float (B, d) vectors, or token tensors.
  Targets are class indices (B,) and may come back as class probabilities (B, K).
- ``TextAugmenter``: (texts of the epoch's draw, their labels, rng) → new texts, tokenised by the
  loop afterwards. Only evaluation never sees augmentation.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch


class Augmenter(Protocol):
    def __call__(self, x: Any, y: torch.Tensor) -> tuple[Any, torch.Tensor]: ...


class TextAugmenter(Protocol):
    def __call__(self, texts: list[str], labels: np.ndarray, rng: np.random.Generator) -> list[str]: ...


class NoAugment:
    """The batch as it is (the default)."""

    def __call__(self, x: Any, y: torch.Tensor) -> tuple[Any, torch.Tensor]:
        return x, y


def make_augmenters(names: list[str], modality: str) -> tuple[Augmenter, TextAugmenter | None]:
    """(batch augmenter, text augmenter or None) for the augmentations ``names`` (in order)."""
    if names:
        raise ValueError(f"no augmentations named {names}")
    return NoAugment(), None
