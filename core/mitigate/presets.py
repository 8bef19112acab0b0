"""Presets: a named starting point for the mitigation knobs (the Train page fills them in; every
knob stays editable afterwards). Torch-free.

- ``baseline`` — nothing: the reference every mitigated run is compared with.
- ``long_tail`` — balanced softmax (Ren et al. 2020): the loss shifts logits by log(class count)
  while training, so rare classes are not drowned by frequent ones; with weight balancing
  (Alshammari et al. 2022: AdamW weight decay 3 in place of 0.01), which keeps the common classes'
  weights from outgrowing the rare ones'; and on a network trained whole, square-root sampling
  (each class drawn in proportion to the square root of its count; the loss's offsets follow the
  draws, ``core.mitigate.criterion``, so the balance stays balanced softmax's while the rare
  classes' items are seen more often).
  - ``bench_mitigations.py --only orders`` and ``--only text-orders`` measured the probe's version
    over 5 random tail orders (ratio 100) on Fashion-MNIST's MobileNetV2 probe and on a MiniLM
    probe of VADER's texts by source (a task it was not tuned on): 88 % / 77 % of the lost macro-F1
    recovered on average, 78 % / 70 % in the worst order, against 56 % / 62 % (42 % / 57 %) for
    balanced softmax alone, with the hallucination rate @0.9 never above the baseline's beyond its
    paired interval (1.3 % against 10.3 %; 0.4 % against 2.7 % on average). Weight decay alone did
    not recover macro-F1; decay 10 did worse on the images (73 %, worst 58 %).
  - On the small CNN trained from scratch over the same 5 orders the network's version recovers
    81 % on average and 74 % in the worst order (0.882 ± 0.012 macro-F1, worst 0.874), with the
    hallucination rate @0.9 at 0.8 % against the baseline's 2.6 %: below it beyond the paired
    interval in all 5 orders as trained, and never above it after temperature scaling (ECE 0.025).
    Balanced softmax alone recovers 68 % and 48 % (its worst a tail of look-alikes: coat, pullover,
    sandal). Square-root sampling is what lifts macro-F1 (balanced softmax with label smoothing 0.1 and
    no sampler: 24 % on the worst order) and the decay what keeps confident errors down: without it the hallucination
    rate rose above the baseline's on the worst order (3.2 % against 2.4 %); label smoothing 0.1
    in place of the decay gave the same macro-F1 and fewer confident errors as trained, but left
    the CNN under-confident, and after temperature scaling above the baseline's in 2 of 5 orders.
    MixUp (α 0.2) and shifts (``translate``) cost macro-F1 on the worst order (0.836 and 0.830
    against 0.844). Networks other than the small CNN (a fine-tuned MobileNetV2 or MiniLM, a tabular
    MLP) get the same preset unmeasured.
- ``noisy_labels`` — label smoothing 0.3: a wrong label pulls the model less far towards
  certainty (Lukasik et al. 2020).

No preset augments: ``benchmarks/bench_mitigations.py`` measured flips (and flips with random
resized crops) *costing* the small CNN macro-F1 on long-tailed and on noisy Fashion-MNIST — its
shoes all face one way, and its tail classes are shoes and bags — so augmentation stays a choice
made with the preview, not a default. On the same benchmark label smoothing 0.3 beat 0.1 under
30 % noise (linear probe 0.812 vs 0.795 macro-F1; the CNN level at 0.889).
- ``missing_class`` — label smoothing and MixUp on images: softer, better-calibrated confidence,
  so inputs of a class the model never saw get less confident answers (then temperature scaling);
  answers below 0.7 confidence are withheld (the risk–coverage point is reported).

Token (NER) data has presets of its own (``presets_for``):

- ``baseline`` — as above.
- ``rare_types`` — rare entity types: square-root sampling of sentences by their rarest entity
  type (a sentence of a type with a quarter of another's sentences is drawn half as often as one of
  it, not a quarter; class-balanced sampling would drop most sentences without an entity, which
  teach the model where there is none); one augmented copy per epoch of every drawn sentence,
  made anew by Dai & Adel's (2020) four operations at 0.3 each (mention replacement,
  label-wise token replacement, synonym replacement, shuffle within segments: the copies of
  sentences without an entity teach "O" on new words); and the "O" offset fitted on val at every
  evaluation (``core.tokens.decide``), which takes back the entities the richer draw teaches the
  model to invent. ``benchmarks/bench_ner_gaps.py wnut`` measures it against the baseline on
  WNUT-16: over 5 seeds, entity macro-F1 +0.117 (t 95 % +0.080 to +0.153) and the spurious-entity
  rate −0.093 (−0.129 to −0.057). Two copies were tried: on WNUT-16's val split (two seeds the
  benchmark does not report) the val macro-F1 the run keeps rose from 0.43 / 0.40 to 0.53 / 0.53,
  but on test over the 5 reported seeds they did no better (+0.100 and −0.092) for 1.5× the
  training time. The loss stays cross-entropy over the tags: logit adjustment over the tags
  (τ = 1) pushed so hard against the frequent "O" that the fitted offset reached its largest value
  and val still had several times the invented entities.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.metrics.groups import group_of_classes
from core.mitigate.settings import Augmentation, Decision, LossSettings, Mitigations, Resampling, TokenAugmentation

PRESETS: dict[str, str] = {
    "baseline": "no mitigation: the reference to compare against",
    "long_tail": "long-tail fix: balanced softmax with weight balancing (weight decay 3); on a network trained whole, "
    "square-root sampling too",
    "noisy_labels": "noisy-label fix: label smoothing 0.3",
    "missing_class": "missing-class guard: label smoothing 0.1 (images: + MixUp) for softer confidence; abstain below 0.7",
    "rare_types": "rare entity types: square-root sampling of sentences by their rarest type; one augmented copy per epoch of "
    "each drawn sentence (mention replacement, label-wise token replacement, synonym replacement and shuffle within segments, "
    "0.3 each); and fewer invented entities (the O offset fitted on val at every evaluation). Measured on WNUT-16 over 5 seeds: "
    "entity macro-F1 +0.12 (95 % interval +0.08 to +0.15) and the spurious-entity rate −0.09 (−0.13 to −0.06); an epoch "
    "trains on twice the sentences",
}
TOKEN_PRESETS = ("baseline", "rare_types")
#: the long-tail preset's weight balancing (AdamW weight decay in place of the run's own), whatever is trained
LONG_TAIL_DECAY = 3.0
#: the long-tail preset's sampler on a network trained whole (a linear probe draws every item once);
#: balanced softmax's offsets then follow the sampler's draws (core.mitigate.criterion)
LONG_TAIL_SAMPLER = "sqrt"
RARE_TYPES_AUGMENT = 0.3  # each of the four token augmentations in the rare-types preset
RARE_TYPES_COPIES = 1  # augmented copies of each drawn sentence per epoch (2 copies: no gain on test, 1.5× the time)


def presets_for(modality: str) -> dict[str, str]:
    """The presets offered for data of ``modality`` (name → help)."""
    names = TOKEN_PRESETS if modality == "tokens" else [n for n in PRESETS if n != "rare_types"]
    return {n: PRESETS[n] for n in names}


def rare_types(train_mentions: Mapping[str, int]) -> list[str]:
    """The entity types the ``rare_types`` preset augments, from their train mentions: the types
    outside the head group (``core.metrics.groups``: 100 train mentions or fewer), rarest first;
    when every type is head, the rarest type alone."""
    seen = {t: int(n) for t, n in train_mentions.items() if n > 0}
    if not seen:
        return []
    names = sorted(seen, key=lambda t: (seen[t], t))
    groups = dict(zip(names, group_of_classes(np.array([seen[t] for t in names]))))
    return [t for t in names if groups[t] != "head"] or names[:1]


def preset(name: str, *, modality: str, finetune: str = "full") -> Mitigations:
    """The mitigations of preset ``name`` for data of ``modality`` trained with ``finetune``
    (a linear probe trains on features computed once: no image augmentation reaches it)."""
    images = modality == "image" and finetune != "linear_probe"
    if name in PRESETS and name not in presets_for(modality):
        offered = ", ".join(presets_for(modality))
        raise ValueError(f"preset {name!r} is not for {modality} data; choose one of {offered}")
    if name == "baseline":
        return Mitigations()
    if name == "rare_types":
        p = RARE_TYPES_AUGMENT
        return Mitigations(
            resample=Resampling(method="sqrt"),
            token_augment=TokenAugmentation(mention=p, lwtr=p, synonym=p, shuffle=p, copies=RARE_TYPES_COPIES),
            decision=Decision(o_offset=True),
        )
    if name == "long_tail":
        sampler = Resampling() if finetune == "linear_probe" else Resampling(method=LONG_TAIL_SAMPLER)
        return Mitigations(loss=LossSettings(name="balanced_softmax", weight_decay=LONG_TAIL_DECAY), resample=sampler)
    if name == "noisy_labels":
        return Mitigations(loss=LossSettings(label_smoothing=0.3))
    if name == "missing_class":
        return Mitigations(
            loss=LossSettings(label_smoothing=0.1),
            augment=Augmentation(image=["mixup"] if images else [], strength=0.4),
            decision=Decision(abstain_below=0.7),
        )
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
