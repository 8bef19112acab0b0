"""What a mitigation setting does to the data, drawn under its knobs on the Train page: the counts
an epoch draws (and a feature-space sampler's map), the per-class weights, logit offsets or margins
the loss will use, augmented copies beside their originals, and how many train items in-run
cleaning changes. Token (NER) data: the sentences per rarest type and the mentions per type an
epoch draws, the loss terms per tag, and augmented sentences beside their originals with their
entities highlighted."""

from __future__ import annotations

import dataclasses
import html
import json

import numpy as np
import streamlit as st

from core import charts, paths
from core.compare.setting_words import setting_value, token_augment_words
from core.data.dataset import Dataset
from core.diagnose.cleaning import CleaningPlan
from core.diagnose.pipeline import DiagnoseConfig, is_cached
from core.diagnose.pipeline import estimate_seconds as diagnosis_seconds
from core.embed import embeddings
from core.mitigate.checks import check
from core.mitigate.in_run_cleaning import train_changes
from core.mitigate.preview import (
    TokenTrain,
    augment_images,
    augment_texts,
    epoch_counts,
    highlight_changes,
    loss_counts_note,
    loss_preview,
    mixes,
    preview_items,
    resample_on_embeddings,
    token_epoch,
)
from core.mitigate.settings import FEATURE_SAMPLERS, Mitigations
from core.tokens.augment import Marked, TokenAugment, TokenTable
from core.tokens.augment import preview as token_pairs
from core.tokens.stats import segments
from ui import common
from ui.data_tokens import highlighted
from ui.items import image_strip


def resample_preview(ds: Dataset, m: Mitigations, *, model: str, finetune: str, train_counts: dict[str, int], seed: int) -> None:
    counts = epoch_counts(m, train_counts)
    if counts is not None and counts != {c: float(n) for c, n in train_counts.items()}:
        before = {c: float(n) for c, n in train_counts.items()}
        st.plotly_chart(charts.counts_before_after(before, counts), width="stretch", key="rs_counts")
    if m.resample.method not in FEATURE_SAMPLERS or check(m, modality=ds.modality, finetune=finetune, train_counts=train_counts):
        return
    key = json.dumps([m.resample.method, m.resample.k_neighbors, m.resample.targets, model, seed], sort_keys=True)
    cached = ds.modality == "tabular" or embeddings.is_cached(ds, backbone=model)
    label = "Preview on the embedding map" + (
        "" if cached else f" (embeds the data first: about {embeddings.estimate_seconds(ds, model):,.0f} s)"
    )
    if st.button(label, key="rs_preview"):
        with st.spinner(f"Running {setting_value('mitigations.resample.method', m.resample.method)} on the train embeddings…"):
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
            f"{setting_value('mitigations.resample.method', m.resample.method)} on {sum(result.before.values()):,} train embeddings → {sum(result.after.values()):,} items "
            f"in {result.seconds:.1f} s; crosses are new points, grey rings removed items (at most 4,000 of each drawn; "
            f"{made:,} new shown). The run does the same on its standardised features."
        )
        c1, c2 = st.columns(2)
        c1.plotly_chart(charts.counts_before_after(result.before, result.after, title="Items per class: train split → resampled"),
                        width="stretch", key="rs_after")  # fmt: skip
        c2.plotly_chart(charts.resampled_map(result.xy, result.labels, result.synthetic, result.removed_xy), width="stretch", key="rs_map")


LOSS_BARS = {"weights": "Class weight", "offsets": "Logit offset while training", "margins": "Margin while training"}


def loss_terms_preview(m: Mitigations, *, train_counts: dict[str, int], per: str = "class") -> None:
    """The per-class numbers the chosen loss will use, a bar chart each, and what they do
    (``per="tag"``: a token run's, per tag from the train words)."""
    p = loss_preview(m.loss, train_counts, per=per)
    bars = {title: values for name, title in LOSS_BARS.items() if (values := getattr(p, name))}
    for col, (title, values) in zip(st.columns(len(bars)) if bars else [], bars.items()):
        col.plotly_chart(charts.grouped_bars({title: values}, title=f"{title} per {per}"), width="stretch", key=f"loss_{title}")
    for words in p.words:
        st.markdown(words)
    if bars and (note := loss_counts_note(m)):
        st.caption(note)


def augment_preview(ds: Dataset, m: Mitigations, *, seed: int) -> None:
    a = m.augment
    st.session_state.setdefault("aug_preview_seed", seed)
    p1, p2 = st.columns([4, 1])
    p1.markdown("**Preview** — train items (top) and augmented copies (bottom)" if ds.modality == "image" else "**Preview**")
    if p2.button("Re-roll", key="aug_reroll", help="Draw other items and other augmentations."):
        st.session_state["aug_preview_seed"] += 1
    draw = int(st.session_state["aug_preview_seed"])
    names = list(map(str, ds.class_names))
    picked = preview_items(ds, a.classes, seed=draw, n=8 if ds.modality == "image" else 5)
    if ds.modality == "image":
        images = np.asarray(ds.items[picked])
        out = augment_images(images, ds.labels[picked], a, n_classes=ds.n_classes, seed=draw)
        st.image(image_strip(images), caption=" · ".join(names[c] for c in ds.labels[picked]))
        st.image(image_strip(out), caption="augmented" + (" (MixUp/CutMix blend items of this row)" if mixes(a) else ""))
        return
    texts = [str(t) for t in ds.items[picked]]
    rows = "".join(
        f"<tr><td>{html.escape(names[c])}</td><td>{html.escape(t)}</td><td>{highlight_changes(t, o)}</td></tr>"
        for c, t, o in zip(ds.labels[picked], texts, augment_texts(texts, ds.labels[picked], a, seed=draw))
    )
    st.markdown(
        "<style>.aug ins{background:#d4f5dd;text-decoration:none}.aug del{background:#fbd9d9}</style>"
        f"<table class='aug'><tr><th>class</th><th>original</th><th>augmented (new, <del>gone</del>)</th></tr>{rows}</table>",
        unsafe_allow_html=True,
    )


def cleaning_preview(ds: Dataset, m: Mitigations, plan: CleaningPlan | None) -> None:
    """How many train items the cleaning would touch, when that is known without training."""
    c = m.clean
    if c.source == "plan":
        if plan is None or plan.n_changes == 0:
            st.info("The Diagnose page has no plan for this version yet: mark suspects there (relabel or drop), then come back.")
            return
        drops, relabels = train_changes(c, ds)
        st.markdown(
            f"The plan leaves out **{drops:,}** train items and relabels **{relabels:,}** ({plan.summary()} in all splits; only train counts)."
        )
        return
    if not is_cached(ds, DiagnoseConfig()):
        st.info(
            f"This version has not been diagnosed yet: the run does that first (about {diagnosis_seconds(ds):,.0f} s, once; the Diagnose page shows the result)."
        )
        return
    drops, relabels = train_changes(c, ds)
    n_train = int((ds.split == 0).sum())
    if c.action == "relabel":
        st.markdown(f"**{relabels:,}** of {n_train:,} train items would be trained with the detector's suggested label.")
    else:
        st.markdown(f"**{drops:,}** of {n_train:,} train items would be left out.")


def token_resample_preview(m: Mitigations, t: TokenTrain) -> None:
    """What one epoch of a token run draws: sentences per rarest type, and mentions per type,
    before and after the resampling and the augmentation's copies (expected values)."""
    e = token_epoch(m, t)
    if e.after == e.before:
        return
    copies = sum(e.copies.values())
    made = f", {copies:,.0f} of them augmented copies" if copies else ""
    st.caption(
        f"One epoch trains on about {e.sentences:,.0f} sentences ({sum(e.before.values()):,.0f} in train{made}); "
        "expected counts for the weighted samplers."
    )
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        charts.counts_before_after(e.before, e.after, title="Sentences by their rarest type",
                                   names=("train split", "one epoch")),
        width="stretch", key="rs_tok_sentences",
    )  # fmt: skip
    c2.plotly_chart(
        charts.counts_before_after(e.mentions_before, e.mentions_after, title="Mentions per entity type",
                                   names=("train split", "one epoch")),
        width="stretch", key="rs_tok_mentions",
    )  # fmt: skip


@st.cache_resource(show_spinner="Reading the train sentences…", max_entries=2)
def _token_table(home: str, vid: int) -> tuple[list[list[str]], list[list[str]], TokenTable]:
    """The train sentences, their tags and the augmentation's tables (as a run builds them)."""
    ds = common.dataset(vid)
    assert ds.tags is not None
    train = np.flatnonzero(ds.split == 0)
    tokens, tags = [list(map(str, ds.items[i])) for i in train], [list(map(str, ds.tags[i])) for i in train]
    return tokens, tags, TokenTable.from_train(tokens, tags)


def token_augment_preview(vid: int, m: Mitigations, t: TokenTrain, *, seed: int) -> None:
    """A few train sentences before and after one augmented copy, entities in their type's colour,
    the tokens the copy changed marked (``core.tokens.augment.preview``)."""
    from core.mitigate.language import wordnet_ready

    settings = TokenAugment.from_dict(dataclasses.asdict(m.token_augment))
    if settings.synonym > 0 and not wordnet_ready():
        st.info("Synonym replacement needs the WordNet asset: set it to 0 for a preview.")
        return
    st.session_state.setdefault("aug_preview_seed", seed)
    p1, p2 = st.columns([4, 1])
    p1.markdown("**Preview** — train sentences and one augmented copy each (changed tokens marked)")
    if p2.button("Re-roll", key="aug_reroll", help="Draw other sentences and other augmentations."):
        st.session_state["aug_preview_seed"] += 1
    tokens, tags, table = _token_table(str(paths.home()), vid)
    pairs = token_pairs(tokens, tags, settings, seed=int(st.session_state["aug_preview_seed"]), k=5, table=table)
    if not pairs:
        st.caption("No train sentence holds the types chosen.")
        return
    types = sorted({*t.types, *t.absent})
    rows = "".join(
        f"<tr><td>{_marked_html(before, types, 'del')}</td><td>{_marked_html(after, types, 'ins')}</td></tr>" for before, after in pairs
    )
    st.html(
        "<style>.aug ins{background:#d4f5dd;text-decoration:none}.aug del{background:#fbd9d9;text-decoration:none}"
        ".aug td{line-height:2;vertical-align:top}</style>"
        f"<table class='aug'><tr><th>original (<del>moved or replaced</del>)</th><th>augmented copy (<ins>new or moved</ins>)</th></tr>{rows}</table>"
    )
    st.caption(f"{token_augment_words(m.token_augment)}. Each epoch makes its copies anew.")


def _marked_html(marked: list[Marked], types: list[str], mark: str) -> str:
    """One sentence as HTML: entities highlighted (``ui.data_tokens.highlighted``), changed tokens
    inside ``<mark>`` (``ins`` or ``del``); every token escaped."""
    words = [f"\x01{tok}\x02" if changed else tok for tok, _, changed in marked]
    out = highlighted(segments(words, [tag for _, tag, _ in marked]), types)
    return out.replace("\x01", f"<{mark}>").replace("\x02", f"</{mark}>")
