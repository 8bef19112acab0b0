"""core.tokens.spans: strict IOB2 spans agree with seqeval's strict mode on random tag sequences."""

from __future__ import annotations

import numpy as np
from seqeval.scheme import IOB2, Entities

from core.tokens.spans import NO_ENTITY, entity_types, mention_counts, sentence_labels, spans, tag_names, tags_of


def test_spans_match_seqeval_strict_on_random_sequences() -> None:
    rng = np.random.default_rng(0)
    vocab = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG"]
    seqs = [[str(t) for t in rng.choice(vocab, size=int(rng.integers(1, 12)))] for _ in range(500)]
    reference = Entities(seqs, IOB2)
    for seq, ents in zip(seqs, reference.entities):
        assert spans(seq) == [(e.tag, e.start, e.end) for e in ents]


def test_tags_round_trip_and_lone_inside_tags_open_nothing() -> None:
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert spans(tags) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]
    assert tags_of(spans(tags), len(tags)) == tags
    assert spans(["O", "I-PER", "I-PER"]) == []
    assert spans(["B-PER", "I-LOC"]) == [("PER", 0, 1)]


def test_sentence_label_is_the_rarest_type_in_train() -> None:
    seqs = [["B-PER"], ["B-PER", "O", "B-LOC"], ["O"], ["B-LOC", "B-MISC"], ["B-MISC"]]
    train = np.array([True, True, True, True, False])
    labels, names = sentence_labels(seqs, train)
    assert names == [NO_ENTITY, "LOC", "MISC", "PER"]
    # train mentions: PER 2, LOC 2, MISC 1 → sentence 1 (PER, LOC) takes LOC (tie by name), 3 takes MISC
    assert [names[i] for i in labels] == ["PER", "LOC", NO_ENTITY, "MISC", "MISC"]
    assert entity_types(seqs) == ["LOC", "MISC", "PER"]
    assert mention_counts(seqs)["MISC"] == 2
    assert tag_names(["LOC", "PER"]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
