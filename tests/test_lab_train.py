"""The knowledge-gap lab's metrics, mitigations and training on small corpora."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import DataError
from core.lab.corpus import ATTRIBUTES, QUESTIONS, TEMPLATES, UNKNOWN, CorpusSpec, answer_words, make_corpus, stated_values
from core.lab.metrics import answer_probs, by_exposure, kalai_vempala, lab_hallucination, rows_of
from core.lab.settings import LabSettings
from core.lab.train import (
    answer_time,
    asked,
    epoch_texts,
    retrieved,
    split_people,
    taught_people,
    taught_questions,
    train_lab,
    unfamiliar_rows,
)


def test_answer_probs_restrict_and_renormalise():
    p = np.array([[0.5, 0.1, 0.3, 0.1], [1.0, 0.0, 0.0, 0.0]])
    out = answer_probs(p, np.array([1, 2]))
    assert np.allclose(out, [[0.25, 0.75], [0.5, 0.5]])  # no mass on the answers: uniform


def test_by_exposure_by_hand():
    classes = ["a", "b", UNKNOWN]
    probs = np.array(
        [
            [0.95, 0.05, 0.0],  # seen 1×, right, confident
            [0.05, 0.95, 0.0],  # seen 1×, wrong, confident: a hallucination
            [0.6, 0.4, 0.0],  # seen 2×, right
            [0.92, 0.08, 0.0],  # held out: a confidently invented answer
            [0.3, 0.2, 0.5],  # held out: abstained
            [0.5, 0.4, 0.1],  # held out: invented, not confidently
        ]
    )
    labels = np.array([0, 0, 0, 0, 1, 1])
    exposure = np.array([1, 1, 2, 0, 0, 0])
    t = by_exposure(probs, labels, exposure, classes, tau=0.9)
    assert t[1]["accuracy"] == 0.5 and t[1]["hallucination"] == 0.5 and t[1]["n"] == 2
    assert t[2]["accuracy"] == 1.0 and t[2]["hallucination"] == 0.0
    assert t[0]["invented"] == pytest.approx(2 / 3) and t[0]["invented_confident"] == pytest.approx(1 / 3)
    assert t[0]["abstained"] == pytest.approx(1 / 3)
    assert [r["exposure"] for r in rows_of(t)] == [0, 1, 2]
    assert kalai_vempala(0.25, 0.05) == pytest.approx(0.2) and kalai_vempala(0.1, 0.3) == 0.0


def test_paraphrase_augmentation_rewrites_the_form_and_keeps_the_facts():
    c = make_corpus(CorpusSpec(n_people=20, buckets=(1, 3), held_out=0.0, noise=0.1, seed=0))
    rng = np.random.default_rng(0)
    plain, _ = epoch_texts(c, LabSettings(), rng)
    assert plain == c.bios
    aug, _ = epoch_texts(c, LabSettings(paraphrase_aug=True), rng)
    assert len(aug) == len(c.bios) and aug != c.bios
    for b, bio in enumerate(aug):
        for v in stated_values(c, b).values():
            assert f" {v} " in f" {bio} "  # the stated value, wrong ones included
    assert len({" ".join(b.split()[2:4]) for b in aug}) > 3  # templates and orders vary


def test_repeating_rare_biographies_adds_exact_copies():
    c = make_corpus(CorpusSpec(n_people=20, buckets=(1, 4), held_out=0.0, seed=1))
    once = int((c.exposure == 1).sum())
    bios, _ = epoch_texts(c, LabSettings(repeat_rare=3), np.random.default_rng(0))
    assert len(bios) == len(c.bios) + 3 * once


def test_questions_train_on_one_share_and_are_asked_of_the_rest():
    c = make_corpus(CorpusSpec(n_people=40, held_out=0.25, seed=2))
    s = LabSettings(qa_share=0.5, idk_share=0.4)
    qa, idk = split_people(c, s)
    assert len(qa) == 15 and len(idk) == 4  # half of 30 shown, 0.4 of 10 held out
    assert np.all(c.exposure[qa] > 0) and np.all(c.exposure[idk] == 0)
    _, pairs = epoch_texts(c, s, np.random.default_rng(0))
    assert len(pairs) == (15 + 4) * len(ATTRIBUTES)
    assert sum(p.endswith(f" {UNKNOWN}") for p in pairs) == 4 * len(ATTRIBUTES)
    q = asked(c, s)
    assert set(q.person) == set(range(40)) - set(qa) - set(idk)
    assert q.prompt[0] == QUESTIONS[q.attribute[0]].format(name=c.people[q.person[0]])
    probe_q = asked(c, LabSettings())
    assert len(probe_q.prompt) == 40 * len(ATTRIBUTES)
    assert probe_q.prompt[0] == TEMPLATES[ATTRIBUTES[0]][0].split(" {value}")[0].format(name=c.people[0])


def test_true_answers_taught_for_held_out_people_train_and_are_not_asked():
    c = make_corpus(CorpusSpec(n_people=40, held_out=0.25, seed=2))
    plain = LabSettings(qa_share=0.5, idk_share=0.4)
    s = LabSettings(qa_share=0.5, idk_share=0.4, teach_unknown=0.3)
    assert [a.tolist() for a in split_people(c, s)] == [a.tolist() for a in split_people(c, plain)]  # the same people as without
    qa, idk = split_people(c, s)
    taught = taught_people(c, s)
    assert len(taught) == 3 and np.all(c.exposure[taught] == 0) and not set(taught) & set(idk)
    assert len(taught_people(c, plain)) == 0
    _, pairs = epoch_texts(c, s, np.random.default_rng(0))
    questions, truths = taught_questions(c, s)
    assert len(questions) == 3 * len(ATTRIBUTES) and truths[0] == str(c.facts[ATTRIBUTES[0]][taught[0]])
    assert [f"{q} {v}" for q, v in zip(questions, truths)] == pairs[-len(questions) :]
    assert set(asked(c, s).person) == set(range(40)) - set(qa) - set(idk) - set(taught)
    with pytest.raises(DataError, match="add up to at most 1"):
        LabSettings(qa_share=0.5, idk_share=0.6, teach_unknown=0.5)


def test_taught_unknown_facts_are_fitted_by_rote_over_training():
    c = make_corpus(CorpusSpec(n_people=24, buckets=(4,), held_out=0.5, paraphrases=2, seed=1))
    res = train_lab(c, LabSettings(epochs=40, eval_every=10, batch_size=8, n_embd=64, n_layer=2, seed=0, qa_share=0.5, teach_unknown=0.5))
    fits = [e["taught"] for e in res.evaluations]
    assert [f["n"] for f in fits] == [6 * len(ATTRIBUTES)] * 4
    assert fits[-1]["accuracy"] >= 0.8 and fits[-1]["accuracy"] > fits[0]["accuracy"]  # learned by rote, and not at once
    assert all(0 < f["confidence"] <= 1 for f in fits)


def test_answer_time_retrieval_and_abstention():
    c = make_corpus(CorpusSpec(n_people=10, buckets=(2,), held_out=0.3, seed=3))
    classes = answer_words(c)
    q = asked(c, LabSettings())
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(classes)) * 0.05, size=len(q.prompt))
    found = retrieved(c)
    out = answer_time(probs, q, c, classes, LabSettings(retrieval=True))
    for i, (p, a) in enumerate(zip(q.person, q.attribute)):
        if c.exposure[p] > 0:
            assert classes[out[i].argmax()] == found[(int(p), a)] == c.facts[a][p] and out[i].max() == 1.0
        else:
            assert np.array_equal(out[i], probs[i])  # a person the corpus never names: the model answers
    low = answer_time(probs, q, c, classes, LabSettings(abstain_below=0.5))
    unsure = probs.max(axis=1) < 0.5
    assert unsure.any() and np.all(low[unsure].argmax(axis=1) == classes.index(UNKNOWN))
    assert np.array_equal(low[~unsure], probs[~unsure])


def test_bad_lab_settings_say_what_to_change():
    with pytest.raises(DataError, match="question share above 0"):
        LabSettings(idk_share=0.5)
    with pytest.raises(DataError, match="unknown lab settings: speed"):
        LabSettings.from_dict({"speed": 1})
    assert LabSettings.from_dict(LabSettings(epochs=3, retrieval=True).to_dict()) == LabSettings(epochs=3, retrieval=True)


def test_a_small_model_learns_frequent_facts_and_not_absent_ones():
    c = make_corpus(CorpusSpec(n_people=16, buckets=(8,), held_out=0.25, paraphrases=5, shuffle=True, seed=0))
    seen: list[int] = []
    res = train_lab(
        c, LabSettings(epochs=30, eval_every=10, batch_size=8, n_embd=64, n_layer=2, seed=0), on_eval=lambda r: seen.append(r["epoch"])
    )
    assert seen == [10, 20, 30] and [e["epoch"] for e in res.evaluations] == seen
    table = res.evaluations[-1]["table"]
    assert table[8]["accuracy"] >= 0.8  # 12 people seen 8 times: learned
    assert table[0]["accuracy"] <= 0.3  # 4 people never seen: about chance (1 / 20 to 1 / 40 per attribute)
    assert res.tokens_trained > 0 and res.probs is not None and res.probs.shape == (16 * len(ATTRIBUTES), len(res.class_names))


def test_name_familiarity_scores_the_words_after_the_first_in_context():
    import torch

    from core.lab.model import LabModelSpec, build_model, build_tokenizer, encode, name_familiarity

    c = make_corpus(CorpusSpec(n_people=6, buckets=(1,), held_out=0.0, seed=0))
    tok = build_tokenizer(c)
    model = build_model(LabModelSpec(n_layer=1, n_embd=32, n_positions=64), len(tok))
    name = c.people[3]
    prompt = QUESTIONS["major"].format(name=name)
    got = name_familiarity(model, tok, [prompt, prompt + " and more"], [name, name])
    ids = encode(tok, [prompt])[0]
    at = ids.index(tok.convert_tokens_to_ids(name.split()[0]))
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], dim=-1)
    assert got[0] == pytest.approx(float(logp[at, ids[at + 1]]), abs=1e-5)  # the last name's word given all before it
    assert got[1] == pytest.approx(got[0], abs=1e-5)  # what follows the name does not count


def test_abstaining_on_unfamiliar_names_stops_invented_answers_and_keeps_known_facts():
    import core.lab.train as T

    c = make_corpus(CorpusSpec(n_people=20, buckets=(8,), held_out=0.25, paraphrases=5, shuffle=True, seed=0))
    kept: dict = {}
    build = T.build_model

    def keep(*a, **k):
        kept["model"] = build(*a, **k)
        return kept["model"]

    T.build_model = keep
    try:
        s = LabSettings(epochs=30, eval_every=30, batch_size=8, n_embd=64, n_layer=2, seed=0)  # completion probes
        plain = train_lab(c, s)
    finally:
        T.build_model = build
    q = asked(c, s)
    gated = LabSettings(**{**s.to_dict(), "abstain_unfamiliar": 0.05})
    flags = unfamiliar_rows(kept["model"], T.build_tokenizer(c), c, q, gated)
    assert flags is not None and unfamiliar_rows(kept["model"], T.build_tokenizer(c), c, q, s) is None
    held = q.exposure == 0
    assert flags[held].mean() >= 0.8 and flags[~held].mean() <= 0.25  # unseen names flagged, seen ones mostly not
    out = answer_time(plain.probs, q, c, plain.class_names, gated, flags)
    labels = np.asarray([plain.class_names.index(a) for a in q.answer])
    before = by_exposure(plain.probs, labels, q.exposure, plain.class_names)
    after = by_exposure(out, labels, q.exposure, plain.class_names)
    assert before[8]["accuracy"] >= 0.8  # the facts seen 8 times are learned
    assert (
        after[0]["abstained"] >= 0.8 and after[0]["invented"] <= 0.2 and after[0]["invented_confident"] <= before[0]["invented_confident"]
    )
    assert after[8]["accuracy"] >= before[8]["accuracy"] - 0.15


def test_an_abstention_is_not_a_hallucination():
    probs = np.array([[0.95, 0.05, 0.0], [0.0, 0.05, 0.95], [0.0, 0.97, 0.03], [0.5, 0.5, 0.0]])  # classes: a, b, unknown
    labels = np.array([0, 0, 0, 1])
    # row 0 right; row 1 abstains confidently; row 2 a confident wrong value; row 3 wrong but unsure
    assert lab_hallucination(probs, labels, 2, 0.9) == pytest.approx(1 / 4)
    assert lab_hallucination(probs, labels, None, 0.9) == pytest.approx(2 / 4)  # without an 'unknown' word every wrong row counts
    table = by_exposure(probs, labels, np.array([0, 0, 0, 0]), ["a", "b", UNKNOWN], tau=0.9)
    assert table[0]["hallucination"] == pytest.approx(1 / 4) and table[0]["abstained"] == pytest.approx(1 / 4)
