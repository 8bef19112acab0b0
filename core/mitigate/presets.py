"""Presets: a named starting point for the mitigation knobs (the Train page fills them in; every
knob stays editable afterwards). Torch-free.

- ``baseline`` — nothing: the reference every mitigated run is compared with.
- ``long_tail`` — balanced softmax (Ren et al. 2020): the loss shifts logits by log(class count)
  while training, so rare classes are not drowned by frequent ones.
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
"""

from __future__ import annotations

from core.mitigate.settings import Augmentation, Decision, LossSettings, Mitigations

PRESETS: dict[str, str] = {
    "baseline": "no mitigation: the reference to compare against",
    "long_tail": "long-tail fix: balanced softmax",
    "noisy_labels": "noisy-label fix: label smoothing 0.3",
    "missing_class": "missing-class guard: label smoothing 0.1 (images: + MixUp) for softer confidence; abstain below 0.7",
}


def preset(name: str, *, modality: str, finetune: str = "full") -> Mitigations:
    """The mitigations of preset ``name`` for data of ``modality`` trained with ``finetune``
    (a linear probe trains on features computed once: no image augmentation reaches it)."""
    images = modality == "image" and finetune != "linear_probe"
    if name == "baseline":
        return Mitigations()
    if name == "long_tail":
        return Mitigations(loss=LossSettings(name="balanced_softmax"))
    if name == "noisy_labels":
        return Mitigations(loss=LossSettings(label_smoothing=0.3))
    if name == "missing_class":
        return Mitigations(
            loss=LossSettings(label_smoothing=0.1),
            augment=Augmentation(image=["mixup"] if images else [], strength=0.4),
            decision=Decision(abstain_below=0.7),
        )
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
