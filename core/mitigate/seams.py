"""The three seams of a run, built from its ``Mitigations``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.mitigate.augment import Augmenter, TextAugmenter, make_augmenters
from core.mitigate.criterion import Criterion, make_criterion
from core.mitigate.sampler import Multiply, Sampler, make_sampler, second_stage
from core.mitigate.settings import Mitigations
from core.mitigate.two_stage import HeadRetrain, NoStage, Stage


@dataclass
class Seams:
    sampler: Sampler
    criterion: Criterion
    augmenter: Augmenter
    text_augmenter: TextAugmenter | None = None
    adversary: Any = None  # adversarial training (``core.robust.attack.Adversary``), set by the worker: it needs the model's input space
    stage: Stage = field(default_factory=NoStage)  # classifier re-training (``HeadRetrain``): told as every epoch starts


def seams(
    mitigations: Mitigations,
    *,
    modality: str,
    y: np.ndarray,
    class_counts: np.ndarray,
    class_names: Sequence[str],
    image_shape: tuple[int, ...] = (),
    aug_group: int = 1,
    item_weights: np.ndarray | None = None,
    epochs: int = 1,
) -> Seams:
    """The sampler, criterion and augmenters ``mitigations`` asks for.

    ``y`` is the model class (0..K-1) of every local position of the run; ``class_counts`` (K,)
    the train items per model class; ``class_names`` the names of the model classes;
    ``item_weights`` each local position's importance weight (for the ``importance`` sampler);
    ``epochs`` the run's epochs (deferred re-sampling and classifier re-training start at a share of them).
    """
    aug = mitigations.augment
    augmenter, text_augmenter = make_augmenters(
        aug, modality=modality, n_classes=len(class_counts), class_names=class_names, image_shape=image_shape, group=aug_group
    )
    sampler = make_sampler(mitigations.resample, y, class_names, item_weights, epochs=epochs)
    if aug.multiplier > 1 and (aug.image or aug.text):
        index = {name: i for i, name in enumerate(class_names)}
        targeted = [index[c] for c in aug.classes if c in index] or list(range(len(class_names)))
        sampler = Multiply(sampler, y, targeted, aug.multiplier)
    stage: Stage = HeadRetrain(second_stage(mitigations.resample, epochs)) if mitigations.resample.retrain_head else NoStage()
    return Seams(
        sampler=sampler,
        criterion=make_criterion(mitigations.loss, class_counts),
        augmenter=augmenter,
        text_augmenter=text_augmenter,
        stage=stage,
    )
