"""The "O" offset of token runs (``core.tokens.decide``): fitted on val, toward fewer entities."""

from __future__ import annotations

import numpy as np
import pytest

from core.metrics.entities import evaluate_entities
from core.tokens.decide import OFFSETS, TOLERANCE, fit_o_offset, micro_f1_by_offset, with_o_offset
from core.tokens.train import softmax

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def sentence(true: list[str], sure: dict[int, str], unsure: dict[int, str], margin: float) -> tuple[list[str], np.ndarray]:
    """Logits with "O" at 0 everywhere; ``sure`` words get their tag at +6, ``unsure`` ones at +``margin``."""
    z = np.full((len(true), len(TAGS)), -4.0, np.float32)
    z[:, 0] = 0.0
    for i, tag in sure.items():
        z[i, TAGS.index(tag)] = 6.0
    for i, tag in unsure.items():
        z[i, TAGS.index(tag)] = margin
    return true, z


def corpus(n: int, margin: float) -> tuple[list[list[str]], list[np.ndarray]]:
    """Each sentence: one true PER the model is sure of, and an O word it calls LOC by ``margin``."""
    truth, logits = [], []
    for _ in range(n):
        t, z = sentence(["B-PER", "I-PER", "O", "O"], {0: "B-PER", 1: "I-PER"}, {3: "B-LOC"}, margin)
        truth.append(t)
        logits.append(z)
    return truth, logits


def test_the_offset_is_added_to_o_alone_and_copies():
    _, logits = corpus(3, 1.0)
    moved = with_o_offset(logits, 1.5, TAGS)
    assert np.allclose(moved[0][:, 0], logits[0][:, 0] + 1.5) and np.allclose(moved[0][:, 1:], logits[0][:, 1:])
    assert logits[0][0, 0] == 0.0  # the input is left as it was


def test_an_offset_past_the_spurious_margin_removes_the_invented_entities_and_keeps_the_sure_ones():
    truth, logits = corpus(20, margin=1.2)  # the invented LOC wins by 1.2; the true PER by 6
    f1 = micro_f1_by_offset(logits, truth, TAGS)
    assert f1[0] == pytest.approx(2 * 20 / (40 + 20))  # 40 predicted (20 right), 20 true
    assert f1[OFFSETS > 1.2] == pytest.approx(np.ones(int((OFFSETS > 1.2).sum())))
    b = fit_o_offset(logits, truth, TAGS)
    assert b == OFFSETS.max()  # every offset past 1.2 is best: the rule takes the largest
    probs = [softmax(z) for z in with_o_offset(logits, b, TAGS)]
    s = evaluate_entities(truth, probs, TAGS).summary()
    assert s["spurious_rate"] == 0 and s["entity_f1_micro"] == 1.0


def test_the_rule_gives_up_at_most_the_tolerance_of_val_f1():
    truth, logits = corpus(30, margin=0.6)
    # a second kind of sentence: a true LOC the model is unsure of (margin 2.1): a large offset loses it
    for _ in range(10):
        t, z = sentence(["O", "B-LOC", "O"], {}, {1: "B-LOC"}, 2.1)
        truth.append(t)
        logits.append(z)
    f1 = micro_f1_by_offset(logits, truth, TAGS)
    b = fit_o_offset(logits, truth, TAGS)
    chosen = int(np.flatnonzero(OFFSETS == b)[0])
    assert f1[chosen] >= np.nanmax(f1) - TOLERANCE
    assert 0.6 < b < 2.1  # past the invented entities' margin, short of the unsure true ones'
    assert (f1[chosen + 1 :] < np.nanmax(f1) - TOLERANCE).all()


def test_no_entity_in_val_means_no_offset():
    truth = [["O", "O"], ["O"]]
    logits = [np.zeros((2, len(TAGS)), np.float32) + np.array([5, 0, 0, 0, 0], np.float32), np.zeros((1, len(TAGS)), np.float32)]
    logits[1][:, 0] = 5.0
    assert np.isnan(micro_f1_by_offset(logits, truth, TAGS)).all()
    assert fit_o_offset(logits, truth, TAGS) == 0.0


def test_a_model_that_gets_nothing_right_on_val_gets_no_offset():
    # every prediction is a wrong-type LOC: micro-F1 0 at every offset, so val cannot pick one
    truth, logits = [], []
    for _ in range(5):
        t, z = sentence(["B-PER", "O"], {}, {0: "B-LOC"}, 3.0)
        truth.append(t)
        logits.append(z)
    assert (micro_f1_by_offset(logits, truth, TAGS)[np.isfinite(micro_f1_by_offset(logits, truth, TAGS))] == 0).all()
    assert fit_o_offset(logits, truth, TAGS) == 0.0
