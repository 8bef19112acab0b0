"""Simulate for token (NER) data: a token recipe saved as a version with its truth (val and test
untouched, sentences keeping their numbers), the token detector graded against that truth, the
preview's figures, words and examples, the span marks; and the Simulate page on a CoNLL-2003 slice
(widgets, preview, a version created, the detector checked, settings kept across pages)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.data.dataset import Dataset
from core.errors import DataError
from core.simulate import token_preview
from core.simulate.tokens import (
    PARAMS_KEY,
    grade_token_detector,
    has_token_truth,
    plan_tokens,
    save_simulated_tokens,
    sentence_kinds,
    simulate_tokens,
    token_recipe_of,
    token_recipe_source,
    true_tags,
)
from core.store import Store
from core.tokens.corrupt import TokenRecipe
from core.tokens.data import token_dataset
from core.tokens.marks import changed_positions, marked_segments, retag_span, tags_words
from core.tokens.spans import spans, tags_of
from tests.conftest import ROOT, needs_asset

TYPES = ("PER", "ORG", "LOC", "MISC")


def sentences(n: int = 120, seed: int = 0) -> Dataset:
    """Sentences of 4-12 tokens, most holding 1-2 spans of the four types; 70 / 15 / 15 % split."""
    rng = np.random.default_rng(seed)
    tokens, tags = [], []
    for s in range(n):
        length = int(rng.integers(4, 13))
        found = []
        at = int(rng.integers(0, 3))
        for _ in range(int(rng.integers(0, 3))):
            end = min(length, at + int(rng.integers(1, 3)))
            if at >= length:
                break
            found.append((TYPES[int(rng.integers(len(TYPES)))], at, end))
            at = end + int(rng.integers(1, 3))
        tokens.append([f"w{s}_{j}" for j in range(length)])
        tags.append(tags_of(found, length))
    split = np.where(np.arange(n) % 20 < 14, 0, np.where(np.arange(n) % 20 < 17, 1, 2))
    return token_dataset("toy", tokens, tags, split, pd.DataFrame({"source": [f"s{i % 3}" for i in range(n)]}))


RECIPE = TokenRecipe(thin=(("MISC", 0.5),), flip_rate=0.1, delete_rate=0.1, shift_rate=0.1, seed=2)


# ---------------------------------------------------------------------- the simulated version


def test_simulated_token_version_keeps_the_truth_and_leaves_val_and_test_alone(store):
    ds = sentences()
    parent = store.save_dataset(ds, source="upload:toy.conll")
    child = save_simulated_tokens(store, parent, RECIPE)
    info = store.version(child)
    assert info.kind == "simulate" and info.parent_id == parent and info.modality == "tokens"
    assert TokenRecipe.from_dict(info.params[PARAMS_KEY]) == RECIPE and token_recipe_of(store, child) == RECIPE
    assert token_recipe_source(store, child) == (parent, RECIPE) and token_recipe_source(store, parent) == (parent, None)
    out = store.load_dataset(child)
    plan = plan_tokens(ds, RECIPE)
    # the sentences kept, in order, with their numbers; the left-out ones are train sentences only
    rows = out.meta["source_item"].to_numpy()
    assert rows.tolist() == np.flatnonzero(plan.kept).tolist()
    assert set(np.flatnonzero(~plan.kept).tolist()) <= set(np.flatnonzero(ds.split == 0).tolist())
    assert sum(plan.removed_counts().values()) == int((~plan.kept).sum()) == info.params["left_out"]["thin"]
    assert out.meta["source"].tolist() == ds.meta["source"].to_numpy()[rows].tolist()
    # val and test as they were
    for j, r in enumerate(rows.tolist()):
        assert out.items[j] == ds.items[r]
        if ds.split[r] != 0:
            assert out.tags[j] == ds.tags[r] and not out.meta["sim_corrupted"][j]
    # the truth: which sentences changed, how, and their tags before
    corrupted = out.meta["sim_corrupted"].to_numpy(dtype=bool)
    assert corrupted.tolist() == [out.tags[j] != ds.tags[r] for j, r in enumerate(rows.tolist())]
    assert corrupted.sum() == plan.changed.sum() > 0 and has_token_truth(out)
    assert true_tags(out) == [ds.tags[r] for r in rows.tolist()]
    kinds = sentence_kinds(out)
    assert all(bool(k) == c for k, c in zip(kinds, corrupted)) and set().union(*kinds) <= {"swap", "delete", "shift"}
    assert info.params["changed"] == plan.change_counts() and sum(plan.change_counts().values()) > 0
    # the labels are made anew: each sentence's rarest type by train mentions
    again = token_dataset(out.name, list(out.items), list(out.tags), out.split)
    assert out.labels.tolist() == again.labels.tolist() and out.class_names == again.class_names


def test_the_truth_columns_are_not_slices_and_a_plan_is_seeded():
    from core.data.slices import slice_columns

    out = simulate_tokens(sentences(), RECIPE)
    assert set(slice_columns(out.meta)) == {"source"}
    a, b = plan_tokens(sentences(), RECIPE), plan_tokens(sentences(), RECIPE)
    assert a.tags == b.tags and a.kept.tolist() == b.kept.tolist()
    other = plan_tokens(sentences(), TokenRecipe(delete_rate=0.1, flip_rate=0.1, shift_rate=0.1, thin=(("MISC", 0.5),), seed=3))
    assert other.tags != a.tags


def test_dropping_a_type_by_sentences_or_annotations(store):
    ds = sentences()
    per_train = sum(1 for t, s in zip(ds.tags, ds.split) if s == 0 and any(k == "PER" for k, _, _ in spans(t)))
    by_sentence = simulate_tokens(ds, TokenRecipe(drop_types=("PER",), drop_mode="sentences"))
    assert len(by_sentence) == len(ds) - per_train and not by_sentence.meta["sim_corrupted"].any()
    by_annotation = simulate_tokens(ds, TokenRecipe(drop_types=("PER",)))
    assert len(by_annotation) == len(ds)
    train = by_annotation.split == 0
    assert not any(k == "PER" for t in by_annotation.tags[train] for k, _, _ in spans(t))
    assert any(k == "PER" for t in by_annotation.tags[~train] for k, _, _ in spans(t))  # val and test keep it
    assert int(by_annotation.meta["sim_corrupted"].sum()) == per_train
    assert set(by_annotation.meta["sim_kind"][by_annotation.meta["sim_corrupted"]]) == {"drop"}


def test_a_recipe_that_changes_nothing_or_names_no_type_is_refused(store):
    ds = sentences()
    vid = store.save_dataset(ds, source="upload:toy.conll")
    with pytest.raises(DataError, match="changes nothing"):
        save_simulated_tokens(store, vid, TokenRecipe())
    with pytest.raises(DataError, match="no entity type 'DATE'"):
        plan_tokens(ds, TokenRecipe(drop_types=("DATE",)))
    text = Dataset("t", "text", np.array(["a", "b"], dtype=object), [0, 1], ["x", "y"], [0, 0])
    with pytest.raises(DataError, match="token recipes need sentences"):
        plan_tokens(text, RECIPE)


# ---------------------------------------------------------------------- grading


def graded_fixture() -> Dataset:
    """Ten sentences: rows 0-5 train, 6-9 test; swap in 0 and 1, delete in 2, shift and delete in 3."""
    tokens = [["a", "b", "c"]] * 10
    tags = [["B-PER", "O", "O"]] * 10
    meta = pd.DataFrame(
        {
            "sim_corrupted": [True, True, True, True, False, False, True, False, False, False],  # row 6 is test: never counted
            "sim_kind": ["swap", "swap", "delete", "delete,shift", "", "", "swap", "", "", ""],
            "sim_true_tags": [""] * 10,
        }
    )
    return token_dataset("g", tokens, tags, [0, 0, 0, 0, 0, 0, 2, 2, 2, 2], meta)


def test_grading_is_sentence_level_over_train_and_per_kind():
    ds = graded_fixture()
    flagged = np.array([1, 0, 1, 1, 1, 0, 1, 1, 0, 0], dtype=bool)
    suspected = [["type"], [], ["boundary"], ["missed span"], ["type"], [], ["type"], ["type"], [], []]
    g = grade_token_detector(ds, flagged, suspected)
    o = g.overall
    assert (o.corrupted, o.flagged, o.caught) == (4, 4, 3)
    assert o.precision == pytest.approx(0.75) and o.recall == pytest.approx(0.75) and o.f1 == pytest.approx(0.75)
    kinds = {k.kind: k for k in g.kinds}
    assert list(kinds) == ["swap", "delete", "shift"]  # the kinds present, in the recipe's order
    swap = kinds["swap"].grade  # among rows 0, 1 (swap) and 4, 5 (clean): flags 0, 4
    assert (swap.corrupted, swap.flagged, swap.caught) == (2, 2, 1) and swap.recall == 0.5 and swap.precision == 0.5
    delete = kinds["delete"].grade  # rows 2, 3 and the clean 4, 5: flags 2, 3, 4
    assert (delete.corrupted, delete.caught) == (2, 2) and delete.precision == pytest.approx(2 / 3)
    assert kinds["swap"].named == 1.0 and kinds["delete"].named == 0.5 and kinds["shift"].named == 0.0
    table = token_preview.grade_table(g)
    assert table["change"].tolist() == ["type flipped", "span deleted", "boundary shifted"]
    assert table["caught"].tolist() == [1, 2, 1]
    figures = {f.label: f.value for f in token_preview.grade_figures(g)}
    assert figures["Precision"] == "75.0%" and figures["F1"] == "75.0%" and figures["Sentences with wrong tags (truth)"] == "4"
    assert np.isnan(grade_token_detector(ds, flagged).kinds[0].named)  # without the detector's kinds: unknown


def test_grading_needs_the_truth_and_one_flag_per_sentence():
    with pytest.raises(DataError, match="not simulated with a token recipe"):
        grade_token_detector(sentences(), np.zeros(120, bool))
    with pytest.raises(DataError, match="one per sentence"):
        grade_token_detector(graded_fixture(), np.zeros(3, bool))


# ---------------------------------------------------------------------- the preview


def test_preview_figures_words_examples_and_chart():
    ds = sentences()
    plan = plan_tokens(ds, RECIPE)
    figures = {f.label: f for f in token_preview.plan_figures(plan)}
    kept_train = int((plan.kept & (ds.split == 0)).sum())
    assert figures["Train sentences"].value == f"{kept_train:,}" and figures["Train sentences"].delta == f"{kept_train - 84:+,}"
    assert figures["Sentences with wrong tags"].value == str(int(plan.changed.sum()))
    assert figures["Spans changed"].value == str(sum(plan.change_counts().values()))
    words = token_preview.plan_words(RECIPE, plan)
    assert f"{kept_train} of the 84 train sentences stay" in words and "thinned left out" in words
    assert "Val and test are unchanged" in words
    counts = token_preview.counts_table(plan)
    assert counts["change"].tolist() == (counts["after"] - counts["train mentions now"]).tolist()
    assert int(counts["after"].sum()) == sum(len(spans(t)) for t, k, s in zip(plan.tags, plan.kept, ds.split) if k and s == 0)
    found = token_preview.examples(ds, plan, k=3, seed=1)
    assert len(found) == 3 and found == token_preview.examples(ds, plan, k=3, seed=1)
    for e in found:
        row = int(np.flatnonzero(ds.item_ids() == e.item)[0])
        assert plan.changed[row] and e.kinds == tuple(plan.kinds(row))
        marked = [i for i, (_, m) in enumerate(t for piece, _ in e.before for t in piece) if m]
        assert marked == changed_positions(list(ds.tags[row]), plan.tags[row]) and marked
    unchanged = {f.label: f.delta for f in token_preview.plan_figures(plan_tokens(ds, TokenRecipe()))}
    assert unchanged["Train sentences"] is None and unchanged["Train mentions"] is None
    fig = token_preview.mention_chart(plan)
    assert fig.layout.title.text == "Train mentions per type" and fig.layout.yaxis.title.text == "mentions"
    assert token_preview.source_line("toy · v1", ds) == "**From:** toy · v1 — 120 sentences, 4 entity types"
    assert token_preview.examples(ds, plan_tokens(ds, TokenRecipe(thin=(("PER", 0.5),))), k=3) == []


# ---------------------------------------------------------------------- marks and span edits


def test_marked_segments_keep_spans_whole_with_each_tokens_mark():
    tokens, tags = ["EU", "rejects", "German", "call", "."], ["B-ORG", "O", "B-MISC", "O", "O"]
    assert marked_segments(tokens, tags, {2, 3}) == [
        ([("EU", False)], "ORG"),
        ([("rejects", False)], None),
        ([("German", True)], "MISC"),
        ([("call", True), (".", False)], None),
    ]
    assert tags_words(tokens, tags) == "EU (ORG), German (MISC)" and tags_words(["a"], ["O"]) == "no entity"


def test_changed_positions_and_retag_span():
    given = ["B-PER", "I-PER", "I-PER", "O", "B-LOC"]
    assert changed_positions(given, ["B-ORG", "I-ORG", "I-ORG", "O", "B-LOC"]) == [0, 1, 2]  # a type
    assert changed_positions(given, ["B-PER", "I-PER", "O", "O", "B-LOC"]) == [0, 1, 2]  # a boundary: the span is another
    assert changed_positions(given, given) == []
    # a run inside a span cuts it in two, each side a span of its own
    assert retag_span(given, 1, 2, "ORG") == ["B-PER", "B-ORG", "B-PER", "O", "B-LOC"]
    assert retag_span(given, 2, 3, None) == ["B-PER", "I-PER", "O", "O", "B-LOC"]  # shrink by its last token
    assert retag_span(given, 3, 5, "LOC") == ["B-PER", "I-PER", "I-PER", "B-LOC", "I-LOC"]  # extend over O into the next
    assert retag_span(given, 0, 5, "O") == ["O"] * 5
    for start, end in ((2, 2), (-1, 2), (0, 6)):
        with pytest.raises(DataError, match="not a run"):
            retag_span(given, start, end, "PER")


def test_modules_the_pages_import_do_not_import_torch_or_streamlit():
    modules = [
        "core.simulate.tokens",
        "core.simulate.token_preview",
        "core.diagnose.tokens",
        "core.diagnose.token_review",
        "core.tokens.marks",
    ]
    code = f"import sys; import {', '.join(modules)}; print('torch' in sys.modules, 'streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert out.stdout.strip() == "False False", out.stderr


# ---------------------------------------------------------------------- the Simulate page


def conll_slice(store: Store) -> int:
    """200 CoNLL-2003 sentences (the first 160 train, 20 val, 20 test) as a stored version."""
    from core.data.demos import load_conll2003

    ds = load_conll2003().dataset
    rows = np.r_[np.flatnonzero(ds.split == 0)[:160], np.flatnonzero(ds.split == 1)[:20], np.flatnonzero(ds.split == 2)[:20]]
    return store.save_dataset(ds.subset(rows), source="demo:conll2003-slice", note="200 sentences")


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.timeout(300)
@needs_asset("conll2003")
def test_simulate_page_previews_and_creates_a_token_version(home):
    from tests.test_train_pages import open_page

    store = Store(home)
    parent = conll_slice(store)
    at = open_page("app_pages/simulate.py")
    for key in ("sm_tok_drop", "sm_tok_thin"):
        assert at.multiselect(key=key).options == ["LOC", "MISC", "ORG", "PER"]
    for key in ("sm_tok_thin_keep", "sm_tok_flip", "sm_tok_delete", "sm_tok_shift"):
        assert at.slider(key=key)
    assert not [r for r in at.radio if r.key == "sm_imbalance"]  # the classification recipe is not drawn
    assert _metrics(at)["Sentences with wrong tags"] == "0"
    assert at.button(key="simulate_create").proto.disabled  # nothing to create yet
    at.slider(key="sm_tok_delete").set_value(0.2)
    at.selectbox(key="sm_tok_flip_from").set_value("PER")
    at.run()
    at.selectbox(key="sm_tok_flip_to").set_value("ORG")
    at.slider(key="sm_tok_flip").set_value(0.3)
    at.run()
    assert not at.exception, at.exception
    m = _metrics(at)
    plan = plan_tokens(store.load_dataset(parent), TokenRecipe(flip_rate=0.3, flip_mapping=(("PER", "ORG"),), delete_rate=0.2))
    assert m["Sentences with wrong tags"] == str(int(plan.changed.sum())) != "0"
    assert m["Spans changed"] == str(sum(plan.change_counts().values()))
    assert any("span deleted" in i.value and "type flipped" in i.value for i in at.info)
    assert any("PER→ORG" in c.value for c in at.caption)
    assert any("before:" in h.proto.body and "<u " in h.proto.body for h in at.get("html"))  # examples, changes underlined
    at.button(key="simulate_create").click()
    at.run()
    assert not at.exception, at.exception
    child = max(v.id for v in store.versions())
    info = store.version(child)
    assert info.kind == "simulate" and info.parent_id == parent and info.params[PARAMS_KEY]["delete_rate"] == 0.2
    assert info.params[PARAMS_KEY]["flip_mapping"] == [["PER", "ORG"]]
    assert any("made it the current dataset" in s.value for s in at.success)
    assert any("was simulated from this one" in c.value for c in at.caption)
    assert at.button(key="simulate_check")  # the detector can be checked against the truth


@pytest.mark.slow
@pytest.mark.timeout(300)
@needs_asset("conll2003")
@needs_asset("minilm")
@pytest.mark.usefixtures("shared_embeddings")
def test_simulate_page_grades_the_token_detector(home):
    from core.diagnose.tokens import is_cached
    from tests.test_train_pages import open_page, wait_for

    store = Store(home)
    parent = conll_slice(store)
    child = save_simulated_tokens(store, parent, TokenRecipe(flip_rate=0.1, delete_rate=0.1, seed=1))
    simulated = store.load_dataset(child)
    at = open_page("app_pages/simulate.py")
    at.button(key="simulate_check").click()  # the token diagnosis, in the background
    at.run()
    assert not at.exception, at.exception
    assert wait_for(lambda: is_cached(simulated), timeout=180)
    at.run()
    assert not at.exception, at.exception
    m = _metrics(at)
    assert m["Sentences with wrong tags (truth)"] == str(int(simulated.meta["sim_corrupted"].sum()))
    assert m["Precision"].endswith("%") and m["Recall"].endswith("%") and m["F1"].endswith("%")
    table = next(d.value for d in at.dataframe if "named right" in d.value.columns)
    assert set(table["change"]) == {"type flipped", "span deleted"}


SIMULATE_TOKENS = {  # widget kind, key, a value that is not the default
    "sm_tok_drop": ("multiselect", ["MISC"]),
    "sm_tok_drop_mode": ("radio", "sentences"),
    "sm_tok_thin": ("multiselect", ["LOC"]),
    "sm_tok_thin_keep": ("slider", 0.5),
    "sm_tok_flip": ("slider", 0.1),
    "sm_tok_flip_from": ("selectbox", "PER"),
    "sm_tok_flip_to": ("selectbox", "LOC"),
    "sm_tok_delete": ("slider", 0.15),
    "sm_tok_shift": ("slider", 0.05),
    "sm_seed": ("number_input", 7),
    "sm_tok_draw": ("number_input", 3),
}


@pytest.mark.timeout(300)
@needs_asset("conll2003")
def test_simulate_token_settings_stay(home):
    from tests.test_settings_stay import go, open_app, timers_fire

    store = Store(home)
    conll_slice(store)
    at = open_app("app_pages/simulate.py")
    for key, (kind, value) in SIMULATE_TOKENS.items():  # one at a time: a choice draws the next widgets
        getattr(at, kind)(key=key).set_value(value)
        at.run()
        assert not at.exception, (key, at.exception)
    summary = next(c.value for c in at.caption if "Val and test are unchanged" in c.value)
    assert "PER→LOC" in summary and "dropped MISC (sentences left out)" in summary and "seed 7" in summary, summary

    timers_fire(at)  # the sidebar's runner line, on the page being left
    go(at, "app_pages/runs.py")
    timers_fire(at)
    go(at, "app_pages/simulate.py")
    for key, (kind, value) in SIMULATE_TOKENS.items():
        assert getattr(at, kind)(key=key).value == (pytest.approx(value) if isinstance(value, float) else value), key
    assert any(c.value == summary for c in at.caption)  # the same recipe, previewed again


def test_true_tags_of_a_version_without_truth_are_its_own():
    ds = sentences(10)
    assert true_tags(ds) == list(ds.tags) and sentence_kinds(ds) == [set()] * 10 and not has_token_truth(ds)
    stored = json.dumps(["O"] * len(ds.tags[0]))
    meta = ds.meta.assign(sim_true_tags=[stored] + [""] * 9)
    assert true_tags(Dataset(ds.name, "tokens", ds.items, ds.labels, ds.class_names, ds.split, meta, ds.tags))[0] == tuple(
        ["O"] * len(ds.tags[0])
    )
