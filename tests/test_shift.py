"""core.shift: drift tests and label-free estimates on cases with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from core.shift import detect as D
from core.shift import estimate as E


def gaussians(n: int, m: int, d: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + shift


def mmd2_direct(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """The unbiased MMD² written out term by term."""

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-np.sum((a - b) ** 2) / bandwidth**2))

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


def test_mmd_statistic_is_the_unbiased_mmd2_written_out():
    x, y = gaussians(14, 11, 3, 0.7, seed=1)
    r = D.mmd_test(x, y, permutations=50, seed=0)
    assert r.n_reference == 14 and r.n_target == 11
    assert r.statistic == pytest.approx(mmd2_direct(x, y, r.detail["bandwidth"]), rel=1e-9)


def test_mmd_false_alarms_on_equal_gaussians_stay_near_alpha():
    alarms = [D.mmd_test(*gaussians(200, 200, 8, 0.0, seed=s), permutations=200, seed=s).shifted for s in range(20)]
    assert sum(alarms) <= 3  # α = 0.05: one expected in 20; 4 or more has probability < 2 %


def test_mmd_finds_a_mean_shift_and_p_values_are_permutation_p_values():
    r = D.mmd_test(*gaussians(300, 300, 8, 0.3, seed=3), permutations=199, seed=0)
    assert r.shifted and r.p_value == pytest.approx(1 / 200)
    assert r.statistic > r.detail["null_95"] > 0
    same = D.mmd_test(*gaussians(300, 300, 8, 0.0, seed=4), permutations=199, seed=0)
    assert same.p_value > 0.05 and (same.p_value * 200) == pytest.approx(round(same.p_value * 200))


def test_mmd_draws_at_most_n_per_side_and_is_seeded():
    x, y = gaussians(900, 700, 4, 0.2, seed=5)
    a = D.mmd_test(x, y, n_per_side=100, permutations=100, seed=7)
    b = D.mmd_test(x, y, n_per_side=100, permutations=100, seed=7)
    assert (a.n_reference, a.n_target) == (100, 100)
    assert (a.statistic, a.p_value) == (b.statistic, b.p_value)
    assert a.seconds >= 0


def test_domain_classifier_separates_a_shift_and_names_the_target_like_items():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(300, 6))
    tgt = rng.normal(size=(300, 6))
    tgt[:100, 0] += 4.0  # a third of the target lies far off on one feature
    r = D.domain_classifier_test(ref, tgt, seed=0, top=20)
    assert r.shifted and r.statistic > 0.6 and r.p_value == pytest.approx(1 / (1 + D.PERMUTATIONS))
    assert sum(i < 100 for i in r.detail["target_like"]) >= 18
    assert r.detail["target_like_score"] == sorted(r.detail["target_like_score"], reverse=True)


def test_domain_classifier_scores_are_ridge_regressions_held_out_answers():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(80, 5)), rng.integers(0, 2, size=(80, 3)).astype(float)
    got = D._ridge_scores(z[:60], y[:60], z[60:])
    for j in range(3):
        want = Ridge(alpha=D.RIDGE * 60).fit(z[:60], y[:60, j]).predict(z[60:])
        np.testing.assert_allclose(got[:, j], want, atol=1e-10)


def test_domain_classifier_false_alarms_stay_near_alpha_and_p_values_are_permutation_p_values():
    # the former p-value (the fold rank sums read from a normal table) fired on 9-11 % of such draws
    alarms = 0
    for s in range(60):
        r = D.domain_classifier_test(*gaussians(100, 100, 8, 0.0, seed=300 + s), permutations=99, seed=s)
        assert (r.p_value * 100) == pytest.approx(round(r.p_value * 100))
        alarms += r.shifted
    assert alarms <= 7  # 3 expected; 8 or more has probability < 1 % for an exact 5 % test


def test_domain_classifier_auc_near_half_without_shift():
    aucs, alarms = [], 0
    for s in range(10):
        r = D.domain_classifier_test(*gaussians(200, 200, 6, 0.0, seed=100 + s), seed=s)
        aucs.append(r.statistic)
        alarms += r.shifted
    assert abs(np.mean(aucs) - 0.5) < 0.05 and alarms <= 2


def test_shift_tests_refuse_bad_input_with_what_to_change():
    x = np.zeros((20, 3))
    with pytest.raises(DataError, match="same model"):
        D.mmd_test(x, np.zeros((20, 4)))
    with pytest.raises(DataError, match="at least 10"):
        D.mmd_test(x, np.zeros((5, 3)))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        D.domain_classifier_test(x, bad)
    with pytest.raises(DataError, match="2-D"):
        D.mmd_test(np.zeros(20), x)


def test_feature_tests_flag_the_moved_columns_only():
    rng = np.random.default_rng(0)
    n = 600
    ref = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(50, 5, n), "sex": rng.choice(["f", "m"], n), "few": np.nan})
    tgt = pd.DataFrame(
        {"age": rng.normal(45, 10, n), "income": rng.normal(50, 5, n), "sex": rng.choice(["f", "m"], n, p=[0.7, 0.3]), "few": np.nan}
    )
    r = D.feature_tests(ref, tgt)
    t = r.table.set_index("column")
    assert set(t.index) == {"age", "income", "sex"} and "few" in r.skipped
    assert t.loc["age", "test"] == "ks" and t.loc["sex", "test"] == "chi2"
    assert bool(t.loc["age", "shifted"]) and bool(t.loc["sex", "shifted"]) and not bool(t.loc["income", "shifted"])
    assert (t["p_adjusted"] >= t["p_value"] - 1e-15).all() and r.shifted
    with pytest.raises(DataError, match="not in both"):
        D.feature_tests(ref, tgt, columns=["height"])


def synthetic_classifier(prior: np.ndarray, n: int, seed: int, *, confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from ``prior``; each item's predicted class drawn from ``confusion[y]``; the
    probability row puts 0.8 on the prediction (the rest spread)."""
    rng = np.random.default_rng(seed)
    k = len(prior)
    y = rng.choice(k, n, p=prior)
    pred = np.array([rng.choice(k, p=confusion[c]) for c in y])
    probs = np.full((n, k), 0.2 / (k - 1))
    probs[np.arange(n), pred] = 0.8
    return probs, y


def test_bbse_recovers_a_made_prior_shift():
    confusion = np.array([[0.8, 0.1, 0.1], [0.15, 0.7, 0.15], [0.05, 0.15, 0.8]])  # P(pred | y)
    source, target = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    pv, yv = synthetic_classifier(source, 20_000, 0, confusion=confusion)
    pt, yt = synthetic_classifier(target, 20_000, 1, confusion=confusion)
    s = E.bbse(pv, yv, pt)
    assert np.abs(s.target_prior - target).max() < 0.03
    assert np.abs(s.weights - target / source).max() < 0.15
    true_acc = float((pt.argmax(1) == yt).mean())
    assert abs(s.accuracy - true_acc) < 0.02 and s.condition < 10
    same = E.bbse(pv, yv, synthetic_classifier(source, 20_000, 2, confusion=confusion)[0])
    assert np.abs(same.weights - 1).max() < 0.1


def calibrated(n: int, low: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities whose confidence c ~ U(low, 1) is calibrated: right with probability c."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(low, 1.0, n)
    y = rng.integers(0, 2, n)
    right = rng.random(n) < c
    pred = np.where(right, y, 1 - y)
    probs = np.zeros((n, 2))
    probs[np.arange(n), pred] = c
    probs[np.arange(n), 1 - pred] = 1 - c
    return probs, y


def separable(n: int, share_right: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities where every right answer has confidence in [0.8, 1) and every wrong
    one in [0.5, 0.7): confidence separates them perfectly, but is not calibrated."""
    rng = np.random.default_rng(seed)
    right = rng.random(n) < share_right
    c = np.where(right, rng.uniform(0.8, 1.0, n), rng.uniform(0.5, 0.7, n))
    y = rng.integers(0, 2, n)
    pred = np.where(right, y, 1 - y)
    probs = np.zeros((n, 2))
    probs[np.arange(n), pred] = c
    probs[np.arange(n), 1 - pred] = 1 - c
    return probs, y


def test_atc_is_exact_when_the_score_separates_right_from_wrong_whatever_the_mix():
    pv, yv = separable(10_000, 0.8, 0)
    pt, yt = separable(10_000, 0.55, 1)  # the target's mix moved: far more wrong answers
    true_acc = float((pt.argmax(1) == yt).mean())
    for kind in E.SCORES:
        est, _ = E.atc_accuracy(pv, yv, pt, kind=kind)
        assert est == pytest.approx(true_acc, abs=2e-3), kind  # the threshold lies at the highest val wrong score
    # plain mean confidence misses: it is not calibrated
    assert abs(E.mean_confidence(pt) - true_acc) > 0.1


def test_on_calibrated_scores_atc_is_right_without_shift_and_mean_confidence_under_one():
    pv, yv = calibrated(20_000, 0.7, 0)
    same, ys = calibrated(20_000, 0.7, 1)
    for kind in E.SCORES:
        assert abs(E.atc_accuracy(pv, yv, same, kind=kind)[0] - float((same.argmax(1) == ys).mean())) < 0.01
    t = E.atc_accuracy(pv, yv, same, kind="maxconf")[1]
    assert abs(float((E.score(pv, "maxconf") > t).mean()) - float((pv.argmax(1) == yv).mean())) < 1e-3
    harder, yh = calibrated(20_000, 0.5, 2)  # confidence moved: a calibrated mean follows it
    assert abs(E.mean_confidence(harder) - float((harder.argmax(1) == yh).mean())) < 0.01


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(20_000, 4))
    true = np.exp(z / 2.0) / np.exp(z / 2.0).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in true])
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)  # over-confident by a factor 2
    assert E.fit_temperature(probs, y) == pytest.approx(2.0, rel=0.05)
    assert E.mean_confidence(probs, 2.0) == pytest.approx(true.max(1).mean(), rel=1e-9)


def test_estimate_target_puts_the_truth_beside_each_estimate():
    pv, yv = calibrated(5_000, 0.6, 0)
    pt, yt = calibrated(5_000, 0.6, 1)
    r = E.estimate_target(pv, yv, pt, tau=0.9, target_labels=yt)
    assert set(r.accuracy) == {"atc_negent", "atc_maxconf", "mean_confidence", "mean_calibrated_confidence", "bbse"}
    assert r.truth["accuracy"] == pytest.approx(float((pt.argmax(1) == yt).mean()))
    assert abs(r.accuracy["atc_negent"] - r.truth["accuracy"]) < 0.03
    # calibrated data: the expected hallucination rate matches the true one
    assert abs(r.hallucination["atc"] - r.truth["hallucination_rate"]) < 0.01
    assert abs(r.hallucination["calibrated"] - r.truth["hallucination_rate"]) < 0.01
    assert set(r.errors()) == set(r.accuracy) and r.n_val == r.n_target == 5_000
    assert E.estimate_target(pv, yv, pt).errors() == {}


def test_estimates_refuse_bad_probabilities_and_labels():
    pv, yv = calibrated(100, 0.6, 0)
    with pytest.raises(DataError, match="same run"):
        E.atc_accuracy(pv, yv, np.full((10, 3), 1 / 3))
    with pytest.raises(DataError, match="summing to 1"):
        E.bbse(pv, yv, np.full((10, 2), 0.7))
    with pytest.raises(DataError, match="one label per val row"):
        E.bbse(pv, yv[:5], pv)
    with pytest.raises(DataError, match="score must be"):
        E.atc_accuracy(pv, yv, pv, kind="margin")


def test_made_image_shifts_keep_shape_and_dtype_and_do_what_they_say():
    from core.shift.made import corrupt_images

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    turned = corrupt_images(images, "rotate", 90)
    assert turned.dtype == np.uint8 and turned.shape == images.shape
    assert np.array_equal(turned, np.rot90(images, k=1, axes=(1, 2)))  # counter-clockwise, about the centre
    assert np.array_equal(corrupt_images(images, "scale", 1.0), images)
    assert np.array_equal(corrupt_images(images, "blur", 0), images)
    assert corrupt_images(images, "blur", 2.0).astype(float).std() < 0.5 * images.astype(float).std()
    dim = corrupt_images(images, "brightness", 0.5).astype(int)
    assert np.abs(dim - images.astype(int) // 2).max() <= 1
    colour = rng.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    assert corrupt_images(colour, "rotate", 15).shape == colour.shape
    with pytest.raises(DataError, match="unknown image shift"):
        corrupt_images(images, "shear", 1)
    with pytest.raises(DataError, match="uint8"):
        corrupt_images(images.astype(float), "rotate", 5)


def test_prior_shift_draws_the_asked_class_mix_and_by_column_splits_by_value():
    from core.shift.made import by_column, prior_shift

    y = np.repeat([0, 1, 2], 1000)
    rows = prior_shift(y, {0: 0.6, 1: 0.3, 2: 0.1}, 1000, seed=0)
    assert len(rows) == len(set(rows.tolist())) == 1000
    assert np.bincount(y[rows]).tolist() == [600, 300, 100]
    assert np.bincount(y[prior_shift(y, np.array([0.0, 1.0, 0.0]), 50, seed=1)], minlength=3).tolist() == [0, 50, 0]
    with pytest.raises(DataError, match="not among"):
        prior_shift(y, {5: 1.0}, 10)
    meta = pd.DataFrame({"year": [1994, 1994, 1995, 1995, 1995]})
    ref, tgt = by_column(meta, "year", 1994, [1995])
    assert ref.tolist() == [0, 1] and tgt.tolist() == [2, 3, 4]
    with pytest.raises(DataError, match="no row has"):
        by_column(meta, "year", 1994, 1996)


def test_covariate_weights_favour_the_items_that_look_like_the_target():
    from core.shift.weights import CLIP, covariate_weights

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2000, 3))
    tgt = rng.normal(size=(2000, 3)) + np.array([1.0, 0, 0])
    items = np.array([[-2.0, 0, 0], [0.0, 0, 0], [2.0, 0, 0]])
    w = covariate_weights(ref, tgt, np.vstack([items, ref]))
    assert w[0] < w[1] < w[2] and CLIP[0] / w.mean() <= w.min() and w.mean() == pytest.approx(1.0)
    # the true density ratio N(1, 1) / N(0, 1) at x is exp(x − 1/2): the fitted odds follow it
    ratio = np.exp(items[:, 0] - 0.5)
    assert np.allclose(np.log(w[:3] / w[1]), np.log(ratio / ratio[1]), atol=0.35)


def test_label_weights_and_the_importance_sampler_draw_the_target_mix():
    from core.mitigate.sampler import ItemWeighted
    from core.shift.weights import label_weights

    y = np.repeat([0, 1], [800, 200])
    w = label_weights(y, np.array([0.5, 3.0]))  # the target has relatively 6× more of class 1
    assert w.mean() == pytest.approx(1.0) and w[-1] / w[0] == pytest.approx(6.0)
    drawn = ItemWeighted(w).epoch(np.arange(1000), 0, np.random.default_rng(0))
    assert len(drawn) == 1000 and 0.55 < (y[drawn] == 1).mean() < 0.65  # 200·3 / (800·0.5 + 200·3) = 0.6
    with pytest.raises(DataError, match="model classes"):
        label_weights(np.array([0, 2]), np.array([1.0, 1.0]))


def test_the_importance_sampler_is_refused_without_weights_with_what_to_do():
    from core.mitigate.checks import check
    from core.mitigate.settings import Mitigations, Resampling

    m = Mitigations(resample=Resampling(method="importance"))
    problems = check(m, modality="tabular", finetune="full", train_counts={"a": 10, "b": 10})
    assert any("Shift page" in p for p in problems)
    assert not check(m, modality="tabular", finetune="full", train_counts={"a": 10, "b": 10}, item_weights=True)
