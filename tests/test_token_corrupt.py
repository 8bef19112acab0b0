"""core.tokens.corrupt: exact counts, truth records that replay to the output, train only, seeded."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from core.errors import DataError
from core.tokens.corrupt import (
    Corrupted,
    TokenRecipe,
    apply_recipe,
    delete_spans,
    drop_type,
    flip_types,
    inject_noise,
    recipe_counts,
    shift_boundaries,
    shift_options,
    thin_type,
    train_mask,
)
from core.tokens.spans import Span, spans, tags_of

TYPES = ("PER", "ORG", "LOC", "MISC")


def random_sentences(seed: int, n: int = 200, empty_share: float = 0.3) -> tuple[list[list[str]], list[list[str]]]:
    """Valid IOB2 sentences: random non-overlapping spans (some adjacent), some with no entity."""
    rng = np.random.default_rng(seed)
    tokens_list, tags_list = [], []
    for s in range(n):
        length = int(rng.integers(1, 15))
        found: list[Span] = []
        if rng.random() >= empty_share:
            i = int(rng.integers(0, 3))
            while i < length:
                end = min(length, i + int(rng.integers(1, 4)))
                found.append((str(rng.choice(TYPES)), i, end))
                i = end + int(rng.integers(0, 3))  # 0: the next span starts right after
        tokens_list.append([f"w{s}_{j}" for j in range(length)])
        tags_list.append(tags_of(found, length))
    return tokens_list, tags_list


def valid(tags: list[str]) -> bool:
    return tags_of(spans(tags), len(tags)) == list(tags)


def replay(true_tags: list[str], changes: list[dict[str, Any]]) -> list[Span]:
    """The spans the changes of a truth record make of the true tags."""
    out = spans(true_tags)
    for change in changes:
        at = out.index(change["before"])
        if change["after"] is None:
            del out[at]
        else:
            out[at] = change["after"]
    return sorted(out, key=lambda s: s[1])


def check_move(before: Span, after: Span) -> None:
    """``after`` is ``before`` with one end moved by one token, same type, not empty."""
    assert before[0] == after[0]
    assert after[2] > after[1]
    assert (abs(after[1] - before[1]), abs(after[2] - before[2])) in {(1, 0), (0, 1)}


# ---------------------------------------------------------------------- inject_noise


@pytest.mark.parametrize("seed", range(12))
def test_inject_noise_corrupts_exactly_a_tenth_of_entity_sentences_once_each(seed: int) -> None:
    tokens_list, tags_list = random_sentences(seed)
    noisy, truth = inject_noise(tokens_list, tags_list, seed=seed)
    holding = [i for i, t in enumerate(tags_list) if spans(t)]
    corrupted = [i for i, r in enumerate(truth) if r is not None]
    assert len(corrupted) == round(0.10 * len(holding))
    assert set(corrupted) <= set(holding)
    for i, (tags, new, record) in enumerate(zip(tags_list, noisy, truth)):
        assert len(new) == len(tags) and valid(new)
        if record is None:
            assert new == tags
            continue
        assert record["corrupted"] is True and record["true_tags"] == tags
        assert spans(new) == replay(tags, [record]), f"sentence {i}: the record does not say what changed"
        assert new != tags
        before, after = record["before"], record["after"]
        assert before in spans(tags)
        if record["kind"] == "delete":
            assert after is None
        elif record["kind"] == "swap":
            assert after[1:] == before[1:] and after[0] != before[0]
        else:
            assert record["kind"] == "shift"
            check_move(before, after)


def test_inject_noise_shares_the_kinds_in_turn_and_takes_the_share_given() -> None:
    tokens_list, tags_list = random_sentences(1, n=900, empty_share=0.2)
    holding = sum(bool(spans(t)) for t in tags_list)
    _, truth = inject_noise(tokens_list, tags_list, sentence_share=0.3, seed=4)
    kinds = Counter(r["kind"] for r in truth if r is not None)
    assert sum(kinds.values()) == round(0.3 * holding)
    assert set(kinds) == {"swap", "delete", "shift"}
    assert max(kinds.values()) - min(kinds.values()) <= 3, kinds  # in turn, a few taking another kind
    _, only = inject_noise(tokens_list, tags_list, kinds=("delete",), seed=4)
    assert {r["kind"] for r in only if r is not None} == {"delete"}


def test_inject_noise_is_seeded() -> None:
    tokens_list, tags_list = random_sentences(2)
    a = inject_noise(tokens_list, tags_list, seed=7)
    assert a == inject_noise(tokens_list, tags_list, seed=7)
    assert a != inject_noise(tokens_list, tags_list, seed=8)


def test_inject_noise_swaps_only_when_another_type_exists_and_refuses_bad_input() -> None:
    tags_list = [["B-PER", "I-PER", "O"]] * 20
    tokens_list = [["a", "b", "c"]] * 20
    _, truth = inject_noise(tokens_list, tags_list, kinds=("swap", "delete"), sentence_share=1.0, seed=0)
    assert {r["kind"] for r in truth if r is not None} == {"delete"}  # one type: nothing to swap to
    with pytest.raises(DataError):
        inject_noise(tokens_list, tags_list, kinds=("typo",))
    with pytest.raises(DataError):
        inject_noise(tokens_list, tags_list, sentence_share=1.5)
    with pytest.raises(DataError):
        inject_noise([["a"]] * 20, tags_list)


# ---------------------------------------------------------------------- one step at a time


def total_spans(tags_list: list[list[str]], train: np.ndarray) -> int:
    return sum(len(spans(t)) for t, m in zip(tags_list, train) if m)


def check_records(tags_list: list[list[str]], out: Corrupted, train: np.ndarray) -> list[dict[str, Any]]:
    """Every sentence's output is what its record says; sentences out of train are untouched.
    Returns all the changes."""
    changes = []
    for i, (tags, new, record) in enumerate(zip(tags_list, out.tags, out.truth)):
        assert len(new) == len(tags) and (valid(new) or record is None)
        if not train[i]:
            assert record is None and new == tags and out.kept[i]
        if record is None:
            assert new == tags and out.kept[i]
            continue
        assert record["true_tags"] == tags
        assert spans(new) == replay(tags, record["changes"])
        assert record["corrupted"] == bool(record["changes"])
        changes += record["changes"]
    return changes


@pytest.mark.parametrize("seed", range(8))
def test_delete_spans_deletes_the_rounded_share_of_train_spans(seed: int) -> None:
    _, tags_list = random_sentences(seed)
    train = np.random.default_rng(seed).random(len(tags_list)) < 0.7
    out = delete_spans(tags_list, 0.2, train=train, seed=seed)
    changes = check_records(tags_list, out, train)
    assert len(changes) == round(0.2 * total_spans(tags_list, train))
    assert all(c["kind"] == "delete" and c["after"] is None for c in changes)
    assert out.kept.all()


def test_delete_spans_at_zero_and_one() -> None:
    _, tags_list = random_sentences(3)
    assert delete_spans(tags_list, 0.0).tags == tags_list
    assert all(set(t) == {"O"} for t in delete_spans(tags_list, 1.0).tags)


@pytest.mark.parametrize("seed", range(8))
def test_flip_types_random_and_by_mapping(seed: int) -> None:
    _, tags_list = random_sentences(seed)
    train = np.random.default_rng(seed).random(len(tags_list)) < 0.7
    out = flip_types(tags_list, 0.3, train=train, seed=seed)
    changes = check_records(tags_list, out, train)
    assert len(changes) == round(0.3 * total_spans(tags_list, train))
    assert all(c["kind"] == "swap" and c["after"][0] != c["before"][0] and c["after"][1:] == c["before"][1:] for c in changes)

    mapped = flip_types(tags_list, 0.5, {"PER": "ORG"}, train=train, seed=seed)
    changes = check_records(tags_list, mapped, train)
    per = sum(k == "PER" for t, m in zip(tags_list, train) if m for k, _, _ in spans(t))
    assert len(changes) == round(0.5 * per)
    assert {(c["before"][0], c["after"][0]) for c in changes} == {("PER", "ORG")}


@pytest.mark.parametrize("seed", range(8))
def test_shift_boundaries_moves_one_end_by_one_token_without_overlap(seed: int) -> None:
    _, tags_list = random_sentences(seed)
    train = np.ones(len(tags_list), bool)
    out = shift_boundaries(tags_list, 0.4, train=train, seed=seed)
    changes = check_records(tags_list, out, train)
    n = total_spans(tags_list, train)
    assert 0 < len(changes) <= round(0.4 * n)
    for c in changes:  # an overlap would have overwritten a neighbour: check_records' replay sees it
        check_move(c["before"], c["after"])


def test_shift_boundaries_reaches_the_count_when_every_span_can_move() -> None:
    tags_list = [["O", "B-PER", "I-PER", "O", "O", "B-LOC", "O"]] * 50
    out = shift_boundaries(tags_list, 0.3, seed=0)
    assert sum(len(r["changes"]) for r in out.truth if r) == round(0.3 * 100)


def test_shift_options_never_leave_the_sentence_overlap_or_empty() -> None:
    assert shift_options([("PER", 0, 1)], 0, 1) == []
    assert shift_options([("PER", 0, 1), ("LOC", 1, 2)], 0, 2) == []
    assert sorted(shift_options([("PER", 0, 1), ("LOC", 2, 3)], 1, 4)) == [("LOC", 1, 3), ("LOC", 2, 4)]
    assert sorted(shift_options([("PER", 1, 3)], 0, 3)) == [("PER", 0, 3), ("PER", 1, 2), ("PER", 2, 3)]


@pytest.mark.parametrize("keep", [0.0, 0.25, 0.37, 0.5, 0.7, 1.0])
def test_thin_type_keeps_the_rounded_share_of_train_sentences_holding_it(keep: float) -> None:
    _, tags_list = random_sentences(5)
    train = np.arange(len(tags_list)) % 4 != 0
    out = thin_type(tags_list, "LOC", keep, train=train, seed=1)
    check_records(tags_list, out, train)
    holding = np.array([any(k == "LOC" for k, _, _ in spans(t)) for t in tags_list])
    assert (~out.kept).sum() == len(np.flatnonzero(holding & train)) - round(keep * (holding & train).sum())
    assert not (~out.kept & ~(holding & train)).any()  # only train sentences holding LOC leave
    assert all(r["removed"] == "thin" for r, k in zip(out.truth, out.kept) if not k)
    assert out.tags == tags_list


def test_drop_type_removes_annotations_or_sentences_from_train_only() -> None:
    _, tags_list = random_sentences(6)
    train = np.arange(len(tags_list)) % 3 != 0
    out = drop_type(tags_list, "MISC", train=train)
    changes = check_records(tags_list, out, train)
    assert all(c["kind"] == "drop" and c["before"][0] == "MISC" for c in changes)
    assert len(changes) == sum(k == "MISC" for t, m in zip(tags_list, train) if m for k, _, _ in spans(t))
    assert not any(k == "MISC" for t, m in zip(out.tags, train) if m for k, _, _ in spans(t))
    assert any(k == "MISC" for t, m in zip(out.tags, train) if not m for k, _, _ in spans(t))  # val/test keep it

    gone = drop_type(tags_list, "MISC", mode="sentences", train=train)
    check_records(tags_list, gone, train)
    holding = np.array([any(k == "MISC" for k, _, _ in spans(t)) for t in tags_list])
    assert np.array_equal(~gone.kept, holding & train)
    assert gone.tags == tags_list
    with pytest.raises(DataError, match="no entity type"):
        drop_type(tags_list, "DATE")
    with pytest.raises(DataError):
        drop_type(tags_list, "MISC", mode="both")


# ---------------------------------------------------------------------- the recipe


RECIPE = TokenRecipe(thin=(("ORG", 0.5),), drop_types=("MISC",), flip_rate=0.2, delete_rate=0.1, shift_rate=0.1, seed=3)


@pytest.mark.parametrize("seed", range(6))
def test_apply_recipe_touches_train_only_and_the_truth_replays(seed: int) -> None:
    tokens_list, tags_list = random_sentences(seed, n=300)
    split = np.random.default_rng(seed).choice([0, 0, 0, 1, 2], size=len(tags_list))
    tags, kept, truth = apply_recipe(tokens_list, tags_list, split, RECIPE, seed)
    train = split == 0
    check_records(tags_list, Corrupted(tags, kept, truth), train)
    assert all(new == old for new, old, m in zip(tags, tags_list, train) if not m)
    assert kept[~train].all()
    before = [(i, c["before"]) for i, r in enumerate(truth) if r for c in r["changes"]]
    assert len(before) == len(set(before))  # each span changed at most once: always a span of the truth
    assert all(s in spans(tags_list[i]) for i, s in before)
    kinds = Counter(c["kind"] for r in truth if r for c in r["changes"])
    # the noise counts: shares of the spans in the train sentences kept after thinning and dropping
    n = sum(len(spans(t)) for t, m, k in zip(tags, train, kept) if m and k) + kinds["delete"]
    assert kinds["swap"] == round(0.2 * n)
    assert kinds["delete"] == round(0.1 * n)
    assert kinds["shift"] <= round(0.1 * n)
    assert not any(k == "MISC" for t, m, k_ in zip(tags, train, kept) if m and k_ for k, _, _ in spans(t))


def test_apply_recipe_is_seeded_and_an_empty_recipe_is_a_copy() -> None:
    tokens_list, tags_list = random_sentences(9)
    split = ["train"] * 150 + ["dev"] * 25 + ["test"] * 25
    a = apply_recipe(tokens_list, tags_list, split, RECIPE)
    b = apply_recipe(tokens_list, tags_list, split, RECIPE)
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2] == b[2]
    c = apply_recipe(tokens_list, tags_list, split, RECIPE, seed=4)
    assert a[0] != c[0]
    tags, kept, truth = apply_recipe(tokens_list, tags_list, split, TokenRecipe())
    assert tags == tags_list and kept.all() and truth == [None] * len(tags_list)


def test_recipe_counts_before_and_after() -> None:
    tokens_list, tags_list = random_sentences(10, n=300)
    split = np.array([0] * 240 + [2] * 60)
    rows = {r["type"]: r for r in recipe_counts(tags_list, split, RECIPE)}
    assert set(rows) == set(TYPES)
    train = [spans(t) for t in tags_list[:240]]
    assert rows["ORG"]["mentions_before"] == sum(k == "ORG" for s in train for k, _, _ in s)
    assert rows["ORG"]["sentences_before"] == sum(any(k == "ORG" for k, _, _ in s) for s in train)
    assert rows["MISC"]["mentions_after"] == 0 and rows["MISC"]["mentions_before"] > 0
    tags, kept, _ = apply_recipe(tokens_list, tags_list, split, RECIPE)
    assert rows["PER"]["mentions_after"] == sum(k == "PER" for t, m in zip(tags[:240], kept[:240]) if m for k, _, _ in spans(t))
    assert rows["ORG"]["sentences_after"] < rows["ORG"]["sentences_before"]


def test_recipe_is_validated_in_words_and_round_trips() -> None:
    assert RECIPE.active == [
        "ORG sentences kept 50%",
        "dropped MISC (annotations set to O)",
        "20% of spans flipped (to a random other type)",
        "10% of spans deleted",
        "10% of span boundaries shifted",
    ]
    assert TokenRecipe().summary() == "simulated: no change (seed 0)"
    assert TokenRecipe.from_dict(RECIPE.to_dict()) == RECIPE
    mapped = TokenRecipe(flip_rate=0.1, flip_mapping=(("PER", "ORG"),))
    assert TokenRecipe.from_dict(mapped.to_dict()) == mapped
    for bad in (
        {"flip_rate": 0.6, "delete_rate": 0.6},
        {"delete_rate": -0.1},
        {"thin": (("PER", 1.5),)},
        {"drop_mode": "both"},
        {"flip_mapping": (("PER", "PER"),)},
        {"flip_mapping": (("PER", "MISC"),), "drop_types": ("MISC",)},
    ):
        with pytest.raises(DataError, match="cannot work"):
            TokenRecipe(**bad)
    tokens_list, tags_list = random_sentences(0, n=20)
    with pytest.raises(DataError, match="no entity type"):
        apply_recipe(tokens_list, tags_list, [0] * 20, TokenRecipe(drop_types=("DATE",)))
    with pytest.raises(DataError, match="split"):
        apply_recipe(tokens_list, tags_list, ["train"] * 19 + ["holdout"], TokenRecipe())


def test_train_mask_reads_codes_and_names() -> None:
    assert train_mask([0, 1, 2, 0], 4).tolist() == [True, False, False, True]
    assert train_mask(["Train", "dev", "test", "training"], 4).tolist() == [True, False, False, True]
    with pytest.raises(DataError):
        train_mask([0, 1], 3)


def test_sentences_left_alone_keep_their_tags_exactly_even_when_not_strict_iob2() -> None:
    tags_list = [["B-PER", "I-PER", "O"], ["O", "I-LOC", "I-LOC"], ["B-LOC", "O", "I-PER"]]
    tokens_list = [["a", "b", "c"]] * 3
    tags, kept, truth = apply_recipe(tokens_list, tags_list, [0, 1, 2], TokenRecipe(delete_rate=1.0))
    assert tags == [["O", "O", "O"], ["O", "I-LOC", "I-LOC"], ["B-LOC", "O", "I-PER"]]
    assert truth[1:] == [None, None] and kept.all()
