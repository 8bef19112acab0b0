"""Token datasets: tag schemes and their repair, the Dataset model's token fields, the store's round
trip and the migration that lets an older store hold them."""

from __future__ import annotations

import contextlib
import sqlite3

import numpy as np
import pandas as pd
import pytest
from seqeval.metrics.sequence_labeling import get_entities

from core.data.dataset import Dataset, content_hashes, describe
from core.errors import DataError
from core.store import SCHEMA_VERSION, Store
from core.store import schema as store_schema
from core.store.database import payload_bytes
from core.tokens.data import token_dataset
from core.tokens.schemes import TagScheme, check_tags, detect_scheme, is_tag, to_iob2
from core.tokens.spans import NO_ENTITY, spans

# ------------------------------------------------------------------------------------------ schemes


def test_iob2_passes_unchanged():
    seqs = [["B-PER", "I-PER", "O", "B-LOC"], ["O"], ["B-ORG", "B-ORG", "I-ORG"]]
    result = to_iob2(seqs)
    assert result.scheme == "IOB2" and result.repairs == 0 and result.broken == {}
    assert result.tags == [tuple(s) for s in seqs]
    assert result.report.words() == []


def test_iob1_is_detected_and_each_opening_inside_tag_repaired():
    seqs = [["I-PER", "I-PER", "O", "I-LOC"], ["I-ORG", "B-ORG", "O"], ["O", "O"]]
    result = to_iob2(seqs)
    assert result.scheme == "IOB1" and result.repairs == 3 and result.broken == {}
    assert result.tags == [("B-PER", "I-PER", "O", "B-LOC"), ("B-ORG", "B-ORG", "O"), ("O", "O")]
    assert result.report.words() == ["Repaired 3 I- tags that opened a span to B- (IOB1 → IOB2)."]


def test_broken_iob2_is_repaired_and_its_broken_transitions_counted():
    seqs = [["B-PER", "O", "I-PER"], ["B-LOC", "I-ORG"], ["O", "I-PER", "I-PER"], ["I-MISC"]]
    result = to_iob2(seqs)
    assert result.scheme == "IOB2" and result.repairs == 4
    assert result.broken == {"O → I-PER": 2, "B-LOC → I-ORG": 1, "(start) → I-MISC": 1}
    assert next(iter(result.broken)) == "O → I-PER"  # most frequent first
    assert result.tags[1] == ("B-LOC", "B-ORG") and result.tags[2] == ("O", "B-PER", "I-PER")
    (words,) = result.report.words()
    assert words.startswith("Repaired 4 I- tags that opened a span to B- (they broke IOB2: 'O → I-PER' 2×")


def test_iobes_is_converted_and_its_broken_transitions_counted():
    good = [["S-PER", "O", "B-LOC", "I-LOC", "E-LOC"], ["B-ORG", "E-ORG", "S-ORG"]]
    result = to_iob2(good)
    assert result.scheme == "IOBES" and result.repairs == 0 and result.report.converted == 4 and result.broken == {}
    assert result.tags == [("B-PER", "O", "B-LOC", "I-LOC", "I-LOC"), ("B-ORG", "I-ORG", "B-ORG")]
    assert result.report.words() == ["The tags are IOBES: 4 S- and E- tags were rewritten as B- and I- (IOBES → IOB2)."]
    bad = to_iob2([["B-PER", "O"], ["O", "E-LOC"], ["S-X", "I-X"]])
    assert bad.broken == {"B-PER → O": 1, "O → E-LOC": 1, "S-X → I-X": 1, "I-X → (end)": 1}
    assert bad.tags == [("B-PER", "O"), ("O", "B-LOC"), ("B-X", "B-X")] and bad.repairs == 2


def test_io_tags_become_one_entity_per_run():
    result = to_iob2([["I-PER", "I-PER", "O", "I-LOC", "I-PER"]])
    assert result.scheme == "IO" and result.repairs == 3
    assert result.tags == [("B-PER", "I-PER", "O", "B-LOC", "B-PER")]
    assert "IO → IOB2" in result.report.words()[0]


def test_detection_on_small_cases():
    assert detect_scheme([["O", "O"]]) == "IOB2"
    assert detect_scheme([["I-A", "B-A"]]) == "IOB1"
    assert detect_scheme([["B-A"], ["O", "I-A"]]) == "IOB2"  # B- after O: IOB2, the I- is a break
    assert detect_scheme([["I-A"], ["S-B"]]) == "IOBES"


def test_repaired_spans_are_conllevals_lenient_reading():
    """What a repair makes of a B/I/O sequence is what conlleval (seqeval's default mode) reads in it."""
    rng = np.random.default_rng(1)
    vocab = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG"]
    seqs = [[str(t) for t in rng.choice(vocab, size=int(rng.integers(1, 12)))] for _ in range(500)]
    for seq, fixed in zip(seqs, to_iob2(seqs).tags):
        assert spans(fixed) == [(t, a, b + 1) for t, a, b in get_entities(seq)]


@pytest.mark.parametrize("bad", ["PER", "X-PER", "B-", "7", "b-per", "B-PER X", "-PER", "I_PER", ""])
def test_a_tag_that_is_not_one_is_named_with_where_it_is(bad):
    assert not is_tag(bad)
    with pytest.raises(DataError) as err:
        to_iob2([["O", "B-PER"], ["O", bad]], where=lambda i, j: f"line {10 + 3 * i + j}")
    msg = str(err.value)
    assert msg.startswith(f"line 14: {bad!r} is not a tag") and "tags are O or B-TYPE / I-TYPE (or S-, E- in IOBES)" in msg
    with pytest.raises(DataError, match="sentence 1, token 2"):
        check_tags([["O", bad]])


def test_types_may_hold_hyphens():
    assert is_tag("B-geo-loc") and is_tag("S-X") and is_tag("O") and not is_tag("O-X")
    assert to_iob2([["B-geo-loc", "I-geo-loc"]]).tags == [("B-geo-loc", "I-geo-loc")]


def test_a_scheme_report_is_plain_json():
    report = TagScheme("IOB2", 2, 0, {"O → I-PER": 2})
    assert report.as_dict() == {"scheme": "IOB2", "repairs": 2, "converted": 0, "broken": {"O → I-PER": 2}}


# ------------------------------------------------------------------------------------------ dataset


def _sentences() -> tuple[list[list[str]], list[list[str]], list[int]]:
    tokens = [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"], ["New York", "ça", "va"], ["ok"]]
    tags = [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"], ["B-LOC", "O"], ["B-LOC", "O", "O"], ["O"]]
    return tokens, tags, [0, 0, 1, 2, 0]


def test_token_dataset_labels_each_sentence_by_its_rarest_train_type():
    tokens, tags, split = _sentences()
    ds = token_dataset("t", tokens, tags, split, pd.DataFrame({"doc": [1, 1, 2, 2, 3]}))
    assert ds.modality == "tokens" and ds.class_names == [NO_ENTITY, "LOC", "MISC", "ORG", "PER"]
    # train mentions: ORG 1, MISC 1, PER 1 (LOC only outside train: 0, rarest)
    assert [ds.label_name(i) for i in range(len(ds))] == ["MISC", "PER", "LOC", "LOC", NO_ENTITY]
    assert ds.items.dtype == object and ds.items[0] == ("EU", "rejects", "German", "call")
    assert ds.tags is not None and ds.tags[3] == ("B-LOC", "O", "O")
    assert describe(ds) == "5 token items (sentences) · 4 entity types · 12 tokens"


def test_token_dataset_validation():
    tokens, tags, split = _sentences()
    with pytest.raises(ValueError, match="needs tags"):
        Dataset("t", "tokens", tokens, [0] * 5, ["a"], split)
    with pytest.raises(ValueError, match="sentence 1 has 2 tokens and 1 tags"):
        token_dataset("t", tokens, [tags[0], ["B-PER"], *tags[2:]], split)
    with pytest.raises(ValueError, match="IOB2"):
        token_dataset("t", tokens, [tags[0], ["S-PER", "O"], *tags[2:]], split)
    with pytest.raises(ValueError, match="at least one token"):
        token_dataset("t", [*tokens[:4], []], [*tags[:4], []], split)
    with pytest.raises(ValueError, match="only token datasets have tags"):
        Dataset("x", "text", np.array(["a"], dtype=object), [0], ["a"], [0], tags=np.array([("O",)], dtype=object))


def test_subset_hashes_and_a_relabelled_sentence_is_the_same_item():
    tokens, tags, split = _sentences()
    ds = token_dataset("t", tokens, tags, split)
    sub = ds.subset(np.array([3, 1]))
    assert (
        sub.tags is not None
        and list(sub.items) == [tuple(tokens[3]), tuple(tokens[1])]
        and list(sub.tags) == [tuple(tags[3]), tuple(tags[1])]
    )
    relabelled = token_dataset("t", tokens, [["O"] * len(t) for t in tokens], split)
    np.testing.assert_array_equal(content_hashes(ds), content_hashes(relabelled))
    assert len(set(content_hashes(ds).tolist())) == 5
    assert payload_bytes(ds) > 2**20


def _assert_same(a: Dataset, b: Dataset) -> None:
    assert a.modality == b.modality == "tokens" and a.class_names == b.class_names and a.name == b.name
    assert list(a.items) == list(b.items) and list(a.tags) == list(b.tags)
    assert all(type(s) is tuple and all(type(t) is str for t in s) for s in b.items)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.split, b.split)
    pd.testing.assert_frame_equal(a.meta, b.meta, check_dtype=False)


def test_the_store_round_trips_a_token_dataset(store):
    tokens, tags, split = _sentences()
    ds = token_dataset("t", tokens, tags, split, pd.DataFrame({"doc": [1, 1, 2, 2, 3]}))
    vid = store.save_dataset(ds, source="upload:t.conll", params={"tag_scheme": {"scheme": "IOB2"}})
    back = store.load_dataset(vid)
    _assert_same(ds, back)
    assert store.version(vid).modality == "tokens" and store.split_sizes(vid) == {0: 3, 1: 1, 2: 1}
    assert back.subset(np.array([0])).tags[0] == tuple(tags[0])


def test_an_older_store_is_migrated_to_hold_token_datasets(home, monkeypatch):
    """A store made before the migration (schema 6) keeps its datasets, versions, runs and keys."""
    with monkeypatch.context() as old:
        old.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:6])
        old.setattr(store_schema, "SCHEMA_VERSION", 6)
        before = Store(home)
        text = Dataset("txt", "text", np.array(["a", "b", "c"], dtype=object), [0, 1, 0], ["n", "p"], [0, 1, 2])
        vid = before.save_dataset(text, source="demo:txt")
        run = before.create_run(vid, {"version_id": vid})
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # the old CHECK refuses tokens
            before.save_dataset(token_dataset("t", *_sentences()), source="upload:t.conll")
    with contextlib.closing(sqlite3.connect(home / "gapscope.db")) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 6
    after = Store(home)
    with contextlib.closing(sqlite3.connect(home / "gapscope.db")) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 7
        assert "'tokens'" in con.execute("SELECT sql FROM sqlite_master WHERE name = 'datasets'").fetchone()[0]
        assert [r[2] for r in con.execute("PRAGMA foreign_key_list(dataset_versions)")] == ["dataset_versions", "datasets"]
        assert con.execute("SELECT name FROM sqlite_master WHERE name = 'datasets_demo'").fetchone() is not None
        assert con.execute("SELECT name FROM sqlite_master WHERE name = 'datasets_new'").fetchone() is None
    assert after.find_dataset("demo:txt") is not None and after.version(vid).dataset_name == "txt"
    assert after.run(run).version_id == vid and list(after.load_dataset(vid).items) == ["a", "b", "c"]
    tid = after.save_dataset(token_dataset("t", *_sentences()), source="upload:t.conll")
    assert after.load_dataset(tid).modality == "tokens"
    with contextlib.closing(after._open()) as con:  # foreign keys are enforced again, the CHECK still holds
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            con.execute(
                "INSERT INTO dataset_versions (dataset_id, kind, n_items, class_names, folder, created_at) VALUES (999, 'import', 0, '[]', 'x', 0)"
            )
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            con.execute("INSERT INTO datasets (name, modality, source, created_at) VALUES ('a', 'audio', 'upload:a', 0)")
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            con.execute("INSERT INTO datasets (name, modality, source, created_at) VALUES ('a', 'text', 'demo:txt', 0)")
