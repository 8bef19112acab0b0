"""Tests for core.diagnose.noise_aware (a probe fitted through the estimated noise) and the detector's
step that uses it (core.diagnose.label_issues.noise_aware_rerank)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from core import diagnose as nz
from core.diagnose import label_issues, noise_aware
from core.diagnose.posterior import mislabel_posterior, shrink_noise_matrix
from core.errors import DataError


def _blobs(n_per: int = 300, K: int = 3, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.6, (K, d))
    X = np.concatenate([centres[c] + rng.normal(0, 1, (n_per, d)) for c in range(K)])
    return X.astype(np.float32), np.repeat(np.arange(K), n_per)


def test_with_no_noise_the_fit_is_scikit_learns_logistic_regression():
    X, y = _blobs()
    F = noise_aware.common_scale(X)
    W = noise_aware.fit_forward_logistic(F, y, np.eye(3), C=0.05)
    ref = LogisticRegression(C=0.05, tol=1e-8, max_iter=5000).fit(F, y)
    np.testing.assert_allclose(W[:-1].T - W[:-1].T.mean(axis=0), ref.coef_ - ref.coef_.mean(axis=0), atol=2e-3)
    logits = np.hstack([F, np.ones((len(F), 1))]) @ W
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(P / P.sum(axis=1, keepdims=True), ref.predict_proba(F), atol=2e-3)


def _forward_loss(W: np.ndarray, F: np.ndarray, y: np.ndarray, T: np.ndarray, C: float) -> tuple[float, np.ndarray]:
    """The stated objective in the weights themselves, float64: a reference written apart from the fit."""
    n, d = F.shape
    Xb = np.hstack([F, np.ones((n, 1))])
    W = W.reshape(d + 1, -1)
    z = Xb @ W
    P = np.exp(z - z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    Q = T[y] * P
    q = Q.sum(axis=1)
    lam = 1.0 / (C * n)
    grad = Xb.T @ (P - Q / q[:, None]) / n
    grad[:-1] += lam * W[:-1]
    return float(-np.log(q).mean() + 0.5 * lam * (W[:-1] ** 2).sum()), grad.ravel()


def test_the_fit_reaches_the_stated_optimum_when_the_columns_scales_differ_widely():
    # the fit runs L-BFGS on standardised columns with the penalty rescaled: it must land on the optimum
    # of the objective as stated, in the weights of the columns as given
    from scipy.optimize import minimize

    X, y = _blobs(n_per=200, K=3, d=5, seed=3)
    F = noise_aware.common_scale(X) * np.array([8.0, 2.0, 1.0, 0.1, 0.02])
    T = np.array([[0.7, 0.3, 0.0], [0.3, 0.7, 0.0], [0.0, 0.0, 1.0]])
    W = noise_aware.fit_forward_logistic(F, y, T, C=0.05)
    ref = minimize(
        _forward_loss, np.zeros(W.size), args=(F, y, T, 0.05), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 20000}
    )
    assert _forward_loss(W, F, y, T, 0.05)[0] <= ref.fun + 1e-5
    Wr = ref.x.reshape(W.shape)
    np.testing.assert_allclose(W[:-1] - W[:-1].mean(axis=1, keepdims=True), Wr[:-1] - Wr[:-1].mean(axis=1, keepdims=True), atol=5e-3)


def test_the_common_scale_keeps_the_columns_relative_variance():
    X = np.random.default_rng(0).normal(0, [5.0, 1.0, 0.1], (400, 3))
    F = noise_aware.common_scale(X)
    np.testing.assert_allclose(F.mean(axis=0), 0, atol=1e-12)
    assert F.var(axis=0).mean() == pytest.approx(1.0)
    v = F.var(axis=0)
    assert v[0] / v[1] == pytest.approx(X.var(axis=0)[0] / X.var(axis=0)[1], rel=1e-9)
    assert np.isfinite(noise_aware.common_scale(np.ones((5, 2)))).all()  # constant columns: no division by zero


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fitted_through_the_noise_it_ranks_the_flips_higher(seed):
    """Class 0's labels are swapped with class 1's 40 % of the time: a plain probe learns the swap
    (its probability of the given label is near 0.6 for flipped and kept items alike); the
    noise-aware probe, told T, learns the true class, and the probability that a label is wrong
    under it ranks the flipped items higher (AUC measured 0.983 / 0.918 / 0.998 against the plain
    probe's 0.926 / 0.815 / 0.907)."""
    from sklearn.metrics import roc_auc_score

    X, y_true = _blobs(n_per=400, seed=seed)
    T = np.eye(3)
    T[:, 0], T[:, 1] = [0.6, 0.4, 0.0], [0.4, 0.6, 0.0]
    y, flipped = nz.inject_noise(y_true, T, seed=0)
    p = noise_aware.noise_aware_probs(X, y, T, seed=0)
    plain = nz.out_of_fold_probs(noise_aware.common_scale(X), y, seed=0, C=noise_aware.NOISE_AWARE_C)
    pair = y_true < 2
    auc_aware = roc_auc_score(flipped[pair], mislabel_posterior(y, p, T)[pair])
    auc_plain = roc_auc_score(flipped[pair], 1 - plain[np.arange(len(y)), y][pair])
    assert auc_aware > auc_plain + 0.04, (auc_aware, auc_plain)


def test_the_noise_aware_probe_is_out_of_fold():
    """Each fold's items are predicted by the model fitted on the other folds (the probe's folds)."""
    X, y = _blobs(n_per=60)
    T = np.full((3, 3), 0.1) + 0.7 * np.eye(3)
    p = noise_aware.noise_aware_probs(X, y, T, seed=3)
    np.testing.assert_allclose(p.sum(axis=1), 1)
    folds, n_eff, _ = nz.probe.fold_plan(y, 5, 3, 3)
    assert n_eff == 5
    F = noise_aware.common_scale(X)
    for f in (0, 2):
        W = noise_aware.fit_forward_logistic(F[folds != f], y[folds != f], T)
        logits = np.hstack([F[folds == f], np.ones(((folds == f).sum(), 1))]) @ W
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(p[folds == f], e / e.sum(axis=1, keepdims=True), atol=1e-6)


def test_a_bad_noise_matrix_is_a_clear_error():
    X, y = _blobs(n_per=20)
    with pytest.raises(DataError, match="square"):
        noise_aware.noise_aware_probs(X, y, np.ones((3, 2)) / 3)
    with pytest.raises(DataError, match="3 classes"):
        noise_aware.noise_aware_probs(X, np.where(y == 2, 5, y), np.eye(3))


def test_where_the_step_applies():
    cells = noise_aware.NOISE_AWARE_MIN_CELLS
    assert noise_aware.applies(-(-cells // 192), 192, 10, has_words=False)
    assert not noise_aware.applies(cells // 192, 192, 10, has_words=False)  # small: the probe is most of the time
    assert not noise_aware.applies(cells, 192, 2, has_words=False)  # two classes: the 2 × 2 estimate has nothing to pool
    assert not noise_aware.applies(cells, 192, 10, has_words=True)


def test_the_detector_re_ranks_by_the_mean_posterior_where_the_step_applies(monkeypatch):
    pixels, y_true = load_digits(return_X_y=True)
    y, flipped = nz.inject_noise(y_true, nz.make_noise_matrix(10, kind="pairflip", rate=0.3), seed=0)
    kw = dict(n_components=30, knn_components=20, seed=0)
    two = nz.detect_label_issues(pixels, y, **kw)
    assert not two.noise_aware and "noise_aware" not in two.seconds  # 1,797 × 30 cells: below the floor
    monkeypatch.setattr(noise_aware, "NOISE_AWARE_MIN_CELLS", 0)
    res = nz.detect_label_issues(pixels, y, **kw)
    assert res.noise_aware and "noise_aware" in res.seconds and res.passes == 2
    assert res.n_issues == two.n_issues  # the second pass's count
    T = shrink_noise_matrix(two.noise_matrix, two.confident_joint.sum(axis=0))
    p = noise_aware.noise_aware_probs(two.components, y, T, seed=0)
    wrong = 0.5 * mislabel_posterior(y, p, T) + 0.5 * (1 - two.score)
    np.testing.assert_allclose(res.score, 1 - wrong)
    assert set(np.flatnonzero(res.is_issue)) == set(np.argsort(-wrong, kind="stable")[: two.n_issues])
    assert np.all(np.diff(res.score[res.rank]) >= 0)  # most suspicious first
    assert not np.any(res.suggested[res.is_issue] == y[res.is_issue])
    np.testing.assert_array_equal(res.probs, two.probs)  # the first probe's probabilities, as before
    assert nz.detect_label_issues(pixels, y, **kw, noise_aware=False).is_issue.tolist() == two.is_issue.tolist()
    f1 = lambda r: 2 * (r.is_issue & flipped).sum() / (r.n_issues + flipped.sum())
    assert f1(res) >= 0.95, f1(res)  # measured 0.984 (the two passes: 0.980)
    # two classes: not applied, whatever the size
    two_class = y_true < 2
    res2 = nz.detect_label_issues(pixels[two_class], y[two_class] % 2, **kw)
    assert not res2.noise_aware


def test_min_examples_per_class_holds_after_the_re_ranking():
    X, y = _blobs(n_per=40)
    y = y.copy()
    y[:2] = 1  # class 0's first two items carry class 1's label
    res = label_issues.find_label_issues(y, nz.out_of_fold_probs(X, y, seed=0), method="posterior")
    again = label_issues.noise_aware_rerank(res, y, X, seed=0, min_examples_per_class=len(np.flatnonzero(y == 2)))
    assert (~again.is_issue[y == 2]).sum() == (y == 2).sum()  # class 2 keeps every item


def test_the_flagging_rule_says_a_noise_aware_probe_re_ranked():
    from core.diagnose import review

    pixels, y_true = load_digits(return_X_y=True)
    res = nz.detect_label_issues(pixels, y_true, n_components=30, knn_components=20, seed=0)
    assert "noise-aware" not in review.flagging_rule(res)
    from dataclasses import replace

    assert "noise-aware probe" in review.flagging_rule(replace(res, noise_aware=True))
