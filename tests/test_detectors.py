"""Tests for the detectors in core.diagnose: label noise (confident learning + kNN), duplicates, outliers, coverage.

Noise-recovery floors were set a little below the values measured with the seeds used here
(digits, PCA-30 of standardised pixels, 5-fold logistic probe, ``inject_noise`` seed 0):

=================================  =====  =====  =====  ===============  =====================
scenario / rule                    prec.  recall F1     noise-matrix MAE  max per-class rate err
=================================  =====  =====  =====  ===============  =====================
20% symmetric, probs only (CL)     0.913  0.905  0.909  0.0062           0.047
20% symmetric, probs + X (auto)    0.948  0.919  0.934  0.0049           0.034
30% pair-flip, probs only (CL)     0.645  0.835  0.728  0.0214           0.229
30% pair-flip, probs + X (auto)    0.893  0.917  0.905  0.0056           0.061
=================================  =====  =====  =====  ===============  =====================

(MAE is over the off-diagonal entries of P(given | true).) Everything is seeded, so the suite is
deterministic; it runs in a few seconds on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from core import diagnose as nz
from core.diagnose import knn
from core.errors import DataError

K_DIGITS = 10
OFF = ~np.eye(K_DIGITS, dtype=bool)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits():
    pixels, y = load_digits(return_X_y=True)
    X = PCA(30, random_state=0).fit_transform(StandardScaler().fit_transform(pixels)).astype(np.float32)
    return X, y.astype(np.int64)


_SCENARIOS = {"symmetric20": ("symmetric", 0.2), "pairflip30": ("pairflip", 0.3)}


@pytest.fixture(scope="module", params=sorted(_SCENARIOS))
def noisy(request, digits):
    X, y_true = digits
    kind, rate = _SCENARIOS[request.param]
    M = nz.make_noise_matrix(K_DIGITS, kind=kind, rate=rate)
    y, flipped = nz.inject_noise(y_true, M, seed=0)
    probs = nz.out_of_fold_probs(X, y, seed=0)
    return {
        "name": request.param,
        "rate": rate,
        "M": M,
        "X": X,
        "y_true": y_true,
        "y": y,
        "flipped": flipped,
        "probs": probs,
        "cl": nz.find_label_issues(y, probs, method="prune_by_noise_rate"),
        "auto": nz.find_label_issues(y, probs, X=X),
    }


def _prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & truth).sum())
    p, r = tp / max(pred.sum(), 1), tp / max(truth.sum(), 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


# floors: (precision, recall, off-diagonal MAE ceiling, per-class noise-rate tolerance or None)
FLOORS = {
    ("symmetric20", "cl"): (0.88, 0.87, 0.012, 0.08),
    ("symmetric20", "auto"): (0.92, 0.89, 0.010, 0.06),
    ("pairflip30", "cl"): (0.61, 0.80, 0.030, None),  # the probe learns part of the flip: rates biased low
    ("pairflip30", "auto"): (0.86, 0.89, 0.010, 0.10),
}


# --------------------------------------------------------------------------- synthetic noise


def test_make_noise_matrix_shapes_and_columns():
    sym = nz.make_noise_matrix(4, kind="symmetric", rate=0.3)
    np.testing.assert_allclose(sym.sum(axis=0), 1.0)
    np.testing.assert_allclose(np.diag(sym), 0.7)
    np.testing.assert_allclose(sym[1, 0], 0.1)
    pf = nz.make_noise_matrix(4, kind="pairflip", rate=0.3)
    np.testing.assert_allclose(pf.sum(axis=0), 1.0)
    assert pf[1, 0] == pytest.approx(0.3) and pf[0, 3] == pytest.approx(0.3) and pf[2, 0] == 0
    with pytest.raises(ValueError, match="rate"):
        nz.make_noise_matrix(4, rate=1.5)
    with pytest.raises(ValueError, match="kind"):
        nz.make_noise_matrix(4, kind="random", rate=0.1)


def test_inject_noise_realises_the_matrix_exactly(digits):
    _, y = digits
    M = nz.make_noise_matrix(K_DIGITS, kind="pairflip", rate=0.3)
    noisy, flipped = nz.inject_noise(y, M, seed=0)
    assert np.array_equal(flipped, noisy != y)
    counts = np.bincount(y, minlength=K_DIGITS)
    realised = np.zeros((K_DIGITS, K_DIGITS))
    np.add.at(realised, (noisy, y), 1.0)
    np.testing.assert_allclose(realised / counts, M, atol=0.5 / counts.min() + 1e-9)
    again, _ = nz.inject_noise(y, M, seed=0)
    assert np.array_equal(noisy, again)  # seeded


# --------------------------------------------------------------------------- recovery on digits


@pytest.mark.parametrize("rule", ["cl", "auto"])
def test_noise_recovery_on_digits(noisy, rule):
    res = noisy[rule]
    p_floor, r_floor, mae_ceiling, rate_tol = FLOORS[(noisy["name"], rule)]
    p, r, _ = _prf(res.is_issue, noisy["flipped"])
    assert p >= p_floor, f"precision {p:.3f} < {p_floor}"
    assert r >= r_floor, f"recall {r:.3f} < {r_floor}"
    nm = res.noise_matrix
    assert nm.shape == (K_DIGITS, K_DIGITS)
    np.testing.assert_allclose(nm.sum(axis=0), 1.0)
    mae = np.abs(nm - noisy["M"])[OFF].mean()
    assert mae <= mae_ceiling, f"noise-matrix off-diagonal MAE {mae:.4f} > {mae_ceiling}"
    if rate_tol is not None:
        err = np.abs(res.noise_rate_per_class - noisy["rate"]).max()
        assert err <= rate_tol, f"per-class noise rate off by {err:.3f} > {rate_tol}"
    # outputs are consistent with each other
    assert res.is_issue.shape == res.score.shape == res.suggested.shape == (len(noisy["y"]),)
    assert np.all((res.score >= 0) & (res.score <= 1))
    assert set(res.rank.tolist()) == set(np.flatnonzero(res.is_issue).tolist())
    assert np.all(np.diff(res.score[res.rank]) >= 0)  # most suspicious first
    np.testing.assert_allclose(res.confident_joint.sum(axis=1), np.bincount(noisy["y"], minlength=K_DIGITS))


def test_knn_blend_beats_plain_confident_learning(noisy):
    f_cl = _prf(noisy["cl"].is_issue, noisy["flipped"])[2]
    f_auto = _prf(noisy["auto"].is_issue, noisy["flipped"])[2]
    assert noisy["auto"].method == "blend_posterior"
    assert f_auto >= f_cl + 0.02, (f_auto, f_cl)
    # suggested labels of correctly flagged items mostly recover the true label (measured 0.98)
    hit = noisy["auto"].is_issue & noisy["flipped"]
    assert (noisy["auto"].suggested[hit] == noisy["y_true"][hit]).mean() >= 0.95
    # the most suspicious 100 are nearly all real flips (measured 1.00 and 0.90)
    assert noisy["flipped"][noisy["auto"].rank[:100]].mean() >= 0.85


def test_other_rules_run_and_nest(noisy):
    y, probs = noisy["y"], noisy["probs"]
    masks = {
        m: nz.find_label_issues(y, probs, method=m).is_issue
        for m in ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")
    }
    assert np.array_equal(masks["both"], masks["prune_by_noise_rate"] & masks["prune_by_class"])
    # every rule only flags items whose given label is not the prediction
    assert not (masks["confident_learning"] & ~masks["predicted_neq_given"]).any()
    assert not (masks["prune_by_noise_rate"] & ~masks["predicted_neq_given"]).any()


def test_out_of_fold_probs_is_deterministic_and_normalised(digits):
    X, y = digits
    a = nz.out_of_fold_probs(X[:400], y[:400], seed=3)
    b = nz.out_of_fold_probs(X[:400], y[:400], seed=3)
    assert a.shape == (400, K_DIGITS)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)


def test_the_probe_scales_every_item_once_then_fits_each_fold(digits, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    from core.diagnose import probe

    X, y = digits
    X, y = X[:600] * np.geomspace(0.01, 100, X.shape[1]).astype(np.float32), y[:600]  # columns of very different scales
    probs = nz.out_of_fold_probs(X, y, seed=2, C=0.1)
    # the mechanism: the items standardised once, as StandardScaler over every item (it reads no label), then a
    # logistic regression per training fold
    folds, n_eff = probe._fold_assignment(y, 5, 2)
    Xs = StandardScaler().fit_transform(X)
    ref = np.zeros_like(probs)
    for f in range(n_eff):
        ref[folds == f] = LogisticRegression(C=0.1, max_iter=500).fit(Xs[folds != f], y[folds != f]).predict_proba(Xs[folds == f])
    # float32 rounding of the two standardisations moves a probability by ~1e-6; scaling inside each fold instead moves it by ~0.05
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    # the standardisation itself is StandardScaler's, integer features and a constant column included
    ints = np.random.default_rng(0).integers(0, 17, (200, 8))
    ints[:, 3] = 5
    np.testing.assert_allclose(probe._model_inputs("logreg", ints), StandardScaler().fit_transform(ints.astype(float)), atol=1e-12)
    np.testing.assert_allclose(probe._model_inputs("logreg", X), StandardScaler().fit_transform(X), atol=1e-5)
    # folds on two threads (from POOL_MIN_CELLS on) give the same probabilities as one at a time
    monkeypatch.setattr(probe, "POOL_MIN_CELLS", 0)
    np.testing.assert_allclose(nz.out_of_fold_probs(X, y, seed=2, C=0.1, n_jobs=2), probs, atol=1e-6)


def test_pca_on_threads_is_the_pca_on_one(monkeypatch):
    from core.diagnose import probe

    # well-separated variances, so that each component is defined to far below float32's rounding
    X = np.random.default_rng(4).normal(size=(3001, 40)).astype(np.float32) * np.geomspace(30, 1, 40, dtype=np.float32)
    one = nz.pca_reduce(X, 12, n_jobs=1)
    monkeypatch.setattr(probe, "PCA_THREADS_MIN_CELLS", 0)  # row blocks on 3 threads: 1,000 / 1,001 / 1,000 rows
    np.testing.assert_allclose(nz.pca_reduce(X, 12, n_jobs=3), one, rtol=1e-4, atol=1e-3)


def test_one_thread_each_holds_blas_and_openmp_even_when_scikit_learn_comes_later():
    # and in run_threads' workers, where OpenMP's limit (held per thread) has to be set again
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "from core.diagnose.arrays import one_thread_each\n"
        "assert 'sklearn' not in sys.modules, 'imported too early for this check'\n"
        "from threadpoolctl import threadpool_info\n"
        "from core.diagnose.arrays import run_threads\n"
        "with one_thread_each():\n"
        "    inside = {(i['internal_api'], i['num_threads']) for i in threadpool_info()}\n"
        "seen = []\n"
        "run_threads(lambda _: seen.append({(i['internal_api'], i['num_threads']) for i in threadpool_info()}), range(4), 2)\n"
        "print(sorted(inside.union(*seen)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert out.returncode == 0, out.stderr
    inside = eval(out.stdout.strip())  # a printed list of (api, threads) pairs
    assert ("openmp", 1) in inside and ("openblas", 1) in inside  # scikit-learn's OpenMP, numpy's and SciPy's BLAS
    assert all(threads == 1 for _, threads in inside)


def test_tail_classes_do_not_crash_oof(digits):
    X, y = digits
    keep = np.r_[np.flatnonzero(y < 8)[:300], np.flatnonzero(y == 8)[:2], np.flatnonzero(y == 9)[:1]]
    Xs, ys = X[keep], y[keep]
    probs = nz.out_of_fold_probs(Xs, ys, n_folds=5, seed=0)
    assert probs.shape == (len(ys), 10)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # each 2-item class member is predicted by a model that saw the other member: class 8 is reachable
    assert np.all(probs[ys == 8, 8] > 0)
    res = nz.find_label_issues(ys, probs, X=Xs)
    assert res.is_issue.shape == ys.shape
    # a class smaller than n_folds everywhere: falls back to fewer folds
    tiny = nz.out_of_fold_probs(Xs[:12], np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]), n_folds=5)
    assert tiny.shape == (12, 4)
    with pytest.raises(ValueError, match="single item"):
        nz.out_of_fold_probs(Xs[:3], np.array([0, 1, 2]))


# --------------------------------------------------------------------------- hand-computed CL


LAB6 = np.array([0, 0, 1, 1, 2, 2])
PROBS6 = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.2, 0.7, 0.1],  # labelled 0, looks like 1
        [0.1, 0.8, 0.1],
        [0.1, 0.6, 0.3],  # below every threshold
        [0.1, 0.2, 0.7],
        [0.6, 0.1, 0.3],  # labelled 2, looks like 0
    ]
)


def test_confident_joint_hand_example():
    t = nz.confident_thresholds(LAB6, PROBS6)
    np.testing.assert_allclose(t, [0.5, 0.7, 0.5])  # (0.8+0.2)/2, (0.8+0.6)/2, (0.7+0.3)/2
    raw = nz.confident_joint(LAB6, PROBS6, calibrate=False)
    np.testing.assert_array_equal(raw, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    cal = nz.confident_joint(LAB6, PROBS6)
    np.testing.assert_allclose(cal, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])  # rows rescaled to 2 each
    est = nz.estimate_noise(LAB6, PROBS6)
    np.testing.assert_allclose(est["joint"], cal / 6)
    np.testing.assert_allclose(est["noise_matrix"], [[0.5, 1 / 3, 0], [0, 2 / 3, 0], [0.5, 0, 1]])
    np.testing.assert_allclose(est["noise_rate_per_class"], [0.5, 1 / 3, 0])
    # several classes above threshold: the most probable of them wins
    multi = nz.confident_joint(LAB6, PROBS6, thresholds=[0.3, 0.3, 0.3], calibrate=False)
    np.testing.assert_array_equal(multi, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])


def test_find_label_issues_hand_example():
    res = nz.find_label_issues(LAB6, PROBS6, method="prune_by_noise_rate")
    np.testing.assert_array_equal(res.is_issue, [False, True, False, False, False, True])
    np.testing.assert_array_equal(res.rank, [1, 5])  # p_given 0.2 before 0.3
    np.testing.assert_array_equal(res.suggested, [0, 1, 1, 1, 2, 0])
    np.testing.assert_allclose(res.score, PROBS6[np.arange(6), LAB6])
    conf = nz.find_label_issues(LAB6, PROBS6, method="confident_learning")
    np.testing.assert_array_equal(conf.is_issue, [False, True, False, False, False, True])
    margin = nz.label_quality_scores(LAB6, PROBS6, method="normalized_margin")
    np.testing.assert_allclose(margin, [(0.8 - 0.1 + 1) / 2, (0.2 - 0.7 + 1) / 2, 0.85, 0.65, 0.75, (0.3 - 0.6 + 1) / 2])


def test_combined_score_formula():
    agreement = np.array([1.0, 0.0, 1.0, 0.5, 1.0, 0.2])
    votes = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    score, suggested = nz.combined_label_quality(LAB6, PROBS6, knn_agreement=agreement, knn_votes=votes, weight=0.5)
    np.testing.assert_allclose(score, 0.5 * PROBS6[np.arange(6), LAB6] + 0.5 * agreement)
    np.testing.assert_array_equal(suggested, [0, 1, 1, 1, 2, 0])


def test_validation_messages_say_what_to_change():
    with pytest.raises(ValueError, match="sum to 1"):
        nz.find_label_issues(LAB6, PROBS6 * 2)
    with pytest.raises(ValueError, match="one column per class"):
        nz.find_label_issues(np.array([0, 1, 5, 1, 2, 2]), PROBS6)
    with pytest.raises(ValueError, match=r"same length|one row per item"):
        nz.find_label_issues(LAB6[:5], PROBS6)
    with pytest.raises(ValueError, match="method must be one of"):
        nz.find_label_issues(LAB6, PROBS6, method="fancy")
    with pytest.raises(ValueError, match="needs X"):
        nz.find_label_issues(LAB6, PROBS6, method="blend_prune_by_noise_rate")


# --------------------------------------------------------------------------- kNN, duplicates, outliers


def test_knn_label_agreement_excludes_self():
    X = np.array([[1, 0], [0.99, 0.1], [0.98, 0.2], [0, 1], [0.1, 0.99], [0.2, 0.98]], np.float32)
    y = np.array([0, 0, 1, 1, 1, 1])
    idx, sims = nz.knn_graph(X, k=2)
    assert not np.any(idx == np.arange(6)[:, None])
    assert np.all(np.diff(sims, axis=1) <= 0)
    agreement, votes = nz.knn_label_agreement(X, y, k=2)
    np.testing.assert_allclose(agreement, [0.5, 0.5, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(votes[2], [1.0, 0.0])
    np.testing.assert_allclose(votes.sum(axis=1), 1.0)


def test_knn_graph_matches_sklearn_on_wide_rows():
    from sklearn.neighbors import NearestNeighbors

    X = np.random.default_rng(1).normal(size=(3000, 16)).astype(np.float32)  # > 8·k·64: block path
    idx, sims = nz.knn_graph(X, k=5)
    dist, ref = NearestNeighbors(n_neighbors=6, metric="cosine", algorithm="brute").fit(X).kneighbors(X)
    np.testing.assert_array_equal(idx, ref[:, 1:])
    np.testing.assert_allclose(sims, 1 - dist[:, 1:], atol=1e-5)


def test_knn_graph_tiled_path_matches_sklearn(monkeypatch):
    from sklearn.neighbors import NearestNeighbors

    # the upper-triangle tile path (n >= 2 tiles) with small tiles and stripes, on 1 and 2 threads
    monkeypatch.setattr(knn, "_TILE", 700)
    monkeypatch.setattr(knn, "_STRIPE", 128)
    X = np.random.default_rng(3).normal(size=(3000, 12)).astype(np.float32)
    dist, ref = NearestNeighbors(n_neighbors=8, metric="cosine", algorithm="brute").fit(X).kneighbors(X)
    for n_jobs in (1, 2):
        idx, sims = nz.knn_graph(X, k=7, n_jobs=n_jobs)
        np.testing.assert_array_equal(idx, ref[:, 1:])
        np.testing.assert_allclose(sims, 1 - dist[:, 1:], atol=1e-5)


def test_knn_graph_threads_match_single_thread():
    X = np.random.default_rng(2).normal(size=(5000, 8)).astype(np.float32)  # several row blocks
    one = nz.knn_graph(X, k=7, n_jobs=1)
    two = nz.knn_graph(X, k=7, n_jobs=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_allclose(one[1], two[1], atol=1e-6)  # BLAS thread count changes the last bit
    with pytest.raises(ValueError, match="n_jobs"):
        nz.knn_graph(X, k=3, n_jobs=0)


def test_pca_reduce_matches_sklearn_up_to_sign():
    pixels, _ = load_digits(return_X_y=True)
    Z = nz.pca_reduce(pixels, 10)
    ref = PCA(10).fit_transform(pixels)
    assert Z.shape == (len(pixels), 10) and Z.dtype == np.float32
    corr = np.abs((Z * ref).sum(axis=0) / np.linalg.norm(Z, axis=0) / np.linalg.norm(ref, axis=0))
    np.testing.assert_allclose(corr, 1.0, atol=1e-4)
    # a row sample estimates nearly the same subspace
    sub = nz.pca_reduce(pixels, 10, max_fit_rows=900, seed=1)
    assert np.linalg.svd(np.linalg.lstsq(ref, sub, rcond=None)[0], compute_uv=False).min() > 0.9
    # more components than dimensions: all of them, a rotation of the centred rows
    small = pixels[:, :5] - pixels[:, :5].mean(0)
    full = nz.pca_reduce(pixels[:, :5], 8)
    assert full.shape == (len(pixels), 5)
    np.testing.assert_allclose(full @ full.T, small @ small.T, atol=1e-2)
    assert np.all(np.diff(full.var(axis=0)) <= 1e-6)  # by decreasing variance


def test_detect_label_issues_is_the_pipeline(digits):
    pixels, y_true = load_digits(return_X_y=True)
    M = nz.make_noise_matrix(K_DIGITS, kind="pairflip", rate=0.3)
    y, flipped = nz.inject_noise(y_true, M, seed=0)
    res = nz.detect_label_issues(pixels, y, n_components=30, knn_components=20, seed=0)
    first = nz.detect_label_issues(pixels, y, n_components=30, knn_components=20, seed=0, second_pass=False)
    Z = nz.pca_reduce(pixels, 30, seed=0)
    probs, graph = nz.out_of_fold_probs(Z, y, seed=0, C=0.1), nz.knn_graph(Z[:, :20], k=10)[0]
    ref = nz.find_label_issues(y, probs, neighbors=graph)
    np.testing.assert_array_equal(first.is_issue, ref.is_issue)
    assert first.passes == 1 and set(first.seconds) == {"pca", "probe", "knn", "confident_learning"}
    # the second pass (1,797 × 30 cells: below SECOND_PASS_PROBE_MIN_CELLS, the probe is kept) reweighs the votes
    again = nz.find_label_issues(y, probs, neighbors=graph, vote_weights=np.clip(ref.score, 1e-3, 1.0))
    np.testing.assert_array_equal(res.is_issue, again.is_issue)
    np.testing.assert_array_equal(res.probs, probs)  # the probe's own probabilities, as confident learning alone would read them
    assert res.probs.shape == (len(y), K_DIGITS) and res.passes == 2
    assert set(res.seconds) == {"pca", "probe", "knn", "confident_learning", "second_pass"}
    p, r, _ = _prf(res.is_issue, flipped)
    assert p >= 0.90 and r >= 0.90, (p, r)  # measured 0.931 / 0.929 after the first pass
    with pytest.raises(ValueError, match="knn_components"):
        nz.detect_label_issues(pixels, y, knn_components=0)


def test_the_second_pass_weighs_every_source_by_the_first_pass_label_quality(monkeypatch):
    """The neighbour votes and the words' naive Bayes are fitted again with each item weighted by
    its first pass's label quality; the probe too when there are no words and at least
    SECOND_PASS_PROBE_MIN_CELLS items × components."""
    from core.diagnose import label_issues, words

    X, texts, y_true = _texts_and_weak_embeddings()
    y, flipped = nz.inject_noise(y_true, nz.make_noise_matrix(3, kind="symmetric", rate=0.3), seed=1)
    calls: dict[str, list] = {"probe": [], "words": []}
    probe_fit, words_fit = label_issues.out_of_fold_probs, words.naive_bayes_out_of_fold

    def probe_spy(*a, **kw):
        calls["probe"].append(kw.get("sample_weight"))
        return probe_fit(*a, **kw)

    def words_spy(*a, **kw):
        calls["words"].append(kw.get("sample_weight"))
        return words_fit(*a, **kw)

    monkeypatch.setattr(label_issues, "out_of_fold_probs", probe_spy)
    monkeypatch.setattr(words, "naive_bayes_out_of_fold", words_spy)
    monkeypatch.setattr(label_issues, "SECOND_PASS_PROBE_MIN_CELLS", 0)
    # without words: the probe and the votes
    first = nz.detect_label_issues(X, y, n_components=None, seed=0, second_pass=False)
    calls["probe"].clear()
    res = nz.detect_label_issues(X, y, n_components=None, seed=0)
    w = np.clip(first.score, 1e-3, 1.0)
    assert calls["probe"][0] is None and len(calls["probe"]) == 2  # the first pass: every item counts the same
    np.testing.assert_allclose(calls["probe"][1], w)
    P = probe_fit(X, y, seed=0, C=0.1, sample_weight=w)
    ref = nz.find_label_issues(y, P, neighbors=res.neighbors, vote_weights=w)
    np.testing.assert_array_equal(res.is_issue, ref.is_issue)
    assert res.passes == 2 and "second_pass" in res.seconds
    # with words: the words and the votes; the probe is fitted once
    first = nz.detect_label_issues(X, y, n_components=None, seed=0, texts=texts, second_pass=False)
    calls["probe"].clear()
    calls["words"].clear()
    res = nz.detect_label_issues(X, y, n_components=None, seed=0, texts=texts)
    w = np.clip(first.score, 1e-3, 1.0)
    assert len(calls["probe"]) == 1 and calls["words"][0] is None
    np.testing.assert_allclose(calls["words"][1], w)
    Q = words.word_view_probs(texts, y, seed=0, sample_weight=w)
    ref = nz.find_label_issues(y, res.probs, neighbors=res.neighbors, view=Q, vote_weights=w)
    np.testing.assert_array_equal(res.is_issue, ref.is_issue)
    assert _prf(res.is_issue, flipped)[2] >= 0.85


def test_weights_enter_the_probe_the_words_and_the_votes_as_stated():
    from sklearn.naive_bayes import MultinomialNB

    from core.diagnose.words import WORD_ALPHA, naive_bayes_out_of_fold, word_features

    _, texts, y = _texts_and_weak_embeddings()
    y = y.copy()
    y[0] = 3  # a class of one item: always in training, predicted in-sample by the first fold's model
    F = word_features(texts)
    w = np.random.default_rng(0).uniform(0.05, 1.0, len(y))
    for weights in (None, w):  # the closed form is scikit-learn's naive Bayes, fold by fold
        ref = nz.out_of_fold_probs(F, y, seed=1, model=MultinomialNB(alpha=WORD_ALPHA), sample_weight=weights)
        np.testing.assert_allclose(naive_bayes_out_of_fold(F, y, seed=1, sample_weight=weights), ref, atol=1e-10)
    # a weight of 0 is the item left out of every training fold (here the logistic probe)
    from sklearn.linear_model import LogisticRegression

    from core.diagnose.probe import _fold_assignment, _model_inputs

    X = np.random.default_rng(1).normal(size=(150, 5)).astype(np.float32)
    yy = np.arange(150) % 3
    drop = np.arange(150) % 7 == 0
    weighted = nz.out_of_fold_probs(X, yy, seed=0, C=0.5, sample_weight=(~drop).astype(float))
    folds, A = _fold_assignment(yy, 5, 0)[0], _model_inputs("logreg", X)
    for f in range(5):
        keep = (folds != f) & ~drop
        ref = LogisticRegression(C=0.5, max_iter=500).fit(A[keep], yy[keep]).predict_proba(A[folds == f])
        # lbfgs stops within its tolerance of the same optimum (~1e-4); ignoring the weights moves a probability by ~0.2
        np.testing.assert_allclose(weighted[folds == f], ref, atol=1e-3)
    # votes: each neighbour's vote counts with its weight
    nb = np.array([[1, 2], [0, 2], [0, 1]])
    labels = np.array([0, 1, 1])
    agreement, votes = nz.knn_label_agreement(None, labels, neighbors=nb, weights=np.array([1.0, 0.5, 0.25]))
    np.testing.assert_allclose(votes, [[0.0, 1.0], [0.8, 0.2], [2 / 3, 1 / 3]])
    np.testing.assert_allclose(agreement, [0.0, 0.2, 1 / 3])
    plain = nz.knn_label_agreement(None, labels, neighbors=nb)
    same = nz.knn_label_agreement(None, labels, neighbors=nb, weights=np.ones(3))
    np.testing.assert_allclose(plain[1], same[1])
    np.testing.assert_allclose(plain[0], same[0])
    for bad in (np.zeros(3), np.ones(2), np.array([1.0, np.nan, 1.0])):
        with pytest.raises(DataError, match="weights"):
            nz.knn_label_agreement(None, labels, neighbors=nb, weights=bad)
    with pytest.raises(DataError, match="sample_weight"):
        nz.out_of_fold_probs(X, yy, sample_weight=-np.ones(150))


def test_the_blend_weights_brier_scores_are_the_blends_own():
    from core.diagnose.label_issues import _blend_briers

    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 300)
    sources = [rng.dirichlet(np.ones(4), 300) for _ in range(3)]
    grid = np.array([(0.2, 0.3, 0.5), (0.6, 0.0, 0.4), (1.0, 0.0, 0.0)])
    direct = []
    for a in grid:
        B = sum(w * S for w, S in zip(a, sources, strict=True))
        direct.append((B * B).sum(axis=1).mean() - 2 * B[np.arange(300), y].mean())
    np.testing.assert_allclose(_blend_briers(y, sources, grid), direct, atol=1e-12)


def test_near_duplicates_fixture():
    X = np.array(
        [
            [1, 0, 0, 0],  # 0  hash a, train
            [0, 0, 0, 1],  # 1  hash a, train  -> exact duplicate of 0 (same content, other embedding)
            [0, 1, 0, 0],  # 2  train
            [0, 0.99, 0.1, 0],  # 3  test, cosine 0.995 to 2 -> near duplicate, train/test leak
            [0, 0.9, 0.43, 0],  # 4  cosine 0.90 to 2 and 0.94 to 3 -> not a duplicate
            [0, 0, 1, 0],  # 5  no hash
            [0, 0, 0, 0],  # 6  zero vector, no hash
            [0, 0, 0, 3],  # 7  val, cosine 1 to item 1 -> joins the exact cluster
            [1, 1, 0, 0],  # 8  hash g
            [1, -1, 0, 0],  # 9  hash g, orthogonal embedding -> exact only
        ],
        np.float32,
    )
    hashes = ["a", "a", "b", "c", "d", None, None, "f", "g", "g"]
    split = np.array([0, 0, 0, 2, 0, 1, 1, 1, 0, 0])
    clusters = nz.near_duplicates(X, threshold=0.98, hashes=hashes, split=split)
    got = [(c.indices.tolist(), c.kind, c.splits, c.cross_split) for c in clusters]
    assert got == [
        ([0, 1, 7], "exact+near", ("train", "val"), True),
        ([2, 3], "near", ("train", "test"), True),
        ([8, 9], "exact", ("train",), False),
    ]
    only_near = nz.near_duplicates(X, threshold=0.98)
    assert [c.indices.tolist() for c in only_near] == [[1, 7], [2, 3]]
    assert all(c.splits == () and not c.cross_split for c in only_near)
    with pytest.raises(ValueError, match="threshold"):
        nz.near_duplicates(X, threshold=1.5)


def test_near_duplicates_chunked_matches_dense(monkeypatch):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(60, 8)).astype(np.float32)
    X = np.vstack([base, base[:20] + 0.01 * rng.normal(size=(20, 8)).astype(np.float32)])
    dense = [c.indices.tolist() for c in nz.near_duplicates(X, threshold=0.99)]
    assert knn.chunk_rows(len(X)) == len(X)  # by default one block holds every row
    monkeypatch.setattr(knn, "CHUNK_ELEMENTS", 200)  # force many tiny blocks: 2 rows each
    assert knn.chunk_rows(len(X)) == 2
    chunked = [c.indices.tolist() for c in nz.near_duplicates(X, threshold=0.99)]
    assert dense == chunked and len(dense) == 20


def test_outliers_on_toy_cloud():
    rng = np.random.default_rng(0)
    cloud = 5.0 + rng.normal(size=(200, 5))
    X = np.vstack([cloud[:120], [[-5.0, 5.0, -5.0, 5.0, -5.0]], cloud[120:]]).astype(np.float32)
    scores = nz.outlier_scores(X, k=10)
    assert scores.shape == (201,) and int(np.argmax(scores)) == 120
    found = nz.outliers(X, k=10, quantile=0.99)
    assert found[0] == 120 and len(found) <= 3
    with pytest.raises(ValueError, match="quantile"):
        nz.outliers(X, quantile=1.0)


# --------------------------------------------------------------------------- coverage


def test_coverage_table_exact():
    labels = np.array([0] * 6 + [0] * 2 + [1] * 1 + [1] * 3 + [2] * 5 + [2] * 5 + [2] * 5)
    split = np.array([0] * 6 + [1] * 2 + [1] * 1 + [2] * 3 + [0] * 5 + [1] * 5 + [2] * 5)
    df = nz.coverage(labels, split, 4, min_count=5, class_names=["cat", "dog", "eel", "fox"])
    expected = pd.DataFrame(
        {
            "class": [0, 1, 2, 3],
            "name": ["cat", "dog", "eel", "fox"],
            "train": [6, 0, 5, 0],
            "val": [2, 1, 5, 0],
            "test": [0, 3, 5, 0],
            "total": [8, 4, 15, 0],
            "missing_in": [("test",), ("train",), (), ("train", "val", "test")],
            "below_min_train": [False, True, False, True],
            "below_min_val": [True, True, False, True],
            "below_min_test": [True, True, False, True],
            "unseen_in_train": [False, True, False, False],
        }
    )
    pd.testing.assert_frame_equal(df, expected, check_dtype=False)


def test_coverage_ignores_absent_splits():
    df = nz.coverage(np.array([0, 0, 1, 1]), np.array([0, 2, 0, 0]), 2, min_count=1)
    assert df["missing_in"].tolist() == [(), ("test",)]
    assert not df["below_min_val"].any()  # there is no val split at all
    with pytest.raises(ValueError, match="split codes"):
        nz.coverage(np.array([0]), np.array([3]), 1)


def test_every_flagging_rule_has_a_title_the_page_can_show():
    from core.diagnose.confident import ISSUE_METHOD_TITLES, ISSUE_METHODS

    assert set(ISSUE_METHOD_TITLES) == set(ISSUE_METHODS) - {"auto"}  # "auto" resolves to one of them before it is shown


# --------------------------------------------------------------------------- the words' view


def _texts_and_weak_embeddings(n_per_class: int = 300, seed: int = 0):
    """Three classes whose texts say the class in their words while their embeddings barely do."""
    rng = np.random.default_rng(seed)
    own = [[f"w{c}x{i}" for i in range(20)] for c in range(3)]
    shared = [f"common{i}" for i in range(30)]
    y_true = np.repeat(np.arange(3), n_per_class)
    texts = [" ".join([*rng.choice(own[c], 3), *rng.choice(shared, 3)]) for c in y_true]
    X = (rng.normal(size=(len(y_true), 16)) + 0.35 * np.eye(3, 16)[y_true]).astype(np.float32)
    return X, np.asarray(texts, dtype=object), y_true


def test_the_words_view_finds_the_flips_the_embedding_hides():
    from core.diagnose.words import word_view_probs

    X, texts, y_true = _texts_and_weak_embeddings()
    y, flipped = nz.inject_noise(y_true, nz.make_noise_matrix(3, kind="symmetric", rate=0.2), seed=0)
    Q = word_view_probs(texts, y, seed=0)
    assert Q.shape == (len(y), 3) and np.allclose(Q.sum(axis=1), 1.0)
    # out of fold: a flipped text's words still speak for its true class, not for the label it was given
    assert np.mean(Q[flipped].argmax(axis=1) == y_true[flipped]) > 0.9
    plain = nz.detect_label_issues(X, y, n_components=None, seed=0)
    worded = nz.detect_label_issues(X, y, n_components=None, seed=0, texts=texts)
    f_plain, f_worded = _prf(plain.is_issue, flipped)[2], _prf(worded.is_issue, flipped)[2]
    assert f_worded >= 0.85 and f_worded >= f_plain + 0.2, (f_plain, f_worded)
    assert worded.view_weight and worded.view_weight > 0 and plain.view_weight is None
    assert "words" in worded.seconds and "words" not in plain.seconds


def test_the_words_view_says_what_to_change_and_steps_aside_without_words():
    from scipy import sparse

    from core.diagnose.words import word_view_probs

    y = np.array([0, 1] * 10)
    with pytest.raises(DataError, match="one text per label"):
        word_view_probs(["a b"] * 3, y)
    assert word_view_probs(["x", "y"] * 10, y) is None  # no word of two letters, seen twice: nothing to read
    with pytest.raises(DataError, match="MultinomialNB"):
        nz.out_of_fold_probs(sparse.csr_matrix(np.ones((20, 3))), y)
    P = np.full((20, 2), 0.5)
    with pytest.raises(DataError, match="view must have the shape"):
        nz.find_label_issues(y, P, view=np.full((20, 3), 1 / 3))
    # without neighbours the view is blended with the probe alone
    res = nz.find_label_issues(y, P, view=np.eye(2)[y] * 0.8 + 0.1)
    assert res.view_weight is not None and res.knn_weight is None and not res.is_issue.any()


# --------------------------------------------------------------------------- the posterior rule


def test_the_noise_matrix_keeps_structure_and_flattens_what_sampling_explains():
    from core.diagnose.posterior import shrink_noise_matrix

    T = np.array(
        [
            [0.70, 0.00, 0.12],
            [0.30, 0.80, 0.04],
            [0.00, 0.20, 0.84],
        ]
    )
    # column 0: a pair flip seen on 1,000 items (far beyond sampling); column 2: a rare class (10
    # items) whose two off-diagonal entries differ by what 10 items can show
    out = shrink_noise_matrix(T, np.array([1000.0, 1000.0, 10.0]))
    np.testing.assert_allclose(out.sum(axis=0), 1.0)
    np.testing.assert_allclose(np.diag(out), np.diag(T))  # the diagonal is kept
    np.testing.assert_allclose(out[:, 0], T[:, 0], atol=1e-3)  # b = 0.0007: structure kept
    np.testing.assert_allclose(out[[0, 1], 2], [0.08, 0.08])  # variance 0.0016 ≤ 0.08·0.92/10: flattened to the mean
    two = np.array([[0.8, 0.3], [0.2, 0.7]])
    np.testing.assert_array_equal(shrink_noise_matrix(two, np.array([5.0, 5.0])), two)  # nothing to pool
    with pytest.raises(DataError, match="true_counts"):
        shrink_noise_matrix(T, np.ones(2))


def test_the_mislabel_posterior_is_bayes_rule_under_the_noise():
    from core.diagnose.posterior import mislabel_posterior

    T = np.array([[0.7, 0.0], [0.3, 1.0]])  # P(given | true): 30 % of class 0 is labelled 1
    B = np.array([[0.6, 0.4], [0.1, 0.9], [0.0, 1.0], [0.5, 0.5]])
    y = np.array([1, 1, 1, 0])
    r = mislabel_posterior(y, B, T)
    # item 0: given 1; true 0 with weight 0.3·0.6, true 1 with 1.0·0.4 → wrong with 0.18 / 0.58
    np.testing.assert_allclose(r, [0.18 / 0.58, 0.03 / 0.93, 0.0, 0.0])
    # label 0 can only be right under this T (class 1 is never labelled 0) — unless the blend gives it nothing
    np.testing.assert_allclose(mislabel_posterior(np.array([0]), np.array([[0.0, 1.0]]), T), [1.0])


def test_the_expected_f1_count_and_the_flags_respect_the_classes():
    from core.diagnose.posterior import expected_f1_count, flag_most_likely_wrong

    # N = 1: 2·0.9/2.9 = 0.62; N = 2: 2·1.7/3.9 = 0.87; N = 3: 2·1.8/4.9 = 0.73
    assert expected_f1_count(np.array([0.1, 0.9, 0.1, 0.8])) == 2
    assert expected_f1_count(np.zeros(4)) == 0
    y = np.array([0, 0, 1, 1, 1])
    r = np.array([0.9, 0.8, 0.7, 0.1, 0.2])
    np.testing.assert_array_equal(flag_most_likely_wrong(y, r, 3, 0), [True, True, True, False, False])
    # min_keep 1: class 0 keeps its less suspicious item
    np.testing.assert_array_equal(flag_most_likely_wrong(y, r, 3, 1), [True, False, True, False, False])


def test_the_injected_labels_read_the_noise_share_off_a_blend():
    from core.diagnose.posterior import injected_noise_share

    # three classes; a clean item's blend gives its class 0.8–1.0, a flipped one's given label
    # scores as any other label does (0–0.2), 20 % flipped uniformly
    rng = np.random.default_rng(0)
    n, K = 3000, 3
    y_true = rng.integers(0, K, n)
    B = np.full((n, K), 0.0)
    B[np.arange(n), y_true] = rng.uniform(0.8, 1.0, n)
    other = (y_true + rng.integers(1, K, n)) % K
    B[np.arange(n), other] = 1.0 - B[np.arange(n), y_true]
    flip = rng.random(n) < 0.2
    y = np.where(flip, (y_true + rng.integers(1, K, n)) % K, y_true)
    T = nz.make_noise_matrix(K, kind="symmetric", rate=0.2)
    share = injected_noise_share(y, B, T, keep=np.ones(n, bool))
    assert share == pytest.approx(flip.mean(), abs=0.02), (share, flip.mean())
    assert np.isnan(injected_noise_share(y, B, np.eye(K), keep=np.ones(n, bool)))  # no noise estimated: nothing to inject


def test_the_posterior_rule_beats_pruning_the_same_blend(noisy):
    y, probs, X = noisy["y"], noisy["probs"], noisy["X"]
    prune = nz.find_label_issues(y, probs, X=X, method="blend_prune_by_noise_rate")
    auto = noisy["auto"]
    assert prune.counts == {} and set(auto.counts) == {"confident_learning", "injected", "expected_f1"}
    assert auto.n_issues == round(float(np.median(list(auto.counts.values()))))
    f_prune, f_auto = _prf(prune.is_issue, noisy["flipped"])[2], _prf(auto.is_issue, noisy["flipped"])[2]
    assert f_auto >= f_prune, (f_prune, f_auto)
    # a flagged item is never suggested its own label
    assert not (auto.suggested[auto.is_issue] == y[auto.is_issue]).any()
    np.testing.assert_allclose(auto.score[auto.rank], np.sort(auto.score[auto.is_issue]))


def test_without_neighbours_the_posterior_rule_reads_the_probe_alone(noisy):
    y, probs = noisy["y"], noisy["probs"]
    alone = nz.find_label_issues(y, probs)
    assert alone.method == "posterior" and alone.knn_weight is None
    assert alone.n_issues == round(float(np.median(list(alone.counts.values()))))
    f_cl = _prf(noisy["cl"].is_issue, noisy["flipped"])[2]
    f_alone = _prf(alone.is_issue, noisy["flipped"])[2]
    assert f_alone >= f_cl + 0.015, (f_cl, f_alone)  # measured on digits, seed 0: +0.025 symmetric, +0.066 pair-flip
    np.testing.assert_allclose(alone.noise_matrix, noisy["cl"].noise_matrix)  # the same estimate, flagged another way


def test_word_pair_counts_are_scikit_learns_matrix_column_for_column():
    """The words' view counts words and word pairs itself (as integer codes, for speed); it must be
    TfidfVectorizer's matrix exactly, whatever the texts hold, and its view the same naive Bayes."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB

    from core.diagnose.words import WORD_ALPHA, word_pair_counts, word_view_probs

    rng = np.random.default_rng(0)
    pieces = ["Straße", "STRASSE", "café", "naïve", "İstanbul", "ǅemal", "北京 大学", "x", "a1", "_u_", "42", "o'neil",
              "TEXTBREAK", "textbreak", "é", "don't", "—", "!!", "\n", "\t", "  ", "hello", "World", "hello world"]  # fmt: skip
    texts = [" ".join(rng.choice(pieces, rng.integers(0, 9))) + rng.choice(["", ".", "?!", " ok"]) for _ in range(300)]
    texts[:4] = ["", None, "   ", "!!!"]
    ascii_pieces = [p for p in pieces if p.isascii()] + ["a", "I", "b2", "x_y", "a-b", "it's", "\x1c", "~", "q z"]
    ascii_texts = [" ".join(rng.choice(ascii_pieces, rng.integers(0, 9))) + rng.choice(["", ".", "?!", " ok"]) for _ in range(300)]
    ascii_texts[:3] = ["", None, "a b c d"]  # one-letter words only: no token, no pair
    for sample in (texts, ascii_texts):  # the regex, and str.split on ASCII
        for min_df in (1, 2, 3):
            M, names = word_pair_counts(sample, min_df=min_df, names=True)
            ref = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, use_idf=False, norm=None)
            R = ref.fit_transform(["" if t is None else t for t in sample])
            assert M is not None and names is not None and sorted(names) == sorted(ref.get_feature_names_out())
            column = {name: j for j, name in enumerate(ref.get_feature_names_out())}
            assert (R[:, [column[name] for name in names]] != M).nnz == 0, min_df
    assert word_pair_counts(["one", "two"], names=True) == (None, None)  # no word in two texts
    assert word_pair_counts([]) == (None, None)

    _, texts, y = _texts_and_weak_embeddings()
    ref = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(texts)
    expected = nz.out_of_fold_probs(ref, y, seed=3, model=MultinomialNB(alpha=WORD_ALPHA))
    assert np.allclose(word_view_probs(texts, y, seed=3), expected, atol=1e-9)


def test_with_the_words_many_texts_get_no_neighbour_vote():
    """Past ``knn_with_words_max`` items the detector reads the probe and the words only (the
    neighbour graph's n² cost buys nothing there); below it, or without words, it builds the graph."""
    X, texts, y_true = _texts_and_weak_embeddings()
    y, flipped = nz.inject_noise(y_true, nz.make_noise_matrix(3, kind="symmetric", rate=0.2), seed=0)
    n = len(y)
    both = nz.detect_label_issues(X, y, n_components=None, seed=0, texts=texts, knn_with_words_max=n)
    words = nz.detect_label_issues(X, y, n_components=None, seed=0, texts=texts, knn_with_words_max=n - 1)
    plain = nz.detect_label_issues(X, y, n_components=None, seed=0, knn_with_words_max=0)
    assert both.neighbors is not None and both.knn_weight is not None and "knn" in both.seconds
    assert words.neighbors is None and words.neighbor_sims is None and words.knn_weight is None and "knn" not in words.seconds
    assert plain.neighbors is not None and "knn" in plain.seconds  # no words: the graph is the second view
    assert words.view_weight and _prf(words.is_issue, flipped)[2] >= 0.85
