"""The Train page's mitigation knobs: a preset, then one tab per section of ``Mitigations`` whose
widgets are drawn from the field table (``core.mitigate.fields``) and read back through it, with
the previews of what a setting does. Widget keys start with ``tr_`` so they survive leaving the
page (``ui.state``).

Token (NER) data gets its own presets and three tabs (``fields.tabs_for``): resampling of whole
sentences by their rarest entity type, the loss over tags, and tag-preserving augmentation."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.compare.setting_words import setting_value
from core.data.dataset import Dataset
from core.diagnose.cleaning import CleaningPlan
from core.mitigate.fields import (
    COLUMNS,
    TABS,
    TARGETS,
    Field,
    Values,
    context,
    from_widgets,
    section_fields,
    shown,
    tabs_for,
    widget_values,
)
from core.mitigate.presets import preset, presets_for
from core.mitigate.preview import TokenTrain, hallucination_trades
from core.mitigate.settings import FEATURE_SAMPLERS, IMAGE_AUGMENTATIONS, SAMPLERS, TEXT_AUGMENTATIONS, Mitigations
from ui.mitigation_previews import (
    augment_preview,
    cleaning_preview,
    loss_terms_preview,
    resample_preview,
    token_augment_preview,
    token_resample_preview,
)
from ui.state import default

CUSTOM = "custom"
PRESET_TITLES = {"baseline": "baseline", "long_tail": "long-tail fix", "noisy_labels": "noisy-label fix", "missing_class": "missing-class guard", "rare_types": "rare entity types", CUSTOM: "custom"}  # fmt: skip
TOKEN_INTROS = {
    "resample": "A token run draws whole **sentences**, each by its rarest entity type — (no entity) for a sentence without one — "
    "so class-balanced, square-root and random over-sampling repeat sentences of rare types, and under-sampling leaves out "
    "sentences of common ones. SMOTE and the other feature-space samplers are not offered: they make new feature vectors, not sentences.",
    "loss": "The loss scores every **word** against its tag, so each loss and class weighting acts per tag: {tags}. "
    "Class weights, offsets and margins come from the train words' tag counts.",
    "augment": "Tag-preserving augmentation (Dai & Adel 2020): each epoch, every drawn train sentence that qualifies gets "
    "augmented copies besides itself, each made anew; the tags stay valid IOB2 and val and test are never augmented.",
    "decision": "How the tagger answers. Over-sampling and augmented copies show it more entity words than the data holds, and it "
    "learns to name entities where there are none; raising the logit of O takes those back. The offset is fitted on val at every "
    "evaluation and is part of the run's answers, live and on Compare.",
}


@dataclass(frozen=True)
class _Knobs:
    """What drawing the fields needs from this dataset and fine-tune mode."""

    values: Values  # the widget values, the modality and the fine-tune mode (``fields.context``)
    choices: Mapping[str, list[str]]  # options a dataset narrows (samplers, available augmentations, class names)
    helps: Mapping[str, str]  # help that names this dataset's classes
    train_counts: Mapping[str, int]


def _apply_preset(modality: str, finetune: str) -> None:
    name = st.session_state["tr_preset"]
    if name != CUSTOM:
        st.session_state.update(widget_values(preset(name, modality=modality, finetune=finetune)))


def _mark_custom() -> None:
    st.session_state["tr_preset"] = CUSTOM


def knobs(
    ds: Dataset, *, model: str, finetune: str, train_counts: dict[str, int], tail: Sequence[str], seed: int,
    plan: CleaningPlan | None = None, tokens: TokenTrain | None = None, vid: int = 0,
) -> Mitigations:  # fmt: skip
    """Draw the knobs and their previews; return the settings they show. ``model`` is the resolved
    model (its embeddings preview the feature-space samplers); ``train_counts`` maps each class
    present in train to its items (token data: sentences by their rarest type); ``tail`` names the
    tail classes (token data: the rare entity types) for the augmentation shortcut and the presets;
    ``tokens``: a token dataset's train figures (``vid`` its version)."""
    modality = ds.modality
    missing = _missing_text_augmentations() if modality == "text" else []
    choices = _choices(modality, finetune, list(train_counts), missing, tokens)
    _prepare_state(choices, modality)
    presets = presets_for(modality)
    st.radio(
        "Preset", [*presets, CUSTOM], key="tr_preset", persist_state="session", horizontal=True, on_change=_apply_preset,
        args=(modality, finetune), format_func=PRESET_TITLES.__getitem__,
        help=" · ".join(presets.values()) + ". Any change below makes it custom.",
    )  # fmt: skip
    helps = {"tr_aug_classes": f"Tail classes: {', '.join(tail) or 'none'}."}
    if tokens is not None:
        helps.update(_token_helps(tokens, tail))
    k = _Knobs(context(st.session_state.to_dict(), modality=modality, finetune=finetune), choices, helps, train_counts)
    shown_tabs = tabs_for(modality)
    tabs = dict(zip(shown_tabs, st.tabs([TABS[t] for t in shown_tabs])))
    for section, tab in tabs.items():
        with tab:
            _intro(section, ds, finetune, tokens)
            notes = {0: lambda: _missing_notes(missing)} if section == "augment" and finetune != "linear_probe" else {}
            cells = _section(section, k, after=notes)
            if section == "augment" and tail:
                if (1, 1) in cells:
                    _tail_button(cells[1, 1], tail)
                elif (3, 1) in cells:
                    _tail_button(cells[3, 1], tail, key="tr_tok_types", label="Target the rare types")
    m = from_widgets(
        st.session_state.to_dict(), modality=modality, finetune=finetune,
        plan_drop=sorted(plan.drop) if plan is not None else [], plan_relabel=dict(plan.relabel) if plan is not None else {},
    )  # fmt: skip
    if tokens is not None:
        _token_previews(tabs, vid, m, tokens, seed=seed)
        return m
    with tabs["resample"]:
        resample_preview(ds, m, model=model, finetune=finetune, train_counts=train_counts, seed=seed)
    with tabs["loss"]:
        loss_terms_preview(m, train_counts=train_counts)
    with tabs["augment"]:
        if (m.augment.image or m.augment.text) and finetune != "linear_probe":
            augment_preview(ds, m, seed=seed)
    with tabs["clean"]:
        if m.clean.action != "none":
            cleaning_preview(ds, m, plan)
        st.caption(
            "Only train items change, for this run only; val and test keep their labels. Save a plan as a new version on the Diagnose page to keep it."
        )
    for note in hallucination_trades(m):  # recall bought with confident errors, as measured
        st.warning(f"**Hallucination trade-off.** {note}", icon=":material/warning:")
    return m


def _token_helps(tokens: TokenTrain, rare: Sequence[str]) -> dict[str, str]:
    """Help that says what each knob acts on in a token run: sentences, tags, entity types."""
    tags = ", ".join(list(tokens.tags)[:5]) + (", …" if len(tokens.tags) > 5 else "")
    return {
        "tr_rs_method": "Which train sentences each epoch draws, by each sentence's rarest entity type ((no entity) without one).",
        "tr_loss_name": f"Scores every word against its tag: per tag — {tags}.",
        "tr_loss_weights": f"Per tag ({tags}), from the train words' tag counts.",
        "tr_tok_types": f"Rare types (outside the head group): {', '.join(rare) or 'none'}.",
    }


def _token_previews(tabs: Mapping[str, DeltaGenerator], vid: int, m: Mitigations, tokens: TokenTrain, *, seed: int) -> None:
    """A token run's previews: sentences and mentions an epoch draws, the loss per tag, augmented sentences."""
    with tabs["resample"]:
        token_resample_preview(m, tokens)
    with tabs["loss"]:
        loss_terms_preview(m, train_counts=tokens.tags, per="tag")
    with tabs["augment"]:
        if m.token_augment.active:
            token_augment_preview(vid, m, tokens, seed=seed)


def _missing_text_augmentations() -> list[str]:
    """Text augmentations this machine cannot do (their data or program is missing)."""
    from core.mitigate.language import apertium_ready, wordnet_ready

    ready = {"back_translate": apertium_ready(), "synonym": wordnet_ready()}
    return [name for name, ok in ready.items() if not ok]


def _choices(modality: str, finetune: str, classes: list[str], missing: list[str], tokens: TokenTrain | None) -> dict[str, list[str]]:
    vectors = modality != "tokens" and (finetune == "linear_probe" or modality == "tabular")
    return {
        "tr_rs_method": [m for m in SAMPLERS if vectors or m not in FEATURE_SAMPLERS],
        "tr_aug_image": list(IMAGE_AUGMENTATIONS),
        "tr_aug_text": [n for n in TEXT_AUGMENTATIONS if n not in missing],
        "tr_aug_classes": classes if tokens is None else [],
        "tr_tok_types": tokens.types if tokens is not None else [],
    }


def _options(f: Field, k: _Knobs) -> list[str]:
    return k.choices.get(f.key) or list(f.options or {})


def _prepare_state(choices: Mapping[str, list[str]], modality: str) -> None:
    """Every widget's starting value (the defaults, which change nothing), and no value a widget no
    longer offers (a sampler a full fine-tune cannot use, a class of another dataset). A preset of
    another kind of data (long-tail fix on token data) reads as custom: the knobs keep its values."""
    for key, value in widget_values(Mitigations()).items():
        default(key, value)
    default("tr_preset", "baseline")
    if st.session_state["tr_preset"] not in [*presets_for(modality), CUSTOM]:
        st.session_state["tr_preset"] = CUSTOM
    default("tr_rs_method", "none", allowed=choices["tr_rs_method"])
    for key in ("tr_aug_image", "tr_aug_text", "tr_aug_classes", "tr_tok_types"):
        st.session_state[key] = [v for v in st.session_state[key] if v in choices[key]]


def _intro(section: str, ds: Dataset, finetune: str, tokens: TokenTrain | None = None) -> None:
    if tokens is not None:
        if section in TOKEN_INTROS:
            tags = ", ".join(list(tokens.tags)[:5]) + (", …" if len(tokens.tags) > 5 else "")
            st.caption(TOKEN_INTROS[section].format(tags=tags))
        if section == "augment":
            _token_notes()
    elif section == "augment" and ds.modality == "tabular":
        st.caption("No augmentations for tabular data.")
    elif section == "augment" and finetune == "linear_probe":
        st.caption("A linear probe trains on features computed once: augmentations cannot reach it. Fine-tune to use them.")
    elif section == "semi":
        pool = ds.n_unlabelled
        st.caption(
            f"This dataset has **{pool:,}** unlabelled items (rows uploaded with an empty label)."
            if pool else "This dataset has no unlabelled items: upload rows with an empty label to make a pool."
        )  # fmt: skip


def _section(section: str, k: _Knobs, *, after: Mapping[int, Callable[[], None]]) -> dict[tuple[int, int], DeltaGenerator]:
    """Draw ``section``'s fields row by row (``fields.COLUMNS``); ``after[row]`` draws below a row.
    Returns the cells (row, column) fields were drawn in."""
    fields = section_fields(section)
    cells: dict[tuple[int, int], DeltaGenerator] = {}
    for row in sorted({f.at[0] for f in fields}):
        drawn = [f for f in fields if f.at[0] == row and shown(f, k.values)]
        widths = COLUMNS.get((section, row))
        if drawn:  # a row whose fields are all hidden draws no empty columns
            columns = st.columns(widths) if widths else [st.container()]
            for f in drawn:
                cells[f.at] = columns[f.at[1]]
                _field(f, columns[f.at[1]], k)
        if row in after:
            after[row]()
    return cells


def _field(f: Field, where: DeltaGenerator, k: _Knobs) -> None:
    """One widget of the field table."""
    help_text = k.helps.get(f.key) or f.help or None
    if f.kind == "select":
        say = functools.partial(setting_value, f"mitigations.{f.path}")
        options = _options(f, k)
        if f.options:  # what each option does, under the field's own help
            help_text = "\n\n".join([*([help_text] if help_text else []), *(f"**{say(n)}** — {f.options[n]}" for n in options)])
        disabled = f.disabled is not None and f.disabled(k.values)
        where.selectbox(f.label, options, key=f.key, persist_state="session", on_change=_mark_custom, format_func=say,
                        disabled=disabled, help=help_text)  # fmt: skip
    elif f.kind == "multiselect":
        options = _options(f, k)
        if help_text is None and f.options:
            help_text = " · ".join(f"{n}: {f.options[n]}" for n in options)
        where.multiselect(f.label, options, key=f.key, persist_state="session", on_change=_mark_custom, help=help_text)
    elif f.kind == "slider":
        where.slider(f.label, f.lo, f.hi, step=f.step, key=f.key, persist_state="session", on_change=_mark_custom, help=help_text)
    elif f.kind == "number":
        where.number_input(
            f.label, f.lo, f.hi, step=f.step, format=f.fmt, key=f.key, persist_state="session", on_change=_mark_custom, help=help_text
        )
    elif f.kind == "toggle":
        where.toggle(f.label, key=f.key, persist_state="session", on_change=_mark_custom, help=help_text)
    elif f.kind == "targets":
        _targets(f, where, k.train_counts)


def _targets(f: Field, where: DeltaGenerator, train_counts: Mapping[str, int]) -> None:
    """Target items per class as an editable table; its value is kept under ``fields.TARGETS``."""
    where.caption(f.label)
    table = pd.DataFrame(
        {"class": list(train_counts), "train items": list(train_counts.values()),
         "target": [st.session_state[TARGETS].get(c) for c in train_counts]}
    )  # fmt: skip
    edited = where.data_editor(
        table, key="rs_targets_editor", hide_index=True, disabled=["class", "train items"], width="stretch",
        column_config={"target": st.column_config.NumberColumn("target", min_value=1, step=1, help=f.help)},
    )  # fmt: skip
    targets = {str(c): int(t) for c, t in zip(edited["class"], edited["target"]) if pd.notna(t)}
    if targets != st.session_state[TARGETS]:
        st.session_state[TARGETS] = targets
        _mark_custom()


def _missing_notes(missing: list[str]) -> None:
    if "back_translate" in missing:
        st.caption("Back-translation is hidden: it needs Apertium (as root: apt-get install apertium apertium-eng-spa).")
    if "synonym" in missing:
        st.caption("Synonym replacement is hidden: the WordNet asset is not fetched (python -m core.data.assets fetch).")


def _token_notes() -> None:
    from core.mitigate.language import wordnet_ready

    if not wordnet_ready():
        st.caption(
            "Synonym replacement needs the WordNet asset, which is not fetched here (python -m core.data.assets fetch): leave it at 0."
        )


def _tail_button(
    where: DeltaGenerator, tail: Sequence[str], *, key: str = "tr_aug_classes", label: str = "Target the tail classes"
) -> None:
    if where.button(label, key="aug_tail"):
        st.session_state[key] = list(tail)
        _mark_custom()
        st.rerun()
