"""Model inputs of a run's rows, and how an epoch's draw is cut into batches.

``Inputs`` holds every row's input once (token ids, uint8 images — on the GPU when they fit —, or
float vectors). A batch goes through two steps: ``raw(idx)`` gathers it on the training device
(uint8 images, token tensors, vectors), where an augmenter may change it; ``prepare`` turns it into
what the model reads (images: ``core.models.preprocess.ImageSpec``). ``epoch(order)`` gives the
view of one epoch's draw (``core.mitigate.sampler``), with texts re-tokenised when a text augmenter
rewrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.mitigate.augment import TextAugmenter
from core.models.preprocess import ImageSpec, Tokens, tokenise

BUCKET_BATCHES = 50  # text: batches per chunk of the draw that is sorted by length


class Inputs:
    """Model inputs for local positions 0..n-1, built once.

    - tokens: texts tokenised once up front (``tokens``), the raw texts kept for text augmentation;
    - image: uint8 (n, C, H, W), on the GPU when it fits; converted to float per batch;
    - vector: float32 (n, d) (tabular columns or frozen-backbone features).
    """

    def __init__(
        self,
        feed: str,
        device: torch.device,
        *,
        x: torch.Tensor | None = None,
        tokens: Tokens | None = None,
        texts: np.ndarray | None = None,
        tokenizer: Any = None,
        max_length: int = 128,
        image: ImageSpec | None = None,
    ) -> None:
        self.feed, self.device, self.x, self.tokens, self.image = feed, device, x, tokens, image
        self.texts, self.tokenizer, self.max_length = texts, tokenizer, max_length
        self.pad_tokens_to = 1  # token widths are multiples of this (core.train.speed)

    def __len__(self) -> int:
        return len(self.tokens) if self.tokens is not None else len(self.x)  # type: ignore[arg-type]

    @property
    def lengths(self) -> np.ndarray | None:
        """Token counts per row (text only): batches are bucketed by them."""
        return self.tokens.lengths if self.tokens is not None else None

    def raw(self, idx: np.ndarray, on_device: torch.Tensor | None = None) -> Any:
        """The rows ``idx`` gathered on the training device, before the model's preprocessing.
        ``on_device``: the same rows as a tensor on the training device (no index copy then)."""
        if self.tokens is not None:
            return self.tokens.batch(idx, self.device, on_device=on_device, multiple=self.pad_tokens_to)
        assert self.x is not None
        if on_device is not None and on_device.device == self.x.device:
            take = on_device
        else:
            take = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(self.x.device)
        return self.x.index_select(0, take).to(self.device, non_blocking=True)

    def prepare(self, raw: Any) -> Any:
        """A raw batch → what the model reads."""
        return self.image.prepare(raw) if self.feed == "image" and self.image is not None else raw

    def batch(self, idx: np.ndarray, on_device: torch.Tensor | None = None) -> Any:
        return self.prepare(self.raw(idx, on_device))

    def epoch(
        self,
        order: np.ndarray,
        *,
        text_augmenter: TextAugmenter | None = None,
        labels: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> EpochView:
        """The view of one epoch's draw ``order`` (local positions, repeats allowed)."""
        if text_augmenter is None or self.texts is None:
            return EpochView(self, np.asarray(order), None)
        assert labels is not None and rng is not None
        texts = text_augmenter([str(t) for t in self.texts[order]], labels[order], rng)
        tokens = tokenise(texts, self.tokenizer, self.max_length).padded(self.pad_tokens_to)
        assert self.tokens is not None
        return EpochView(self, np.asarray(order), tokens.to(self.device) if self.tokens.lengths_t is not None else tokens)


@dataclass
class EpochView:
    """One epoch's draw: batches are arrays of *positions* in ``order``."""

    inputs: Inputs
    order: np.ndarray  # (m,) local position of each draw position
    tokens: Tokens | None  # the draw's own tokens when its texts were augmented

    @property
    def lengths(self) -> np.ndarray | None:
        if self.tokens is not None:
            return self.tokens.lengths
        lengths = self.inputs.lengths
        return None if lengths is None else lengths[self.order]

    def raw(self, positions: np.ndarray, on_device: DeviceBatch | None = None) -> Any:
        """The batch at draw ``positions``; ``on_device`` (``to_device``) saves the index copies."""
        if self.tokens is not None:
            where = None if on_device is None else on_device.positions
            return self.tokens.batch(positions, self.inputs.device, on_device=where, multiple=self.inputs.pad_tokens_to)
        return self.inputs.raw(self.order[positions], None if on_device is None else on_device.rows)

    def batches(self, batch_size: int, rng: np.random.Generator, *, drop_last: bool = False) -> list[np.ndarray]:
        return make_batches(len(self.order), batch_size, rng, self.lengths, drop_last=drop_last)

    def to_device(self, batches: list[np.ndarray]) -> list[DeviceBatch]:
        """Each batch's draw positions and local rows as tensors on the training device, copied in
        one transfer for the whole epoch (the loop then copies no index per step)."""
        sizes = [len(b) for b in batches]
        positions = np.concatenate(batches) if batches else np.zeros(0, np.int64)
        both = torch.from_numpy(np.stack([positions, self.order[positions]]).astype(np.int64))
        both = both.to(self.inputs.device, non_blocking=True)
        return [DeviceBatch(p, r) for p, r in zip(both[0].split(sizes), both[1].split(sizes))]


@dataclass
class DeviceBatch:
    """One batch's indices on the training device."""

    positions: torch.Tensor  # draw positions (into the epoch's own tokens, when texts were augmented)
    rows: torch.Tensor  # local positions (into ``Inputs`` and the run's labels)


def make_batches(
    m: int, batch_size: int, rng: np.random.Generator, lengths: np.ndarray | None = None, *, drop_last: bool = False,
    bucket_batches: int = BUCKET_BATCHES,
) -> list[np.ndarray]:  # fmt: skip
    """Batches of positions 0..m-1 of a draw that is already in random order.

    With ``lengths`` (text) the batches are *bucketed*: the draw is cut into chunks of
    ``bucket_batches`` batches, each chunk is sorted by length and cut into batches, and the batches
    are shuffled — every batch holds texts of similar length, so it pads little, and the order
    stays random. A last batch of a single item is dropped (batch norm cannot train on it); with
    ``drop_last`` (fixed shapes, ``core.train.speed``) every batch shorter than ``batch_size`` is,
    unless it is the only one.
    """
    positions = np.arange(m)
    if lengths is None:
        batches = [positions[i : i + batch_size] for i in range(0, m, batch_size)]
    else:
        chunk = batch_size * bucket_batches
        batches = []
        for s in range(0, m, chunk):
            c = positions[s : s + chunk]
            c = c[np.argsort(lengths[c], kind="stable")]
            batches += [c[i : i + batch_size] for i in range(0, len(c), batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches = batches[:-1]
    if drop_last:
        full = [b for b in batches if len(b) == batch_size]
        batches = full or batches
    return [b for b in batches if len(b) >= 2] or batches
