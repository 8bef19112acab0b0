"""``Mitigations``: the typed, validated mitigation settings stored with every run (torch-free).

Sections, each with defaults that change nothing, so a config without mitigations trains exactly
as before (old stored configs, which have no ``mitigations`` key, load with the defaults):

- ``resample`` — which train items each epoch draws (``SAMPLERS``);
- ``loss`` — the training criterion and its class weighting (``LOSSES``, ``CLASS_WEIGHTS``);
- ``augment`` — augmentations of training batches (``IMAGE_AUGMENTATIONS``, ``TEXT_AUGMENTATIONS``);
- ``token_augment`` — tag-preserving augmentation of token (NER) sentences (``TOKEN_AUGMENTATIONS``):
  each epoch adds augmented copies of the drawn train sentences (``core.tokens.augment``);
- ``clean`` — train items dropped or relabelled for this run only (no new version): the Diagnose
  detector's suspects, items below a label-quality threshold, or the Diagnose page's plan;
- ``semi`` — the unlabelled pool put to use: pseudo-labels from the model, or labels spread over
  the embedding's neighbour graph;
- ``decision`` — how answers are made from the trained model's probabilities: per-class
  thresholds moved on val, and abstaining below a confidence.

Each registry maps a name to one line of help (the Train page shows it). Pages import this module:
it must not import torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

#: name → help. "weighted" samplers draw with replacement by class weight and suit any fine-tune
#: mode; "index" samplers are imbalanced-learn's, on item indices; "feature" samplers are
#: imbalanced-learn's on feature vectors (linear probe and tabular runs only: they make new points).
SAMPLERS: dict[str, str] = {
    "none": "every train item once per epoch, in a random order",
    "class_balanced": "draw every class equally often (with replacement)",
    "sqrt": "draw classes in proportion to the square root of their size",
    "importance": "draw items in proportion to their importance weight for a shifted target (a version weighted on the Shift page)",
    "random_over": "repeat items of small classes up to the target counts (imbalanced-learn RandomOverSampler)",
    "random_under": "leave out items of large classes down to the target counts (RandomUnderSampler)",
    "smote": "new points between neighbours of small classes (SMOTE)",
    "borderline_smote": "SMOTE near the class borders (BorderlineSMOTE)",
    "adasyn": "SMOTE where a class is hardest to learn (ADASYN)",
    "svm_smote": "SMOTE guided by an SVM's support vectors (SVMSMOTE)",
    "near_miss": "keep the large-class items nearest the small classes (NearMiss)",
    "tomek": "drop large-class items in Tomek links (TomekLinks)",
    "enn": "drop items whose neighbours disagree with them (EditedNearestNeighbours)",
    "smote_enn": "SMOTE, then clean with ENN (SMOTEENN)",
    "smote_tomek": "SMOTE, then drop Tomek links (SMOTETomek)",
}
NO_WEIGHTS = (
    "the importance sampler needs importance weights: weigh this dataset's train items on the Shift page (a new version), "
    "or pick another sampler"
)
WEIGHTED_SAMPLERS = ("class_balanced", "sqrt")
INDEX_SAMPLERS = ("random_over", "random_under")
FEATURE_SAMPLERS = ("smote", "borderline_smote", "adasyn", "svm_smote", "near_miss", "tomek", "enn", "smote_enn", "smote_tomek")
OVER_SAMPLERS = ("random_over", "smote", "borderline_smote", "adasyn", "svm_smote")  # target counts ≥ current
UNDER_SAMPLERS = ("random_under", "near_miss")  # target counts ≤ current
ITEM_SAMPLERS = (*WEIGHTED_SAMPLERS, *INDEX_SAMPLERS, "importance")  # draw items anew each epoch: the ones deferred re-sampling can defer
NEIGHBOUR_SAMPLERS = ("smote", "borderline_smote", "adasyn", "svm_smote", "smote_enn", "smote_tomek", "near_miss", "enn")

LOSSES: dict[str, str] = {
    "cross_entropy": "plain cross-entropy",
    "focal": "focal loss: down-weights easy items by (1 − p)^γ",
    "logit_adjusted": "logit-adjusted loss: adds τ·log(class prior) to the logits while training",
    "balanced_softmax": "balanced softmax: adds log(class count) to the logits while training",
    "ldam": "LDAM: larger margins for smaller classes (best with deferred re-weighting)",
}
CLASS_WEIGHTS: dict[str, str] = {
    "none": "every item counts the same",
    "inverse": "weight ∝ 1 / class count",
    "effective_number": "weight ∝ 1 / effective number (1 − β^n) / (1 − β) (Cui et al. 2019)",
}
IMAGE_AUGMENTATIONS: dict[str, str] = {
    "flip": "mirror left–right (half of the items)",
    "rotate": "rotate by up to ±30° × strength",
    "resized_crop": "crop a random part (down to 1 − 0.6 × strength of the area) and resize it back",
    "translate": "shift by up to 20 % × strength of the size",
    "color_jitter": "vary brightness and contrast (and saturation and hue on RGB) by up to 50 % × strength",
    "blur": "Gaussian blur, σ up to 2 × strength",
    "noise": "Gaussian pixel noise, σ = 10 % × strength",
    "randaugment": "RandAugment: two random operations at magnitude 30 × strength",
    "trivialaugment": "TrivialAugment: one random operation at a random magnitude",
    "erasing": "erase a random rectangle of up to 33 % × strength of the image",
    "mixup": "blend pairs of images and their labels, λ ~ Beta(α, α) with α = strength (whole batch)",
    "cutmix": "paste a patch of one image into another, labels by area, α = strength (whole batch)",
}
# per-item augmentations (each item its own random draw), then the batch-level ones
BATCH_AUGMENTATIONS = ("mixup", "cutmix")
TEXT_AUGMENTATIONS: dict[str, str] = {
    "synonym": "replace random words by a WordNet synonym (needs the WordNet asset)",
    "back_translate": "translate to Spanish and back with Apertium, half of the texts (needs apertium-eng-spa)",
    "swap": "swap random pairs of words",
    "delete": "drop random words (never all of them)",
    "insert": "insert synonyms of random words of the text at random places (the words themselves without WordNet)",
    "char_noise": "typos: swap, drop or double random letters",
}

#: token (NER) augmentations, name → help, in the order a copy applies them (``core.tokens.augment``)
TOKEN_AUGMENTATIONS: dict[str, str] = {
    "mention": "each entity mention, with probability p, becomes another train mention of its type (by train count)",
    "lwtr": "each token, with probability p, becomes another train token of the same tag (label-wise token replacement)",
    "synonym": "each token, with probability p, becomes a WordNet synonym; a span keeps its type (needs the WordNet asset)",
    "shuffle": "each segment of one label (a mention, a run of O), with probability p, has its tokens shuffled; tags stay in place",
}
MAX_TOKEN_COPIES = 10  # ``core.tokens.augment.MAX_COPIES``


@dataclass
class Resampling:
    """Which train items each epoch draws."""

    method: str = "none"  # a SAMPLERS key
    k_neighbors: int = 5  # neighbours for the SMOTE family, NearMiss and ENN
    # class name → items of that class per epoch after resampling; empty: the over-samplers raise
    # every class to the largest, the under-samplers lower every class to the smallest
    targets: dict[str, int] = field(default_factory=dict)
    # two-stage training (Kang et al. 2020): the first ``resample_from`` share of the epochs draws
    # every item once (representation learning), the sampler applies from then on (deferred re-sampling)
    resample_from: float = 0.0
    # classifier re-training (cRT): from that epoch the classifier head is re-initialised and trains alone
    retrain_head: bool = False


@dataclass
class LossSettings:
    """The training criterion. Class weights and the logit shifts use the train split's class counts."""

    name: str = "cross_entropy"  # a LOSSES key
    class_weights: str = "none"  # a CLASS_WEIGHTS key
    beta: float = 0.999  # effective-number β, in [0, 1)
    gamma: float = 2.0  # focal γ ≥ 0 (0 is cross-entropy)
    label_smoothing: float = 0.0  # share of each target spread over all classes, in [0, 1)
    tau: float = 1.0  # logit adjustment's τ ≥ 0
    max_margin: float = 0.5  # LDAM: the smallest class's margin (margins ∝ n^-1/4)
    scale: float = 1.0  # LDAM: logits are multiplied by this (30 in the paper, with a cosine classifier)
    reweight_from: float = 0.0  # deferred re-weighting: share of the epochs before class weights apply, in [0, 1)
    # weight balancing (Alshammari et al. 2022): AdamW's decoupled weight decay for this run, in place of
    # the run's own (0: the run's own); a strong decay keeps the common classes' weights from outgrowing the rare ones'
    weight_decay: float = 0.0


@dataclass
class Augmentation:
    """Augmentations of training batches; evaluation never sees them."""

    image: list[str] = field(default_factory=list)  # IMAGE_AUGMENTATIONS, applied in this order
    text: list[str] = field(default_factory=list)  # TEXT_AUGMENTATIONS, applied in this order
    strength: float = 0.5  # 0..1: how far each augmentation goes (angle, shift, jitter, …)
    classes: list[str] = field(default_factory=list)  # augment only these classes (empty: all)
    multiplier: int = 1  # the augmented classes are drawn this many times per epoch, each copy augmented anew


@dataclass
class TokenAugmentation:
    """Tag-preserving augmentation of token (NER) sentences (Dai & Adel 2020): each epoch, every
    drawn train sentence holding one of ``types`` (empty: every drawn sentence) gets ``copies``
    augmented copies besides itself, each made anew by the operations whose probability is above 0.
    Validation and test sentences are never augmented."""

    mention: float = 0.0  # mention replacement p, per mention
    lwtr: float = 0.0  # label-wise token replacement p, per token
    synonym: float = 0.0  # synonym replacement p, per token
    shuffle: float = 0.0  # shuffle within segments p, per segment
    copies: int = 1  # copies per chosen sentence and epoch, 1..MAX_TOKEN_COPIES
    types: list[str] = field(default_factory=list)  # entity types a sentence must hold to be copied (empty: all)

    @property
    def active(self) -> bool:
        return any(getattr(self, name) > 0 for name in TOKEN_AUGMENTATIONS)


CLEAN_ACTIONS: dict[str, str] = {
    "none": "train on every item as labelled",
    "drop": "leave the chosen train items out of this run",
    "relabel": "train the chosen items with the detector's suggested label (items whose suggestion has no train class are left out)",
}
CLEAN_SOURCES: dict[str, str] = {
    "detector": "the Diagnose detector's suspected label errors",
    "threshold": "items whose label quality (0–1, from the detector) is below the threshold",
    "plan": "the Diagnose page's cleaning plan for this version (its drop and relabel decisions)",
}


@dataclass
class Cleaning:
    """Train items dropped or relabelled for this run only; val and test are never changed."""

    action: str = "none"  # a CLEAN_ACTIONS key
    source: str = "detector"  # a CLEAN_SOURCES key
    threshold: float = 0.2  # with source "threshold": label quality below this
    # with source "plan": the plan's decisions by item (row of the dataset version)
    plan_drop: list[int] = field(default_factory=list)
    plan_relabel: dict[str, int] = field(default_factory=dict)  # item (as text: JSON keys) → class index


SEMI_METHODS: dict[str, str] = {
    "none": "the unlabelled pool is not used",
    "pseudo_label": "self-training: during training the model labels the pool items it is sure of (≥ threshold), which then train too",
    "label_spreading": "before training, labels spread from the labelled train items to the pool over the embeddings' neighbour graph",
}


@dataclass
class SemiSupervision:
    """Labels for the unlabelled pool (rows uploaded with an empty label)."""

    method: str = "none"  # a SEMI_METHODS key
    threshold: float = 0.9  # confidence a pool item needs to join train, in (0, 1]
    rounds: int = 1  # pseudo-labelling: times the pool is labelled, at evenly spaced epoch ends
    k_neighbors: int = 7  # label spreading: neighbours in the graph


@dataclass
class Decision:
    """How the trained model answers; the model itself does not change. Threshold moving and
    abstention are fitted or applied after training and reported beside the plain answers; the "O"
    offset of a token run is fitted on val at every evaluation and is part of the run's answers
    (``core.tokens.decide``)."""

    threshold_moving: bool = False  # per-class logit offsets fitted on val for the best macro-F1 (after temperature scaling)
    abstain_below: float = 0.0  # answer only at confidence ≥ this (risk–coverage operating point); 0 = always answer
    o_offset: bool = False  # token runs: raise the "O" logit by the offset fitted on val (fewer invented entities)
    logit_adjustment: bool = False  # post-hoc logit adjustment: argmax z − τ·log(train prior), τ chosen on val (Menon et al. 2021)


ADVERSARIAL: dict[str, str] = {
    "none": "no adversarial training",
    "fgsm": "FGSM with a random start (one attack step per batch: fast adversarial training, Wong et al. 2020)",
    "pgd": "PGD-k: k attack steps per batch (Madry et al. 2018; slower, stronger)",
}


@dataclass
class Adversarial:
    """Adversarial training (images and tables): each batch, or a share of it, is replaced by its
    L∞ attack on the model being trained (``core.robust.attack.Adversary``)."""

    method: str = "none"
    eps: float = 0.1  # the budget: pixels in [0, 1]; a table's standardised columns in standard deviations
    steps: int = 3  # PGD's attack steps per batch
    share: float = 1.0  # the share of each batch attacked (the rest trains clean)


SECTIONS: dict[str, type] = {
    "resample": Resampling,
    "loss": LossSettings,
    "augment": Augmentation,
    "token_augment": TokenAugmentation,
    "clean": Cleaning,
    "semi": SemiSupervision,
    "decision": Decision,
    "adversarial": Adversarial,
}


@dataclass
class Mitigations:
    """What a run does about incomplete data. The defaults change nothing."""

    resample: Resampling = field(default_factory=Resampling)
    loss: LossSettings = field(default_factory=LossSettings)
    augment: Augmentation = field(default_factory=Augmentation)
    token_augment: TokenAugmentation = field(default_factory=TokenAugmentation)
    clean: Cleaning = field(default_factory=Cleaning)
    semi: SemiSupervision = field(default_factory=SemiSupervision)
    decision: Decision = field(default_factory=Decision)
    adversarial: Adversarial = field(default_factory=Adversarial)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> tuple[Mitigations, dict[str, Any]]:
        """(settings, unknown keys): keys this Gapscope does not know (a newer one wrote them) are
        returned apart, so the caller can keep them rather than lose them."""
        data = dict(data or {})
        sections: dict[str, Any] = {}
        unknown: dict[str, Any] = {}
        for key, value in data.items():
            kind = SECTIONS.get(key)
            if kind is None or not isinstance(value, dict):
                unknown[key] = value
                continue
            names = {f.name for f in dataclasses.fields(kind)}
            sections[key] = kind(**{k: v for k, v in value.items() if k in names})
            rest = {k: v for k, v in value.items() if k not in names}
            if rest:
                unknown[key] = rest
        return cls(**sections), unknown

    @property
    def active(self) -> list[str]:
        """The settings that differ from the defaults, in a few words (run names, tables)."""
        out = []
        if self.resample.method != "none":
            out.append(
                f"resample={self.resample.method}" + (f" from {self.resample.resample_from:.0%}" if self.resample.resample_from else "")
            )
        if self.resample.retrain_head:
            out.append("cRT")
        if self.loss.name != "cross_entropy":
            out.append(f"loss={self.loss.name}")
        if self.loss.class_weights != "none":
            out.append(f"weights={self.loss.class_weights}")
        if self.loss.label_smoothing:
            out.append(f"smoothing={self.loss.label_smoothing:g}")
        if self.loss.weight_decay:
            out.append(f"weight_decay={self.loss.weight_decay:g}")
        augs = self.augment.image + self.augment.text
        if augs:
            out.append("augment=" + "+".join(augs))
        t = self.token_augment
        if t.active:
            ops = "+".join(f"{name} {getattr(t, name):g}" for name in TOKEN_AUGMENTATIONS if getattr(t, name) > 0)
            out.append(f"token_augment={ops}" + (f" ×{t.copies}" if t.copies > 1 else "") + (f" [{','.join(t.types)}]" if t.types else ""))
        if self.clean.action != "none":
            what = f"quality<{self.clean.threshold:g}" if self.clean.source == "threshold" else self.clean.source
            out.append(f"clean={self.clean.action} {what}")
        if self.semi.method != "none":
            out.append(f"{self.semi.method}≥{self.semi.threshold:g}")
        if self.decision.threshold_moving:
            out.append("threshold moving")
        if self.decision.abstain_below:
            out.append(f"abstain<{self.decision.abstain_below:g}")
        if self.decision.logit_adjustment:
            out.append("post-hoc logit adjustment")
        adv = self.adversarial
        if adv.method != "none":
            out.append(
                f"adversarial={adv.method}{adv.steps if adv.method == 'pgd' else ''} ε={adv.eps:g}"
                + (f" ×{adv.share:g}" if adv.share < 1 else "")
            )
        return out

    def validate(self) -> Mitigations:
        """Raise ``ValueError`` saying what to change when a setting cannot work; return self.

        Settings that depend on the data (target counts, k against the smallest class, a text
        augmentation on images) are checked by ``core.mitigate.checks`` once the dataset is known.
        """
        r, loss, a = self.resample, self.loss, self.augment
        _choice("mitigations.resample.method", r.method, SAMPLERS)
        _whole("mitigations.resample.k_neighbors", r.k_neighbors, 1, 100)
        _number("mitigations.resample.resample_from", r.resample_from, 0.0, 1.0, hi_open=True)
        if not isinstance(r.retrain_head, bool):
            raise ValueError(f"mitigations.resample.retrain_head must be true or false; got {r.retrain_head!r}.")
        if r.retrain_head and r.resample_from == 0:
            raise ValueError(
                "classifier re-training (mitigations.resample.retrain_head) starts a second stage: set resample_from above 0 "
                "(the share of the epochs that learn the features first; 0.5–0.8 is usual)."
            )
        if not isinstance(r.targets, dict) or not all(isinstance(k, str) for k in r.targets):
            raise ValueError(f"mitigations.resample.targets must map class names to counts; got {r.targets!r}.")
        for name, count in r.targets.items():
            _whole(f"mitigations.resample.targets[{name!r}]", count, 1, 10_000_000)
        _choice("mitigations.loss.name", loss.name, LOSSES)
        _choice("mitigations.loss.class_weights", loss.class_weights, CLASS_WEIGHTS)
        _number("mitigations.loss.beta", loss.beta, 0.0, 1.0, hi_open=True)
        _number("mitigations.loss.gamma", loss.gamma, 0.0, 10.0)
        _number("mitigations.loss.label_smoothing", loss.label_smoothing, 0.0, 1.0, hi_open=True)
        _number("mitigations.loss.tau", loss.tau, 0.0, 10.0)
        _number("mitigations.loss.max_margin", loss.max_margin, 0.0, 10.0)
        _number("mitigations.loss.scale", loss.scale, 0.0, 100.0, lo_open=True)
        _number("mitigations.loss.reweight_from", loss.reweight_from, 0.0, 1.0, hi_open=True)
        _number("mitigations.loss.weight_decay", loss.weight_decay, 0.0, 10.0)
        for kind, names, registry in (("image", a.image, IMAGE_AUGMENTATIONS), ("text", a.text, TEXT_AUGMENTATIONS)):
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"mitigations.augment.{kind} must be a list of augmentation names; got {names!r}.")
            unknown = [n for n in names if n not in registry]
            if unknown:
                raise ValueError(f"unknown {kind} augmentation(s) {unknown}; available: {', '.join(registry) or 'none yet'}.")
        _number("mitigations.augment.strength", a.strength, 0.0, 1.0)
        if not isinstance(a.classes, list) or not all(isinstance(c, str) for c in a.classes):
            raise ValueError(f"mitigations.augment.classes must be a list of class names; got {a.classes!r}.")
        _whole("mitigations.augment.multiplier", a.multiplier, 1, 100)
        _token_augmentation(self.token_augment)
        c = self.clean
        _choice("mitigations.clean.action", c.action, CLEAN_ACTIONS)
        _choice("mitigations.clean.source", c.source, CLEAN_SOURCES)
        _number("mitigations.clean.threshold", c.threshold, 0.0, 1.0)
        if not isinstance(c.plan_drop, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in c.plan_drop):
            raise ValueError("mitigations.clean.plan_drop must be a list of item numbers (≥ 0).")
        if not isinstance(c.plan_relabel, dict) or not all(
            str(k).isdigit() and isinstance(v, int) and v >= 0 for k, v in c.plan_relabel.items()
        ):
            raise ValueError("mitigations.clean.plan_relabel must map item numbers to class indices.")
        _choice("mitigations.semi.method", self.semi.method, SEMI_METHODS)
        _number("mitigations.semi.threshold", self.semi.threshold, 0.0, 1.0, lo_open=True)
        _whole("mitigations.semi.rounds", self.semi.rounds, 1, 20)
        _whole("mitigations.semi.k_neighbors", self.semi.k_neighbors, 1, 100)
        if not isinstance(self.decision.threshold_moving, bool):
            raise ValueError(f"mitigations.decision.threshold_moving must be true or false; got {self.decision.threshold_moving!r}.")
        _number("mitigations.decision.abstain_below", self.decision.abstain_below, 0.0, 1.0, hi_open=True)
        if not isinstance(self.decision.logit_adjustment, bool):
            raise ValueError(f"mitigations.decision.logit_adjustment must be true or false; got {self.decision.logit_adjustment!r}.")
        if not isinstance(self.decision.o_offset, bool):
            raise ValueError(f"mitigations.decision.o_offset must be true or false; got {self.decision.o_offset!r}.")
        adv = self.adversarial
        _choice("mitigations.adversarial.method", adv.method, ADVERSARIAL)
        _number("mitigations.adversarial.eps", adv.eps, 0.0, 4.0, lo_open=True)
        _whole("mitigations.adversarial.steps", adv.steps, 1, 20)
        _number("mitigations.adversarial.share", adv.share, 0.0, 1.0, lo_open=True)
        return self


def _token_augmentation(t: TokenAugmentation) -> None:
    for name in TOKEN_AUGMENTATIONS:
        _number(f"mitigations.token_augment.{name}", getattr(t, name), 0.0, 1.0)
    _whole("mitigations.token_augment.copies", t.copies, 1, MAX_TOKEN_COPIES)
    if not isinstance(t.types, list) or not all(isinstance(k, str) and k for k in t.types):
        raise ValueError(f"mitigations.token_augment.types must be a list of entity type names; got {t.types!r}.")


def _choice(name: str, value: Any, registry: dict[str, str]) -> None:
    if value not in registry:
        raise ValueError(f"{name} must be one of {', '.join(registry)}; got {value!r}.")


def _whole(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number between {lo} and {hi:,}; got {value!r}.")


def _number(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(f"{name} must be a number in {left}{lo:g}, {hi:g}{right}; got {value!r}.")
