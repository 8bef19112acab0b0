"""Augmenters: change a training batch on the device, or texts before they are tokenised.

- ``Augmenter``: (raw batch on the training device, targets) → (batch, targets). Raw means before
  the model's normalisation: uint8 (B, C, H, W) images, float (B, d) vectors, or token tensors.
  Targets are class indices (B,) and may come back as class probabilities (B, K).
- ``TextAugmenter``: (texts of the epoch's draw, their labels, rng) → new texts, tokenised by the
  loop afterwards. Evaluation never sees augmentation.

Images use ``torchvision.transforms.v2`` on the device the batch is on. Per-item operations draw
their own random parameters for every item (a v2 transform called on a whole batch would draw
once for all of it); MixUp and CutMix then work on the whole batch and make soft targets. With
``classes`` set, only those classes' items are changed (MixUp/CutMix still mix the whole batch).
Randomness comes from torch's generator, which the run seeds, so a run is reproducible.

The text operations are the "easy data augmentation" ones (Wei & Zou 2019) — synonym
replacement from WordNet, swap, delete, insert (a word of the same text) — plus character noise;
``rate`` is the share of words touched. Back-translation (English → Spanish → English with
Apertium, ``core.mitigate.language``) rewrites half of the chosen texts first, in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from core.mitigate.settings import BATCH_AUGMENTATIONS, Augmentation


class Augmenter(Protocol):
    def __call__(self, x: Any, y: torch.Tensor) -> tuple[Any, torch.Tensor]: ...


class TextAugmenter(Protocol):
    def __call__(self, texts: list[str], labels: np.ndarray, rng: np.random.Generator) -> list[str]: ...


class NoAugment:
    """The batch as it is (the default)."""

    def __call__(self, x: Any, y: torch.Tensor) -> tuple[Any, torch.Tensor]:
        return x, y


# ---------------------------------------------------------------------- images


def image_transform(name: str, strength: float, size: tuple[int, int], channels: int) -> Any:
    """The torchvision v2 transform of one per-item augmentation, for uint8 (C, H, W) images."""
    from torchvision.transforms import v2

    s = float(strength)
    half = 0.5  # every per-item operation is applied to about half of the items
    if name == "flip":
        return v2.RandomHorizontalFlip(p=half)
    if name == "rotate":
        return v2.RandomApply([v2.RandomRotation(30.0 * s)], p=half)
    if name == "resized_crop":
        return v2.RandomApply([v2.RandomResizedCrop(size, scale=(1.0 - 0.6 * s, 1.0), antialias=True)], p=half)
    if name == "translate":
        return v2.RandomApply([v2.RandomAffine(degrees=0.0, translate=(0.2 * s, 0.2 * s))], p=half)
    if name == "color_jitter":
        rgb = channels == 3
        jitter = v2.ColorJitter(brightness=0.5 * s, contrast=0.5 * s, saturation=0.5 * s if rgb else None, hue=0.1 * s if rgb else None)
        return v2.RandomApply([jitter], p=half)
    if name == "blur":
        return v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, max(0.1, 2.0 * s)))], p=half)
    if name == "noise":
        noisy = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.GaussianNoise(sigma=0.1 * s), v2.ToDtype(torch.uint8, scale=True)])
        return v2.RandomApply([noisy], p=half)
    if name == "randaugment":
        return v2.RandAugment(num_ops=2, magnitude=round(30 * s), num_magnitude_bins=31)
    if name == "trivialaugment":
        return v2.TrivialAugmentWide()
    if name == "erasing":
        return v2.RandomErasing(p=half, scale=(0.02, max(0.02, 0.33 * s)), value=0)
    raise ValueError(f"no image augmentation named {name!r}")


class ImageAugmenter:
    """Per-item torchvision v2 operations on uint8 images, then MixUp / CutMix on the batch.

    ``group`` > 1 (the GPU fast path, ``core.train.speed``): the per-item operations draw their
    parameters once per group of that many items and run on the group as one batched call — a
    handful of kernel launches per batch instead of one call per item. Each item still gets a fresh
    draw every epoch; items of a group share it.
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        strength: float,
        size: tuple[int, int],
        channels: int,
        n_classes: int,
        classes: Sequence[int] = (),
        group: int = 1,
    ) -> None:
        from torchvision.transforms import v2

        per_item = [n for n in names if n not in BATCH_AUGMENTATIONS]
        self.per_item = v2.Compose([image_transform(n, strength, size, channels) for n in per_item]) if per_item else None
        alpha = max(float(strength), 1e-3)
        batch = [
            v2.MixUp(alpha=alpha, num_classes=n_classes) if n == "mixup" else v2.CutMix(alpha=alpha, num_classes=n_classes)
            for n in names
            if n in BATCH_AUGMENTATIONS
        ]
        self.batch = v2.RandomChoice(batch) if len(batch) > 1 else (batch[0] if batch else None)
        self.classes = torch.as_tensor(list(classes), dtype=torch.int64)
        self.group = max(1, int(group))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.per_item is not None:
            if not len(self.classes):
                chosen = torch.arange(len(x), device=x.device)
            else:
                self.classes = self.classes.to(y.device)  # moved once, not per batch
                chosen = torch.nonzero(torch.isin(y, self.classes)).ravel()
            if len(chosen):
                x = x.clone()
                if self.group == 1:
                    for i in chosen.tolist():
                        x[i] = self.per_item(x[i])
                else:
                    for part in chosen.split(self.group):
                        x[part] = self.per_item(x[part])
        if self.batch is not None and len(x) > 1:
            x, y = self.batch(x.float(), y)  # float 0..255: the model's normalisation follows
        return x, y


# ---------------------------------------------------------------------- texts


def _swap(words: list[str], k: int, rng: np.random.Generator) -> list[str]:
    words = list(words)
    for _ in range(k):
        if len(words) < 2:
            break
        i, j = rng.choice(len(words), 2, replace=False)
        words[i], words[j] = words[j], words[i]
    return words


def _delete(words: list[str], k: int, rng: np.random.Generator) -> list[str]:
    if len(words) < 2:
        return list(words)
    drop = set(rng.choice(len(words), min(k, len(words) - 1), replace=False).tolist())
    return [w for i, w in enumerate(words) if i not in drop]


def _insert(words: list[str], k: int, rng: np.random.Generator) -> list[str]:
    """EDA's random insertion: a synonym of a random word of the text, at a random place (the
    word itself when WordNet is not fetched or knows no synonym)."""
    from core.mitigate.language import synonyms, wordnet_ready

    lookup = wordnet_ready()
    words = list(words)
    for _ in range(k):
        if not words:
            break
        word = words[int(rng.integers(len(words)))]
        options = synonyms(word.strip(".,;:!?\"'()")) if lookup else ()
        words.insert(int(rng.integers(len(words) + 1)), options[int(rng.integers(len(options)))] if options else word)
    return words


def _char_noise(words: list[str], k: int, rng: np.random.Generator) -> list[str]:
    words = list(words)
    for _ in range(k):
        long = [i for i, w in enumerate(words) if len(w) >= 3]
        if not long:
            break
        i = long[int(rng.integers(len(long)))]
        w, j = words[i], int(rng.integers(1, len(words[i]) - 1))
        op = int(rng.integers(3))
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if op == 0 else (w[:j] + w[j + 1 :] if op == 1 else w[:j] + w[j] + w[j:])
    return words


def _synonym(words: list[str], k: int, rng: np.random.Generator) -> list[str]:
    from core.mitigate.language import synonyms

    words = list(words)
    # strip punctuation around a word to look it up; keep it around the replacement
    spots = [i for i, w in enumerate(words) if synonyms(w.strip(".,;:!?\"'()"))]
    for i in rng.permutation(spots)[:k].tolist():
        w = words[i]
        core_word = w.strip(".,;:!?\"'()")
        options = synonyms(core_word)
        new = options[int(rng.integers(len(options)))]
        if core_word[:1].isupper():
            new = new[:1].upper() + new[1:]
        words[i] = w.replace(core_word, new, 1)
    return words


TEXT_OPS: dict[str, Callable[[list[str], int, np.random.Generator], list[str]]] = {
    "synonym": _synonym,
    "swap": _swap,
    "delete": _delete,
    "insert": _insert,
    "char_noise": _char_noise,
}
WHOLE_TEXT_OPS = ("back_translate",)


class TextOps:
    """Word-level operations on whitespace-split texts; ``rate`` of the words touched per operation."""

    def __init__(self, names: Sequence[str], *, strength: float, classes: Sequence[int] = ()) -> None:
        self.ops = [TEXT_OPS[n] for n in names if n not in WHOLE_TEXT_OPS]
        self.back_translate = "back_translate" in names
        self.rate = 0.1 + 0.3 * float(strength)
        self.classes = np.asarray(list(classes), dtype=np.int64)

    def __call__(self, texts: list[str], labels: np.ndarray, rng: np.random.Generator) -> list[str]:
        out = [str(t) for t in texts]
        chosen = [i for i, label in enumerate(np.asarray(labels)) if not len(self.classes) or label in self.classes]
        if self.back_translate and chosen:
            from core.mitigate.language import back_translate

            half = [i for i in chosen if rng.random() < 0.5]
            for i, text in zip(half, back_translate([out[i] for i in half])):
                out[i] = text
        for i in chosen:
            words = out[i].split()
            k = max(1, round(self.rate * len(words)))
            for op in self.ops:
                words = op(words, k, rng)
            out[i] = " ".join(words)
        return out


def make_augmenters(
    settings: Augmentation,
    *,
    modality: str,
    n_classes: int,
    class_names: Sequence[str],
    image_shape: tuple[int, ...] = (),
    group: int = 1,
) -> tuple[Augmenter, TextAugmenter | None]:
    """(batch augmenter, text augmenter or None) for ``settings`` on a run of ``modality``.

    ``class_names`` are the model classes' names (``settings.classes`` is keyed by name);
    ``image_shape`` is an image item's (H, W) or (H, W, 3); ``group``: items per draw of
    augmentation parameters (``ImageAugmenter``).
    """
    index = {name: i for i, name in enumerate(class_names)}
    classes = [index[c] for c in settings.classes if c in index]
    augmenter: Augmenter = NoAugment()
    if settings.image and modality == "image":
        h, w = image_shape[:2]
        channels = 3 if len(image_shape) == 3 else 1
        augmenter = ImageAugmenter(
            settings.image,
            strength=settings.strength,
            size=(int(h), int(w)),
            channels=channels,
            n_classes=n_classes,
            classes=classes,
            group=group,
        )
    text = TextOps(settings.text, strength=settings.strength, classes=classes) if settings.text and modality == "text" else None
    return augmenter, text
