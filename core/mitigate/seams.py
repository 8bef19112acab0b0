"""The three seams of a run, built from its ``Mitigations``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.mitigate.augment import Augmenter, TextAugmenter, make_augmenters
from core.mitigate.config import Mitigations
from core.mitigate.criterion import Criterion, make_criterion
from core.mitigate.sampler import Sampler, make_sampler


@dataclass
class Seams:
    sampler: Sampler
    criterion: Criterion
    augmenter: Augmenter
    text_augmenter: TextAugmenter | None = None


def seams(mitigations: Mitigations, *, modality: str, train_labels: np.ndarray, class_counts: np.ndarray) -> Seams:
    """The sampler, criterion and augmenters ``mitigations`` asks for.

    ``train_labels`` are the model classes (0..K-1) of the train positions; ``class_counts`` (K,)
    their counts.
    """
    augmenter, text_augmenter = make_augmenters(mitigations.augment, modality)
    return Seams(
        sampler=make_sampler(mitigations.sampler, train_labels),
        criterion=make_criterion(mitigations.loss, class_counts),
        augmenter=augmenter,
        text_augmenter=text_augmenter,
    )
