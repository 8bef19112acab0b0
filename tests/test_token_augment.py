"""core.tokens.augment: every augmentation keeps valid IOB2 and the mentions' types, is seeded, and
is the identity at p = 0 (property-style over many seeds)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from core.errors import DataError
from core.tokens.augment import (
    Choices,
    TokenAugment,
    TokenTable,
    augment_sentences,
    augmented_copies,
    label_wise_replace,
    mention_replace,
    preview,
    segments,
    shuffle_within_segments,
    spans_of,
    synonym_replace,
)
from core.tokens.spans import Span, spans, tags_of
from tests.conftest import needs_asset

TYPES = ("PER", "ORG", "LOC")
WORDS = [f"w{i}" for i in range(12)]


def random_sentences(seed: int, n: int = 60) -> tuple[list[list[str]], list[list[str]]]:
    """Valid IOB2 sentences over a small vocabulary (so every tag has several train tokens)."""
    rng = np.random.default_rng(seed)
    tokens_list, tags_list = [], []
    for _ in range(n):
        length = int(rng.integers(1, 14))
        found: list[Span] = []
        i = int(rng.integers(0, 3))
        while i < length:
            end = min(length, i + int(rng.integers(1, 4)))
            found.append((str(rng.choice(TYPES)), i, end))
            i = end + int(rng.integers(0, 3))
        tokens_list.append([str(w) for w in rng.choice(WORDS, size=length)])
        tags_list.append(tags_of(found, length))
    return tokens_list, tags_list


def lookup(word: str) -> tuple[str, ...]:
    """A stand-in thesaurus: one-word and several-word synonyms, none for some words."""
    n = int(word[1:]) if word[1:].isdigit() else 0
    if n % 3 == 0:
        return ()
    return (f"{word}s", f"x_{word} y") if n % 3 == 1 else ("big",)


def check_synonyms(tokens: list[str], tags: list[str], new_tokens: list[str], new_tags: list[str]) -> None:
    """Each token is itself or one of its synonyms' words, tagged B-X I-X … / I-X … / O …."""
    at = 0
    for token, tag in zip(tokens, tags):
        if new_tokens[at] == token:
            assert new_tags[at] == tag
            at += 1
            continue
        words = next(
            o.replace("_", " ").split()
            for o in lookup(token)
            if o.replace("_", " ").split() == new_tokens[at : at + len(o.replace("_", " ").split())]
        )
        inside = "O" if tag == "O" else "I-" + tag[2:]
        assert new_tags[at : at + len(words)] == [tag] + [inside] * (len(words) - 1)
        at += len(words)
    assert at == len(new_tokens)


def valid(tags: Sequence[str]) -> bool:
    return tags_of(spans(tags), len(tags)) == list(tags)


def types_in_order(tags: Sequence[str]) -> list[str]:
    return [k for k, _, _ in spans(tags)]


Op = Callable[[list[str], list[str], float, np.random.Generator], tuple[list[str], list[str]]]


def ops(table: TokenTable) -> dict[str, Op]:
    return {
        "lwtr": lambda t, g, p, rng: label_wise_replace(t, g, p, table, rng),
        "synonym": lambda t, g, p, rng: synonym_replace(t, g, p, rng, lookup),
        "mention": lambda t, g, p, rng: mention_replace(t, g, p, table, rng),
        "shuffle": lambda t, g, p, rng: shuffle_within_segments(t, g, p, rng),
    }


NAMES = ("lwtr", "synonym", "mention", "shuffle")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", range(25))
def test_every_augmentation_keeps_valid_iob2_and_the_mention_types(name: str, seed: int) -> None:
    tokens_list, tags_list = random_sentences(seed)
    table = TokenTable.from_train(tokens_list, tags_list)
    op = ops(table)[name]
    by_tag = {(t, g) for ts, gs in zip(tokens_list, tags_list) for t, g in zip(ts, gs)}
    mentions = {(k, tuple(ts[s:e])) for ts, gs in zip(tokens_list, tags_list) for k, s, e in spans(gs)}
    rng = np.random.default_rng(seed)
    changed = 0
    for tokens, tags in zip(tokens_list, tags_list):
        p = float(rng.uniform(0.2, 1.0))
        new_tokens, new_tags = op(tokens, tags, p, rng)
        assert len(new_tokens) == len(new_tags) and valid(new_tags)
        assert types_in_order(new_tags) == types_in_order(tags)  # every mention kept, with its type
        changed += new_tokens != tokens
        if name in ("lwtr", "shuffle"):
            assert new_tags == tags
        if name == "lwtr":  # a replacement is a train token of the same tag
            assert all((t, g) in by_tag for t, g in zip(new_tokens, new_tags))
        if name == "shuffle":  # each segment holds the same tokens
            for start, end in segments(tags):
                assert Counter(new_tokens[start:end]) == Counter(tokens[start:end])
        if name == "mention":  # O tokens stay; each mention is a train mention of its type
            assert [t for t, g in zip(new_tokens, new_tags) if g == "O"] == [t for t, g in zip(tokens, tags) if g == "O"]
            assert all((k, tuple(new_tokens[s:e])) in mentions for k, s, e in spans(new_tags))
        if name == "synonym":  # a token became its synonym's words, tagged like the token
            check_synonyms(tokens, tags, new_tokens, new_tags)
    assert changed > 0


@pytest.mark.parametrize("name", NAMES)
def test_each_augmentation_is_seeded_and_the_identity_at_zero(name: str) -> None:
    tokens_list, tags_list = random_sentences(3)
    op = ops(TokenTable.from_train(tokens_list, tags_list))[name]

    def run(seed: int, p: float) -> list[tuple[list[str], list[str]]]:
        rng = np.random.default_rng(seed)
        return [op(t, g, p, rng) for t, g in zip(tokens_list, tags_list)]

    assert run(1, 0.5) == run(1, 0.5)
    assert run(1, 0.5) != run(2, 0.5)
    assert run(1, 0.0) == list(zip(tokens_list, tags_list))


def test_synonyms_of_several_words_extend_the_span_with_its_type() -> None:
    rng = np.random.default_rng(0)
    thesaurus = {"a": ("new_york city",), "b": ("pp qq",), "c": ("zz",)}.get
    tokens, tags = synonym_replace(["a", "b", "c", "a"], ["B-LOC", "I-LOC", "O", "O"], 1.0, rng, lambda w: thesaurus(w, ()))
    assert tokens == ["new", "york", "city", "pp", "qq", "zz", "new", "york", "city"]
    assert tags == ["B-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC", "O", "O", "O", "O"]
    tokens, _ = synonym_replace(["Able"], ["B-PER"], 1.0, rng, lambda w: ("capable",))
    assert tokens == ["Capable"]  # a capital stays


def test_label_wise_replacement_draws_another_token_of_the_tag_by_train_count() -> None:
    tokens_list = [["a"] * 6 + ["b"] * 3 + ["c"], ["Ann"]]
    tags_list = [["O"] * 10, ["B-PER"]]
    table = TokenTable.from_train(tokens_list, tags_list)
    rng = np.random.default_rng(0)
    drawn = Counter(label_wise_replace(["a"], ["O"], 1.0, table, rng)[0][0] for _ in range(4000))
    assert set(drawn) == {"b", "c"}  # never the token itself
    assert drawn["b"] / 4000 == pytest.approx(0.75, abs=0.03)  # b 3 : c 1
    assert label_wise_replace(["Ann"], ["B-PER"], 1.0, table, rng) == (["Ann"], ["B-PER"])  # nothing else to draw
    assert label_wise_replace(["x"], ["B-ORG"], 1.0, table, rng) == (["x"], ["B-ORG"])  # a tag never seen in train


def test_choices_draw_by_count_and_cut_the_excluded_value_out() -> None:
    choices = Choices({"x": 1, "y": 2, "z": 7})
    rng = np.random.default_rng(5)
    drawn = Counter(choices.draw(rng, exclude="z") for _ in range(6000))
    assert set(drawn) == {"x", "y"} and drawn["y"] / 6000 == pytest.approx(2 / 3, abs=0.03)
    drawn = Counter(choices.draw(rng) for _ in range(6000))
    assert drawn["z"] / 6000 == pytest.approx(0.7, abs=0.03)
    assert Choices({"only": 3}).draw(rng, exclude="only") is None


def test_mention_replacement_rebuilds_the_tags_of_a_longer_or_shorter_mention() -> None:
    tokens_list = [["Ann", "went", "to", "Rome"], ["New", "York", "City", "is", "big"]]
    tags_list = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "I-LOC", "I-LOC", "O", "O"]]
    table = TokenTable.from_train(tokens_list, tags_list)
    tokens, tags = mention_replace(tokens_list[0], tags_list[0], 1.0, table, np.random.default_rng(0))
    assert tokens == ["Ann", "went", "to", "New", "York", "City"]
    assert tags == ["B-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC"]


def test_shuffle_draws_every_order_of_a_segment() -> None:
    rng = np.random.default_rng(0)
    orders = Counter(tuple(shuffle_within_segments(["a", "b", "c"], ["O"] * 3, 1.0, rng)[0]) for _ in range(600))
    assert len(orders) == 6 and min(orders.values()) > 60


def test_shuffle_keeps_adjacent_mentions_apart() -> None:
    tags = ["B-PER", "I-PER", "B-PER", "I-PER", "O", "O"]
    assert segments(tags) == [(0, 2), (2, 4), (4, 6)]
    rng = np.random.default_rng(0)
    for _ in range(50):
        tokens, _ = shuffle_within_segments(["a", "b", "c", "d", "e", "f"], tags, 1.0, rng)
        assert set(tokens[:2]) == {"a", "b"} and set(tokens[2:4]) == {"c", "d"}


# ---------------------------------------------------------------------- a mix on a train split


def test_augment_sentences_adds_copies_of_the_chosen_sentences() -> None:
    tokens_list, tags_list = random_sentences(7)
    settings = TokenAugment(mention=0.5, shuffle=0.5, lwtr=0.2, synonym=0.2, copies=2)
    tokens, tags = augment_sentences(tokens_list, tags_list, settings, np.random.default_rng(0), lookup=lookup)
    assert tokens[: len(tokens_list)] == tokens_list and tags[: len(tags_list)] == tags_list
    assert len(tokens) == len(tags) == 3 * len(tokens_list)
    assert all(len(a) == len(b) and valid(b) for a, b in zip(tokens, tags))
    copies = tags[len(tags_list) :]
    assert [types_in_order(t) for t in copies] == [types_in_order(t) for t in tags_list for _ in range(2)]
    again = augment_sentences(tokens_list, tags_list, settings, np.random.default_rng(0), lookup=lookup)
    assert again == (tokens, tags)
    assert augment_sentences(tokens_list, tags_list, settings, np.random.default_rng(1), lookup=lookup) != (tokens, tags)

    rare = TokenAugment(shuffle=0.5, copies=3, types=("ORG",))
    _, new_tags, sources = augmented_copies(tokens_list, tags_list, rare, np.random.default_rng(0))
    holding = [i for i, t in enumerate(tags_list) if "ORG" in types_in_order(t)]
    assert sources == [i for i in holding for _ in range(3)]
    assert all("ORG" in types_in_order(t) for t in new_tags)
    assert augment_sentences(tokens_list, tags_list, TokenAugment(copies=3), np.random.default_rng(0)) == (tokens_list, tags_list)


@pytest.mark.parametrize("name", NAMES)
def test_each_augmentation_in_a_mix_is_seeded(name: str) -> None:
    tokens_list, tags_list = random_sentences(8)
    settings = TokenAugment(**{name: 0.5})

    def run(seed: int) -> tuple[list[list[str]], list[list[str]]]:
        return augment_sentences(tokens_list, tags_list, settings, np.random.default_rng(seed), lookup=lookup)

    assert run(0) == run(0) and run(0) != run(1)


def test_the_train_table_is_built_once_and_reused() -> None:
    tokens_list, tags_list = [["Ann", "ran"], ["Bob", "sat"]], [["B-PER", "O"], ["B-PER", "O"]]
    other = TokenTable.from_train([["Zed", "ran"]], [["B-PER", "O"]])
    tokens, _ = augment_sentences(tokens_list, tags_list, TokenAugment(mention=1.0), np.random.default_rng(0), table=other)
    assert tokens[2:] == [["Zed", "ran"], ["Zed", "sat"]]
    assert TokenTable.from_train(tokens_list, tags_list).mentions["PER"].values == [("Ann",), ("Bob",)]


def test_settings_are_validated_and_said_in_words() -> None:
    assert TokenAugment(mention=0.3, shuffle=0.3).words() == "Mention replacement 0.3 · Shuffle within segments 0.3 · 1 copy per sentence"
    assert (
        TokenAugment(lwtr=0.1, synonym=0.2, copies=2, types=("LOC",)).words()
        == "Label-wise token replacement 0.1 · Synonym replacement 0.2 · 2 copies per sentence · only sentences with LOC"
    )
    assert TokenAugment().words() == "No augmentation" and not TokenAugment().active
    settings = TokenAugment(lwtr=0.2, copies=4, types=("MISC", "ORG"))
    assert TokenAugment.from_dict(settings.to_dict()) == settings
    for bad in ({"lwtr": 1.5}, {"shuffle": -0.1}, {"copies": 0}, {"copies": 11}, {"copies": 1.5}, {"types": ["LOC"]}):
        with pytest.raises(DataError, match="cannot work"):
            TokenAugment(**bad)
    with pytest.raises(DataError, match="tags"):
        label_wise_replace(["a", "b"], ["O"], 0.5, TokenTable.from_train([], []), np.random.default_rng(0))


def test_preview_marks_what_changed() -> None:
    tokens_list, tags_list = random_sentences(11)
    settings = TokenAugment(lwtr=0.5)
    pairs = preview(tokens_list, tags_list, settings, seed=2, k=4)
    assert len(pairs) == 4
    assert pairs == preview(tokens_list, tags_list, settings, seed=2, k=4)
    originals = {tuple(zip(t, g)) for t, g in zip(tokens_list, tags_list)}
    for before, after in pairs:
        assert tuple((t, g) for t, g, _ in before) in originals
        assert [g for _, g, _ in before] == [g for _, g, _ in after]  # LwTR keeps the tags
        assert [c for _, _, c in after] == [a[0] != b[0] for a, b in zip(after, before)]
        assert [c for _, _, c in before] == [c for _, _, c in after]
        assert any(c for _, _, c in after)  # sentences that changed come first
        assert spans_of(after) == spans_of(before)
    rare = preview(tokens_list, tags_list, TokenAugment(lwtr=0.02), seed=2, k=3)
    assert all(any(c for _, _, c in a) for _, a in rare)  # most copies change nothing at 0.02: the changed come first
    for before, after in preview(tokens_list, tags_list, TokenAugment(shuffle=1.0), seed=2, k=4):
        assert [c for _, _, c in after] == [a[0] != b[0] for a, b in zip(after, before)]
    still = preview(tokens_list, tags_list, TokenAugment(), seed=2, k=2)
    assert all(b == a and not any(c for _, _, c in a) for b, a in still)
    only = preview(tokens_list, tags_list, TokenAugment(shuffle=1.0, types=("LOC",)), seed=0, k=3)
    assert all("LOC" in types_in_order([g for _, g, _ in b]) for b, _ in only)


@needs_asset("wordnet")
def test_synonym_replacement_with_wordnet() -> None:
    rng = np.random.default_rng(0)
    tokens, tags = synonym_replace(["the", "big", "car", "Ann"], ["O", "O", "O", "B-PER"], 1.0, rng)
    assert tokens[0] == "the" and tokens[1] != "big" and tokens[2:] != ["car", "Ann"]
    assert valid(tags) and len(tokens) == len(tags) and types_in_order(tags) == ["PER"]
    tokens_list, _ = augment_sentences([["the", "big", "car"]], [["O", "O", "O"]], TokenAugment(synonym=1.0), rng)
    assert tokens_list[0] == ["the", "big", "car"] and tokens_list[1][0] == "the" and tokens_list[1] != tokens_list[0]


def test_synonym_replacement_without_wordnet_says_what_to_do(monkeypatch) -> None:
    from core.mitigate import language

    monkeypatch.setattr(language, "wordnet_ready", lambda: False)
    with pytest.raises(DataError, match="WordNet"):
        synonym_replace(["big"], ["O"], 0.5, np.random.default_rng(0))
    with pytest.raises(DataError, match="WordNet"):
        augment_sentences([["big"]], [["O"]], TokenAugment(synonym=0.5), np.random.default_rng(0))
    assert augment_sentences([["big"]], [["O"]], TokenAugment(shuffle=0.5), np.random.default_rng(0))[0][0] == ["big"]
