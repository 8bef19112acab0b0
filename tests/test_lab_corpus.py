"""The knowledge-gap lab's corpus generator: exact exposure, the knobs' effects, the monofact rate."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.dataset import Dataset
from core.errors import DataError
from core.lab.corpus import (
    ATTRIBUTES,
    QUESTIONS,
    TEMPLATES,
    Corpus,
    CorpusSpec,
    exposure_histogram,
    good_turing,
    make_corpus,
    monofact_rate,
)
from core.lab.stored import corpus_of, is_lab_version, lab_versions, save_corpus


def _mentions(corpus: Corpus, p: int) -> int:
    """Biographies that name person p (counted on the text, not on the generator's own record)."""
    name = corpus.people[p]
    return sum(bio.startswith(name + " ") or f" {name} " in bio for bio in corpus.bios)


def test_bucket_exposure_is_exact_and_counted_on_the_text():
    c = make_corpus(CorpusSpec(n_people=50, buckets=(1, 2, 4, 8), held_out=0.2, seed=3))
    assert exposure_histogram(c) == {0: 10, 1: 10, 2: 10, 4: 10, 8: 10}
    assert len(c.bios) == 10 * (1 + 2 + 4 + 8)
    for p in range(50):
        assert _mentions(c, p) == c.exposure[p]
    assert len(set(c.people)) == 50


def test_every_sentence_names_the_person_and_states_the_true_fact():
    c = make_corpus(CorpusSpec(n_people=20, paraphrases=5, shuffle=True, seed=1))
    for bio, p in zip(c.bios, c.bio_person):
        sentences = [s.strip() for s in bio.split(" .") if s.strip()]
        assert len(sentences) == len(ATTRIBUTES)
        assert all(c.people[p] in s for s in sentences)
        for a in ATTRIBUTES:
            assert f" {c.facts[a][p]}" in bio


def test_paraphrases_and_shuffle_change_the_form_only():
    plain = make_corpus(CorpusSpec(n_people=30, paraphrases=1, shuffle=False, seed=0))
    varied = make_corpus(CorpusSpec(n_people=30, paraphrases=5, shuffle=True, seed=0))
    assert all(bio.split(" ")[2:4] == ["was", "born"] for bio in plain.bios)  # template 0 of the first attribute, always first
    firsts = {" ".join(b.split()[:4]) for b in varied.bios}
    assert len(firsts) > 5  # other templates and other attributes open the biography
    used = {t for a in ATTRIBUTES for t in TEMPLATES[a] if any(t.split("{name}")[-1].split("{value}")[0] in b for b in varied.bios)}
    assert len(used) > len(ATTRIBUTES)


def test_held_out_people_never_appear_but_have_questions():
    c = make_corpus(CorpusSpec(n_people=40, held_out=0.25, seed=2))
    held = np.flatnonzero(c.held_out)
    assert len(held) == 10
    text = " ".join(c.bios)
    assert all(c.people[p] not in text for p in held)
    q = c.questions(held)
    assert len(q) == 10 * len(ATTRIBUTES)
    assert q[0][2] == QUESTIONS[q[0][1]].format(name=c.people[held[0]])


def test_noise_states_a_wrong_value_in_the_exact_share():
    c = make_corpus(CorpusSpec(n_people=60, buckets=(2,), held_out=0.0, noise=0.1, seed=4))
    assert len(c.wrong) == round(0.1 * 120)
    for b, a, value in c.wrong:
        p = c.bio_person[b]
        assert value != c.facts[a][p] and value in c.vocabulary[a]
        assert f" {value} " in c.bios[b]


def test_monofact_rate_and_good_turing_by_hand():
    # 4 people seen 1, 1, 2, 3 times, one held out; 5 attributes each: 20 facts stated, 10 of them once
    spec = CorpusSpec(n_people=5, buckets=(1, 1, 2, 3), held_out=0.2, seed=0)
    c = make_corpus(spec)
    assert sorted(c.exposure.tolist()) == [0, 1, 1, 2, 3]
    assert monofact_rate(c) == pytest.approx(10 / 20)
    assert good_turing(c) == pytest.approx(10 / (5 * (1 + 1 + 2 + 3)))
    # a wrong statement takes one true statement away from its fact: a twice-seen fact becomes a monofact
    noisy = make_corpus(CorpusSpec(n_people=5, buckets=(2,), held_out=0.0, noise=0.1, seed=0))
    assert len(noisy.wrong) == 1
    assert monofact_rate(noisy) == pytest.approx(1 / 25)


def test_zipf_and_pareto_laws_are_capped_and_seeded():
    for law, k in (("zipf", 1.5), ("pareto", 1.0)):
        a = make_corpus(CorpusSpec(n_people=300, law=law, exponent=k, max_count=12, held_out=0.1, seed=5))
        b = make_corpus(CorpusSpec(n_people=300, law=law, exponent=k, max_count=12, held_out=0.1, seed=5))
        assert np.array_equal(a.exposure, b.exposure) and a.bios == b.bios
        shown = a.exposure[a.exposure > 0]
        assert shown.min() == 1 and shown.max() <= 12
        assert (shown == 1).mean() > (shown == 2).mean() > (shown == 8).mean()  # a heavy head of rare people


def test_probe_prefixes_do_not_clash():
    """No template's words before the value start another template's sentence with other words
    after: the next word after a probe is always a value of its own attribute."""
    heads = [(a, tuple(t.split("{value}")[0].split())) for a in ATTRIBUTES for t in TEMPLATES[a]]
    for a, head in heads:
        for b in ATTRIBUTES:
            for t in TEMPLATES[b]:
                words = tuple(t.split())
                if words[: len(head)] == head:
                    assert b == a and words[len(head)] == "{value}", (a, head, t)


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"n_people": 1}, "number of people"),
        ({"law": "normal"}, "exposure law"),
        ({"law": "zipf", "exponent": 1.0}, "Zipf"),
        ({"held_out": 1.0}, "held-out"),
        ({"paraphrases": 9}, "paraphrases"),
        ({"noise": 0.9}, "noise"),
        ({"values": {"major": 1}}, "major"),
    ],
)
def test_bad_settings_say_what_to_change(bad, words):
    with pytest.raises(DataError, match=words):
        CorpusSpec(**bad)


def test_spec_round_trips():
    spec = CorpusSpec(n_people=12, law="pareto", exponent=1.2, paraphrases=3, shuffle=True, noise=0.05, seed=9)
    assert CorpusSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(DataError, match="unknown corpus settings: colour"):
        CorpusSpec.from_dict({**spec.to_dict(), "colour": 1})


def test_a_corpus_is_stored_as_a_version_and_made_again(store):
    spec = CorpusSpec(n_people=30, held_out=0.2, paraphrases=3, shuffle=True, noise=0.05, seed=4)
    vid = save_corpus(store, spec)
    info = store.version(vid)
    assert is_lab_version(info.params) and info.kind == "lab corpus"
    again = corpus_of(store, vid)
    first = make_corpus(spec)
    assert again.bios == first.bios and again.people == first.people
    assert info.params["monofact_rate"] == pytest.approx(monofact_rate(first))
    ds = store.load_dataset(vid)
    assert len(ds) == 30 * len(ATTRIBUTES) and ds.modality == "text"
    assert ds.class_names[-1] == "unknown"
    row = 7
    p, a = ds.meta["person"][row], ds.meta["attribute"][row]
    assert ds.items[row] == QUESTIONS[a].format(name=p)
    assert ds.class_names[ds.labels[row]] == first.facts[a][first.people.index(p)]
    assert set(ds.meta["exposure"][ds.split == 2]) == {0} and (ds.split == 2).sum() == 6 * len(ATTRIBUTES)
    assert [v.id for v in lab_versions(store)] == [vid]
    other = store.save_dataset(
        Dataset("t", "text", np.array(["a", "b"], dtype=object), np.array([0, 1]), ["x", "y"], np.array([0, 2], dtype=np.int8)), source="t"
    )
    with pytest.raises(DataError, match="not a lab corpus"):
        corpus_of(store, other)
