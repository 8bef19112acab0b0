"""Samplers: which train items an epoch draws (positions into the run's rows; repeats allowed).

A sampler's draw is the *epoch order*; the loop cuts it into batches (text: bucketed by length).

- ``Shuffle`` — every train item once, in a random order (the default).
- ``Weighted`` — ``class_balanced`` (every class equally often) or ``sqrt`` (classes in proportion
  to the square root of their size): as many draws as train items, with replacement.
- ``Imblearn`` — imbalanced-learn's ``RandomOverSampler`` / ``RandomUnderSampler`` on item indices,
  re-drawn every epoch, with target counts per class.
- ``ItemWeighted`` — ``importance``: as many draws as train items, with replacement, each item with
  probability ∝ its importance weight (the version's ``importance_weight`` column, made by
  ``core.shift.weights``).
- ``Multiply`` — wraps another sampler and draws chosen classes ``m`` times per epoch (for targeted
  augmentation: every copy is augmented anew).
- ``Deferred`` — wraps another sampler and shuffles plainly until a stated epoch (deferred
  re-sampling, the second stage of two-stage training: Cao et al. 2019, Kang et al. 2020).

The feature-space samplers (SMOTE and friends) make new points instead of choosing items:
``core.mitigate.resample``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from core.mitigate.settings import INDEX_SAMPLERS, ITEM_SAMPLERS, NO_WEIGHTS, WEIGHTED_SAMPLERS, Resampling


class Sampler(Protocol):
    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        """Positions to train on this epoch, in order; may repeat or leave out items of ``train``."""
        ...


class Shuffle:
    """Every train item once per epoch, in a random order (the default: no resampling)."""

    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(train)


class Weighted:
    """Draws ``len(train)`` items with replacement, each class with probability ∝ count^power
    (power 0: class-balanced; 0.5: square root; 1 would be the data's own mix)."""

    def __init__(self, y: np.ndarray, power: float) -> None:
        self.y, self.power = y, power

    def class_probabilities(self, train: np.ndarray) -> np.ndarray:
        counts = np.bincount(self.y[train], minlength=int(self.y[train].max()) + 1).astype(np.float64)
        p = np.where(counts > 0, np.power(np.maximum(counts, 1.0), self.power), 0.0)
        return p / p.sum()

    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        counts = np.bincount(self.y[train]).astype(np.float64)
        per_item = self.class_probabilities(train)[self.y[train]] / counts[self.y[train]]
        return rng.choice(train, size=len(train), replace=True, p=per_item / per_item.sum())


class ItemWeighted:
    """Draws ``len(train)`` items with replacement, each with probability ∝ its weight."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)

    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        w = self.weights[train]
        return rng.choice(train, size=len(train), replace=True, p=w / w.sum())


class Imblearn:
    """imbalanced-learn's ``RandomOverSampler`` or ``RandomUnderSampler`` on item indices."""

    def __init__(self, y: np.ndarray, method: str, targets: dict[int, int]) -> None:
        self.y, self.method, self.targets = y, method, targets

    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        from imblearn.over_sampling import RandomOverSampler
        from imblearn.under_sampling import RandomUnderSampler

        kind = RandomOverSampler if self.method == "random_over" else RandomUnderSampler
        strategy = self.targets or ("not majority" if self.method == "random_over" else "not minority")
        sampler = kind(sampling_strategy=strategy, random_state=int(rng.integers(2**31 - 1)))
        drawn, _ = sampler.fit_resample(np.asarray(train).reshape(-1, 1), self.y[train])
        return rng.permutation(np.asarray(drawn).ravel())


class Multiply:
    """Another sampler's draw plus ``copies − 1`` more draws of every item of ``classes``."""

    def __init__(self, base: Sampler, y: np.ndarray, classes: Sequence[int], copies: int) -> None:
        self.base, self.y, self.classes, self.copies = base, y, np.asarray(classes, dtype=np.int64), copies

    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        order = self.base.epoch(train, epoch, rng)
        chosen = order[np.isin(self.y[order], self.classes)]
        return rng.permutation(np.concatenate([order, *([chosen] * (self.copies - 1))]))


class Deferred:
    """Every train item once per epoch, in a random order, before epoch ``start`` (0-based); ``base``'s
    draw from then on."""

    def __init__(self, base: Sampler, start: int) -> None:
        self.base, self.start = base, start

    def epoch(self, train: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        return (self.base if epoch >= self.start else Shuffle()).epoch(train, epoch, rng)


def second_stage(settings: Resampling, epochs: int) -> int:
    """The first epoch (0-based) of the second stage: ``floor(resample_from · epochs)``, at least 1
    when deferred at all (so the first stage has an epoch), at most the last epoch."""
    if settings.resample_from <= 0:
        return 0
    return min(max(1, math.floor(settings.resample_from * epochs)), max(epochs - 1, 0))


def make_sampler(
    settings: Resampling, y: np.ndarray, class_names: Sequence[str], item_weights: np.ndarray | None = None, *, epochs: int = 1
) -> Sampler:
    """The sampler ``settings`` asks for, deferred to the second stage of ``epochs`` when
    ``resample_from`` says so. ``y`` is the model class of every local position;
    ``class_names`` the names of the model classes (``targets`` are keyed by name); ``item_weights``
    the importance weight of every local position (``importance`` needs them). Feature-space
    methods resample before training (``core.mitigate.resample``) and shuffle here."""
    sampler = _sampler(settings, y, class_names, item_weights)
    if settings.resample_from > 0 and settings.method in ITEM_SAMPLERS:
        return Deferred(sampler, second_stage(settings, epochs))
    return sampler


def _sampler(settings: Resampling, y: np.ndarray, class_names: Sequence[str], item_weights: np.ndarray | None) -> Sampler:
    method = settings.method
    if method == "importance":
        if item_weights is None:
            raise ValueError(NO_WEIGHTS)
        return ItemWeighted(item_weights)
    if method in WEIGHTED_SAMPLERS:
        return Weighted(y, 0.0 if method == "class_balanced" else 0.5)
    if method in INDEX_SAMPLERS:
        index = {name: i for i, name in enumerate(class_names)}
        return Imblearn(y, method, {index[name]: int(n) for name, n in settings.targets.items() if name in index})
    return Shuffle()
