"""Token files: CoNLL-style text and JSON Lines → a token dataset, every refusal naming its line;
upload routing; the CoNLL-2003 and WNUT-16 demos."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from core.data import demos
from core.data.imports import UPLOAD_TYPES, import_upload, kind_of, load_upload, upload_kind
from core.data.slices import slice_columns
from core.errors import DataError
from core.tokens.conll import MAX_TOKENS, load_conll, load_conll_files, load_jsonl, looks_like_conll
from core.tokens.spans import NO_ENTITY, mention_counts
from tests.conftest import needs_asset

CONLL = b"""-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

# a comment line
Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""


def _conll(n: int, tagged: str = "B-PER") -> bytes:
    """``n`` two-token sentences, the first token tagged."""
    return "".join(f"w{i} {tagged}\nx{i} O\n\n" for i in range(n)).encode()


def test_conll_with_middle_columns_docstart_and_comments():
    result = load_conll(CONLL, "news.conll")
    ds = result.dataset
    assert list(ds.items) == [("EU", "rejects", "German", "call"), ("Peter", "Blackburn"), ("BRUSSELS", "1996-08-22")]
    assert list(ds.tags) == [("B-ORG", "O", "B-MISC", "O"), ("B-PER", "I-PER"), ("B-LOC", "O")]
    assert ds.meta["doc"].tolist() == ["1", "1", "2"]
    assert ds.class_names == [NO_ENTITY, "LOC", "MISC", "ORG", "PER"] and ds.name == "news"
    assert result.tag_scheme is not None and result.tag_scheme.scheme == "IOB2" and result.tag_scheme.repairs == 0
    assert any("Columns 2–3 of 4" in w for w in result.warnings)
    assert any(w.startswith("The file gives no split") for w in result.warnings)


def test_conll_without_middle_columns_tabs_lone_tab_lines_crlf_and_a_bom():
    raw = "\ufeffNew York\tB-LOC\r\nis\tO\r\n\t\r\n@user\tO\r\nhi\tO\r\n \r\n#hashtag\tO\r\n".encode()
    ds = load_conll(raw, "tweets.txt").dataset
    assert list(ds.items) == [("New York", "is"), ("@user", "hi"), ("#hashtag",)]
    assert list(ds.tags) == [("B-LOC", "O"), ("O", "O"), ("O",)]
    assert "doc" not in ds.meta.columns
    assert list(load_conll(b"a O\nb B-X\n", "one.conll").dataset.items) == [("a", "b")]  # no blank line at the end


def test_latin1_is_read_with_a_warning():
    result = load_conll("Café B-LOC\nbon O\n".encode("latin-1"), "cafe.conll")
    assert result.dataset.items[0] == ("Café", "bon")
    assert any("read as Latin-1" in w for w in result.warnings)


def test_iob1_file_is_repaired_and_said():
    raw = b"Peter I-PER\nBlackburn I-PER\nmet O\nAnna I-PER\nB B-PER\n\nParis I-LOC\n"
    result = load_conll(raw, "old.iob")
    assert list(result.dataset.tags) == [("B-PER", "I-PER", "O", "B-PER", "B-PER"), ("B-LOC",)]
    assert "Repaired 3 I- tags that opened a span to B- (IOB1 → IOB2)." in result.warnings
    assert result.tag_scheme is not None and result.tag_scheme.scheme == "IOB1" and result.tag_scheme.repairs == 3


def test_iobes_file_is_converted():
    result = load_conll(b"New S-LOC\nYork O\n\nLos B-LOC\nAngeles E-LOC\n", "e.bio")
    assert list(result.dataset.tags) == [("B-LOC", "O"), ("B-LOC", "I-LOC")]
    assert result.tag_scheme is not None and result.tag_scheme.scheme == "IOBES" and result.tag_scheme.converted == 2


@pytest.mark.parametrize(
    ("raw", "line", "words"),
    [
        (b"EU B-ORG\nrejects\n", 2, "has a token ('rejects') but no tag"),
        (b"EU NNP B-ORG\nrejects VBZ O\ncall O\n", 3, "has 2 columns but the file's token lines have 3"),
        (b"EU B-ORG\nrejects PER\n", 2, "'PER' is not a tag — tags are O or B-TYPE / I-TYPE (or S-, E- in IOBES)"),
        (b"EU B-ORG\nrejects X-PER\n", 2, "'X-PER' is not a tag"),
        (b"EU B-ORG\nrejects 7\n", 2, "'7' is not a tag"),
        (b"token tag\nEU B-ORG\n\nrejects O\n", 1, "a table with a header row belongs in a .csv"),
        (b"The quick brown fox jumps over the lazy dog.\nIt was not amused.\n", 1, "'dog.' is not a tag"),
        (b"EU B-ORG\n\tO\n", 2, "has an empty token"),
        (b"EU B-ORG\nre\x00jects O\n", 2, "NUL byte"),
    ],
)
def test_every_refusal_names_its_line(raw, line, words):
    with pytest.raises(DataError) as err:
        load_conll(raw, "bad.conll")
    msg = str(err.value)
    assert f"'bad.conll' line {line}" in msg and words in msg, msg


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (b"EU\nrejects\ncall\n\nPeter\n", "one column per line (from line 1), so it holds no tags"),
        (b"text,label\nhello there,pos\nbye now,neg\n", "'bad.conll' line 1 has a token ('text,label') but no tag"),
        (b"-DOCSTART- -X- O\n\n# only a comment\n", "no token lines"),
        (b"\xff\xfe\x00\xd8", "starts like UTF-16 text but is not"),
    ],
)
def test_files_without_tags_are_refused_saying_what_a_token_file_is(raw, words):
    with pytest.raises(DataError, match=re.escape(words)):
        load_conll(raw, "bad.conll")


def test_a_sentence_over_the_limit_is_cut_between_entities_with_a_warning():
    tags = ["O"] * (MAX_TOKENS - 2) + ["B-PER", "I-PER", "I-PER", "I-PER"] + ["O"] * 600
    raw = "".join(f"t{i} {t}\n" for i, t in enumerate(tags)).encode()
    result = load_conll(raw, "long.conll")
    ds = result.dataset
    assert [len(s) for s in ds.items] == [MAX_TOKENS - 2, MAX_TOKENS, len(tags) - 2 * MAX_TOKENS + 2]
    assert ds.tags[1][:4] == ("B-PER", "I-PER", "I-PER", "I-PER")  # the entity was not cut
    assert sum(len(s) for s in ds.items) == len(tags)
    assert any(
        w.startswith(f"1 sentence(s) had more than {MAX_TOKENS} tokens (the longest 1,114) and were cut into 3 pieces")
        for w in result.warnings
    )
    one_entity = load_conll(("x B-PER\n" + "y I-PER\n" * 700).encode(), "e.conll").dataset
    assert [len(s) for s in one_entity.items] == [MAX_TOKENS, 701 - MAX_TOKENS]
    assert one_entity.tags[1][0] == "B-PER"  # a piece cut inside an entity opens it again


def test_the_made_split_is_seeded_and_stratified_by_sentence_label():
    raw = _conll(100, "B-PER") + _conll(50, "B-LOC") + _conll(30, "O")
    a, b = load_conll(raw, "s.conll").dataset, load_conll(raw, "s.conll").dataset
    np.testing.assert_array_equal(a.split, b.split)
    counts = {name: np.bincount(a.split[a.labels == k], minlength=3).tolist() for k, name in enumerate(a.class_names)}
    assert counts == {NO_ENTITY: [24, 3, 3], "LOC": [40, 5, 5], "PER": [80, 10, 10]}


def test_all_o_and_tiny_files_load_with_warnings():
    result = load_conll(_conll(3, "O"), "o.conll")
    assert result.dataset.class_names == [NO_ENTITY] and any("every tag is O" in w for w in result.warnings)
    assert any("no test items" in w for w in result.warnings)


def test_several_files_keep_their_splits_and_number_documents_across_them():
    files = [("train.txt", CONLL, "train"), ("valid.txt", CONLL, "valid"), ("test.txt", b"-DOCSTART- O\n\nA B-PER\n", "test")]
    result = load_conll_files(files, name="three")
    ds = result.dataset
    assert ds.split.tolist() == [0, 0, 0, 1, 1, 1, 2] and ds.meta["doc"].tolist() == ["1", "1", "2", "3", "3", "4", "5"]
    assert sum("Columns 2–3" in w for w in result.warnings) == 1  # one note for the files that all give it
    with pytest.raises(DataError, match=r"'valid\.txt' line 2"):
        load_conll_files([("train.txt", CONLL, "train"), ("valid.txt", b"a O\nb PER\n", "val")], name="x")


# ------------------------------------------------------------------------------------------- JSONL


def _jsonl(*objs) -> bytes:
    return "\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs).encode()


def test_jsonl_sentences_with_splits_ner_tags_and_slices():
    data = _jsonl(
        {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"], "split": "train", "source": "news", "id": 1},
        {"tokens": ["Peter", "Blackburn"], "ner_tags": ["B-PER", "I-PER"], "split": "validation", "source": "news", "id": 2},
        "",
        {"tokens": ["Paris"], "tags": ["S-LOC"], "split": "test", "source": "web", "id": 3, "extra": [1, 2]},
        {"tokens": [], "tags": [], "split": "train"},
    )
    result = load_jsonl(data, "s.jsonl")
    ds = result.dataset
    assert list(ds.items) == [("EU", "rejects"), ("Peter", "Blackburn"), ("Paris",)]
    assert list(ds.tags) == [("B-ORG", "O"), ("B-PER", "I-PER"), ("B-LOC",)]
    assert ds.split.tolist() == [0, 1, 2] and ds.meta["source"].tolist() == ["news", "news", "web"]
    assert ds.meta["id"].tolist() == ["1", "2", "3"] and "extra" not in ds.meta.columns
    assert result.skipped == [("line 5", "an empty sentence (no tokens)")]
    assert "Skipped 1 empty sentence(s) (lines with no tokens)." in result.warnings
    assert any("'extra'" in w for w in result.warnings)


def test_jsonl_without_val_lines_carves_val_from_train():
    lines = [{"tokens": ["a", "b"], "tags": ["B-PER", "O"], "split": "train"} for _ in range(40)]
    lines += [{"tokens": ["c"], "tags": ["O"], "split": "test"} for _ in range(5)]
    result = load_jsonl(_jsonl(*lines), "s.jsonl")
    assert np.bincount(result.dataset.split).tolist() == [36, 4, 5]
    assert any("10% of train" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ([{"tokens": ["a"], "tags": ["O"]}, '{"tokens": ["a"], "tags": ["O"]'], "line 2 is not valid JSON"),
        ([{"tokens": ["a"], "tags": ["O"]}, "[1, 2]"], "line 2 is a JSON list, not an object"),
        ([{"tokens": ["a", "b"], "tags": ["O"]}], "line 1 has 2 tokens but 1 tags"),
        ([{"tokens": ["a"], "tags": ["O"]}, {"tags": ["O"]}], "line 2 has no 'tokens' key"),
        ([{"tokens": ["a"]}], "line 1 has 'tokens' but no 'tags'"),
        ([{"tokens": ["a", 5], "tags": ["O", "O"]}], "line 1: token 2 is '5' (int), not a string"),
        ([{"tokens": "a b", "tags": ["O", "O"]}], "line 1: 'tokens' is a str, not a list"),
        ([{"tokens": ["a"], "ner_tags": [3]}], "line 1: 'ner_tags' holds numbers"),
        ([{"tokens": ["a"], "tags": ["O"]}, {"tokens": ["a"], "tags": ["PER"]}], "line 2, tag 1: 'PER' is not a tag"),
        ([{"tokens": ["a"], "tags": [None]}], "line 1, tag 1: None (NoneType) is not a tag"),
        ([{"tokens": [" "], "tags": ["O"]}], "line 1: token 1 is empty"),
        (
            [{"tokens": ["a"], "tags": ["O"], "split": "dev"}, {"tokens": ["a"], "tags": ["O"], "split": "holdout"}],
            "line 2: split 'holdout'",
        ),
        (
            [{"tokens": ["a"], "tags": ["O"], "split": "train"}, {"tokens": ["a"], "tags": ["O"]}],
            "line 2 has no 'split' but line 1 has one",
        ),
        ([{"tokens": ["a"], "tags": ["O"], "split": "test"}], "No line has split 'train'"),
        (['{"tokens": ["\\ud800"], "tags": ["O"]}'], "line 1: token 1 holds a lone surrogate"),
        (["[" * 100_000], "line 1"),
    ],
)
def test_every_jsonl_refusal_names_its_line(lines, words):
    with pytest.raises(DataError) as err:
        load_jsonl(_jsonl(*lines), "bad.jsonl")
    assert words in str(err.value), str(err.value)


# ------------------------------------------------------------------------------------------ routing


def test_uploads_go_to_the_loader_their_content_asks_for(store):
    assert {"conll", "iob", "bio"} <= set(UPLOAD_TYPES)
    assert kind_of("a.conll") == "tokens" and kind_of("a.txt") == "table" and kind_of("a.zip") == "images"
    tagged = CONLL.replace(b" ", b"\t")
    assert upload_kind("a.conll", b"anything") == "tokens"
    assert upload_kind("a.txt", CONLL) == "tokens" and upload_kind("a.tsv", tagged) == "tokens"
    assert upload_kind("a.txt", b"text,label\nhello,pos\nbye,neg\n") == "table"
    assert upload_kind("a.tsv", b"text\tlabel\nhello\tpos\nbye\tneg\n") == "table"
    assert upload_kind("a.txt", b"EU B-ORG\nrejects O\n") == "tokens"  # one sentence, every line tagged
    assert upload_kind("a.jsonl", _jsonl({"tokens": ["a"], "tags": ["O"]})) == "tokens"
    assert upload_kind("a.jsonl", _jsonl({"text": "a", "label": "x"})) == "table"
    assert upload_kind("a.csv", CONLL) == "table" and upload_kind("a.zip", CONLL) == "images"
    assert not looks_like_conll(b"a b c d\ne f g h\n\ni j k l\n")
    assert load_upload("news.txt", CONLL).dataset.modality == "tokens"
    assert (
        load_upload("news.jsonl", _jsonl({"tokens": ["a"], "tags": ["B-X"]}, {"tokens": ["b"], "tags": ["O"]})).dataset.modality == "tokens"
    )
    assert load_upload("t.tsv", b"text\tlabel\nhello\tpos\nbye\tneg\nhi\tpos\nho\tneg\n").dataset.modality == "text"
    imported = import_upload(store, "news.iob", CONLL)
    info = store.version(imported.version_id)
    assert info.modality == "tokens" and info.params["tag_scheme"] == {"scheme": "IOB2", "repairs": 0, "converted": 0, "broken": {}}
    assert list(store.load_dataset(imported.version_id).items) == list(imported.result.dataset.items)
    with pytest.raises(DataError, match=r"unsupported file type '\.conllu'"):
        load_upload("a.conllu", CONLL)


def test_the_upload_size_limit_holds_for_token_files(monkeypatch):
    monkeypatch.setenv("GAPSCOPE_MAX_UPLOAD_MB", "1")
    with pytest.raises(DataError, match="over the 1 MiB upload limit"):
        load_upload("big.conll", _conll(60_000))


# ------------------------------------------------------------------------------------------- demos


@needs_asset("conll2003")
def test_conll2003_demo_counts(store):
    result = demos.load_conll2003()
    ds = result.dataset
    assert np.bincount(ds.split).tolist() == [14_041, 3_250, 3_453]
    assert [sum(len(s) for s in ds.items[ds.split == k]) for k in range(3)] == [203_621, 51_362, 46_435]
    assert ds.class_names == [NO_ENTITY, "LOC", "MISC", "ORG", "PER"]
    assert result.tag_scheme is not None and result.tag_scheme.scheme == "IOB2" and result.tag_scheme.repairs == 0
    assert dict(mention_counts(ds.tags[ds.split == 0])) == {"LOC": 7_140, "MISC": 3_438, "ORG": 6_321, "PER": 6_600}
    assert ds.items[0] == ("EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", ".")
    assert ds.tags[0] == ("B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O")
    assert ds.meta["doc"].astype(int).max() == 946 + 216 + 231 and max(map(len, ds.items)) == 124
    assert "doc" not in slice_columns(ds.meta)  # 1,393 documents: not a slice
    assert demos.available("conll2003")
    vid = demos.import_demo(store, "conll2003")
    assert demos.import_demo(store, "conll2003") == vid and store.version(vid).params["tag_scheme"]["scheme"] == "IOB2"
    assert store.split_sizes(vid) == {0: 14_041, 1: 3_250, 2: 3_453}


@needs_asset("wnut16")
def test_wnut16_demo_counts_and_its_made_split():
    result = demos.load_wnut16()
    ds = result.dataset
    assert len(ds) == 2_394 and sum(map(len, ds.items)) == 46_469 and len(ds.class_names) == 11
    assert np.bincount(ds.split).tolist() == [1_922, 236, 236]
    mentions = Counter(mention_counts(ds.tags))
    assert mentions.most_common(1) == [("person", 449)] and mentions["tvshow"] == mentions["movie"] == 34
    assert any(w.startswith("The file gives no split") for w in result.warnings)
    for k in range(1, len(ds.class_names)):  # stratified: a type that labels ≥ 10 tweets reaches val and test
        if (ds.labels == k).sum() >= 10:
            assert set(ds.split[ds.labels == k]) == {0, 1, 2}, ds.class_names[k]
    np.testing.assert_array_equal(ds.split, demos.load_wnut16().dataset.split)  # seeded
