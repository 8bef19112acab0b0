"""core.tokens.stats: the Data page's figures of a token dataset, on a hand-made fixture, and the
Data page drawing them (AppTest)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.tokens import stats
from core.tokens.data import token_dataset
from tests.conftest import APP

TOKENS = [
    ["Peter", "lives", "in", "Paris"],
    ["Anna", "met", "Bob"],
    ["It", "rains"],
    ["ACME", "Corp", "hired", "Eve"],
    ["Rome", "and", "Oslo"],
    ["Zed", "visited", "Lima"],
]
TAGS = [
    ["B-PER", "O", "O", "B-LOC"],
    ["B-PER", "O", "B-PER"],
    ["O", "O"],
    ["B-ORG", "I-ORG", "O", "B-PER"],
    ["B-LOC", "O", "B-LOC"],
    ["B-PER", "O", "B-MISC"],
]
SPLIT = np.array([0, 0, 0, 0, 1, 2])


@pytest.fixture
def ds():
    return token_dataset("fixture", TOKENS, TAGS, SPLIT)


def test_entity_table_counts_mentions_per_split_and_groups_by_train_mentions(ds) -> None:
    table = stats.entity_table(ds).set_index("type")
    assert table.loc["PER", "train mentions"] == 4 and table.loc["PER", "train sentences"] == 3
    assert table.loc["LOC", "train mentions"] == 1 and table.loc["LOC", "val mentions"] == 2
    assert table.loc["MISC", "train mentions"] == 0 and table.loc["MISC", "test mentions"] == 1
    assert set(table["group"]) == {"tail"}  # fewer than 20 train mentions each: the one rule
    assert stats.entity_table(ds)["type"].iloc[0] == "PER"  # most train mentions first
    assert table["share of train mentions"].sum() == pytest.approx(1.0)


def test_kpis_and_lines_name_the_imbalance_and_what_train_lacks(ds) -> None:
    k = stats.kpis(ds)
    assert (k.sentences, k.tokens, k.types) == (6, 19, 4)
    assert k.mentions == 10 and k.no_entity_share == pytest.approx(1 / 6)
    assert k.absent_from_train == ("MISC",) and math.isinf(k.imbalance)
    lines = stats.type_lines(stats.entity_table(ds))
    assert lines[0].startswith("Entity types by train mentions — head: more than 100 train mentions")
    assert any("MISC" in line and "cannot learn" in line for line in lines)
    assert any("PER has 4 train mentions" in line for line in lines)


def test_segments_and_examples_cut_sentences_at_their_entities(ds) -> None:
    assert stats.segments(TOKENS[3], TAGS[3]) == [("ACME Corp", "ORG"), ("hired", None), ("Eve", "PER")]
    assert stats.segments(TOKENS[2], TAGS[2]) == [("It rains", None)]
    drawn = stats.examples(ds, kind="PER", split=0, k=5, seed=0)
    assert [item for item, _ in drawn] == [0, 1, 3]  # every train sentence holding PER, in order
    assert stats.examples(ds, kind="MISC", split=0) == []
    assert stats.examples(ds, split=None, k=2, seed=1) == stats.examples(ds, split=None, k=2, seed=1)
    assert list(stats.lengths(ds)["tokens"]) == [len(t) for t in TOKENS]


def test_the_tag_scheme_in_words_and_the_broken_transitions() -> None:
    stored = {"scheme": "IOB1", "repairs": 3, "converted": 0, "broken": {"O → I-PER": 2, "B-LOC → I-ORG": 1}}
    assert stats.scheme_line(stored) == "The file's tags were read as **IOB1** and stored as IOB2: 3 I- tags that opened a span became B-."
    assert stats.scheme_line({"scheme": "IOB2"}).endswith("nothing had to change.")
    table = stats.broken_transitions(stored)
    assert list(table["transition"]) == ["O → I-PER", "B-LOC → I-ORG"] and list(table["times"]) == [2, 1]
    assert stats.broken_transitions(None).empty


def test_the_data_page_draws_a_token_dataset(home, ds) -> None:
    from streamlit.testing.v1 import AppTest

    from core.store import Store

    store = Store(home)
    vid = store.save_dataset(
        ds, source="test", params={"tag_scheme": {"scheme": "IOB1", "repairs": 1, "converted": 0, "broken": {"O → I-PER": 1}}}
    )
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["current_version"] = vid
    at.switch_page("app_pages/data.py")
    at.run()
    assert not at.exception, at.exception
    assert "Entities per type" in [h.value for h in at.subheader]
    assert [m.value for m in at.metric][:2] == ["6", "19"]
    assert any("IOB1" in m.value for m in at.markdown)
