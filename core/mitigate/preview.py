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
- ``loss_preview`` — the per-class weights, logit offsets or margins the chosen loss will use
  (``core.mitigate.loss_terms``, as the criterion computes them from the train counts), focal's
  factor, and sentences that say what they do.
- ``token_train`` and ``token_epoch`` — token (NER) data: its train sentences by their rarest type
  (what the sampler draws by), mentions per type, words per tag (what the loss counts), and what
  one epoch draws under the resampling and the token augmentation's copies, per sentence label and
  per entity type (expected values).
"""

from __future__ import annotations

import difflib
import html
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.mitigate.loss_terms import class_weights, focal_factor, ldam_margins, logit_offsets
from core.mitigate.presets import rare_types
from core.mitigate.settings import (
    BATCH_AUGMENTATIONS,
    FEATURE_SAMPLERS,
    ITEM_SAMPLERS,
    OVER_SAMPLERS,
    UNDER_SAMPLERS,
    Augmentation,
    LossSettings,
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
    elif r.method in FEATURE_SAMPLERS or r.method == "importance":  # the drawn mix depends on the items' weights
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


FOCAL_PROBABILITIES = (0.1, 0.5, 0.9)  # label probabilities focal's factor is shown at


@dataclass(frozen=True)
class LossPreview:
    """What the chosen loss does per class, from the train counts (class name → value, in the
    model's class order); None where the loss has no such term."""

    weights: dict[str, float] | None  # class weights, summing to the number of classes
    offsets: dict[str, float] | None  # added to each class's logit while training
    margins: dict[str, float] | None  # LDAM: how far a class's logit must win by while training
    focal: dict[float, float] | None  # label probability p → the share (1 − p)^γ of its cross-entropy an item keeps
    words: list[str]  # one sentence per term, with its figures


def loss_preview(loss: LossSettings, train_counts: dict[str, int], *, epochs: int | None = None, per: str = "class") -> LossPreview:
    """The per-class numbers ``loss`` will use with these train counts (class name → items, the
    classes with train items), computed by ``core.mitigate.loss_terms`` as the criterion does;
    ``epochs`` (when known) says from which epoch deferred class weights apply. ``per="tag"``: the
    counts are a token run's train words per tag, and the words say tags and words."""
    names = list(train_counts)
    counts = np.array([train_counts[c] for c in names], dtype=np.float64)

    def by_class(values: np.ndarray) -> dict[str, float]:
        return {c: float(v) for c, v in zip(names, values)}

    weights = None if loss.class_weights == "none" else by_class(class_weights(counts, loss.class_weights, beta=loss.beta))
    shift = logit_offsets(loss, counts)
    offsets = None if shift is None else by_class(shift)
    margins = by_class(ldam_margins(counts, loss.max_margin)) if loss.name == "ldam" else None
    focal = {p: float(focal_factor(p, loss.gamma)) for p in FOCAL_PROBABILITIES} if loss.name == "focal" else None
    words = [
        w
        for w in (
            _weight_words(loss, train_counts, weights, epochs),
            _offset_words(loss, offsets),
            _margin_words(loss, margins),
            _focal_words(loss, focal),
            _smoothing_words(loss, len(names)),
        )
        if w
    ]
    if per == "tag":
        words = [_TAG_WORDS.sub(lambda hit: _PER_TAG[hit.group(0)], w) for w in words]
    return LossPreview(weights, offsets, margins, focal, words)


_PER_TAG = {"class": "tag", "classes": "tags", "item": "word", "items": "words", "Items": "Words", "an item": "a word"}
_TAG_WORDS = re.compile(r"\b(?:classes|class(?! weights)|an item|items|item|Items)\b")


#: the samplers of the SMOTE family (new points between a class's neighbours)
_SMOTES = ("smote", "borderline_smote", "adasyn", "svm_smote", "smote_enn", "smote_tomek")
_LT_BENCH = (
    "the long-tail benchmark (Fashion-MNIST and VADER's sources thinned to ratio 100, 5 random tail orders each; benchmarks/RESULTS.md)"
)


def hallucination_trades(m: Mitigations) -> list[str]:
    """Where a chosen setting bought recall with confident errors on the project's benchmarks: one
    sentence each, with the measured figures (the Train page shows them beside the knobs). Empty
    when nothing chosen was measured raising the hallucination rate over the baseline's."""
    notes = []
    r, loss = m.resample.method, m.loss
    beyond = "above the baseline's beyond its paired 95 % interval"
    if r == "class_balanced":
        notes.append(
            f"Class-balanced sampling draws the rare classes' few items again and again. On {_LT_BENCH} it raised tail recall, "
            f"but its hallucination rate @0.9 ended {beyond} in 3 of 5 orders on the texts (none on the images; linear probes)."
        )
    if r == "random_over":
        notes.append(
            "Random over-sampling repeats the rare classes' items until they are memorised: on the long-tail benchmark's small CNN "
            "(one tail order) the hallucination rate @0.9 doubled, 3.5 % → 7.2 %, while tail recall rose."
        )
    if r in _SMOTES:
        notes.append(
            f"{r} makes new points between a rare class's neighbours. On {_LT_BENCH} its hallucination rate @0.9 ended "
            f"{beyond} in 3 of 5 orders on the images and 3 of 5 on the texts."
        )
    offsets = loss.name in ("balanced_softmax", "logit_adjusted")
    what = "Balanced softmax" if loss.name == "balanced_softmax" else "Logit adjustment"
    if offsets and loss.weight_decay < 1 and loss.label_smoothing == 0:
        notes.append(
            f"{what} without weight balancing answers the rare classes more often; on {_LT_BENCH} its hallucination rate @0.9 "
            f"ended {beyond} in 2 of 5 text orders (none on the images; linear probes). With weight balancing (weight decay 3 on "
            "a linear probe, the long-tail preset there) it did in none."
        )
    if offsets and r == "sqrt" and loss.label_smoothing > 0:
        notes.append(
            f"{what} with square-root sampling and label smoothing: on the long-tail benchmark's small CNN (5 tail orders) it was "
            "below the baseline's hallucination rate @0.9 in every order as trained, but smoothing leaves the model under-confident, "
            "and after the run's temperature scaling its rate was above the baseline's beyond the interval in 2 of 5 orders "
            "(2.1 % against 1.5 % and 1.0 %). Weight balancing (weight decay 3, the long-tail preset) in place of the smoothing "
            "did not raise it."
        )
    elif offsets and r == "sqrt" and loss.weight_decay < 3:
        notes.append(
            f"Square-root sampling beside {what.lower()} draws the rare classes' items more often: on the long-tail benchmark's "
            "small CNN (its hardest tail order) the hallucination rate @0.9 rose from the baseline's 2.4 % to 3.2 %, "
            f"{beyond}; with weight decay 1 it was level as trained but above it after temperature scaling in 1 of the 2 "
            "hardest orders; with weight decay 3 (the long-tail preset) in neither."
        )
    return notes


def loss_counts_note(m: Mitigations) -> str | None:
    """Why the run's criterion may see other counts than the train split's, or None: the steps
    that change the train items before the criterion is built."""
    changes = []
    if m.clean.action != "none":
        changes.append("in-run cleaning drops or relabels train items")
    if m.semi.method == "label_spreading":
        changes.append("label spreading adds pool items")
    if m.resample.method in FEATURE_SAMPLERS:
        changes.append(f"{m.resample.method} resamples the train features")
    drawn = m.resample.method in ITEM_SAMPLERS and m.loss.name in ("balanced_softmax", "logit_adjusted")
    if not changes and not drawn:
        return None
    words = "Figures from the train split's counts"
    if changes:
        words += f"; the run computes them again after {' and '.join(changes)}"
    if drawn:  # core.mitigate.criterion: the offsets stand for the prior the model trains under
        from core.compare.setting_words import setting_value

        sampler = setting_value("mitigations.resample.method", m.resample.method)  # "Square-root sampling"
        when = f" from {m.resample.resample_from:.0%} of the epochs on" if m.resample.resample_from > 0 else ""
        words += (
            f"; the offsets follow the classes {sampler[:1].lower() + sampler[1:]} draws{when}, each epoch "
            "(under class-balanced draws they are equal, and the loss is plain cross-entropy)"
        )
    return words + "."


def _weight_words(loss: LossSettings, counts: dict[str, int], weights: dict[str, float] | None, epochs: int | None) -> str:
    total = sum(counts.values())
    big, small = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    if weights is None:
        if loss.name in ("logit_adjusted", "balanced_softmax", "ldam"):
            return ""
        return (
            f"No class weights: every item counts the same, so each class weighs in the loss as its share of train — "
            f"{big} {counts[big] / total:.1%} ({counts[big]:,} items), {small} {counts[small] / total:.1%} ({counts[small]:,})."
        )
    how = "1 / train items" if loss.class_weights == "inverse" else f"1 / effective number (β = {loss.beta:g})"
    if loss.reweight_from == 0:
        when = ""
    elif epochs:
        start = math.floor(loss.reweight_from * epochs)
        when = f" They apply from epoch {start + 1} of {epochs} on (deferred); before that every item counts the same."
    else:
        when = f" They apply after {loss.reweight_from:.0%} of the epochs (deferred); before that every item counts the same."
    return (
        f"Class weights ∝ {how}, summing to {len(counts)}: {small} ({counts[small]:,} items) weighs {weights[small]:.3g}, "
        f"{big} ({counts[big]:,}) {weights[big]:.3g} — an item of {small} counts {weights[small] / weights[big]:,.1f}× one of {big}.{when}"
    )


def _offset_words(loss: LossSettings, offsets: dict[str, float] | None) -> str:
    if offsets is None:
        return ""
    hi, lo = max(offsets, key=offsets.__getitem__), min(offsets, key=offsets.__getitem__)
    what = f"τ·log(its share of train), τ = {loss.tau:g}" if loss.name == "logit_adjusted" else "log(its train items)"
    return (
        f"While training, each class's logit gets {what}: from {offsets[hi]:+.2f} ({hi}) to {offsets[lo]:+.2f} ({lo}). "
        f"{lo} must win by {offsets[hi] - offsets[lo]:.2f} more than {hi} during training, so the plain logits used at "
        "evaluation lean towards the rare classes. Only the differences matter: softmax ignores a shift all classes share."
    )


def _margin_words(loss: LossSettings, margins: dict[str, float] | None) -> str:
    if margins is None:
        return ""
    hi, lo = max(margins, key=margins.__getitem__), min(margins, key=margins.__getitem__)
    return (
        f"While training, a class's logit must beat the others by its margin (∝ train items^−1/4, scale {loss.scale:g}): "
        f"{hi} {margins[hi]:.3f}, {lo} {margins[lo]:.3f}."
    )


def _focal_words(loss: LossSettings, focal: dict[float, float] | None) -> str:
    if focal is None:
        return ""
    shown = ", ".join(f"{f:.3g} at p = {p:g}" for p, f in focal.items())
    return (
        f"Focal (γ = {loss.gamma:g}): an item keeps (1 − p)^γ of its cross-entropy, p the probability the model gives its "
        f"label — {shown}. Items the model already gets right fade; it does not use the class counts."
    )


def _smoothing_words(loss: LossSettings, k: int) -> str:
    if not loss.label_smoothing:
        return ""
    eps = loss.label_smoothing
    return f"Label smoothing: each target keeps {1 - eps + eps / k:.3f} on its label and gives {eps / k:.3f} to every other class."


@dataclass(frozen=True)
class TokenTrain:
    """A token dataset's train split as the token mitigations see it (counts of the strict IOB2
    reading; ``core.tokens.spans``)."""

    n_sentences: int  # in all splits
    sentences: dict[str, int]  # train sentences by their label (rarest type, "(no entity)"): what the sampler draws by
    mentions: dict[str, int]  # train mentions per entity type with any, most first
    tags: dict[str, int]  # train words per tag, in the model's order (O, B-X, I-X, …): what the loss counts
    tail: list[str]  # types in the tail group by train mentions (``core.metrics.groups``)
    rare: list[str]  # the types the rare-types preset augments (``presets.rare_types``)
    absent: list[str]  # types with val or test mentions and none in train (a model cannot predict them)
    labels: tuple[str, ...]  # each train sentence's label
    held: tuple[Counter[str], ...]  # each train sentence's mentions per type

    @property
    def types(self) -> list[str]:
        return list(self.mentions)


def token_train(ds: Dataset) -> TokenTrain:
    """The train split of token dataset ``ds`` in counts."""
    from core.metrics.groups import group_of_classes
    from core.tokens.spans import entity_types, spans, tag_names

    if ds.tags is None:
        raise ValueError(f"{ds.name} is not a token dataset")
    names = list(map(str, ds.class_names))
    train = np.flatnonzero(ds.split == 0)
    labels = tuple(names[int(ds.labels[i])] for i in train)
    held = tuple(Counter(k for k, _, _ in spans(ds.tags[i])) for i in train)
    mentions: Counter[str] = Counter()
    for c in held:
        mentions.update(c)
    by_count = sorted(mentions, key=lambda t: (-mentions[t], t))
    words: Counter[str] = Counter(t for i in train for t in ds.tags[i])
    other = {k for i in np.flatnonzero(ds.split != 0) for k, _, _ in spans(ds.tags[i])}
    groups = group_of_classes(np.array([mentions[t] for t in by_count])) if by_count else np.array([], dtype=str)
    return TokenTrain(
        n_sentences=len(ds),
        sentences={c: n for c in names if (n := labels.count(c))},
        mentions={t: mentions[t] for t in by_count},
        tags={t: words[t] for t in tag_names(entity_types(ds.tags[i] for i in train))},
        tail=[t for t, g in zip(by_count, groups) if g == "tail"],
        rare=rare_types(mentions),
        absent=sorted(other - set(mentions)),
        labels=labels,
        held=held,
    )


@dataclass(frozen=True)
class TokenEpoch:
    """What one epoch of a token run draws (expected values for the weighted samplers)."""

    before: dict[str, float]  # train sentences per sentence label
    drawn: dict[str, float]  # sentences the sampler draws per label
    copies: dict[str, float]  # augmented copies added per label
    mentions_before: dict[str, float]  # train mentions per type
    mentions_after: dict[str, float]  # mentions per type an epoch trains on (draws and copies)

    @property
    def after(self) -> dict[str, float]:
        return {c: self.drawn[c] + self.copies[c] for c in self.drawn}

    @property
    def sentences(self) -> float:
        """Sentences per epoch, copies included."""
        return sum(self.drawn.values()) + sum(self.copies.values())


def token_epoch(m: Mitigations, t: TokenTrain) -> TokenEpoch:
    """One epoch of a token run under ``m``: the sampler's draws per sentence label
    (``epoch_counts``; the feature-space samplers, which a token run refuses, as no resampling) and
    the token augmentation's copies of the drawn sentences holding one of its types."""
    drawn = epoch_counts(Mitigations(resample=m.resample), t.sentences) if m.resample.method not in FEATURE_SAMPLERS else None
    drawn = drawn or {c: float(n) for c, n in t.sentences.items()}
    a = m.token_augment
    wanted = set(a.types)
    holds = [a.active and (not wanted or any(k in wanted for k in c)) for c in t.held]
    rate = {c: drawn.get(c, 0.0) / n for c, n in t.sentences.items()}  # draws of each sentence of a label
    copies = dict.fromkeys(t.sentences, 0.0)
    after: dict[str, float] = dict.fromkeys(t.mentions, 0.0)
    for label, held, copied in zip(t.labels, t.held, holds):
        copies[label] += rate[label] * a.copies * copied
        weight = rate[label] * (1 + a.copies * copied)
        for kind, n in held.items():
            after[kind] += weight * n
    return TokenEpoch(
        before={c: float(n) for c, n in t.sentences.items()},
        drawn={c: drawn.get(c, 0.0) for c in t.sentences},
        copies=copies,
        mentions_before={k: float(n) for k, n in t.mentions.items()},
        mentions_after=after,
    )
