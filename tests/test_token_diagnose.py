"""Diagnose for token (NER) data: the token diagnosis (stages, cache by content, the background job),
the sentence cleaning plan (tags changed, sentences dropped, numbers kept, undo with the reviews
back), the review queue and bulk decisions; and the Diagnose page on token data (the diagnosis run
from the page, keep / relabel / edit / drop changing the plan, a cleaning saved and undone, settings
kept across pages).

Most tests use word vectors made up to cluster by type (``fake_vectors``, as in
tests/test_token_detect.py) in place of MiniLM's, patched into ``core.tokens.embed``: the diagnosis
cache is keyed by the sentences, not by the vectors, so the page then reads it as MiniLM's. Only the
tests marked slow load MiniLM.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.data.dataset import Dataset
from core.diagnose import token_review as tr
from core.diagnose import tokens as dt
from core.errors import DataError
from core.store import Store
from core.tokens import embed
from core.tokens.corrupt import inject_noise
from core.tokens.data import token_dataset
from core.tokens.spans import spans
from tests.conftest import needs_asset

TYPES = ("PER", "LOC", "ORG", "MISC")
FILLER = ["the", "a", "of", "in", "on", "said", "that", "was", "for", "with", "by", "to", "and", "at"]


def corpus(n: int = 300, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of filler words holding 1-2 names of the four types; names recur."""
    rng = np.random.default_rng(seed)
    vocab = {t: [f"{t.title()}{chr(97 + i % 26)}{i}" for i in range(30)] for t in TYPES}
    tokens, tags = [], []
    for _ in range(n):
        words = [str(w) for w in rng.choice(FILLER, int(rng.integers(5, 10)))]
        labels = ["O"] * len(words)
        for _ in range(int(rng.integers(1, 3))):
            kind = TYPES[int(rng.integers(len(TYPES)))]
            name = [str(w) for w in rng.choice(vocab[kind], int(rng.integers(1, 3)))]
            at = int(rng.integers(0, len(words) + 1))
            if at < len(labels) and labels[at].startswith("I-"):
                continue
            words[at:at] = name
            labels[at:at] = [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
        tokens.append(words)
        tags.append(labels)
    return tokens, tags


def noisy_sentences(n: int = 300) -> tuple[Dataset, list]:
    """The corpus with 10 % of its entity sentences corrupted once each; 80 / 10 / 10 split."""
    tokens, tags = corpus(n)
    noisy, truth = inject_noise(tokens, tags, sentence_share=0.10, seed=1)
    split = np.where(np.arange(n) % 10 < 8, 0, np.where(np.arange(n) % 10 == 8, 1, 2))
    return token_dataset("toy NER", tokens, noisy, split, pd.DataFrame({"source": ["a", "b"] * (n // 2)})), truth


def fake_vectors(tokens, d: int = 32, seed: int = 0) -> np.ndarray:
    """A vector per word: its type's centre (read from the word's form) plus the form's own offset."""
    rng = np.random.default_rng(seed)
    centres = {t: rng.normal(size=d) * 2.0 for t in ("O", *TYPES)}
    forms: dict[str, np.ndarray] = {}
    rows = []
    for sent in tokens:
        for w in sent:
            kind = next((t for t in TYPES if w.startswith(t.title())), "O")
            if w not in forms:
                forms[w] = rng.normal(size=d) * 0.5
            rows.append(centres[kind] + forms[w])
    return np.asarray(rows, np.float32)


@pytest.fixture
def fake_words(monkeypatch):
    """``core.tokens.embed.word_embeddings`` made up (no MiniLM); counts its calls."""
    calls = []

    def word_embeddings(tokens_list, *, backbone="minilm", progress=None, **_):
        calls.append(len(tokens_list))
        if progress is not None:
            progress(len(tokens_list) // 2, len(tokens_list))
            progress(len(tokens_list), len(tokens_list))
        return SimpleNamespace(vectors=fake_vectors(tokens_list))

    monkeypatch.setattr(embed, "word_embeddings", word_embeddings)
    return calls


# ---------------------------------------------------------------------- the diagnosis


def test_diagnosis_stages_cache_and_key(fake_words):
    ds, truth = noisy_sentences()
    stages = []
    d = dt.diagnose_tokens(ds, progress=lambda stage, frac: stages.append((stage.split(" (")[0], frac)))
    assert [s for s, _ in stages][:1] == ["embedding words"] and stages[-3:] == [
        ("out-of-fold probe", 0.6),
        ("scoring", 0.95),
        ("done", 1.0),
    ]
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(stages))
    assert d.n_sentences == len(ds) and d.issues.n_issues > 0 and set(d.seconds) == {"embedding words", "out-of-fold probe", "scoring"}
    corrupted = np.array([t is not None for t in truth])
    assert corrupted[d.issues.is_issue].mean() > 0.5  # most flags are real on this easy corpus
    # cached: read back whole, without embedding again
    assert dt.is_cached(ds) and len(fake_words) == 1
    again = dt.diagnose_tokens(ds, progress=lambda stage, frac: stages.append((stage, frac)))
    assert stages[-1] == ("loaded from cache", 1.0) and len(fake_words) == 1
    for name in ("token_score", "sentence_score", "is_issue", "suspect", "suggested", "offsets"):
        assert np.array_equal(getattr(again.issues, name), getattr(d.issues, name)), name
    assert again.issues.issues == d.issues.issues and again.issues.tag_names == d.issues.tag_names
    assert again.suspected_kinds() == d.suspected_kinds() and again.seconds == pytest.approx(d.seconds)
    # the key: tags, split and settings count; meta does not
    path = dt.cache_path(ds)
    assert dt.cache_path(ds, dt.TokenDiagnoseConfig(n_folds=4)) != path
    relabelled = token_dataset(ds.name, list(ds.items), [tuple(["O"] * len(ds.tags[0])), *ds.tags[1:]], ds.split)
    assert dt.cache_path(relabelled) != path
    assert dt.cache_path(token_dataset(ds.name, list(ds.items), list(ds.tags), ds.split)) == path


def test_diagnosis_refuses_data_it_cannot_judge(fake_words):
    none = token_dataset("plain", [["a", "b"]] * 10, [["O", "O"]] * 10, [0] * 10)
    with pytest.raises(DataError, match="holds no entity"):
        dt.diagnose_tokens(none)
    few = token_dataset("few", [["Ann", "ran"]] * 3, [["B-PER", "O"]] * 3, [0] * 3)
    with pytest.raises(DataError, match="cannot be split into 5 folds"):
        dt.diagnose_tokens(few)
    text = Dataset("t", "text", np.array(["a", "b"], dtype=object), [0, 1], ["x", "y"], [0, 0])
    with pytest.raises(DataError, match="needs sentences with tags"):
        dt.cache_path(text)
    assert not fake_words  # refused before embedding


def test_the_background_job_reports_and_ends(fake_words):
    ds, _ = noisy_sentences(200)
    job = dt.TokenDiagnosisJob(ds)
    assert job.status() == ("starting", 0.0, "full") and job.seconds_left() is None
    job.start()
    job.join(timeout=120)
    assert not job.is_alive() and job.error is None
    assert job.status() == ("done", 1.0, "done") and job.seconds_left() is None
    assert job.result is not None and dt.is_cached(ds)
    failing = dt.TokenDiagnosisJob(token_dataset("plain", [["a"]] * 8, [["O"]] * 8, [0] * 8))
    failing.start()
    failing.join(timeout=60)
    assert failing.status()[2] == "failed" and "holds no entity" in str(failing.error)
    words = dt.progress_words("embedding words (10 of 200 sentences)", 42.0)
    assert words == "Diagnosing every sentence: embedding words (10 of 200 sentences)… — about 40 s left"


def test_seconds_left_follow_the_measured_speed():
    ds, _ = noisy_sentences(100)
    job = dt.TokenDiagnosisJob(ds)
    job._plan, job._start = (100.0, 10.0), 0.0
    assert job.seconds_left(now=30.0) == pytest.approx(80.0)  # predicted: 70 s of embedding left + 10
    job._embedding(25, 100)
    job._embedded = (25, 100, 10.0)  # a quarter in 10 s: 30 s more
    assert job.seconds_left(now=10.0) == pytest.approx(40.0)
    job._report("out-of-fold probe", 0.6)
    job._probe_start = 50.0
    assert job.seconds_left(now=54.0) == pytest.approx(6.0)


# ---------------------------------------------------------------------- the cleaning plan


def small() -> Dataset:
    tokens = [["Ann", "met", "Bob"], ["in", "Rome"], ["IBM", "grew"], ["nothing", "here"], ["Paris", "Hilton"]]
    tags = [["B-PER", "O", "B-PER"], ["O", "B-LOC"], ["B-ORG", "O"], ["O", "O"], ["B-LOC", "I-LOC"]]
    return token_dataset("small", tokens, tags, [0, 0, 0, 1, 2], pd.DataFrame({"domain": list("xyxyx")}))


def test_plan_relabels_drops_keeps_numbers_and_makes_labels_anew():
    plan = tr.TokenCleaningPlan()
    plan.decide(1, "drop")
    plan.decide(4, "relabel", ["B-PER", "I-PER"])
    plan.decide(2, "keep")
    plan.decide(1, "relabel", ["O", "B-ORG"])  # changed my mind
    plan.decide(0, "drop")
    assert plan.decision(1) == "relabel" and plan.decision(2) == "keep" and plan.decision(3) is None
    assert plan.summary() == "dropped 1 sentence, relabelled 2" and plan.n_changes == 3
    assert plan.decided_mask(5).tolist() == [True, True, True, False, True]
    out = plan.apply(small())
    assert [list(t) for t in out.items] == [["in", "Rome"], ["IBM", "grew"], ["nothing", "here"], ["Paris", "Hilton"]]
    assert [list(t) for t in out.tags] == [["O", "B-ORG"], ["B-ORG", "O"], ["O", "O"], ["B-PER", "I-PER"]]
    assert out.meta["source_item"].tolist() == [1, 2, 3, 4] and out.meta["domain"].tolist() == list("yxyx")
    assert out.split.tolist() == [0, 0, 1, 2]
    assert out.class_names == ["(no entity)", "ORG", "PER"] and out.labels.tolist() == [1, 1, 0, 2]
    again = tr.TokenCleaningPlan.from_params(plan.to_params(small()))
    assert (again.drop, again.relabel, again.keep) == (plan.drop, plan.relabel, plan.keep)
    assert plan.to_params(small())["reviewed_ids"] == [1, 2, 4]


def test_plan_refuses_what_it_cannot_apply():
    plan = tr.TokenCleaningPlan()
    with pytest.raises(ValueError, match="needs the sentence's new tags"):
        plan.decide(0, "relabel")
    with pytest.raises(ValueError, match="unknown action"):
        plan.decide(0, "burn")
    plan.decide(9, "drop")
    with pytest.raises(DataError, match=r"Sentences \[9\] are not in this version"):
        plan.apply(small())
    plan = tr.TokenCleaningPlan(relabel={0: ("O",)})
    with pytest.raises(DataError, match="one tag per token"):
        plan.apply(small())
    with pytest.raises(DataError, match="drops every sentence"):
        tr.TokenCleaningPlan(drop=set(range(5))).apply(small())


def test_a_token_cleaning_is_a_new_version_and_undo_gives_the_reviews_back(store):
    vid = store.save_dataset(small(), source="upload:small.conll")
    with pytest.raises(DataError, match="changes nothing yet"):
        tr.save_token_cleaning(store, vid, tr.TokenCleaningPlan(keep={1}))
    plan = tr.TokenCleaningPlan()
    plan.decide(0, "drop")
    plan.decide(2, "relabel", ["B-ORG", "B-MISC"])
    plan.decide(4, "keep")
    child = tr.save_token_cleaning(store, vid, plan)
    info = store.version(child)
    assert info.kind == "clean" and info.parent_id == vid and tr.is_token_cleaning(info.params)
    assert info.note == "dropped 1 sentence, relabelled 1" and info.params["drop"] == [0]
    cleaned = store.load_dataset(child)
    assert len(cleaned) == 4 and cleaned.item_ids().tolist() == [1, 2, 3, 4]
    assert list(cleaned.tags[1]) == ["B-ORG", "B-MISC"] and "MISC" in cleaned.class_names
    # the child's starting plan keeps what was reviewed (relabelled, kept) as reviewed
    start = tr.starting_token_plan(store, child, cleaned)
    assert start.keep == {1, 3} and not start.n_changes
    # a cleaning of the child, then undo: the child's reviews come back, the parent untouched
    again = tr.TokenCleaningPlan(drop={0})
    grandchild = tr.save_token_cleaning(store, child, again, dataset=cleaned)
    assert store.load_dataset(grandchild).item_ids().tolist() == [2, 3, 4]
    parent, back = tr.undo_token_cleaning(store, grandchild)
    assert parent == child and store.version(grandchild).archived and (back.drop, back.relabel, back.keep) == ({0}, {}, set())
    parent, back = tr.undo_token_cleaning(store, child)
    assert parent == vid and [v.id for v in store.versions()] == [vid]
    assert (back.drop, back.relabel, back.keep) == ({0}, {2: ("B-ORG", "B-MISC")}, {4})
    assert len(store.load_dataset(vid)) == 5  # nothing deleted
    with pytest.raises(DataError, match="not a cleaned token version"):
        tr.saved_token_plan(store, vid)


# ---------------------------------------------------------------------- queue, bulk, figures


@pytest.fixture
def diagnosed(fake_words):
    ds, _ = noisy_sentences()
    d = dt.diagnose_tokens(ds)
    return ds, d, tr.token_findings(d, ds)


def test_findings_queue_and_headline(diagnosed):
    ds, d, f = diagnosed
    assert f.rank.tolist() == [i.sentence for i in d.issues.issues] and f.flagged.sum() == len(f.rank)
    plan = tr.TokenCleaningPlan()
    queue = tr.review_queue(f, plan, order=tr.FLAGGED_FIRST)
    assert queue.tolist() == f.rank.tolist()
    everything = tr.review_queue(f, plan, order=tr.LOWEST_SCORE_FIRST)
    assert len(everything) == len(ds) and np.all(np.diff(f.score[everything]) >= 0)
    typed = tr.review_queue(f, plan, order=tr.FLAGGED_FIRST, kinds=["type"])
    assert typed.tolist() == [i for i in f.rank.tolist() if "type" in d.issue_of()[i].kinds]
    train = tr.review_queue(f, plan, order=tr.FLAGGED_FIRST, splits=[0])
    held_out = tr.review_queue(f, plan, order=tr.FLAGGED_FIRST, splits=[1, 2])
    assert train.tolist() == [i for i in queue.tolist() if ds.split[i] == 0]
    assert held_out.tolist() == [i for i in queue.tolist() if ds.split[i] != 0] and len(train) + len(held_out) == len(queue)
    plan.decide(int(queue[0]), "keep")
    assert tr.review_queue(f, plan, order=tr.FLAGGED_FIRST).tolist() == queue[1:].tolist()
    assert tr.review_queue(f, plan, order=tr.FLAGGED_FIRST, hide_reviewed=False).tolist() == queue.tolist()
    figures = {x.label: x for x in tr.headline(f)}
    n, entity = int(f.flagged.sum()), sum(1 for t in ds.tags if spans(t))
    assert figures["Suspect sentences"].value == f"{n:,}"
    among = int(sum(1 for i in f.rank if spans(ds.tags[i])))
    assert figures["Of the entity sentences"].value == f"{among / entity:.1%}"
    for kind, words in tr.SUSPECTED.items():
        assert figures[words.capitalize()].value == str(sum(kind in i.kinds for i in d.issues.issues))
    i = int(queue[0])
    assert tr.sentence_caption(ds, f, i).startswith(f"#{i} · ") and "score" in tr.sentence_caption(ds, f, i)
    with pytest.raises(DataError, match="another version"):
        tr.token_findings(d, ds.subset(np.arange(10)))


def test_bulk_decisions_by_kind_and_score(diagnosed):
    ds, d, f = diagnosed
    plan = tr.TokenCleaningPlan()
    every = tr.bulk_items(f, tr.TokenBulkFilter(), plan)
    assert every.tolist() == sorted(f.rank.tolist())
    low = tr.bulk_items(f, tr.TokenBulkFilter(score=(0.0, 0.05)), plan)
    assert set(low.tolist()) == {i for i in every.tolist() if f.score[i] <= 0.05}
    relabel = tr.bulk_targets(f, every, "relabel", ds)
    assert relabel.tolist() == [i for i in every.tolist() if tuple(d.issue_of()[i].suggested) != tuple(ds.tags[i])]
    words = tr.bulk_words(f, every, "relabel", plan, ds)
    assert words.startswith(f"**Relabel {len(relabel):,} sentences** to the tags the detector suggests")
    assert tr.apply_bulk(plan, f, every, "relabel", ds) == len(relabel)
    assert all(plan.relabel[i] == tuple(d.issue_of()[i].suggested) for i in relabel.tolist())
    assert len(tr.bulk_items(f, tr.TokenBulkFilter(), plan)) == len(every) - len(relabel)  # open only: the relabelled ones are gone
    dropped = tr.apply_bulk(plan, f, tr.bulk_items(f, tr.TokenBulkFilter(open_only=False), plan), "drop", ds)
    assert dropped == len(every) and plan.drop == set(every.tolist()) and not plan.relabel
    assert "had a decision already" in tr.bulk_words(f, every, "keep", plan, ds)
    with pytest.raises(ValueError, match="unknown kinds"):
        tr.TokenBulkFilter(kinds=("colour",))
    with pytest.raises(ValueError, match="score range"):
        tr.TokenBulkFilter(score=(0.5, 0.2))


# ---------------------------------------------------------------------- the Diagnose page


def _diagnosed_version(store: Store, fake_words) -> tuple[int, Dataset, dt.TokenDiagnosis]:
    ds, _ = noisy_sentences()
    vid = store.save_dataset(ds, source="upload:toy.conll")
    return vid, ds, dt.diagnose_tokens(ds)  # cached: the page reads it


def _plan_line(at) -> str:
    return next(md.value for md in at.markdown if "Cleaning plan" in md.value)


@pytest.mark.timeout(300)
def test_diagnose_page_reviews_token_suspects_saves_and_undoes(home, fake_words):
    from tests.test_train_pages import open_page

    store = Store(home)
    vid, ds, d = _diagnosed_version(store, fake_words)
    at = open_page("app_pages/diagnose.py")
    m = {x.label: x.value for x in at.metric}
    assert m["Suspect sentences"] == str(d.issues.n_issues) and "Wrong type" in m and "Boundary" in m
    assert not [t for t in at.get("tab")]  # the classification tabs are not drawn
    first, second, third = (i.sentence for i in d.issues.issues[:3])
    assert any(f"**1 of {d.issues.n_issues}** · #{first} · " in md.value for md in at.markdown)
    shown = [h.proto.body for h in at.get("html")]
    assert any("<b>Given</b>" in b for b in shown) and any("<u " in b for b in shown)  # suspect tokens underlined
    at.button(key="tq_drop").click()  # the first: dropped, the queue moves on
    at.run()
    assert not at.exception, at.exception
    assert "dropped 1 sentence, relabelled 0, 0 reviewed and kept" in _plan_line(at)
    assert any(f"· #{second} · " in md.value for md in at.markdown)
    # the second: a span edited by hand — its first token made an entity of another type
    other = next(t for t in TYPES if f"-{t}" not in ds.tags[second][0])
    at.select_slider(key=f"tok_edit_run_{vid}_{second}").set_value((0, 0))
    at.selectbox(key=f"tok_edit_type_{vid}_{second}").set_value(other)
    at.button(key=f"tok_edit_apply_{vid}_{second}").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[f"plan_{vid}"].relabel[second][0] == f"B-{other}"
    assert "dropped 1 sentence, relabelled 1, 0 reviewed and kept" in _plan_line(at)
    assert any(f"· #{third} · " in md.value for md in at.markdown)  # the edited one is reviewed: hidden
    at.button(key="tq_keep").click()
    at.run()
    assert "dropped 1 sentence, relabelled 1, 1 reviewed and kept" in _plan_line(at)
    fourth = d.issues.issues[3]
    assert any(f"· #{fourth.sentence} · " in md.value for md in at.markdown)
    changes = tuple(fourth.suggested) != tuple(ds.tags[fourth.sentence])
    assert at.button(key="tq_relabel").proto.disabled is not changes  # nothing to relabel to when the suggestion is the given tags
    if changes:
        at.button(key="tq_relabel").click()
        at.run()
        assert at.session_state[f"plan_{vid}"].relabel[fourth.sentence] == tuple(fourth.suggested)
    # the reviewed ones shown again: the edited sentence with its tags in the plan
    at.toggle(key="dg_tok_hide").set_value(False)
    at.session_state[f"token_cursor_{vid}"] = (second, 1)
    at.run()
    assert any(f"**2 of {d.issues.n_issues}** · #{second} · " in md.value for md in at.markdown)
    assert any("<b>In the plan</b>" in h.proto.body for h in at.get("html"))
    assert any("Decision: **relabel**" in c.value for c in at.caption)

    plan = at.session_state[f"plan_{vid}"]
    at.button(key="save_plan").click()
    at.run()
    assert not at.exception, at.exception
    child = max(v.id for v in store.versions())
    info = store.version(child)
    assert info.kind == "clean" and info.parent_id == vid and info.params["drop"] == [first]
    cleaned = store.load_dataset(child)
    assert len(cleaned) == len(ds) - 1 and first not in cleaned.item_ids()
    for row, tags in plan.relabel.items():
        assert tuple(cleaned.tags[int(np.flatnonzero(cleaned.item_ids() == row)[0])]) == tags
    assert any(f"Saved v{child}" in s.value for s in at.success)
    assert any("cleaned version" in i.value for i in at.info) and any("has not been diagnosed" in i.value for i in at.info)
    at.button(key="undo_clean").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["current_version"] == vid and store.version(child).archived
    back = at.session_state[f"plan_{vid}"]
    assert (back.drop, back.relabel, back.keep) == (plan.drop, plan.relabel, plan.keep)
    assert any(f"back to v{vid}" in s.value for s in at.success)
    assert {x.label for x in at.metric} >= {"Suspect sentences"}  # the diagnosis is cached: shown again at once


@pytest.mark.timeout(300)
def test_bulk_decisions_on_the_page(home, fake_words):
    from tests.test_train_pages import open_page

    store = Store(home)
    vid, _, d = _diagnosed_version(store, fake_words)
    at = open_page("app_pages/diagnose.py")
    at.session_state["token_bulk_panel_open"] = True
    at.run()
    at.multiselect(key="dg_tok_bulk_kinds").set_value(["boundary"])
    at.radio(key="dg_tok_bulk_action").set_value("drop")
    at.run()
    n = sum("boundary" in i.kinds for i in d.issues.issues)
    assert any(md.value.startswith(f"**Drop {n:,} sentences**") for md in at.markdown)
    at.button(key="tok_bulk_apply").click()
    at.run()
    at.button(key="tok_bulk_confirm").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[f"plan_{vid}"].drop == {i.sentence for i in d.issues.issues if "boundary" in i.kinds}
    assert f"dropped {n:,} sentence" in _plan_line(at)


DIAGNOSE_TOKENS = {  # widget kind, key, a value that is not the default
    ("multiselect", "dg_tok_kinds"): ["type", "boundary"],
    ("multiselect", "dg_tok_splits"): [0],
    ("radio", "dg_tok_order"): tr.ORDERS[1],
    ("toggle", "dg_tok_hide"): False,
    ("multiselect", "dg_tok_bulk_kinds"): ["missed span"],
    ("slider", "dg_tok_bulk_score"): (0.0, 0.4),
    ("toggle", "dg_tok_bulk_open"): False,
    ("radio", "dg_tok_bulk_action"): "keep",
}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_diagnose_token_settings_stay(home, fake_words):
    from tests.test_settings_stay import go, open_app, timers_fire

    store = Store(home)
    _diagnosed_version(store, fake_words)
    at = open_app("app_pages/diagnose.py")
    at.session_state["token_bulk_panel_open"] = True
    at.run()
    for (kind, key), value in DIAGNOSE_TOKENS.items():
        getattr(at, kind)(key=key).set_value(value)
        at.run()
        assert not at.exception, (key, at.exception)
    at.number_input(key="dg_tok_folds").set_value(4)
    at.run()
    assert any("has not been diagnosed" in i.value for i in at.info)  # other settings: not diagnosed yet

    timers_fire(at)  # the sidebar's runner line, on the page being left
    go(at, "app_pages/runs.py")
    timers_fire(at)
    go(at, "app_pages/diagnose.py")
    assert at.number_input(key="dg_tok_folds").value == 4
    at.number_input(key="dg_tok_folds").set_value(5)  # back to the diagnosed settings
    at.session_state["token_bulk_panel_open"] = True
    at.run()
    assert not at.exception, at.exception
    for (kind, key), value in DIAGNOSE_TOKENS.items():
        assert getattr(at, kind)(key=key).value == value, key


@pytest.mark.slow
@pytest.mark.timeout(400)
@needs_asset("conll2003")
@needs_asset("minilm")
@pytest.mark.usefixtures("shared_embeddings")
def test_diagnose_page_runs_the_token_diagnosis_in_the_background(home):
    from tests.test_token_simulate import conll_slice
    from tests.test_train_pages import open_page, wait_for

    store = Store(home)
    vid = conll_slice(store)
    ds = store.load_dataset(vid)
    at = open_page("app_pages/diagnose.py")
    assert any("has not been diagnosed" in i.value and "200 sentences" in i.value for i in at.info)
    at.button(key="run_diagnosis").click()
    at.run()
    assert not at.exception, at.exception
    assert wait_for(lambda: dt.is_cached(ds), timeout=300)
    at.run()
    assert not at.exception, at.exception
    d = dt.diagnose_tokens(ds)  # from the cache
    m = {x.label: x.value for x in at.metric}
    assert m["Suspect sentences"] == str(d.issues.n_issues) and d.issues.n_issues > 0
    at.button(key="tq_keep").click()
    at.run()
    assert at.session_state[f"plan_{vid}"].keep == {d.issues.issues[0].sentence}
    assert any("Stage times: embedding words" in c.value for c in at.caption)
