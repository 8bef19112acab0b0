"""Paired bootstrap intervals and McNemar's test on hand-made predictions with known answers; the
bootstrap's arithmetic with every item drawn once gives core.metrics' own values."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy.stats import binomtest

from core import metrics as M
from core.compare.intervals import (
    BOOT_METRICS,
    UNCLEAR,
    Answers,
    bootstrap_weights,
    item_sums,
    mcnemar,
    metrics_from_sums,
    paired_bootstrap,
    paired_mcnemar,
    verdict_of,
)


def _probs(rng: np.random.Generator, n: int, k: int, sharp: float = 3.0) -> np.ndarray:
    z = rng.normal(size=(n, k)) * sharp
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _answers_right_on(y: np.ndarray, right: np.ndarray, k: int, conf: float = 0.95) -> Answers:
    """Answers that name the true class on ``right`` items and the next class elsewhere, at ``conf``."""
    n = len(y)
    pred = np.where(right, y, (y + 1) % k)
    p = np.full((n, k), (1 - conf) / (k - 1))
    p[np.arange(n), pred] = conf
    return Answers(p, y.copy(), np.arange(n))


@pytest.mark.parametrize("unknown", [False, True])
def test_all_ones_weights_give_core_metrics_values(unknown):
    rng = np.random.default_rng(3)
    n, k = 700, 6
    p = _probs(rng, n, k)
    y = rng.integers(0, k, n)
    y[:50] = 2  # a class with more items
    y[y == 5] = 4  # a class nobody has: f1 0, recall undefined
    if unknown:
        y[rng.random(n) < 0.15] = -1
    want = M.summary(p, y, tau=0.8)
    got = metrics_from_sums(item_sums(p, y, tau=0.8).sum(axis=0), k)
    w = np.ones((1, n))
    batch = metrics_from_sums(w @ item_sums(p, y, tau=0.8), k)
    for m in BOOT_METRICS:
        if np.isnan(want[m]):
            assert m == "forced_known_rate" and not unknown and np.isnan(got[m])
            continue
        assert float(got[m]) == pytest.approx(want[m], abs=1e-9), m
        assert float(batch[m][0]) == pytest.approx(want[m], abs=1e-9), m


def test_weights_count_draws_and_repeat_with_the_seed():
    w = bootstrap_weights(50, 300, np.random.default_rng(1))
    assert w.shape == (300, 50) and (w.sum(axis=1) == 50).all() and w.min() >= 0
    assert w.mean() == pytest.approx(1.0) and np.array_equal(w, bootstrap_weights(50, 300, np.random.default_rng(1)))
    # a weight is a repeat count: scoring with it equals scoring the resampled items themselves
    rng = np.random.default_rng(2)
    p, y = _probs(rng, 50, 3), rng.integers(0, 3, 50)
    draw = np.repeat(np.arange(50), w[7].astype(int))
    got = metrics_from_sums(w[7].astype(np.float64) @ item_sums(p, y, tau=0.9), 3)
    want = M.summary(p[draw], y[draw], tau=0.9)
    for m in ("accuracy", "macro_f1", "ece", "nll", "brier", "worst_class_recall"):
        assert float(got[m]) == pytest.approx(want[m], abs=1e-9), m


def test_identical_runs_have_an_interval_around_zero_and_no_clear_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 1000)
    a = _answers_right_on(y, rng.random(1000) < 0.8, 4)
    out = paired_bootstrap(a, a, tau=0.9, n_boot=1000, seed=0)
    for m, iv in out.items():
        assert iv.delta == 0 and iv.low == 0 == iv.high and iv.verdict == UNCLEAR, m


def test_a_run_right_on_100_more_of_1000_items_is_better():
    rng = np.random.default_rng(0)
    n, k = 1000, 4
    y = rng.integers(0, k, n)
    right_a = np.zeros(n, bool)
    right_a[:700] = True
    right_b = right_a.copy()
    right_b[700:800] = True  # b also right on 100 items a gets wrong
    a, b = _answers_right_on(y, right_a, k), _answers_right_on(y, right_b, k)
    out = paired_bootstrap(a, b, tau=0.9, n_boot=1000, seed=0)
    acc = out["accuracy"]
    assert acc.a == pytest.approx(0.7) and acc.b == pytest.approx(0.8) and acc.delta == pytest.approx(0.1)
    # every difference is one of the 100 items: the interval is 0.1 ± ~1.96 · sqrt(0.1 · 0.9 / 1000)
    assert 0.07 < acc.low < 0.1 < acc.high < 0.13 and acc.verdict == "better"
    halluc = out["hallucination_rate"]  # wrong answers are all at 95 % ≥ τ: 0.3 → 0.2
    assert halluc.delta == pytest.approx(-0.1) and halluc.high < 0 and halluc.verdict == "better"
    assert paired_bootstrap(b, a, tau=0.9, n_boot=1000, seed=0)["accuracy"].verdict == "worse"
    test = paired_mcnemar(a, b)
    assert test is not None and (test.a_only, test.b_only) == (0, 100) and test.p_value < 1e-20


def test_a_small_change_on_few_items_has_no_clear_difference():
    rng = np.random.default_rng(5)
    n, k = 1000, 10
    y = rng.integers(0, k, n)
    right = rng.random(n) < 0.9
    other = right.copy()
    other[rng.choice(np.flatnonzero(~right), 16, replace=False)] = True  # 30 items change hands: 16 fixed,
    other[rng.choice(np.flatnonzero(right), 14, replace=False)] = False  # 14 broken

    a, b = _answers_right_on(y, right, k), _answers_right_on(y, other, k)
    acc = paired_bootstrap(a, b, tau=0.9, n_boot=1000, seed=0)["accuracy"]
    assert acc.delta == pytest.approx(0.002) and acc.low < 0 < acc.high and acc.verdict == UNCLEAR
    assert paired_mcnemar(a, b).p_value > 0.5


def test_shared_items_are_matched_by_key_and_order_does_not_matter():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    a = _answers_right_on(y, rng.random(300) < 0.7, 3)
    order = rng.permutation(300)
    shuffled = Answers(a.probs[order], a.y[order], a.keys[order])
    assert paired_bootstrap(a, shuffled, tau=0.9, n_boot=200)["accuracy"].high == 0
    apart = Answers(a.probs, a.y, a.keys + 10_000)
    assert paired_bootstrap(a, apart, tau=0.9) == {} and paired_mcnemar(a, apart) is None


def test_mcnemar_on_a_known_table():
    # 25 items only a gets right, 10 only b: the exact two-sided p of 10 of 35 at 1/2
    a_right = np.array([True] * 25 + [False] * 10 + [True] * 50 + [False] * 15)
    b_right = np.array([False] * 25 + [True] * 10 + [True] * 50 + [False] * 15)
    got = mcnemar(a_right, b_right)
    assert (got.a_only, got.b_only) == (25, 10)
    assert got.p_value == pytest.approx(binomtest(10, 35, 0.5).pvalue) and got.p_value == pytest.approx(
        2 * sum(comb(35, i) for i in range(11)) / 2**35
    )
    assert mcnemar(a_right, a_right).p_value == 1.0


def test_verdicts_need_an_interval_that_excludes_zero():
    assert verdict_of("accuracy", 0.01, 0.03) == "better" and verdict_of("accuracy", -0.03, -0.01) == "worse"
    assert verdict_of("ece", -0.03, -0.01) == "better" and verdict_of("hallucination_rate", 0.01, 0.02) == "worse"
    assert verdict_of("accuracy", -0.01, 0.03) == UNCLEAR and verdict_of("ece", 0.0, 0.01) == UNCLEAR
    assert verdict_of("accuracy", float("nan"), float("nan")) == UNCLEAR
