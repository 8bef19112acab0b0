"""Samplers: which train items an epoch draws (positions into the run's rows, repeats allowed).

A sampler's draw is the *epoch order*; the loop cuts it into batches (text: bucketed by length).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Sampler(Protocol):
    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        """Positions to train on this epoch, in order; may repeat or leave out items of ``train``."""
        ...


class Shuffle:
    """Every train item once per epoch, in a random order (the default: no resampling)."""

    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(train)


def make_sampler(name: str, train_labels: np.ndarray) -> Sampler:
    """The sampler called ``name`` (``core.mitigate.config.SAMPLERS``) for a train split with these labels."""
    if name == "shuffle":
        return Shuffle()
    raise ValueError(f"no sampler named {name!r}")
