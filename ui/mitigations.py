"""The Train page's mitigation knobs: presets, resampling, loss, augmentation — each with one line
of help — read back as a ``Mitigations``. Widget keys start with ``tr_`` so they survive leaving
the page (``ui.state``)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from core import charts
from core.data.dataset import Dataset
from core.diagnose.cleaning import CleaningPlan
from core.diagnose.pipeline import DiagnoseConfig, diagnose, is_cached
from core.diagnose.pipeline import estimate_seconds as diagnosis_seconds
from core.embed import embeddings
from core.mitigate.checks import check
from core.mitigate.presets import PRESETS, preset
from core.mitigate.preview import augment_images, augment_texts, epoch_counts, highlight_changes, mixes, resample_on_embeddings
from core.mitigate.settings import (
    CLASS_WEIGHTS,
    CLEAN_ACTIONS,
    CLEAN_SOURCES,
    FEATURE_SAMPLERS,
    IMAGE_AUGMENTATIONS,
    LOSSES,
    NEIGHBOUR_SAMPLERS,
    OVER_SAMPLERS,
    SAMPLERS,
    SEMI_METHODS,
    TEXT_AUGMENTATIONS,
    UNDER_SAMPLERS,
    Augmentation,
    Cleaning,
    Decision,
    LossSettings,
    Mitigations,
    Resampling,
    SemiSupervision,
)
from ui.items import image_strip
from ui.state import default

CUSTOM = "custom"
TARGETS = "tr_rs_targets"  # class name → target count, kept as plain session state (not a widget)


def _widget_values(m: Mitigations) -> dict[str, object]:
    """The widget keys and values that show ``m``."""
    r, loss, a = m.resample, m.loss, m.augment
    return {
        "tr_rs_method": r.method, "tr_rs_k": r.k_neighbors,
        "tr_loss_name": loss.name, "tr_loss_weights": loss.class_weights, "tr_loss_beta": loss.beta, "tr_loss_gamma": loss.gamma,
        "tr_loss_smoothing": loss.label_smoothing, "tr_loss_tau": loss.tau, "tr_loss_margin": loss.max_margin,
        "tr_loss_scale": loss.scale, "tr_loss_drw": loss.reweight_from,
        "tr_aug_image": list(a.image), "tr_aug_text": list(a.text), "tr_aug_strength": a.strength,
        "tr_aug_classes": list(a.classes), "tr_aug_multiplier": a.multiplier,
        "tr_dec_tm": m.decision.threshold_moving, "tr_dec_abstain": m.decision.abstain_below,
        "tr_clean_action": m.clean.action, "tr_clean_source": m.clean.source, "tr_clean_threshold": m.clean.threshold,
        "tr_semi_method": m.semi.method, "tr_semi_threshold": m.semi.threshold, "tr_semi_rounds": m.semi.rounds,
        "tr_semi_k": m.semi.k_neighbors,
    }  # fmt: skip


def _apply_preset(modality: str, finetune: str) -> None:
    name = st.session_state["tr_preset"]
    if name == CUSTOM:
        return
    m = preset(name, modality=modality, finetune=finetune)
    for key, value in _widget_values(m).items():
        st.session_state[key] = value
    st.session_state[TARGETS] = dict(m.resample.targets)


def _mark_custom() -> None:
    st.session_state["tr_preset"] = CUSTOM


def knobs(  # noqa: C901 - being split
    ds: Dataset, *, model: str, finetune: str, train_counts: dict[str, int], tail: Sequence[str], seed: int,
    plan: CleaningPlan | None = None,
) -> Mitigations:  # fmt: skip
    """Draw the knobs and their previews; return the settings they show. ``model`` is the resolved
    model (its embeddings preview the feature-space samplers); ``train_counts`` maps each class
    present in train to its items; ``tail`` names the tail classes (for the augmentation shortcut)."""
    modality = ds.modality
    base = Mitigations()
    for key, value in _widget_values(base).items():
        default(key, value)
    default("tr_preset", "baseline", allowed=[*PRESETS, CUSTOM])
    st.session_state.setdefault(TARGETS, {})
    vectors = finetune == "linear_probe" or modality == "tabular"
    methods = [m for m in SAMPLERS if vectors or m not in FEATURE_SAMPLERS]
    default("tr_rs_method", "none", allowed=methods)
    augment_names = IMAGE_AUGMENTATIONS if modality == "image" else TEXT_AUGMENTATIONS if modality == "text" else {}
    missing = []
    if modality == "text":
        from core.mitigate.language import apertium_ready, wordnet_ready

        hidden = {"back_translate": apertium_ready(), "synonym": wordnet_ready()}
        missing = [name for name, ready in hidden.items() if not ready]
        augment_names = {n: h for n, h in augment_names.items() if n not in missing}
    aug_key = "tr_aug_image" if modality == "image" else "tr_aug_text"
    default("tr_aug_classes", [], allowed=None)
    st.session_state["tr_aug_classes"] = [c for c in st.session_state["tr_aug_classes"] if c in train_counts]

    st.radio(
        "Preset", [*PRESETS, CUSTOM], key="tr_preset", horizontal=True, on_change=_apply_preset, args=(modality, finetune),
        format_func=lambda p: {"baseline": "baseline", "long_tail": "long-tail fix", "noisy_labels": "noisy-label fix",
                               "missing_class": "missing-class guard", CUSTOM: "custom"}[p],
        help=" · ".join(PRESETS.values()) + ". Any change below makes it custom.",
    )  # fmt: skip
    t_resample, t_loss, t_aug, t_clean, t_semi, t_decision = st.tabs(
        ["Resampling", "Loss", "Augmentation", "Cleaning", "Unlabelled pool", "Decision"]
    )
    with t_resample:
        method = st.selectbox(
            "Sampler", methods, key="tr_rs_method", on_change=_mark_custom, format_func=lambda m: f"{m} — {SAMPLERS[m]}",
            help="Which train items each epoch draws. The SMOTE family makes new feature vectors, so it is offered for linear probes and tables.",
        )  # fmt: skip
        if method in NEIGHBOUR_SAMPLERS:
            st.number_input(
                "k neighbours",
                1,
                100,
                key="tr_rs_k",
                on_change=_mark_custom,
                help="Neighbours within a class; must be below the smallest class's size.",
            )
        if method in (*OVER_SAMPLERS, *UNDER_SAMPLERS):
            st.caption(
                "Target items per class (empty: over-samplers raise every class to the largest, under-samplers lower it to the smallest)."
            )
            table = pd.DataFrame(
                {"class": list(train_counts), "train items": list(train_counts.values()),
                 "target": [st.session_state[TARGETS].get(c) for c in train_counts]}
            )  # fmt: skip
            edited = st.data_editor(
                table, key="rs_targets_editor", hide_index=True, disabled=["class", "train items"], width="stretch",
                column_config={"target": st.column_config.NumberColumn("target", min_value=1, step=1, help="leave empty to keep the default")},
            )  # fmt: skip
            targets = {str(c): int(t) for c, t in zip(edited["class"], edited["target"]) if pd.notna(t)}
            if targets != st.session_state[TARGETS]:
                st.session_state[TARGETS] = targets
                _mark_custom()
    with t_loss:
        l1, l2 = st.columns(2)
        name = l1.selectbox("Loss", list(LOSSES), key="tr_loss_name", on_change=_mark_custom, format_func=lambda n: f"{n} — {LOSSES[n]}")
        weights = l2.selectbox("Class weights", list(CLASS_WEIGHTS), key="tr_loss_weights", on_change=_mark_custom,
                               format_func=lambda w: f"{w} — {CLASS_WEIGHTS[w]}")  # fmt: skip
        l3, l4, l5 = st.columns(3)
        l3.slider("Label smoothing ε", 0.0, 0.3, step=0.01, key="tr_loss_smoothing", on_change=_mark_custom,
                  help="Share of each target spread over every class: softer, better-calibrated confidence.")  # fmt: skip
        if weights != "none":
            l4.slider("Re-weight from (share of epochs)", 0.0, 0.9, step=0.1, key="tr_loss_drw", on_change=_mark_custom,
                      help="Deferred re-weighting: class weights apply only after this share of the epochs (LDAM-DRW uses 0.8).")  # fmt: skip
        if weights == "effective_number":
            l5.number_input("β", 0.0, 0.99999, step=0.0001, format="%.5f", key="tr_loss_beta", on_change=_mark_custom,
                            help="Effective number (1 − βⁿ)/(1 − β): 0.999 to 0.9999 in the paper.")  # fmt: skip
        if name == "focal":
            l4.slider("Focal γ", 0.0, 5.0, step=0.5, key="tr_loss_gamma", on_change=_mark_custom, help="0 is cross-entropy; 2 is usual.")
        if name == "logit_adjusted":
            l4.slider(
                "τ",
                0.0,
                3.0,
                step=0.1,
                key="tr_loss_tau",
                on_change=_mark_custom,
                help="How strongly the class prior shifts the logits; 1 is usual.",
            )
        if name == "ldam":
            l4.slider("Largest margin", 0.1, 2.0, step=0.1, key="tr_loss_margin", on_change=_mark_custom, help="The rarest class's margin.")
            l5.number_input("Logit scale s", 0.1, 100.0, step=0.5, key="tr_loss_scale", on_change=_mark_custom,
                            help="30 in the paper (with a cosine classifier); 1 for an ordinary head.")  # fmt: skip
    with t_aug:
        if not augment_names:
            st.caption("No augmentations for tabular data.")
        elif finetune == "linear_probe":
            st.caption("A linear probe trains on features computed once: augmentations cannot reach it. Fine-tune to use them.")
        else:
            default(aug_key, [], allowed=None)
            st.session_state[aug_key] = [n for n in st.session_state[aug_key] if n in augment_names]
            st.multiselect(
                "Augmentations (applied in this order)", list(augment_names), key=aug_key, on_change=_mark_custom,
                help=" · ".join(f"{n}: {h}" for n, h in augment_names.items()),
            )  # fmt: skip
            if "back_translate" in missing:
                st.caption("Back-translation is hidden: it needs Apertium (as root: apt-get install apertium apertium-eng-spa).")
            if "synonym" in missing:
                st.caption("Synonym replacement is hidden: the WordNet asset is not fetched (python -m core.data.assets fetch).")
            a1, a2, a3 = st.columns([2, 3, 1])
            a1.slider(
                "Strength", 0.0, 1.0, step=0.05, key="tr_aug_strength", on_change=_mark_custom, help="How far each augmentation goes."
            )
            a2.multiselect("Only these classes (empty: all)", list(train_counts), key="tr_aug_classes", on_change=_mark_custom,
                           help=f"Tail classes: {', '.join(tail) or 'none'}.")  # fmt: skip
            a3.number_input("× per epoch", 1, 100, key="tr_aug_multiplier", on_change=_mark_custom,
                            help="The augmented classes are drawn this many times per epoch, each copy augmented anew.")  # fmt: skip
            if tail and a2.button("Target the tail classes", key="aug_tail"):
                st.session_state["tr_aug_classes"] = list(tail)
                _mark_custom()
                st.rerun()
    with t_clean:
        k1, k2 = st.columns(2)
        action = k1.selectbox("In-run cleaning", list(CLEAN_ACTIONS), key="tr_clean_action", on_change=_mark_custom,
                              format_func=lambda a: f"{a} — {CLEAN_ACTIONS[a]}")  # fmt: skip
        source = k2.selectbox("Which items", list(CLEAN_SOURCES), key="tr_clean_source", on_change=_mark_custom,
                              format_func=lambda s: f"{s} — {CLEAN_SOURCES[s]}", disabled=action == "none")  # fmt: skip
        if action != "none" and source == "threshold":
            st.slider("Label quality below", 0.0, 1.0, step=0.05, key="tr_clean_threshold", on_change=_mark_custom,
                      help="The detector's score: the blend of the probe's and the neighbours' belief in the given label.")  # fmt: skip
        if action != "none":
            _cleaning_preview(ds, action, source, plan)
        st.caption(
            "Only train items change, for this run only; val and test keep their labels. Save a plan as a new version on the Diagnose page to keep it."
        )
    with t_semi:
        pool = ds.n_unlabelled
        st.caption(
            f"This dataset has **{pool:,}** unlabelled items (rows uploaded with an empty label)."
            if pool else "This dataset has no unlabelled items: upload rows with an empty label to make a pool."
        )  # fmt: skip
        method = st.selectbox("Use the pool", list(SEMI_METHODS), key="tr_semi_method", on_change=_mark_custom,
                              format_func=lambda m: f"{m} — {SEMI_METHODS[m]}")  # fmt: skip
        if method != "none":
            q1, q2 = st.columns(2)
            q1.slider("Confidence to join train", 0.5, 1.0, step=0.01, key="tr_semi_threshold", on_change=_mark_custom,
                      help="A pool item trains with its new label only when that label is at least this sure.")  # fmt: skip
            if method == "pseudo_label":
                q2.number_input("Rounds", 1, 20, key="tr_semi_rounds", on_change=_mark_custom,
                                help="Times the model labels the pool, at evenly spaced epoch ends; each round replaces the last.")  # fmt: skip
            else:
                q2.number_input(
                    "k neighbours", 1, 100, key="tr_semi_k", on_change=_mark_custom, help="Neighbours in the graph labels spread over."
                )
    with t_decision:
        st.toggle("Threshold moving", key="tr_dec_tm", on_change=_mark_custom,
                  help="After training, per-class offsets are fitted on val for the best macro-F1 and reported beside the plain answers: "
                  "rare classes get predicted more often.")  # fmt: skip
        st.slider("Abstain below confidence (0 = always answer)", 0.0, 0.99, step=0.01, key="tr_dec_abstain", on_change=_mark_custom,
                  help="Each evaluation also reports the share answered and their error rate when answers below this confidence are withheld; "
                  "the Runs page draws the risk–coverage curve with this point.")  # fmt: skip
    s = st.session_state
    use_plan = s["tr_clean_source"] == "plan" and s["tr_clean_action"] != "none"
    m = Mitigations(
        resample=Resampling(method=s["tr_rs_method"], k_neighbors=int(s["tr_rs_k"]), targets=dict(s[TARGETS]) if s["tr_rs_method"] in (*OVER_SAMPLERS, *UNDER_SAMPLERS) else {}),
        loss=LossSettings(
            name=s["tr_loss_name"], class_weights=s["tr_loss_weights"], beta=float(s["tr_loss_beta"]), gamma=float(s["tr_loss_gamma"]),
            label_smoothing=float(s["tr_loss_smoothing"]), tau=float(s["tr_loss_tau"]), max_margin=float(s["tr_loss_margin"]),
            scale=float(s["tr_loss_scale"]), reweight_from=float(s["tr_loss_drw"]) if s["tr_loss_weights"] != "none" else 0.0,
        ),
        augment=Augmentation(
            image=list(s["tr_aug_image"]) if modality == "image" and finetune != "linear_probe" else [],
            text=list(s["tr_aug_text"]) if modality == "text" and finetune != "linear_probe" else [],
            strength=float(s["tr_aug_strength"]), classes=list(s["tr_aug_classes"]), multiplier=int(s["tr_aug_multiplier"]),
        ),
        clean=Cleaning(
            action=s["tr_clean_action"], source=s["tr_clean_source"], threshold=float(s["tr_clean_threshold"]),
            plan_drop=sorted(plan.drop) if use_plan and plan is not None else [],
            plan_relabel={str(k): int(v) for k, v in sorted(plan.relabel.items())} if use_plan and plan is not None else {},
        ),
        semi=SemiSupervision(
            method=s["tr_semi_method"], threshold=float(s["tr_semi_threshold"]), rounds=int(s["tr_semi_rounds"]), k_neighbors=int(s["tr_semi_k"])
        ),
        decision=Decision(threshold_moving=bool(s["tr_dec_tm"]), abstain_below=float(s["tr_dec_abstain"])),
    )  # fmt: skip
    with t_resample:
        _resample_preview(ds, m, model=model, finetune=finetune, train_counts=train_counts, seed=seed)
    with t_aug:
        if (m.augment.image or m.augment.text) and finetune != "linear_probe":
            _augment_preview(ds, m, seed=seed)
    return m


def _resample_preview(ds: Dataset, m: Mitigations, *, model: str, finetune: str, train_counts: dict[str, int], seed: int) -> None:
    counts = epoch_counts(m, train_counts)
    if counts is not None and counts != {c: float(n) for c, n in train_counts.items()}:
        st.plotly_chart(charts.counts_before_after(train_counts, counts), width="stretch", key="rs_counts")
    if m.resample.method not in FEATURE_SAMPLERS or check(m, modality=ds.modality, finetune=finetune, train_counts=train_counts):
        return
    key = json.dumps([m.resample.method, m.resample.k_neighbors, m.resample.targets, model, seed], sort_keys=True)
    cached = ds.modality == "tabular" or embeddings.is_cached(ds, backbone=model)
    label = "Preview on the embedding map" + (
        "" if cached else f" (embeds the data first: about {embeddings.estimate_seconds(ds, model):,.0f} s)"
    )
    if st.button(label, key="rs_preview"):
        with st.spinner(f"Running {m.resample.method} on the train embeddings…"):
            train = np.flatnonzero(ds.split == 0)
            X = np.asarray(embeddings.embed(ds, backbone=model), dtype=np.float32)[train]
            st.session_state["rs_preview_result"] = (
                key,
                resample_on_embeddings(X, ds.labels[train], list(map(str, ds.class_names)), m, seed=seed),
            )
    shown = st.session_state.get("rs_preview_result")
    if shown is not None and shown[0] == key:
        result = shown[1]
        made = int(result.synthetic.sum())
        st.caption(
            f"{m.resample.method} on {sum(result.before.values()):,} train embeddings → {sum(result.after.values()):,} items "
            f"in {result.seconds:.1f} s; crosses are new points, grey rings removed items (at most 4,000 of each drawn; "
            f"{made:,} new shown). The run does the same on its standardised features."
        )
        c1, c2 = st.columns(2)
        c1.plotly_chart(charts.counts_before_after(result.before, result.after, title="Items per class: train split → resampled"),
                        width="stretch", key="rs_after")  # fmt: skip
        c2.plotly_chart(charts.resampled_map(result.xy, result.labels, result.synthetic, result.removed_xy), width="stretch", key="rs_map")


def _augment_preview(ds: Dataset, m: Mitigations, *, seed: int) -> None:
    a = m.augment
    st.session_state.setdefault("aug_preview_seed", seed)
    p1, p2 = st.columns([4, 1])
    p1.markdown("**Preview** — train items (top) and augmented copies (bottom)" if ds.modality == "image" else "**Preview**")
    if p2.button("Re-roll", key="aug_reroll", help="Draw other items and other augmentations."):
        st.session_state["aug_preview_seed"] += 1
    draw = int(st.session_state["aug_preview_seed"])
    names = list(map(str, ds.class_names))
    wanted = [names.index(c) for c in a.classes if c in names]
    pool = np.flatnonzero((ds.split == 0) & (np.isin(ds.labels, wanted) if wanted else True))
    rng = np.random.default_rng(draw)
    picked = np.sort(rng.choice(pool, min(8 if ds.modality == "image" else 5, len(pool)), replace=False))
    if ds.modality == "image":
        images = np.asarray(ds.items[picked])
        out = augment_images(images, ds.labels[picked], a, n_classes=ds.n_classes, seed=draw)
        st.image(image_strip(images), caption=" · ".join(names[c] for c in ds.labels[picked]))
        st.image(image_strip(out), caption="augmented" + (" (MixUp/CutMix blend items of this row)" if mixes(a) else ""))
    else:
        texts = [str(t) for t in ds.items[picked]]
        out = augment_texts(texts, ds.labels[picked], a, seed=draw)
        rows = "".join(
            f"<tr><td>{html.escape(names[c])}</td><td>{html.escape(t)}</td><td>{highlight_changes(t, o)}</td></tr>"
            for c, t, o in zip(ds.labels[picked], texts, out)
        )
        st.markdown(
            "<style>.aug ins{background:#d4f5dd;text-decoration:none}.aug del{background:#fbd9d9}</style>"
            f"<table class='aug'><tr><th>class</th><th>original</th><th>augmented (new, <del>gone</del>)</th></tr>{rows}</table>",
            unsafe_allow_html=True,
        )


def _cleaning_preview(ds: Dataset, action: str, source: str, plan: CleaningPlan | None) -> None:
    """How many train items the cleaning would touch, when that is known without training."""
    train = ds.split == 0
    if source == "plan":
        if plan is None or plan.n_changes == 0:
            st.info("The Diagnose page has no plan for this version yet: mark suspects there (relabel or drop), then come back.")
            return
        drops = sum(1 for i in plan.drop if train[i])
        relabels = sum(1 for i in plan.relabel if train[i])
        st.markdown(
            f"The plan leaves out **{drops:,}** train items and relabels **{relabels:,}** ({plan.summary()} in all splits; only train counts)."
        )
        return
    if not is_cached(ds, DiagnoseConfig()):
        st.info(
            f"This version has not been diagnosed yet: the run does that first (about {diagnosis_seconds(ds):,.0f} s, once; the Diagnose page shows the result)."
        )
        return
    issues = diagnose(ds, DiagnoseConfig()).issues
    flagged = issues.is_issue if source == "detector" else np.asarray(issues.score) < float(st.session_state["tr_clean_threshold"])
    chosen = flagged & train
    if action == "relabel":
        changed = chosen & (issues.suggested != ds.labels)
        st.markdown(f"**{int(changed.sum()):,}** of {int(train.sum()):,} train items would be trained with the detector's suggested label.")
    else:
        st.markdown(f"**{int(chosen.sum()):,}** of {int(train.sum()):,} train items would be left out.")
