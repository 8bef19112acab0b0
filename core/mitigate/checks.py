"""Mitigation settings checked against the data they will run on — before a run starts.

``Mitigations.validate`` checks each value on its own; ``check`` checks what only the dataset can
tell: a sampler that needs feature vectors on a fine-tuned image model, SMOTE's k against the
smallest class, target counts that an over-sampler would have to lower, a multiplier that would
make millions of items, a text augmentation on images. The Train page shows the messages before
the Start button; the worker raises the first one. Torch-free.

Token (NER) data (``modality="tokens"``) takes what acts on sentences and tags: the weighted and
random samplers draw whole sentences by their rarest entity type, every loss and class weighting
scores words per tag, and the token augmentation adds copies of train sentences. The feature-space
samplers, image and text augmentations, in-run cleaning, the unlabelled pool, threshold moving and
abstention do not apply to it (yet): ``check`` refuses them with ``TOKEN_REFUSALS``' words, and
``core.tokens.train.prepare_tokens`` raises the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.mitigate.settings import (
    FEATURE_SAMPLERS,
    ITEM_SAMPLERS,
    NEIGHBOUR_SAMPLERS,
    NO_WEIGHTS,
    OVER_SAMPLERS,
    UNDER_SAMPLERS,
    Augmentation,
    Cleaning,
    Mitigations,
    Resampling,
    SemiSupervision,
    TokenAugmentation,
)

MAX_EPOCH_ITEMS = 5_000_000  # draws per epoch; more is a setting mistake, not a plan

#: what a token (NER) run refuses, and why, in the words the Train page and the worker both say
TOKEN_REFUSALS = {
    "linear_probe": "a token-classification run fine-tunes the encoder: choose full or last N blocks (a linear probe reads one "
    "vector per item, not one per word)",
    "feature_sampler": "{method} makes new feature vectors, but a token run draws whole sentences: resample with class_balanced, "
    "sqrt, random_over or random_under, which draw sentences by their rarest entity type",
    "clean": "in-run cleaning does not apply to token data yet: set it to none",
    "semi": "the unlabelled pool does not apply to token data yet: set it to none",
    "threshold_moving": "threshold moving does not apply to token data yet: turn it off",
    "abstain": "abstention does not apply to token data yet: set abstain below to 0",
    "adversarial": "adversarial training attacks pixels or table columns, not words: set it to none",
    "logit_adjustment": "post-hoc logit adjustment does not apply to token data yet: turn it off",
    "retrain_head": "classifier re-training (cRT) re-initialises a classifier of items, not the tagger's head: turn it off "
    "(deferred re-sampling alone applies)",
}


def check(
    m: Mitigations, *, modality: str, finetune: str, train_counts: Mapping[str, int], n_unlabelled: int = 0, epochs: int = 1,
    entity_types: Sequence[str] | None = None, item_weights: bool = False,
) -> list[str]:  # fmt: skip
    """Problems (each says what to change) of ``m`` on a train split with ``train_counts``
    (class name → items, classes absent from train left out; for token data sentences by their
    rarest entity type) and an unlabelled pool of ``n_unlabelled`` items, trained for ``epochs``;
    empty when it can run. ``entity_types``: token data's types with train mentions (the token
    augmentation's ``types`` must be among them; None: not checked); ``item_weights``: whether the
    version holds importance weights (the ``importance`` sampler needs them)."""
    counts = {name: int(n) for name, n in train_counts.items() if n > 0}
    weights = [NO_WEIGHTS + "."] if m.resample.method == "importance" and not item_weights else []
    if modality == "tokens":
        return [
            *weights,
            *_token_refusals(m, finetune),
            *(_resampling(m.resample, counts, vectors=True) if m.resample.method not in FEATURE_SAMPLERS else []),
            *_deferred(m.resample, "full"),
            *_augmentation(m.augment, counts, modality, finetune),
            *_token_augmentation(m.token_augment, entity_types),
            *_epoch_size(m, counts),
        ]
    vectors = finetune == "linear_probe" or modality == "tabular"
    return [
        *weights,
        *_resampling(m.resample, counts, vectors=vectors),
        *_deferred(m.resample, finetune),
        *_cleaning(m.clean),
        *_language(m.augment, modality),
        *_pool(m.semi, n_unlabelled, epochs),
        *_augmentation(m.augment, counts, modality, finetune),
        *_not_tokens(m, modality),
        *_adversarial(m, modality, finetune),
        *_epoch_size(m, counts),
    ]


def _token_refusals(m: Mitigations, finetune: str) -> list[str]:
    """What does not apply to a token run, in ``TOKEN_REFUSALS``' words."""
    refused = {
        "linear_probe": finetune == "linear_probe",
        "feature_sampler": m.resample.method in FEATURE_SAMPLERS,
        "clean": m.clean.action != "none",
        "semi": m.semi.method != "none",
        "threshold_moving": m.decision.threshold_moving,
        "abstain": bool(m.decision.abstain_below),
        "adversarial": m.adversarial.method != "none",
        "logit_adjustment": m.decision.logit_adjustment,
        "retrain_head": m.resample.retrain_head,
    }
    return [TOKEN_REFUSALS[key].format(method=m.resample.method) + "." for key, on in refused.items() if on]


def _token_augmentation(t: TokenAugmentation, entity_types: Sequence[str] | None) -> list[str]:
    problems: list[str] = []
    if entity_types is not None:
        unknown = [k for k in t.types if k not in set(entity_types)]
        if unknown:
            problems.append(
                f"token augmentation names entity types without train mentions: {', '.join(unknown)}. "
                f"Pick from {', '.join(entity_types) or 'none'}."
            )
    if t.synonym > 0:
        from core.mitigate.language import wordnet_ready

        if not wordnet_ready():
            problems.append(
                "synonym replacement needs the WordNet asset, which is not fetched here: run `python -m core.data.assets fetch`, or set it to 0."
            )
    return problems


def _adversarial(m: Mitigations, modality: str, finetune: str) -> list[str]:
    if m.adversarial.method == "none":
        return []
    if modality == "text":
        return ["adversarial training attacks pixels or table columns; for text, attack the finished run on the Runs page. Set it to none."]
    if finetune == "linear_probe":
        return [
            "adversarial training needs the model's input: a linear probe trains on frozen features. Fine-tune (full or last N blocks), or set it to none."
        ]
    if modality == "image" and m.adversarial.eps > 1:
        return [f"an image's pixels run from 0 to 1: ε = {m.adversarial.eps:g} would erase them. Choose ε ≤ 1 (0.03–0.1 is usual)."]
    return []


def _not_tokens(m: Mitigations, modality: str) -> list[str]:
    problems = []
    if m.token_augment.active:
        problems.append(
            f"token augmentation (mention replacement, shuffle within segments, …) needs token (NER) data; this dataset is {modality}. Set it off."
        )
    if m.decision.o_offset:
        problems.append(f"fewer invented entities (the O offset) needs token (NER) data; this dataset is {modality}. Turn it off.")
    return problems


def _deferred(r: Resampling, finetune: str) -> list[str]:
    """Two-stage training: a sampler to defer, and a network with features to keep for cRT."""
    problems: list[str] = []
    if r.resample_from > 0 and r.method not in ITEM_SAMPLERS:
        what = "draws every item once" if r.method == "none" else f"{r.method} makes its points once, before training"
        problems.append(
            f"deferred re-sampling switches the sampler on mid-run, but {what}: pick {', '.join(ITEM_SAMPLERS[:-1])} or "
            f"{ITEM_SAMPLERS[-1]}, or set resample_from to 0."
        )
    if r.retrain_head and finetune == "linear_probe":
        problems.append(
            "classifier re-training (cRT) re-trains a network's head on frozen features; a linear probe is that head alone. "
            "Turn cRT off: deferred re-sampling alone does the same here."
        )
    return problems


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
    r, a, t = m.resample, m.augment, m.token_augment
    per_epoch = sum(counts.values()) + (a.multiplier - 1) * sum(counts[c] for c in (a.classes or counts) if c in counts)
    if t.active:  # at most every drawn sentence copied
        per_epoch *= 1 + t.copies
    if r.targets and r.method in OVER_SAMPLERS:
        per_epoch += sum(max(0, n - counts.get(c, 0)) for c, n in r.targets.items())
    if per_epoch > MAX_EPOCH_ITEMS:
        return [
            f"these settings would draw {per_epoch:,} items per epoch (limit {MAX_EPOCH_ITEMS:,}). Lower the multiplier or the target counts."
        ]
    return []
