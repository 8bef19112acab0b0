"""Mitigation settings checked against the data they will run on — before a run starts.

``Mitigations.validate`` checks each value on its own; ``check`` checks what only the dataset can
tell: a sampler that needs feature vectors on a fine-tuned image model, SMOTE's k against the
smallest class, target counts that an over-sampler would have to lower, a multiplier that would
make millions of items, a text augmentation on images. The Train page shows the messages before
the Start button; the worker raises the first one. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.mitigate.settings import (
    FEATURE_SAMPLERS,
    NEIGHBOUR_SAMPLERS,
    OVER_SAMPLERS,
    UNDER_SAMPLERS,
    Augmentation,
    Cleaning,
    Mitigations,
    Resampling,
    SemiSupervision,
)

MAX_EPOCH_ITEMS = 5_000_000  # draws per epoch; more is a setting mistake, not a plan


def check(
    m: Mitigations, *, modality: str, finetune: str, train_counts: Mapping[str, int], n_unlabelled: int = 0, epochs: int = 1
) -> list[str]:
    """Problems (each says what to change) of ``m`` on a train split with ``train_counts``
    (class name → items, classes absent from train left out) and an unlabelled pool of
    ``n_unlabelled`` items, trained for ``epochs``; empty when it can run."""
    counts = {name: int(n) for name, n in train_counts.items() if n > 0}
    vectors = finetune == "linear_probe" or modality == "tabular"
    return [
        *_resampling(m.resample, counts, vectors=vectors),
        *_cleaning(m.clean),
        *_language(m.augment, modality),
        *_pool(m.semi, n_unlabelled, epochs),
        *_augmentation(m.augment, counts, modality, finetune),
        *_epoch_size(m, counts),
    ]


def _resampling(r: Resampling, counts: dict[str, int], *, vectors: bool) -> list[str]:
    problems: list[str] = []
    if r.method in FEATURE_SAMPLERS and not vectors:
        problems.append(
            f"{r.method} resamples feature vectors, so it needs a linear probe (or tabular data); for fine-tuning "
            "resample with class_balanced, sqrt, random_over or random_under."
        )
    unknown = sorted(set(r.targets) - set(counts))
    if unknown:
        problems.append(f"resampling targets name classes that have no train items: {', '.join(unknown)}. Pick from {', '.join(counts)}.")
    if r.targets and r.method not in (*OVER_SAMPLERS, *UNDER_SAMPLERS):
        problems.append(f"target counts apply to the over- and under-samplers, not to {r.method}; clear them or pick such a sampler.")
    for name, want in r.targets.items():
        have = counts.get(name)
        if have is None:
            continue
        if r.method in OVER_SAMPLERS and want < have:
            problems.append(
                f"{r.method} can only add items: class {name} has {have:,}, its target is {want:,}. Raise the target or under-sample."
            )
        if r.method in UNDER_SAMPLERS and want > have:
            problems.append(
                f"{r.method} can only remove items: class {name} has {have:,}, its target is {want:,}. Lower the target or over-sample."
            )
    if r.method in NEIGHBOUR_SAMPLERS and counts:
        smallest_name, smallest = min(counts.items(), key=lambda kv: kv[1])
        if r.k_neighbors >= smallest:
            problems.append(
                f"{r.method} looks for k = {r.k_neighbors} neighbours within a class, but class {smallest_name} has only "
                f"{smallest} train item(s). Set k below {smallest}, or collect more examples of {smallest_name}."
            )
    return problems


def _cleaning(c: Cleaning) -> list[str]:
    if c.action != "none" and c.source == "plan" and not c.plan_drop and not c.plan_relabel:
        return [
            "in-run cleaning by plan, but the Diagnose page has no plan for this version yet: mark suspects there, or clean by the detector."
        ]
    return []


def _language(a: Augmentation, modality: str) -> list[str]:
    """What the text augmentations need installed."""
    problems: list[str] = []
    if "synonym" in a.text and modality == "text":
        from core.mitigate.language import wordnet_ready

        if not wordnet_ready():
            problems.append(
                "synonym replacement needs the WordNet asset, which is not fetched here: run `python -m core.data.assets fetch`."
            )
    if "back_translate" in a.text and modality == "text":
        from core.mitigate.language import apertium_ready

        if not apertium_ready():
            problems.append("back-translation needs Apertium with English ↔ Spanish (as root: apt-get install apertium apertium-eng-spa).")
    return problems


def _pool(s: SemiSupervision, n_unlabelled: int, epochs: int) -> list[str]:
    problems: list[str] = []
    if s.method != "none" and n_unlabelled == 0:
        problems.append(
            f"{s.method.replace('_', '-')} needs an unlabelled pool, and this dataset has none: upload rows with an empty "
            "label beside the labelled ones, or turn it off."
        )
    if s.method == "pseudo_label" and epochs < s.rounds + 1:
        problems.append(
            f"pseudo-labelling {s.rounds} time(s) needs at least {s.rounds + 1} epochs (the model trains before each round); raise the epochs."
        )
    return problems


def _augmentation(a: Augmentation, counts: dict[str, int], modality: str, finetune: str) -> list[str]:
    problems: list[str] = []
    if a.text and modality != "text":
        problems.append(f"text augmentations ({', '.join(a.text)}) need text data; this dataset is {modality}. Remove them.")
    if a.image and modality != "image":
        problems.append(f"image augmentations ({', '.join(a.image)}) need images; this dataset is {modality}. Remove them.")
    if (a.image or a.text) and finetune == "linear_probe":
        problems.append(
            "a linear probe trains on features computed once, so augmentations cannot reach it: fine-tune (last N or full), or remove them."
        )
    missing = sorted(set(a.classes) - set(counts))
    if missing:
        problems.append(f"augmentation targets classes without train items: {', '.join(missing)}. Pick from {', '.join(counts)}.")
    return problems


def _epoch_size(m: Mitigations, counts: dict[str, int]) -> list[str]:
    """An epoch that would draw millions of items: a setting mistake, not a plan."""
    r, a = m.resample, m.augment
    per_epoch = sum(counts.values()) + (a.multiplier - 1) * sum(counts[c] for c in (a.classes or counts) if c in counts)
    if r.targets and r.method in OVER_SAMPLERS:
        per_epoch += sum(max(0, n - counts.get(c, 0)) for c, n in r.targets.items())
    if per_epoch > MAX_EPOCH_ITEMS:
        return [
            f"these settings would draw {per_epoch:,} items per epoch (limit {MAX_EPOCH_ITEMS:,}). Lower the multiplier or the target counts."
        ]
    return []
