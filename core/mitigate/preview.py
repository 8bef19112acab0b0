"""What a mitigation does to the data, before any training: for the Train page's previews.

- ``epoch_counts`` — items per class an epoch draws under the resampling settings (expected
  values for the weighted samplers; exact for imbalanced-learn's; the cleaning samplers' counts
  depend on the data and come from ``resample_on_embeddings``).
- ``resample_on_embeddings`` — the feature-space samplers run on the train items' embeddings,
  with a 2-D PCA map (fitted on the real items) that places the synthetic points among them.
- ``augment_images`` / ``augment_texts`` — a few train items (``preview_items``) beside their
  augmented copies, re-drawn under another seed on request. Torch is imported only when images
  are augmented.
- ``train_classes`` — the train split's classes as the knobs name them: counts, tail, absent.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.mitigate.settings import (
    BATCH_AUGMENTATIONS,
    FEATURE_SAMPLERS,
    OVER_SAMPLERS,
    UNDER_SAMPLERS,
    Augmentation,
    Mitigations,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.data.dataset import Dataset
    from core.data.profile import Balance


@dataclass(frozen=True)
class TrainClasses:
    counts: dict[str, int]  # class name → train items, classes with items only
    tail: list[str]  # of those, the tail group's
    absent: list[str]  # classes with no train item (scored as unknown)


def train_classes(train: Balance, class_names: Sequence) -> TrainClasses:
    """The train split's classes by name, from its profile (``Profile.train``)."""
    present = [int(c) for c in np.flatnonzero(train.counts > 0)]
    return TrainClasses(
        counts={str(class_names[c]): int(train.counts[c]) for c in present},
        tail=[str(class_names[c]) for c in present if train.groups[c] == "tail"],
        absent=[str(class_names[c]) for c in train.missing],
    )


def epoch_counts(m: Mitigations, train_counts: dict[str, int]) -> dict[str, float] | None:
    """Items per class one epoch draws (class name → count); None when only running the sampler
    on the data can tell (the cleaning feature-space samplers)."""
    r, a = m.resample, m.augment
    n = {c: float(k) for c, k in train_counts.items() if k > 0}
    total = sum(n.values())
    if r.method == "class_balanced":
        out = {c: total / len(n) for c in n}
    elif r.method == "sqrt":
        root = {c: np.sqrt(k) for c, k in n.items()}
        out = {c: total * v / sum(root.values()) for c, v in root.items()}
    elif r.method in OVER_SAMPLERS:
        top = max(n.values())
        out = {c: float(r.targets.get(c, top if not r.targets else k)) for c, k in n.items()}
    elif r.method in UNDER_SAMPLERS:
        low = min(n.values())
        out = {c: float(r.targets.get(c, low if not r.targets else k)) for c, k in n.items()}
    elif r.method in FEATURE_SAMPLERS:
        return None
    else:
        out = dict(n)
    if a.multiplier > 1 and (a.image or a.text):
        for c in a.classes or list(out):
            if c in out:
                out[c] *= a.multiplier
    return out


@dataclass
class ResampledMap:
    """The outcome of a feature-space sampler on real embeddings, and a map to draw it."""

    before: dict[str, int]  # class name → train items
    after: dict[str, int]  # class name → items after resampling
    xy: np.ndarray  # (m, 2) PCA coordinates of every item after resampling (real and synthetic)
    labels: np.ndarray  # (m,) class name of each point
    synthetic: np.ndarray  # (m,) bool: a new point
    removed_xy: np.ndarray  # (r, 2) coordinates of the real items the sampler removed
    seconds: float


def resample_on_embeddings(
    X: np.ndarray, labels: np.ndarray, class_names: list[str], m: Mitigations, *, seed: int = 0, max_points: int = 4000
) -> ResampledMap:
    """Run ``m``'s feature-space sampler on embeddings ``X`` of the train items (class indices
    ``labels``); map everything into the real items' first two principal components. At most
    ``max_points`` points of each kind are returned for drawing."""
    import time

    from sklearn.decomposition import PCA

    from core.mitigate.resample import resample_features

    r = m.resample
    present = np.unique(labels)
    index = {class_names[c]: int(c) for c in present}
    t = time.perf_counter()
    X_res, y_res, origin = resample_features(
        X, labels, r.method, k_neighbors=r.k_neighbors, targets={index[c]: n for c, n in r.targets.items() if c in index}, seed=seed
    )
    seconds = time.perf_counter() - t
    pca = PCA(n_components=2, random_state=0).fit(np.asarray(X, dtype=np.float32))
    rng = np.random.default_rng(seed)

    def sample(idx: np.ndarray) -> np.ndarray:
        return idx if len(idx) <= max_points else np.sort(rng.choice(idx, max_points, replace=False))

    synthetic = origin < 0
    shown = np.r_[sample(np.flatnonzero(~synthetic)), sample(np.flatnonzero(synthetic))]
    removed = sample(np.setdiff1d(np.arange(len(X)), origin[~synthetic]))
    removed_xy = (
        pca.transform(np.asarray(X, dtype=np.float32)[removed]).astype(np.float32) if len(removed) else np.zeros((0, 2), np.float32)
    )
    names = np.asarray(class_names, dtype=object)
    return ResampledMap(
        before={class_names[c]: int((labels == c).sum()) for c in present},
        after={class_names[c]: int((y_res == c).sum()) for c in present},
        xy=pca.transform(X_res[shown]).astype(np.float32),
        labels=names[y_res[shown]],
        synthetic=synthetic[shown],
        removed_xy=removed_xy,
        seconds=seconds,
    )


def augment_images(images: np.ndarray, labels: np.ndarray, settings: Augmentation, *, n_classes: int, seed: int = 0) -> np.ndarray:
    """``images`` (uint8 (n, H, W[, 3])) after the augmentations of ``settings``, as uint8 of the
    same shape; MixUp and CutMix mix within the given images. Deterministic for a seed; torch's
    global generator is left as it was."""
    import torch

    from core.mitigate.augment import ImageAugmenter
    from core.models.preprocess import to_nchw

    shape = images.shape[1:]
    augmenter = ImageAugmenter(
        settings.image,
        strength=settings.strength,
        size=(int(shape[0]), int(shape[1])),
        channels=3 if len(shape) == 3 else 1,
        n_classes=n_classes,
    )
    x = to_nchw(images)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out, _ = augmenter(x, torch.as_tensor(np.asarray(labels, dtype=np.int64)))
    out = out.float().round().clamp(0, 255).to(torch.uint8)
    arr = out.numpy()
    return arr[:, 0] if len(shape) == 2 else np.transpose(arr, (0, 2, 3, 1))


def preview_items(ds: Dataset, classes: Sequence[str], *, seed: int, n: int) -> np.ndarray:
    """Up to ``n`` train rows, sorted, drawn with ``seed`` from the classes named in ``classes``
    (all classes when it names none of the dataset's)."""
    names = list(map(str, ds.class_names))
    wanted = [names.index(c) for c in classes if c in names]
    pool = np.flatnonzero((ds.split == 0) & (np.isin(ds.labels, wanted) if wanted else True))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, min(n, len(pool)), replace=False))


def mixes(settings: Augmentation) -> bool:
    """Whether the settings mix images (MixUp / CutMix): their preview shows blends of the items."""
    return any(n in BATCH_AUGMENTATIONS for n in settings.image)


def augment_texts(texts: list[str], labels: np.ndarray, settings: Augmentation, *, seed: int = 0) -> list[str]:
    """``texts`` after the text augmentations of ``settings`` (every text, whatever its class)."""
    from core.mitigate.augment import TextOps

    return TextOps(settings.text, strength=settings.strength)(list(texts), np.asarray(labels), np.random.default_rng(seed))


def highlight_changes(before: str, after: str) -> str:
    """HTML of ``after`` with the words that are new marked <ins> and the ones gone from
    ``before`` marked <del> (word-level diff); every text is escaped."""
    a, b = before.split(), after.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(html.escape(" ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del>{html.escape(' '.join(a[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins>{html.escape(' '.join(b[j1:j2]))}</ins>")
    return " ".join(out)
