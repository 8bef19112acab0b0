"""core.metrics.entities: hand-built fixtures with known answers, and agreement with seqeval (scores),
nervaluate (SemEval categories) and core.metrics.calibration (token ECE, NLL, reliability bins)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nervaluate import Evaluator
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from core import metrics as M
from core.errors import DataError
from core.metrics.entities import (
    ENTITY_SUMMARY_KEYS,
    PER_TYPE_KEYS,
    confident_errors,
    decode,
    entity_per_type,
    entity_summary,
    evaluate_entities,
    span_categories,
    token_arrays,
    token_ece_by_type,
    token_reliability,
    type_confusion,
)
from core.metrics.keys import LOWER_IS_BETTER, parse_key, per_class_key, per_type_keys
from core.metrics.names import METRIC_NAMES, metric_name
from core.tokens.spans import spans, tag_names

TYPES = ["LOC", "MISC", "ORG", "PER"]
TAGS = tag_names(TYPES)  # O, B-LOC, I-LOC, B-MISC, I-MISC, B-ORG, I-ORG, B-PER, I-PER


def probs_for(top: list[str], conf: list[float] | float = 0.8, names: list[str] = TAGS) -> np.ndarray:
    """Tag probabilities whose argmax is ``top`` with probability ``conf``, the rest spread evenly."""
    c = np.broadcast_to(np.asarray(conf, dtype=np.float64), (len(top),))
    p = np.repeat(((1.0 - c) / (len(names) - 1))[:, None], len(names), axis=1)
    p[np.arange(len(top)), [names.index(t) for t in top]] = c
    return p.reshape(len(top), len(names))


# ---------------------------------------------------------------------------------------------
# Hand fixture: one sentence per situation. Predicted tags are the argmax of each row.
#
#  s  true                          predicted                      predicted side      true side
#  0  B-PER I-PER O B-LOC O         B-PER I-PER O B-ORG O          PER correct         PER correct
#                                                                  ORG incorrect .97   LOC incorrect
#  1  B-ORG I-ORG I-ORG O O         B-ORG I-ORG O O B-PER          ORG partial         ORG partial
#                                                                  PER spurious .95
#  2  O B-MISC I-MISC O B-PER       O O B-LOC I-LOC O              LOC partial, wrong  MISC partial
#                                                                  type                PER missed
#  3  (empty sentence)
#  4  B-PER I-PER I-PER I-PER       B-PER I-PER B-PER I-PER        PER partial ×2      PER partial
#  5  B-LOC B-LOC O                 B-LOC I-LOC O                  LOC partial         LOC partial ×2
FIXTURE_TRUE = [
    ["B-PER", "I-PER", "O", "B-LOC", "O"],
    ["B-ORG", "I-ORG", "I-ORG", "O", "O"],
    ["O", "B-MISC", "I-MISC", "O", "B-PER"],
    [],
    ["B-PER", "I-PER", "I-PER", "I-PER"],
    ["B-LOC", "B-LOC", "O"],
]
FIXTURE_PRED = [
    ["B-PER", "I-PER", "O", "B-ORG", "O"],
    ["B-ORG", "I-ORG", "O", "O", "B-PER"],
    ["O", "O", "B-LOC", "I-LOC", "O"],
    [],
    ["B-PER", "I-PER", "B-PER", "I-PER"],
    ["B-LOC", "I-LOC", "O"],
]
FIXTURE_CONF = [[0.8, 0.8, 0.8, 0.97, 0.8], [0.8, 0.8, 0.8, 0.8, 0.95], 0.8, 0.8, 0.8, 0.8]


def fixture_probs() -> list[np.ndarray]:
    return [probs_for(top, conf) for top, conf in zip(FIXTURE_PRED, FIXTURE_CONF)]


def test_categories_of_the_hand_fixture() -> None:
    cats = span_categories(FIXTURE_TRUE, fixture_probs(), TAGS)
    o = cats.overall
    assert (o.correct, o.incorrect, o.partial, o.spurious) == (1, 1, 5, 1)
    assert (o.incorrect_true, o.partial_true, o.missed) == (1, 5, 1)
    assert o.partial_wrong_type == 1  # LOC over MISC in sentence 2
    assert (o.n_pred, o.n_true) == (8, 8)
    per = cats.per_type
    # predicted side by predicted type, true side by true type
    assert (per["PER"].correct, per["PER"].partial, per["PER"].spurious, per["PER"].missed, per["PER"].partial_true) == (1, 2, 1, 1, 1)
    assert (per["PER"].n_pred, per["PER"].n_true) == (4, 3)
    assert (per["LOC"].partial, per["LOC"].incorrect_true, per["LOC"].partial_true, per["LOC"].partial_wrong_type) == (2, 1, 2, 1)
    assert (per["ORG"].incorrect, per["ORG"].partial, per["ORG"].partial_true, per["ORG"].n_true) == (1, 1, 1, 1)
    assert (per["MISC"].n_pred, per["MISC"].partial_true) == (0, 1)


def test_hallucination_rates_of_the_hand_fixture() -> None:
    s = entity_summary(FIXTURE_TRUE, fixture_probs(), TAGS, tau=0.9)
    assert set(s) == set(ENTITY_SUMMARY_KEYS)
    assert (s["n_pred_spans"], s["n_true_spans"], s["n_tokens"]) == (8, 8, 22)
    assert s["spurious_rate"] == pytest.approx(1 / 8)
    assert (s["n_confident_spurious"], s["confident_spurious_rate"]) == (1, pytest.approx(1 / 8))
    assert (s["n_type_hallucinations"], s["type_hallucination_rate"]) == (1, pytest.approx(1 / 8))
    assert s["missed_rate"] == pytest.approx(1 / 8)
    assert math.isnan(s["forced_known_type_rate"]) and s["n_dropped_type_mentions"] == 0  # no dropped types given
    # τ between the two confidences: the spurious PER (.95) is no longer confident, the ORG (.97) is
    s = entity_summary(FIXTURE_TRUE, fixture_probs(), TAGS, tau=0.96)
    assert (s["n_confident_spurious"], s["n_type_hallucinations"]) == (0, 1)
    s = entity_summary(FIXTURE_TRUE, fixture_probs(), TAGS, tau=0.95)  # equal to τ counts
    assert s["n_confident_spurious"] == 1


def test_seqeval_scores_and_token_accuracy_of_the_hand_fixture() -> None:
    s = entity_summary(FIXTURE_TRUE, fixture_probs(), TAGS)
    # strict: only sentence 0's PER is right → precision 1/8, recall 1/8
    assert s["entity_precision_micro"] == pytest.approx(1 / 8)
    assert s["entity_recall_micro"] == pytest.approx(1 / 8)
    assert s["entity_f1_micro"] == pytest.approx(1 / 8)
    wrong_tokens = 1 + 2 + 4 + 1 + 1  # by sentence: 0, 1, 2, 4, 5
    assert s["token_accuracy"] == pytest.approx((22 - wrong_tokens) / 22)
    per = entity_per_type(FIXTURE_TRUE, fixture_probs(), TAGS)
    assert list(per) == TYPES and list(per["PER"]) == list(PER_TYPE_KEYS)
    assert (per["PER"]["precision"], per["PER"]["recall"], per["PER"]["support"]) == (pytest.approx(1 / 4), pytest.approx(1 / 3), 3)
    assert (per["MISC"]["precision"], per["MISC"]["support"], per["MISC"]["predicted"]) == (0.0, 1, 0)
    assert (per["PER"]["spurious"], per["PER"]["confident_spurious"], per["ORG"]["incorrect_type"]) == (1, 1, 1)  # τ = 0.9


def test_type_confusion_of_the_hand_fixture() -> None:
    conf = type_confusion(FIXTURE_TRUE, fixture_probs(), TAGS)
    assert conf.labels == ["O", *TYPES]
    cell = {(t, p): int(conf.counts[i, j]) for i, t in enumerate(conf.labels) for j, p in enumerate(conf.labels) if conf.counts[i, j]}
    assert cell == {
        ("PER", "PER"): 1 + 2,  # sentence 0, and the two pieces of sentence 4
        ("LOC", "ORG"): 1,
        ("ORG", "ORG"): 1,
        ("MISC", "LOC"): 1,
        ("LOC", "LOC"): 2,  # one prediction over two true LOC spans
        ("PER", "O"): 1,  # missed
        ("O", "PER"): 1,  # spurious
    }
    from_tags = type_confusion(FIXTURE_TRUE, FIXTURE_PRED)  # predicted tags instead of probabilities
    assert from_tags.labels == conf.labels and (from_tags.counts == conf.counts).all()
    assert conf.to_dict()["counts"][0] == [0, 0, 0, 0, 1]
    lone = type_confusion([["O", "O"]], [["O", "I-PER"]])  # a lone I- tag opens a span, as in decode
    assert lone.labels == ["O", "PER"] and lone.counts.tolist() == [[0, 1], [0, 0]]


def test_decode_repairs_inside_tags_that_continue_nothing() -> None:
    top = ["I-PER", "I-PER", "O", "I-LOC", "B-PER", "I-LOC", "I-LOC", "B-ORG", "I-ORG"]
    conf = [0.9, 0.6, 0.8, 0.7, 0.9, 0.5, 0.99, 0.9, 0.9]
    tags, c = decode(probs_for(top, conf), TAGS)
    assert tags == ["B-PER", "I-PER", "O", "B-LOC", "B-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    np.testing.assert_allclose(c, conf)  # the argmax probability, repaired tokens included
    assert spans(tags) == [("PER", 0, 2), ("LOC", 3, 4), ("PER", 4, 5), ("LOC", 5, 7), ("ORG", 7, 9)]
    assert decode(np.zeros((0, len(TAGS))), TAGS)[0] == []


def test_decoding_does_not_carry_a_span_across_sentences() -> None:
    true = [["O", "B-PER"], ["I-PER", "O"]]
    ev = evaluate_entities(true, [probs_for(["O", "B-PER"]), probs_for(["I-PER", "O"])], TAGS)
    assert ev.pred_tags == [["O", "B-PER"], ["B-PER", "O"]]
    # the true "I-PER" opening sentence 1 opens nothing (strict), so the predicted B-PER there is spurious
    cats = ev.categories().overall
    assert (cats.correct, cats.spurious, cats.n_true) == (1, 1, 1)


def test_span_confidence_is_the_lowest_token_probability() -> None:
    true = [["O", "O", "O", "O"]]
    probs = [probs_for(["B-PER", "I-PER", "I-PER", "O"], [0.99, 0.7, 0.95, 0.99])]
    (err,) = confident_errors(true, probs, TAGS, tau=0.7, tokens=[["Ms", "Ada", "Lovelace", "wrote"]])
    assert (err.sentence, err.start, err.end, err.predicted, err.true, err.kind) == (0, 0, 3, "PER", None, "spurious")
    assert err.confidence == pytest.approx(0.7) and err.text == "Ms Ada Lovelace"
    assert confident_errors(true, probs, TAGS, tau=0.71) == []
    assert entity_summary(true, probs, TAGS, tau=0.71)["n_confident_spurious"] == 0


def test_confident_errors_are_sorted_and_limited() -> None:
    errs = confident_errors(FIXTURE_TRUE, fixture_probs(), TAGS, tau=0.9, k=5)
    assert [(e.kind, e.sentence, e.start, e.predicted, e.true) for e in errs] == [
        ("wrong type", 0, 3, "ORG", "LOC"),  # .97
        ("spurious", 1, 4, "PER", None),  # .95
    ]
    assert [e.confidence for e in errs] == pytest.approx([0.97, 0.95])
    assert len(confident_errors(FIXTURE_TRUE, fixture_probs(), TAGS, tau=0.9, k=1)) == 1
    assert errs[0].text is None  # no tokens given


def test_forced_known_type_on_a_dropped_type() -> None:
    names = tag_names(["LOC", "ORG", "PER"])  # the model has no MISC tags: MISC was absent from train
    true = [["B-MISC", "I-MISC", "O"], ["O", "B-MISC"], ["B-MISC", "O"], ["B-MISC", "I-MISC", "I-MISC"], ["B-PER", "O"]]
    probs = [
        probs_for(["B-PER", "I-PER", "O"], 0.95, names),  # exact span, known type, confident → forced
        probs_for(["O", "O"], 0.95, names),  # missed: not forced
        probs_for(["B-LOC", "O"], 0.5, names),  # known type but not confident
        probs_for(["O", "B-ORG", "O"], 0.99, names),  # overlaps part of the mention → forced
        probs_for(["B-PER", "O"], 0.99, names),
    ]
    s = entity_summary(true, probs, names, tau=0.9, dropped_types=("MISC",))
    assert (s["n_dropped_type_mentions"], s["n_forced_known_type"], s["forced_known_type_rate"]) == (4, 2, 0.5)
    assert math.isnan(entity_summary(true, probs, names, tau=0.9)["forced_known_type_rate"])
    assert math.isnan(entity_summary(true[4:], probs[4:], names, tau=0.9, dropped_types=("MISC",))["forced_known_type_rate"])
    # MISC tokens have no column: left out of the token calibration, counted wrong in token accuracy
    P, y = token_arrays(true, probs, names)
    assert (y == -1).sum() == 7 and s["token_ece"] == pytest.approx(M.ece(P, y))
    per = entity_per_type(true, probs, names)
    assert list(per) == ["LOC", "ORG", "PER", "MISC"] and math.isnan(per["MISC"]["ece"]) and per["MISC"]["missed"] == 1
    assert s["token_accuracy"] == pytest.approx(5 / 12)


def test_no_predictions_and_no_entities_give_nan_not_errors() -> None:
    true = [["B-PER", "O"], []]
    s = entity_summary(true, [probs_for(["O", "O"]), np.zeros((0, len(TAGS)))], TAGS)
    assert s["n_pred_spans"] == 0 and s["missed_rate"] == 1.0 and s["entity_f1_micro"] == 0.0
    for key in ("spurious_rate", "confident_spurious_rate", "type_hallucination_rate", "forced_known_type_rate"):
        assert math.isnan(s[key]), key
    s = entity_summary([["O", "O"]], [probs_for(["O", "O"])], TAGS)  # nothing to score at all
    for key in ("entity_f1_micro", "entity_f1_macro", "entity_precision_micro", "spurious_rate", "missed_rate"):
        assert math.isnan(s[key]), key
    assert s["token_accuracy"] == 1.0
    s = entity_summary([], [], TAGS)
    assert s["n_tokens"] == 0 and math.isnan(s["token_accuracy"]) and math.isnan(s["token_ece"])
    assert entity_per_type([], [], TAGS)["PER"]["support"] == 0
    assert type_confusion([], [], TAGS).counts.sum() == 0 and confident_errors([], [], TAGS) == []


def test_invalid_inputs_say_what_to_change() -> None:
    with pytest.raises(DataError, match="shape"):
        entity_summary([["O", "O"]], [probs_for(["O"])], TAGS)
    with pytest.raises(DataError, match="one array per sentence"):
        entity_summary([["O"]], [], TAGS)
    with pytest.raises(DataError, match="IOB2"):
        entity_summary([["PER"]], [probs_for(["O"])], TAGS)
    with pytest.raises(DataError, match='"O"'):
        entity_summary([["O"]], [np.ones((1, 2))], ["B-PER", "I-PER"])
    with pytest.raises(DataError, match="sum to 1"):
        entity_summary([["O"]], [np.full((1, len(TAGS)), 0.5)], TAGS)


# ---------------------------------------------------------------------------------------------
# Random sentences: agreement with the reference libraries


def random_set(seed: int, n: int = 300, types: list[str] = TYPES) -> tuple[list[list[str]], list[np.ndarray]]:
    """Random tags (lone I- tags included) and random, peaked tag probabilities."""
    rng = np.random.default_rng(seed)
    names = tag_names(types)
    vocab = ["O"] * 4 + names[1:]
    true, probs = [], []
    for _ in range(n):
        length = int(rng.integers(0, 13))
        true.append([str(t) for t in rng.choice(vocab, size=length)])
        logits = rng.normal(0.0, 2.0, (length, len(names)))
        logits[:, 0] += 1.5
        p = np.exp(logits)
        probs.append(p / p.sum(axis=1, keepdims=True))
    return true, probs


def test_scores_equal_seqeval_on_random_sentences() -> None:
    true, probs = random_set(1)
    pred = [decode(p, TAGS)[0] for p in probs]
    s = entity_summary(true, probs, TAGS)
    for avg in ("micro", "macro"):
        kw = dict(mode="strict", scheme=IOB2, average=avg, zero_division=0)
        assert s[f"entity_f1_{avg}"] == pytest.approx(f1_score(true, pred, **kw))
        assert s[f"entity_precision_{avg}"] == pytest.approx(precision_score(true, pred, **kw))
        assert s[f"entity_recall_{avg}"] == pytest.approx(recall_score(true, pred, **kw))
    assert s["token_accuracy"] == pytest.approx(accuracy_score(true, pred))
    assert evaluate_entities(true, probs, TAGS).pred_tags == pred  # decode one by one = decode all at once
    per = entity_per_type(true, probs, TAGS)
    per_seqeval = f1_score(true, pred, mode="strict", scheme=IOB2, average=None, zero_division=0)
    assert [per[t]["f1"] for t in TYPES] == pytest.approx(list(per_seqeval))
    assert sum(per[t]["support"] for t in TYPES) == s["n_true_spans"] == sum(len(spans(t)) for t in true)


def _nervaluate(true_spans: list, pred_spans: list) -> dict:
    as_dicts = lambda doc: [{"label": k, "start": a, "end": b - 1} for k, a, b in doc]  # nervaluate: end inclusive
    ev = Evaluator([as_dicts(d) for d in true_spans], [as_dicts(d) for d in pred_spans], tags=TYPES, loader="dict")
    return ev.evaluate()["overall"]


def _one_to_one(t: list, p: list) -> bool:
    """Every span overlaps at most one span of the other side."""
    over = lambda a, b: a[1] < b[2] and b[1] < a[2]
    return all(sum(over(a, b) for b in p) <= 1 for a in t) and all(sum(over(b, a) for a in t) <= 1 for b in p)


def test_categories_agree_with_nervaluate_on_random_sentences() -> None:
    true, probs = random_set(2, n=400)
    pred = [decode(p, TAGS)[0] for p in probs]
    t_spans, p_spans = [spans(t) for t in true], [spans(p) for p in pred]
    ours = span_categories(true, probs, TAGS).overall
    ref = _nervaluate(t_spans, p_spans)
    # exact matches are one-to-one: always the same counts
    assert ours.correct == ref["strict"].correct
    assert ours.incorrect == ref["exact"].correct - ref["strict"].correct
    assert ours.correct + ours.incorrect == ref["partial"].correct
    # partial / spurious / missed: the same wherever overlaps pair spans one to one ...
    same = [i for i in range(len(true)) if _one_to_one(t_spans[i], p_spans[i])]
    assert len(same) > 200
    ours_same = span_categories([true[i] for i in same], [probs[i] for i in same], TAGS).overall
    ref_same = _nervaluate([t_spans[i] for i in same], [p_spans[i] for i in same])["partial"]
    assert (ours_same.partial, ours_same.spurious, ours_same.missed) == (ref_same.partial, ref_same.spurious, ref_same.missed)
    assert ours_same.partial_true == ours_same.partial
    # ... and elsewhere, overlap alone never calls more spans spurious or missed than greedy pairing
    assert ours.spurious <= ref["partial"].spurious and ours.missed <= ref["partial"].missed
    assert ours.spurious + ours.missed < ref["partial"].spurious + ref["partial"].missed  # the documented difference shows up
    assert ours.n_pred == sum(map(len, p_spans)) and ours.n_true == sum(map(len, t_spans))


def test_nervaluate_difference_on_a_split_and_a_merged_span() -> None:
    # sentence 4 of the fixture (a true span split in two predictions) and 5 (one prediction over two)
    t_spans, p_spans = [spans(FIXTURE_TRUE[4]), spans(FIXTURE_TRUE[5])], [spans(FIXTURE_PRED[4]), spans(FIXTURE_PRED[5])]
    ref = _nervaluate(t_spans, p_spans)["partial"]
    assert (ref.partial, ref.spurious, ref.missed) == (2, 1, 1)  # greedy pairing
    ours = span_categories(FIXTURE_TRUE[4:], fixture_probs()[4:], TAGS).overall
    assert (ours.partial, ours.spurious, ours.missed) == (3, 0, 0)  # overlap: nothing is spurious or missed


def test_token_calibration_equals_core_metrics_on_flattened_tokens() -> None:
    true, probs = random_set(3)
    P, y = token_arrays(true, probs, TAGS)
    assert P.shape == (sum(map(len, true)), len(TAGS)) and (y >= 0).all()
    assert [TAGS[i] for i in y[: len(true[0]) + len(true[1])]] == true[0] + true[1]
    s = entity_summary(true, probs, TAGS, n_bins=10)
    assert s["token_ece"] == pytest.approx(M.ece(P, y, n_bins=10))
    assert s["token_nll"] == pytest.approx(M.nll(P, y))
    by_type = token_ece_by_type(true, probs, TAGS, n_bins=10)
    token_type = np.array([t.partition("-")[2] or "O" for sent in true for t in sent])
    for name in (*TYPES, "O"):
        rows = token_type == name
        assert by_type[name] == pytest.approx(M.ece(P[rows], y[rows], n_bins=10)), name
    assert s["token_ece_outside"] == by_type["O"]
    assert entity_per_type(true, probs, TAGS, n_bins=10)["ORG"]["ece"] == by_type["ORG"]
    bins, ref = token_reliability(true, probs, TAGS, n_bins=10), M.reliability_bins(P, y, n_bins=10)
    np.testing.assert_array_equal(bins.count, ref.count)
    np.testing.assert_allclose(bins.accuracy, ref.accuracy, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# Keys and names


def test_every_entity_metric_has_words_and_a_direction() -> None:
    for key in (*ENTITY_SUMMARY_KEYS, *PER_TYPE_KEYS):
        assert key in METRIC_NAMES and "_" not in metric_name(key), key
    assert metric_name("entity_f1_micro") == "entity micro-F1"
    assert metric_name("confident_spurious_rate") == "confident spurious-entity rate @τ"
    rates = {k for k in ENTITY_SUMMARY_KEYS if k.endswith("_rate") or k.startswith("token_ece") or k == "token_nll"}
    assert rates <= LOWER_IS_BETTER and "entity_f1_micro" not in LOWER_IS_BETTER


def test_per_type_values_are_stored_under_per_class_keys_with_the_type_index() -> None:
    per = entity_per_type(FIXTURE_TRUE, fixture_probs(), TAGS)
    rows = per_type_keys(per, TYPES)
    assert rows[per_class_key("spurious", TYPES.index("PER"))] == 1.0
    assert len(rows) == len(TYPES) * len(PER_TYPE_KEYS)
    assert parse_key("spurious/3").kind == "class" and parse_key("ece/0").cls == 0
    assert metric_name("spurious/3", TYPES) == "spurious entities of PER"
    assert metric_name("ece/1", TYPES) == "ECE of MISC"
    assert per_type_keys(per, ["PER"]) == {per_class_key(m, 0): v for m, v in per["PER"].items()}
