"""A probe that learns the true class through the estimated noise: the label-issue detector's last step.

The detector's probe (``core.diagnose.probe``) learns ``P(given label | x)``: where the noise is
structured (look-alike classes swapped 40 % of the time, pair flips), the flips teach it that the
given label is likely, and a flipped item then looks like a correct one. A *noise-aware* probe
learns ``p = P(true class | x)`` instead, by fitting ``T·p`` to the given labels, ``T[i, j] =
P(given i | true j)`` the noise confident learning estimated (forward loss correction: Patrini et
al., "Making deep neural networks robust to label noise: a loss correction approach", CVPR 2017).
An item's label is then wrong with probability ``1 − T[y, y]·p[y] / Σ_j T[y, j]·p[j]``
(``core.diagnose.posterior.mislabel_posterior``).

:func:`core.diagnose.label_issues.detect_label_issues` averages that probability with its own
(1 − the second pass's label quality) and flags as many items as the second pass did, where
:func:`applies`: from ``NOISE_AWARE_MIN_CLASSES`` classes and ``NOISE_AWARE_MIN_CELLS`` items ×
components, without a words' view. Measured in ``benchmarks/RESULTS.md`` ("The label-issue detector's noise-aware probe").

Written here rather than taken from a library: scikit-learn's ``LogisticRegression`` fits the given
labels only, and cleanlab has no noise-corrected loss; the loss and its gradient are a few lines of
numpy, minimised by SciPy's L-BFGS.
"""

from __future__ import annotations

import numpy as np

from core.diagnose.arrays import as_embeddings, as_labels, n_workers, run_threads
from core.diagnose.probe import fold_plan
from core.errors import DataError

NOISE_AWARE_C = 0.01  # inverse L2 strength, on the components under one common scale (common_scale)
NOISE_AWARE_GTOL = 1e-4  # L-BFGS stops when no entry of the objective's gradient (in standardised columns) is larger
NOISE_AWARE_MAX_ITER = 500
# Where the detector runs this step (benchmarks/RESULTS.md, "The label-issue detector's noise-aware
# probe"). Two classes: on 6 two-class tasks the step lost F1 on 5 (-0.023 to -0.048, seeds 0-4):
# confident learning's estimate of a 2 × 2 T has nothing to pool (shrink_noise_matrix needs 3
# classes), and on Census (seed 0) it put 60 % of the rare true class's items under the common label
# (truly 20 %), which the probe then learns. Cells: on small sets the step costs about as much as the
# rest of the detector (digits: 1.9-2.0x its time, for +0.002 to +0.003 F1). Words: on four-class text
# (VADER's texts by source, 20 % symmetric) the step moved F1 by -0.009 to +0.001 for 2.0-2.2x the time.
NOISE_AWARE_MIN_CLASSES = 3
NOISE_AWARE_MIN_CELLS = 1_000_000


def applies(n_items: int, n_components: int, n_classes: int, has_words: bool) -> bool:
    """Whether :func:`core.diagnose.label_issues.detect_label_issues` runs the noise-aware step."""
    return not has_words and n_classes >= NOISE_AWARE_MIN_CLASSES and n_items * n_components >= NOISE_AWARE_MIN_CELLS


def common_scale(Z: np.ndarray) -> np.ndarray:
    """The columns centred and divided by one common scale, so that their mean variance is 1.

    Unlike the probe's per-column standardisation, the leading principal components keep their
    larger variance, so the L2 penalty shrinks the minor ones more (a ridge prior in the
    embedding's own space)."""
    F = np.asarray(Z, dtype=np.float64)
    F = F - F.mean(axis=0)
    scale = np.sqrt((F * F).sum(axis=1).mean() / max(F.shape[1], 1))
    return F / (scale if scale > 0 else 1.0)


def fit_forward_logistic(
    F: np.ndarray, y: np.ndarray, T: np.ndarray, *, C: float = NOISE_AWARE_C, max_iter: int = NOISE_AWARE_MAX_ITER
) -> np.ndarray:
    """Weights (d + 1, K), the intercept last, of a multinomial logistic regression fitted through ``T``.

    Minimises the mean of ``−log Σ_j T[y, j]·softmax(x·W)_j`` plus ``‖W‖² / (2·C·n)`` (the intercept
    not penalised), as scikit-learn's ``C`` weighs the penalty against the summed loss; L-BFGS
    (gradient tolerance ``NOISE_AWARE_GTOL``) runs on the columns standardised, with the
    penalty rescaled to match, and the weights are mapped back. The loss's
    gradient in the logits is ``p − r``, ``r_j = T[y, j]·p_j / Σ_k T[y, k]·p_k`` the posterior of the
    true class given the label. With ``T`` the identity this is the plain logistic regression.
    """
    from scipy.optimize import minimize

    n, d = F.shape
    K = T.shape[0]
    # L-BFGS runs in standardised coordinates: V = W·s row by row, s each column's sd, and the penalty
    # on V divided by s² (the same optimum; the variances of the components differ by orders of
    # magnitude, and unscaled they cost L-BFGS 2-3x the iterations)
    mu = F.mean(axis=0)
    s = F.std(axis=0)
    s[s <= 1e-12] = 1.0
    Xb = np.hstack([(F - mu) / s, np.ones((n, 1))]).astype(np.float32)
    Ty = np.asarray(T, dtype=np.float32)[y, :]  # P(given y_i | true j)
    lam = 1.0 / (C * n)
    pen = (lam / s**2)[:, None]  # the penalty's weight on each row of V

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        V = theta.reshape(d + 1, K)
        logits = Xb @ V.astype(np.float32)
        logits -= logits.max(axis=1, keepdims=True)
        P = np.exp(logits)
        P /= P.sum(axis=1, keepdims=True)
        Q = Ty * P
        q = np.maximum(Q.sum(axis=1), 1e-30)
        grad = (Xb.T @ (P - Q / q[:, None])).astype(np.float64) / n
        grad[:-1] += pen * V[:-1]
        value = float(-np.log(q).mean(dtype=np.float64)) + 0.5 * float((pen * V[:-1] ** 2).sum())
        return value, grad.ravel()

    fit = minimize(loss, np.zeros((d + 1) * K), jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": NOISE_AWARE_GTOL})
    V = np.asarray(fit.x).reshape(d + 1, K)
    W = V[:-1] / s[:, None]
    return np.vstack([W, V[-1] - mu @ W])


def noise_aware_probs(
    Z: np.ndarray,
    labels: np.ndarray,
    noise_matrix: np.ndarray,
    *,
    n_folds: int = 5,
    seed: int = 0,
    C: float = NOISE_AWARE_C,
    max_iter: int = NOISE_AWARE_MAX_ITER,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Out-of-fold ``P(true class | x)``, shape (n, K), from :func:`fit_forward_logistic` on
    :func:`common_scale` of ``Z``.

    The folds are the probe's (``core.diagnose.probe.fold_plan``, the same seed): a class too rare
    to hold out is predicted by the first fold's model, as ``out_of_fold_probs`` does. The folds
    are fitted on ``n_jobs`` threads (default every usable core). ``noise_matrix`` is
    ``T[i, j] = P(given i | true j)``, columns summing to 1."""
    y = as_labels(labels)
    A = as_embeddings(Z, len(y))
    T = np.asarray(noise_matrix, dtype=np.float64)
    K = T.shape[0]
    if T.shape != (K, K) or not np.all(np.isfinite(T)) or (T < 0).any():
        raise DataError(f"noise_matrix must be a square matrix of probabilities, got shape {T.shape}.")
    if len(y) and y.max() >= K:
        raise DataError(f"labels go up to {int(y.max())} but the noise matrix has {K} classes.")
    from scipy.special import softmax

    F = common_scale(A)
    folds, n_eff, _ = fold_plan(y, n_folds, seed, K)
    out = np.zeros((len(y), K))

    def fit_fold(f: int) -> None:
        test = folds == f
        rows = test | (folds < 0) if f == 0 else test
        W = fit_forward_logistic(F[~test], y[~test], T, C=C, max_iter=max_iter)
        out[rows] = softmax(F[rows] @ W[:-1] + W[-1], axis=1)  # folds write disjoint rows

    run_threads(fit_fold, range(n_eff), min(n_workers(n_jobs), n_eff))
    return out
