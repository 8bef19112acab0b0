"""The Train page's mitigation widgets as one table: each widget's session key, the ``Mitigations``
field it shows (``section.name``), its kind, label, range or options, help, where it sits (row and
column of its section's tab) and when it is drawn. Both directions go through the table:

    values = widget_values(preset("long_tail", modality="image"))   # Mitigations → widget values
    m = from_widgets(st.session_state, modality="image", finetune="full")   # widget values → Mitigations

A field that is not drawn keeps its last value, except where ``hidden_default`` says the run gets
the default instead (class weights' deferred re-weighting without class weights, image
augmentations on text, target counts for a sampler that takes none), and except a field not
``offered`` for the data at all, which always reads as its default: token (NER) data gets
resampling, loss and token augmentation only (``TOKEN_SECTIONS``; the token augmentation is drawn
in the Augmentation tab), every other modality everything but the token augmentation. Torch-free:
the Train page imports it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.mitigate.settings import (
    ADVERSARIAL,
    CLASS_WEIGHTS,
    CLEAN_ACTIONS,
    CLEAN_SOURCES,
    IMAGE_AUGMENTATIONS,
    ITEM_SAMPLERS,
    LOSSES,
    NEIGHBOUR_SAMPLERS,
    OVER_SAMPLERS,
    SAMPLERS,
    SECTIONS,
    SEMI_METHODS,
    TEXT_AUGMENTATIONS,
    TOKEN_AUGMENTATIONS,
    UNDER_SAMPLERS,
    Mitigations,
)

Kind = Literal["select", "multiselect", "slider", "number", "toggle", "targets"]
Values = Mapping[str, Any]

MODALITY, FINETUNE = "modality", "finetune"  # what ``when`` reads besides the widget values
TARGETS = "tr_rs_targets"  # class name → target count: a table, kept as plain session state

#: tab → its title, in the order the tabs are drawn; a tab is named by the section it shows (the
#: token augmentation is drawn in the Augmentation tab: ``TAB_OF``)
TABS = {"resample": "Resampling", "loss": "Loss", "augment": "Augmentation", "clean": "Cleaning", "semi": "Unlabelled pool", "decision": "Decision", "adversarial": "Robustness"}  # fmt: skip
TAB_OF = {"token_augment": "augment"}  # a section drawn in another section's tab
#: what applies to token (NER) data: the sentence sampler, the loss over tags, tag-preserving augmentation
TOKEN_SECTIONS = ("resample", "loss", "token_augment")
#: the decisions of token data alone (drawn in the Decision tab; no other data gets them)
TOKEN_DECISIONS = ("decision.o_offset",)
#: (tab, row) → relative column widths; a row not named here is one full-width column
COLUMNS: dict[tuple[str, int], list[int]] = {("resample", 1): [1, 1], ("loss", 0): [1, 1], ("loss", 1): [1, 1, 1], ("augment", 1): [2, 3, 1], ("augment", 2): [1, 1, 1, 1], ("augment", 3): [1, 3], ("clean", 0): [1, 1], ("semi", 1): [1, 1], ("adversarial", 1): [2, 1, 2], ("decision", 0): [1, 1]}  # fmt: skip


@dataclass(frozen=True)
class Field:
    key: str  # the widget's session-state key (``tr_``: kept when leaving the page, ``ui.state``)
    path: str  # "section.name" of ``Mitigations``
    kind: Kind
    label: str
    options: Mapping[str, str] | None = None  # select / multiselect: name → help; None: the page's (class names)
    lo: float | None = None  # slider / number range
    hi: float | None = None
    step: float | None = None
    fmt: str | None = None  # number format ("%.5f")
    help: str = ""
    at: tuple[int, int] = (0, 0)  # row and column in the section's tab
    when: Callable[[Values], bool] | None = None  # drawn only when this holds (None: always)
    hidden_default: bool = False  # not drawn: the run gets the default, not the last value
    disabled: Callable[[Values], bool] | None = None

    @property
    def section(self) -> str:
        return self.path.split(".")[0]

    @property
    def name(self) -> str:
        return self.path.split(".")[1]

    @property
    def tab(self) -> str:
        """The tab the field is drawn in (a key of ``TABS``)."""
        return TAB_OF.get(self.section, self.section)


def _is(key: str, *values: str) -> Callable[[Values], bool]:
    return lambda v: v[key] in values


def _not(key: str, *values: str) -> Callable[[Values], bool]:
    return lambda v: v[key] not in values


_images = lambda v: v[MODALITY] == "image" and v[FINETUNE] != "linear_probe"
_texts = lambda v: v[MODALITY] == "text" and v[FINETUNE] != "linear_probe"
_augments = lambda v: v[MODALITY] in ("image", "text") and v[FINETUNE] != "linear_probe"
_tokens = lambda v: v[MODALITY] == "tokens"
_attackable = lambda v: v[MODALITY] in ("image", "tabular") and v[FINETUNE] != "linear_probe"
_attacking = lambda v: _attackable(v) and v["tr_adv_method"] != "none"
_by_threshold = lambda v: v["tr_clean_action"] != "none" and v["tr_clean_source"] == "threshold"

# fmt: off
FIELDS: tuple[Field, ...] = (
    Field("tr_rs_method", "resample.method", "select", "Sampler", SAMPLERS, help="Which train items each epoch draws. The SMOTE family makes new feature vectors, so it is offered for linear probes and tables."),
    Field("tr_rs_k", "resample.k_neighbors", "number", "k neighbours", lo=1, hi=100, at=(1, 0), when=_is("tr_rs_method", *NEIGHBOUR_SAMPLERS),
          help="Neighbours within a class; must be below the smallest class's size."),
    Field("tr_rs_from", "resample.resample_from", "slider", "Re-sample from (share of the run)", lo=0.0, hi=0.9, step=0.1, at=(1, 0),
          when=_is("tr_rs_method", *ITEM_SAMPLERS), hidden_default=True,
          help="Two-stage training: before this share of the epochs every item is drawn once (the features are learned on the data as it is); "
          "the sampler applies from then on (deferred re-sampling; 0 = from the start)."),
    Field("tr_rs_crt", "resample.retrain_head", "toggle", "Re-train the classifier alone then (cRT)", at=(1, 1),
          when=lambda v: v["tr_rs_method"] in ITEM_SAMPLERS and v[FINETUNE] != "linear_probe" and v[MODALITY] != "tokens", hidden_default=True,
          help="At the second stage the classifier head is re-initialised and trains alone on the re-sampled draws, every other weight frozen "
          "(classifier re-training, Kang et al. 2020). Needs 're-sample from' above 0."),
    Field(TARGETS, "resample.targets", "targets", "Target items per class (empty: over-samplers raise every class to the largest, under-samplers lower it to the smallest).",
          at=(2, 0), when=_is("tr_rs_method", *OVER_SAMPLERS, *UNDER_SAMPLERS), hidden_default=True, help="leave empty to keep the default"),

    Field("tr_loss_name", "loss.name", "select", "Loss", LOSSES),
    Field("tr_loss_weights", "loss.class_weights", "select", "Class weights", CLASS_WEIGHTS, at=(0, 1)),
    Field("tr_loss_smoothing", "loss.label_smoothing", "slider", "Label smoothing ε", lo=0.0, hi=0.3, step=0.01, at=(1, 0),
          help="Share of each target spread over every class: softer, better-calibrated confidence."),
    Field("tr_loss_drw", "loss.reweight_from", "slider", "Re-weight from (share of epochs)", lo=0.0, hi=0.9, step=0.1, at=(1, 1),
          when=_not("tr_loss_weights", "none"), hidden_default=True,
          help="Deferred re-weighting: class weights apply only after this share of the epochs (LDAM-DRW uses 0.8)."),
    Field("tr_loss_wd", "loss.weight_decay", "slider", "Weight balancing: weight decay (0 = the run's own)", lo=0.0, hi=3.0, step=0.05, at=(2, 0),
          help="AdamW's weight decay for this run in place of the run's own (0.01). A strong decay keeps the common classes' classifier "
          "weights from outgrowing the rare ones' (Alshammari et al. 2022); with balanced softmax it is the long-tail preset."),
    Field("tr_loss_beta", "loss.beta", "number", "β", lo=0.0, hi=0.99999, step=0.0001, fmt="%.5f", at=(1, 2), when=_is("tr_loss_weights", "effective_number"),
          help="Effective number (1 − βⁿ)/(1 − β): 0.999 to 0.9999 in the paper."),
    Field("tr_loss_gamma", "loss.gamma", "slider", "Focal γ", lo=0.0, hi=5.0, step=0.5, at=(1, 1), when=_is("tr_loss_name", "focal"),
          help="0 is cross-entropy; 2 is usual."),
    Field("tr_loss_tau", "loss.tau", "slider", "τ", lo=0.0, hi=3.0, step=0.1, at=(1, 1), when=_is("tr_loss_name", "logit_adjusted"),
          help="How strongly the class prior shifts the logits; 1 is usual."),
    Field("tr_loss_margin", "loss.max_margin", "slider", "Largest margin", lo=0.1, hi=2.0, step=0.1, at=(1, 1), when=_is("tr_loss_name", "ldam"),
          help="The rarest class's margin."),
    Field("tr_loss_scale", "loss.scale", "number", "Logit scale s", lo=0.1, hi=100.0, step=0.5, at=(1, 2), when=_is("tr_loss_name", "ldam"),
          help="30 in the paper (with a cosine classifier); 1 for an ordinary head."),

    Field("tr_aug_image", "augment.image", "multiselect", "Augmentations (applied in this order)", IMAGE_AUGMENTATIONS, when=_images, hidden_default=True),
    Field("tr_aug_text", "augment.text", "multiselect", "Augmentations (applied in this order)", TEXT_AUGMENTATIONS, when=_texts, hidden_default=True),
    Field("tr_aug_strength", "augment.strength", "slider", "Strength", lo=0.0, hi=1.0, step=0.05, at=(1, 0), when=_augments,
          help="How far each augmentation goes."),
    Field("tr_aug_classes", "augment.classes", "multiselect", "Only these classes (empty: all)", at=(1, 1), when=_augments),
    Field("tr_aug_multiplier", "augment.multiplier", "number", "× per epoch", lo=1, hi=100, at=(1, 2), when=_augments,
          help="The augmented classes are drawn this many times per epoch, each copy augmented anew."),


    Field("tr_tok_mention", "token_augment.mention", "slider", "Mention replacement", lo=0.0, hi=1.0, step=0.05, at=(2, 0), when=_tokens,
          hidden_default=True, help=f"p per mention: {TOKEN_AUGMENTATIONS['mention']}."),
    Field("tr_tok_lwtr", "token_augment.lwtr", "slider", "Label-wise token replacement", lo=0.0, hi=1.0, step=0.05, at=(2, 1), when=_tokens,
          hidden_default=True, help=f"p per token: {TOKEN_AUGMENTATIONS['lwtr']}."),
    Field("tr_tok_synonym", "token_augment.synonym", "slider", "Synonym replacement", lo=0.0, hi=1.0, step=0.05, at=(2, 2), when=_tokens,
          hidden_default=True, help=f"p per token: {TOKEN_AUGMENTATIONS['synonym']}."),
    Field("tr_tok_shuffle", "token_augment.shuffle", "slider", "Shuffle within segments", lo=0.0, hi=1.0, step=0.05, at=(2, 3), when=_tokens,
          hidden_default=True, help=f"p per segment: {TOKEN_AUGMENTATIONS['shuffle']}."),
    Field("tr_tok_copies", "token_augment.copies", "number", "Copies per sentence", lo=1, hi=10, at=(3, 0), when=_tokens, hidden_default=True,
          help="Each epoch, every drawn train sentence that qualifies gets this many augmented copies besides itself, each made anew."),
    Field("tr_tok_types", "token_augment.types", "multiselect", "Only sentences holding these entity types (empty: all)", at=(3, 1),
          when=_tokens, hidden_default=True),

    Field("tr_clean_action", "clean.action", "select", "In-run cleaning", CLEAN_ACTIONS),
    Field("tr_clean_source", "clean.source", "select", "Which items", CLEAN_SOURCES, at=(0, 1), disabled=_is("tr_clean_action", "none")),
    Field("tr_clean_threshold", "clean.threshold", "slider", "Label quality below", lo=0.0, hi=1.0, step=0.05, at=(1, 0), when=_by_threshold,
          help="The detector's score: the blend of the probe's and the neighbours' belief in the given label."),

    Field("tr_semi_method", "semi.method", "select", "Use the pool", SEMI_METHODS),
    Field("tr_semi_threshold", "semi.threshold", "slider", "Confidence to join train", lo=0.5, hi=1.0, step=0.01, at=(1, 0), when=_not("tr_semi_method", "none"),
          help="A pool item trains with its new label only when that label is at least this sure."),
    Field("tr_semi_rounds", "semi.rounds", "number", "Rounds", lo=1, hi=20, at=(1, 1), when=_is("tr_semi_method", "pseudo_label"),
          help="Times the model labels the pool, at evenly spaced epoch ends; each round replaces the last."),
    Field("tr_semi_k", "semi.k_neighbors", "number", "k neighbours", lo=1, hi=100, at=(1, 1), when=_is("tr_semi_method", "label_spreading"),
          help="Neighbours in the graph labels spread over."),

    Field("tr_dec_tm", "decision.threshold_moving", "toggle", "Threshold moving",
          help="After training, per-class offsets are fitted on val for the best macro-F1 and reported beside the plain answers: rare classes get predicted more often."),
    Field("tr_dec_la", "decision.logit_adjustment", "toggle", "Post-hoc logit adjustment", at=(0, 1),
          help="After training, answers are also made by argmax of the logits minus τ·log(train share of the class), τ from 0 to 2 "
          "chosen on val for the best macro-F1 (Menon et al. 2021), and reported beside the plain answers: rare classes get their due."),
    Field("tr_dec_ooff", "decision.o_offset", "toggle", "Fewer invented entities (O offset fitted on val)", at=(2, 0),
          help="At every evaluation the logit of O is raised by the largest offset (0 to 4) that keeps val entity micro-F1 within 0.01 "
          "of its best: a span is named only where the model is sure of it. Types keep their order among themselves."),
    Field("tr_dec_abstain", "decision.abstain_below", "slider", "Abstain below confidence (0 = always answer)", lo=0.0, hi=0.99, step=0.01, at=(1, 0),
          help="Each evaluation also reports the share answered and their error rate when answers below this confidence are withheld; "
          "the Runs page draws the risk–coverage curve with this point."),

    Field("tr_adv_method", "adversarial.method", "select", "Adversarial training", ADVERSARIAL, when=_attackable, hidden_default=True,
          help="Each batch is attacked (L∞) on the model being trained, which then learns from the attacked items. "
          "Check the result with the Runs page's robustness evaluation."),
    Field("tr_adv_eps", "adversarial.eps", "slider", "ε (L∞ budget)", lo=0.005, hi=1.0, step=0.005, fmt="%.3f", at=(1, 0), when=_attacking,
          hidden_default=True, help="Pixels run from 0 to 1: 8/255 ≈ 0.031 is the usual budget on photos, 0.1 on MNIST-like images; "
          "a table's standardised columns take it in standard deviations."),
    Field("tr_adv_steps", "adversarial.steps", "number", "PGD steps", lo=1, hi=20, at=(1, 1), when=lambda v: _attacking(v) and v["tr_adv_method"] == "pgd",
          hidden_default=True, help="Attack steps per batch: each costs a forward and a backward pass."),
    Field("tr_adv_share", "adversarial.share", "slider", "Share of each batch attacked", lo=0.1, hi=1.0, step=0.1, at=(1, 2), when=_attacking,
          hidden_default=True, help="The rest of the batch trains clean: less clean accuracy lost, less robustness gained."),
)
# fmt: on
BY_KEY = {f.key: f for f in FIELDS}


def _value(m: Mitigations, path: str) -> Any:
    section, name = path.split(".")
    return getattr(getattr(m, section), name)


def section_fields(tab: str) -> list[Field]:
    """The fields drawn in ``tab`` (a key of ``TABS``), in drawing order."""
    return [f for f in FIELDS if f.tab == tab]


def offered(f: Field, modality: str) -> bool:
    """Whether ``f`` applies to data of ``modality`` at all: token data gets ``TOKEN_SECTIONS``
    only, and only token data gets the token augmentation."""
    if modality == "tokens":
        return f.section in TOKEN_SECTIONS or f.path in TOKEN_DECISIONS
    if f.section == "adversarial":
        return modality in ("image", "tabular")
    return f.section != "token_augment" and f.path not in TOKEN_DECISIONS


def tabs_for(modality: str) -> list[str]:
    """The tabs drawn for data of ``modality``: those with a field it is offered."""
    return [tab for tab in TABS if any(offered(f, modality) for f in section_fields(tab))]


def context(values: Values, *, modality: str, finetune: str) -> Values:
    """The widget values with the data's modality and the fine-tune mode, as ``when`` reads them."""
    return {**values, MODALITY: modality, FINETUNE: finetune}


def shown(f: Field, values: Values) -> bool:
    """Whether ``f`` is drawn, given ``context(...)``."""
    return offered(f, values[MODALITY]) and (f.when is None or bool(f.when(values)))


def widget_values(m: Mitigations) -> dict[str, Any]:
    """The widget keys and the values that show ``m`` (copies: a widget may change its list)."""
    return {f.key: copy.deepcopy(_value(m, f.path)) for f in FIELDS}


def from_widgets(
    values: Values, *, modality: str, finetune: str, plan_drop: Sequence[int] = (), plan_relabel: Mapping[int, int] | None = None
) -> Mitigations:
    """The ``Mitigations`` the widget ``values`` show for data of ``modality`` trained with
    ``finetune`` (a field not ``offered`` for ``modality`` reads as its default). With cleaning by plan (``clean.source`` "plan", an action other than "none"),
    ``plan_drop`` and ``plan_relabel`` (row → class) are the plan's decisions."""
    v = context(values, modality=modality, finetune=finetune)
    base = Mitigations()
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for f in FIELDS:
        default = _value(base, f.path)
        hidden = not shown(f, v) and (f.hidden_default or not offered(f, modality))
        sections[f.section][f.name] = copy.deepcopy(default) if hidden else type(default)(v[f.key])
    clean = sections["clean"]
    if clean["source"] == "plan" and clean["action"] != "none":
        clean["plan_drop"] = sorted(int(i) for i in plan_drop)
        clean["plan_relabel"] = {str(k): int(c) for k, c in sorted((plan_relabel or {}).items())}
    return Mitigations(**{name: SECTIONS[name](**kw) for name, kw in sections.items()})
