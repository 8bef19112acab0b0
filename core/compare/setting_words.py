"""Run settings as people read them: "loss" / "Balanced softmax", not ``mitigations.loss.name`` /
``balanced_softmax``. Mitigation settings take the Train page's own labels (``core.mitigate.fields``);
the run's other settings have a small table here.

    setting_name("mitigations.loss.name")                          # "loss"
    setting_value("mitigations.loss.name", "balanced_softmax")     # "Balanced softmax"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.metrics.names import metric_name
from core.mitigate.fields import FIELDS, TABS
from core.mitigate.settings import TOKEN_AUGMENTATIONS, Mitigations, Resampling, TokenAugmentation
from core.models.registry import FINETUNE_TITLES

#: A RunConfig key → its name in words (keys not here are shown with "_" as spaces).
NAMES = {
    "dataset version": "dataset version",
    "model": "model",
    "finetune": "fine-tuning",
    "last_n_blocks": "blocks fine-tuned",
    "epochs": "epochs",
    "lr": "learning rate",
    "batch_size": "batch size",
    "weight_decay": "weight decay",
    "warmup_ratio": "warm-up share",
    "tau": "τ (confidence of a hallucination)",
    "seed": "seed",
    "device": "device",
    "eval_every_steps": "evaluate every (steps)",
    "log_every_steps": "log every (steps)",
    "early_stopping_metric": "selection metric (val)",
    "checkpoint": "result",
    "patience": "early-stopping patience",
    "selection_window": "best judged over (evaluations)",
    "max_length": "tokens per text",
    "image_size": "image size (pixels)",
    "temperature_scaling": "temperature scaling",
    "max_train_items": "train items cap",
    "fast_path": "GPU fast path",
    "compile": "compile",
    "processes": "processes",
}
#: Values with words of their own, by RunConfig key.
VALUES: dict[str, Mapping[Any, str]] = {
    "finetune": FINETUNE_TITLES,
    "checkpoint": {"best": "best val evaluation", "last": "last evaluation"},
    "batch_size": {0: "auto"},
    "lr": {None: "the model's default"},
    "eval_every_steps": {0: "each epoch"},
    "max_train_items": {0: "all"},
    "image_size": {0: "automatic"},
    "patience": {0: "never stop early"},
    # mitigation options whose help text does not start with their name
    "mitigations.resample.method": {
        "none": "No resampling",
        "class_balanced": "Class-balanced sampling",
        "sqrt": "Square-root sampling",
        "random_over": "Random oversampling",
        "random_under": "Random undersampling",
        "smote": "SMOTE",
        "borderline_smote": "Borderline-SMOTE",
        "adasyn": "ADASYN",
        "svm_smote": "SVM-SMOTE",
        "near_miss": "NearMiss",
        "tomek": "Tomek links",
        "enn": "Edited nearest neighbours",
        "smote_enn": "SMOTE + edited nearest neighbours",
        "smote_tomek": "SMOTE + Tomek links",
    },
    "mitigations.loss.class_weights": {
        "none": "Every item counts the same",
        "inverse": "Weight ∝ 1 / class count",
        "effective_number": "Weight ∝ 1 / effective number",
    },
    "mitigations.clean.action": {"none": "No cleaning", "drop": "Drop", "relabel": "Relabel"},
    "mitigations.clean.source": {
        "detector": "The detector's suspects",
        "threshold": "Label quality below a threshold",
        "plan": "The Diagnose page's plan",
    },
    "mitigations.semi.method": {"none": "Pool not used", "pseudo_label": "Self-training", "label_spreading": "Label spreading"},
}
_FIELDS = {f"mitigations.{f.path}": f for f in FIELDS}
#: lists of names shown as they are (entity types), and what their empty list means
VERBATIM = {"mitigations.token_augment.types": "all"}


def setting_name(key: str) -> str:
    """A dotted config key in words: a mitigation's Train-page label (its section first where the
    label alone is vague), else ``NAMES``, else the key with spaces."""
    if key in _FIELDS:
        f = _FIELDS[key]
        section = key.split(".")[1]
        label = f.label.split(" (")[0]
        label = label[0].lower() + label[1:]
        tab = TABS.get(f.tab, section).lower()
        return label if label.startswith((section, tab[:6])) else f"{tab}: {label}"
    return NAMES.get(key, key.removeprefix("mitigations.").replace(".", ": ").replace("_", " "))


def setting_value(key: str, value: Any) -> str:
    """A config value in words: an option's own name ("balanced softmax: adds …" → "Balanced
    softmax"), on/off for switches, metric titles, lists joined; "—" for a setting a run lacks."""
    if value is None and key not in VALUES:
        return "—"
    if key in VALUES and _hashable(value) and value in VALUES[key]:
        return VALUES[key][value]
    if key == "early_stopping_metric":
        return metric_name(str(value))
    if key in VERBATIM and isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or VERBATIM[key]
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ", ".join(setting_value(key, v) for v in value) or "none"
    options = _FIELDS[key].options if key in _FIELDS else None
    if isinstance(value, str) and options and value in options:
        return _option_words(value, options[value])
    if isinstance(value, str):
        return _humanise(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def mitigation_words(m: Mitigations) -> list[str]:
    """The settings of ``m`` that differ from the defaults, in words ("SMOTE resampling",
    "Balanced softmax"); an empty list for a baseline."""

    def say(path: str, value: Any) -> str:
        return setting_value(f"mitigations.{path}", value)

    out = _resample_words(m.resample)
    if m.loss.name != "cross_entropy":
        out.append(say("loss.name", m.loss.name))
    if m.loss.class_weights != "none":
        out.append(say("loss.class_weights", m.loss.class_weights))
    if m.loss.label_smoothing:
        out.append(f"label smoothing {m.loss.label_smoothing:g}")
    if m.loss.weight_decay:
        out.append(f"weight decay {m.loss.weight_decay:g} (weight balancing)")
    augs = m.augment.image + m.augment.text
    if augs:
        out.append("augmentation: " + ", ".join(a.replace("_", " ") for a in augs))
    if m.token_augment.active:
        out.append(token_augment_words(m.token_augment))
    if m.clean.action != "none":
        what = f"label quality below {m.clean.threshold:g}" if m.clean.source == "threshold" else say("clean.source", m.clean.source)
        out.append(f"{say('clean.action', m.clean.action)}: {what[0].lower() + what[1:]}")
    if m.semi.method != "none":
        out.append(f"{say('semi.method', m.semi.method)} (confidence ≥ {m.semi.threshold:g})")
    if m.decision.threshold_moving:
        out.append("threshold moving")
    if m.decision.abstain_below:
        out.append(f"abstain below confidence {m.decision.abstain_below:g}")
    if m.decision.logit_adjustment:
        out.append("post-hoc logit adjustment (τ on val)")
    if m.decision.o_offset:
        out.append("fewer invented entities (O offset fitted on val)")
    adv = m.adversarial
    if adv.method != "none":
        how = "FGSM with a random start" if adv.method == "fgsm" else f"PGD-{adv.steps}"
        share = f", {adv.share:.0%} of each batch" if adv.share < 1 else ""
        out.append(f"adversarial training: {how} at ε = {adv.eps:g}{share}")
    return out


def _resample_words(r: Resampling) -> list[str]:
    out = []
    if r.method != "none":
        deferred = f", from {r.resample_from:.0%} of the epochs" if r.resample_from else ""
        out.append(f"{setting_value('mitigations.resample.method', r.method)} (resampling{deferred})")
    if r.retrain_head:
        out.append("classifier re-trained alone in the second stage (cRT)")
    return out


def token_augment_words(t: TokenAugmentation) -> str:
    """The token augmentation in words, as the Train page labels it: "Mention replacement 0.3 ·
    Shuffle within segments 0.3 · 1 copy per sentence · only sentences with movie, tvshow"."""
    labels = {f.name: f.label for f in FIELDS if f.section == "token_augment"}
    parts = [f"{labels[name]} {getattr(t, name):g}" for name in TOKEN_AUGMENTATIONS if getattr(t, name) > 0]
    if not parts:
        return "No token augmentation"
    parts.append(f"{t.copies} cop{'y' if t.copies == 1 else 'ies'} per sentence")
    if t.types:
        parts.append(f"only sentences with {', '.join(t.types)}")
    return " · ".join(parts)


def _option_words(name: str, help_text: str) -> str:
    """The words before a help text's colon when they name the option, else the name with spaces."""
    head, sep, _ = help_text.partition(":")
    if (sep and len(head) <= 40) or (not sep and len(help_text) <= 30):
        return head[0].upper() + head[1:]
    return _humanise(name)


def _humanise(name: str) -> str:
    words = name.replace("_", " ")
    return words[0].upper() + words[1:] if words else words


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
