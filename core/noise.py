"""Where training data is incomplete: label noise, near-duplicates, outliers and class coverage.

Everything here works on arrays that another module computed: embeddings ``X`` of shape
(n, d) (float32) and integer ``labels`` of shape (n,) with values in ``[0, K)``. Only numpy,
scipy, scikit-learn and pandas are used (never streamlit or torch), so the functions run the
same in a page, a test or a benchmark.

Label noise follows confident learning (Northcutt, Jiang & Chuang, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021), implemented here from the paper:

1. :func:`out_of_fold_probs` — out-of-fold predicted probabilities from a linear probe.
2. :func:`confident_thresholds`, :func:`confident_joint`, :func:`estimate_noise` — per-class
   thresholds, the (calibrated) confident joint, the joint ``Q``, the noise matrix
   ``P(given | true)`` and per-class noise rates.
3. :func:`find_label_issues` — which items look mislabelled, how sure we are (a label-quality
   score in [0, 1]), what the label should probably be, ranked most suspicious first.

Neighbourhood signals (:func:`knn_label_agreement`) come from an exact cosine kNN graph on ``X``
computed in tiles on all cores, so n = 60,000 × d = 384 never allocates an n × n matrix. The
same graph gives :func:`outlier_scores`; :func:`near_duplicates` uses chunked similarities as well.

:func:`detect_label_issues` is the whole pipeline from embeddings to flags: :func:`pca_reduce`
(192 components for the probe, the leading 96 of them for the kNN graph), the probe, the kNN
graph and confident learning. ``benchmarks/bench_noise.py`` compares it with cleanlab (results
in ``benchmarks/RESULTS.md``).

:func:`make_noise_matrix` and :func:`inject_noise` make synthetic noise with a known matrix for
tests and benchmarks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import DataError

__all__ = [
    "SPLITS",
    "ISSUE_METHODS",
    "LabelIssues",
    "DuplicateCluster",
    "pca_reduce",
    "out_of_fold_probs",
    "confident_thresholds",
    "confident_joint",
    "estimate_noise",
    "label_quality_scores",
    "knn_graph",
    "knn_label_agreement",
    "combined_label_quality",
    "find_label_issues",
    "detect_label_issues",
    "near_duplicates",
    "outlier_scores",
    "outliers",
    "coverage",
    "make_noise_matrix",
    "inject_noise",
]

SPLITS = ("train", "val", "test")  # split codes 0, 1, 2 (same as core.data.SPLITS)

#: ``method`` values accepted by :func:`find_label_issues`.
ISSUE_METHODS = (
    "auto",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "blend_prune_by_noise_rate",
)

_EPS = 1e-6  # tolerance for p >= threshold comparisons (as in the paper's reference code)
_CHUNK_ELEMENTS = 1 << 23  # ~8M float32 (32 MiB) per similarity block


# --------------------------------------------------------------------------- validation


def _as_labels(labels: Any, n: int | None = None, *, name: str = "labels") -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of shape (n,), got shape {y.shape}. Flatten it first.")
    if n is not None and len(y) != n:
        raise DataError(f"{name} has {len(y)} items but the other array has {n}; pass arrays of the same length.")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise DataError(
                f"{name} must be integer class indices in [0, K); got dtype {y.dtype}. "
                "Encode string labels first (e.g. core.data.encode_labels)."
            )
    y = y.astype(np.int64, copy=False)
    if y.size and y.min() < 0:
        raise DataError(f"{name} must be >= 0 (class indices in [0, K)); found {int(y.min())}.")
    return y


def _as_X(X: Any, n: int | None = None) -> np.ndarray:
    A = np.asarray(X)
    if A.ndim != 2:
        raise DataError(f"X must be a 2-D array of shape (n, d), got shape {A.shape}. Reshape it to (n, d).")
    if n is not None and A.shape[0] != n:
        raise DataError(f"X has {A.shape[0]} rows but labels has {n} items; pass one embedding row per item.")
    if not np.issubdtype(A.dtype, np.number):
        raise DataError(f"X must be numeric, got dtype {A.dtype}.")
    A = A.astype(np.float32, copy=False)
    if not np.all(np.isfinite(A)):
        raise DataError("X contains NaN or infinite values; drop or impute those rows before calling.")
    return A


def _as_probs(probs: Any, n: int) -> np.ndarray:
    P = np.asarray(probs, dtype=np.float64)
    if P.ndim != 2:
        raise DataError(f"probs must be a 2-D array of shape (n, K), got shape {P.shape}.")
    if P.shape[0] != n:
        raise DataError(f"probs has {P.shape[0]} rows but labels has {n} items; pass one row per item.")
    if P.shape[1] < 1:
        raise DataError("probs must have at least one column (one per class).")
    if not np.all(np.isfinite(P)) or (P.size and P.min() < 0):
        raise DataError("probs must be finite and non-negative; pass predicted probabilities, not logits.")
    if P.size and np.abs(P.sum(axis=1) - 1.0).max() > 1e-3:
        raise DataError(
            "Each row of probs must sum to 1; pass softmax/predict_proba outputs (e.g. from out_of_fold_probs)."
        )
    return P


def _check_labels_fit(y: np.ndarray, K: int, what: str = "probs") -> None:
    if y.size and y.max() >= K:
        raise DataError(
            f"labels contain class {int(y.max())} but {what} has only {K} classes; "
            f"pass {what} with one column per class (K >= {int(y.max()) + 1})."
        )


def _normalise_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0  # zero vectors stay zero: cosine similarity 0 to everything
    return (X / norms).astype(np.float32, copy=False)


def _round_preserving_total(values: np.ndarray, total: int) -> np.ndarray:
    """Round non-negative ``values`` to ints that add up to ``total`` (largest remainder)."""
    floor = np.floor(values).astype(np.int64)
    short = int(total - floor.sum())
    if short > 0:
        order = np.argsort(-(values - floor), kind="stable")
        floor[order[:short]] += 1
    elif short < 0:  # only from float error
        order = np.argsort(values - floor, kind="stable")
        for i in order:
            if short == 0:
                break
            if floor[i] > 0:
                floor[i] -= 1
                short += 1
    return floor


# --------------------------------------------------------------------------- out-of-fold probe


def _fold_assignment(y: np.ndarray, n_folds: int, seed: int) -> tuple[np.ndarray, int]:
    """Stratified fold ids (n,); -1 marks items of single-example classes (always in training)."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    n_eff = int(min(n_folds, counts.max()))
    folds = np.full(len(y), -1, dtype=np.int64)
    offset = 0
    for c in np.flatnonzero(counts >= 2):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        folds[idx] = (offset + np.arange(len(idx))) % n_eff
        offset += len(idx)  # rotating start keeps fold sizes within one item of each other
    return folds, n_eff


def _make_model(model: Any, C: float, max_iter: int, seed: int):
    from sklearn.base import clone

    if isinstance(model, str):
        if model != "logreg":
            raise DataError(f"model must be 'logreg' or a scikit-learn classifier with predict_proba, got {model!r}.")
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # lbfgs on >2 classes is the multinomial (softmax) model in scikit-learn >= 1.5
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter))
    if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
        raise DataError("model must be 'logreg' or a scikit-learn classifier with fit and predict_proba.")
    return clone(model)


def pca_reduce(X: Any, n_components: int = 64, *, seed: int = 0, max_fit_rows: int = 8192) -> np.ndarray:
    """Centre the rows and project them onto their top principal components.

    The components are the top eigenvectors of the covariance of a seeded sample of at most
    ``max_fit_rows`` rows (a d × d eigenproblem, cheap for d ≤ a few thousand); every row is then
    projected. Label-free, so it can be fitted on all items before any out-of-fold split without
    leaking a label. On the 60,000 × 1280 MobileNetV2 Fashion-MNIST embeddings this takes ~0.6 s
    on 2 cores, and 128 components make the kNN graph's dot products 10x cheaper.

    Parameters
    ----------
    X : array-like of shape (n, d)
    n_components : int, default 64
        Output dimension p; capped at d (then all components: a rotation of the centred rows).
    seed : int, default 0
        Seed of the row sample.
    max_fit_rows : int, default 8192
        Rows used to estimate the covariance.

    Returns
    -------
    Z : ndarray of shape (n, min(p, d)), float32
        Components in order of decreasing variance.
    """
    A = _as_X(X)
    n, d = A.shape
    if n_components < 1:
        raise DataError(f"n_components must be at least 1, got {n_components}.")
    if n == 0:
        return np.zeros((0, min(n_components, d)), np.float32)
    n_components = min(n_components, d)
    rows = np.arange(n)
    if n > max_fit_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_fit_rows, replace=False))
    B = np.ascontiguousarray(A[rows])
    mu = B.mean(axis=0, dtype=np.float64)
    cov = (B.T @ B).astype(np.float64) / len(rows) - np.outer(mu, mu)  # float32 product, float64 after
    from scipy.linalg import eigh

    _, V = eigh(cov, subset_by_index=[d - n_components, d - 1])  # ascending: top p last
    V = np.ascontiguousarray(V[:, ::-1], dtype=np.float32)
    Z = A @ V
    Z -= (mu.astype(np.float32) @ V)[None, :]
    return Z


def out_of_fold_probs(
    X: Any,
    labels: Any,
    *,
    n_folds: int = 5,
    seed: int = 0,
    model: Any = "logreg",
    C: float = 1.0,
    n_classes: int | None = None,
    max_iter: int = 500,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Out-of-fold predicted class probabilities from a linear probe on embeddings.

    Items are split into ``n_folds`` stratified folds; each fold is predicted by a model trained
    on the others, so no item's probability comes from a model that saw its (possibly wrong)
    label. With ``model="logreg"`` the probe is ``StandardScaler`` + multinomial
    ``LogisticRegression(solver="lbfgs", C=C)``, both fitted inside the training folds.

    Tail classes never crash the probe:

    - a class with 2 ≤ m < ``n_folds`` items is spread over m folds, so each of its items is
      predicted by a model that saw the class's other items;
    - a class with a single item cannot be held out without vanishing from training, so that
      item stays in every training fold and gets the (in-sample) prediction of the first fold's
      model — it is not flagged merely for being rare, but its probability is optimistic;
    - if no class has 2 items, or the largest class has fewer than ``n_folds``, the probe falls
      back to ``min(n_folds, largest class count)`` folds (at least 2).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Embeddings (float32).
    labels : array-like of shape (n,)
        Given labels, integers in ``[0, K)``.
    n_folds : int, default 5
        Number of folds (≥ 2).
    seed : int, default 0
        Seed of the fold shuffle (the probe itself is deterministic).
    model : "logreg" or scikit-learn classifier, default "logreg"
        Any classifier with ``fit``/``predict_proba`` is cloned per fold and used as given.
    C : float, default 1.0
        Inverse L2 strength of the logistic regression.
    n_classes : int, optional
        K; defaults to ``labels.max() + 1``. Classes with no item get probability 0.
    max_iter : int, default 500
        lbfgs iterations.
    n_jobs : int, optional
        Folds fitted at once (threads, each with a single-threaded BLAS) for ``model="logreg"``;
        default all usable cores. A custom ``model`` always runs one fold at a time.

    Returns
    -------
    probs : ndarray of shape (n, K), float64
        Rows sum to 1.
    """
    y = _as_labels(labels)
    A = _as_X(X, len(y))
    n = len(y)
    if n_folds < 2:
        raise DataError(f"n_folds must be at least 2, got {n_folds}.")
    if n < 2:
        raise DataError("out_of_fold_probs needs at least 2 items.")
    K = int(n_classes) if n_classes is not None else int(y.max()) + 1
    _check_labels_fit(y, K, "n_classes")
    counts = np.bincount(y, minlength=K)
    if counts.max() < 2:
        raise DataError(
            "Every class has a single item, so no item can be predicted out of fold; "
            "add more examples per class before looking for label noise."
        )
    from sklearn.exceptions import ConvergenceWarning

    folds, n_eff = _fold_assignment(y, n_folds, seed)
    probs = np.zeros((n, K), dtype=np.float64)
    always_train = folds < 0

    def fit_fold(f: int) -> None:
        test = folds == f
        train = ~test
        ytr = y[train]
        present = np.unique(ytr)
        targets = test | (always_train if f == 0 else np.zeros(n, bool))
        if len(present) == 1:  # degenerate fold: only one class to learn
            probs[targets, present[0]] = 1.0
            return
        est = _make_model(model, C, max_iter, seed)
        est.fit(A[train], ytr)
        cols = np.asarray(est.classes_, dtype=np.int64)
        probs[np.ix_(np.flatnonzero(targets), cols)] = est.predict_proba(A[targets])  # folds write disjoint rows

    workers = min(_n_workers(n_jobs), n_eff) if isinstance(model, str) else 1
    with warnings.catch_warnings():
        # a probe a little short of convergence still gives usable out-of-fold probabilities
        warnings.simplefilter("ignore", ConvergenceWarning)
        if workers == 1:
            for f in range(n_eff):
                fit_fold(f)
        else:
            from concurrent.futures import ThreadPoolExecutor

            from threadpoolctl import threadpool_limits

            # lbfgs spends most of its time in single-threaded loss code and small BLAS calls:
            # one fold per core beats one fold at a time on a multi-threaded BLAS (60,000 × 192,
            # 10 classes, 2 cores: 3.2 s vs 9-11 s)
            with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
                list(pool.map(fit_fold, range(n_eff)))
    s = probs.sum(axis=1, keepdims=True)
    s[s == 0] = 1.0
    return probs / s


# --------------------------------------------------------------------------- confident learning


def confident_thresholds(labels: Any, probs: Any) -> np.ndarray:
    """Per-class thresholds ``t_j`` = mean predicted probability of class j over items labelled j.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)

    Returns
    -------
    thresholds : ndarray of shape (K,)
        A class with no labelled item gets ``t_j = 1.0`` (only a prediction of certainty can
        count as confidently that class).
    """
    y = _as_labels(labels)
    P = _as_probs(probs, len(y))
    K = P.shape[1]
    _check_labels_fit(y, K)
    counts = np.bincount(y, minlength=K).astype(np.float64)
    sums = np.zeros(K)
    np.add.at(sums, y, P[np.arange(len(y)), y])
    return np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)


def _confident_assignment(P: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each item, the class it confidently belongs to (argmax among p_j >= t_j), or -1."""
    above = P >= thresholds[None, :] - _EPS
    masked = np.where(above, P, -np.inf)
    guess = masked.argmax(axis=1)
    guess[~above.any(axis=1)] = -1
    return guess


def confident_joint(
    labels: Any, probs: Any, *, thresholds: Any = None, calibrate: bool = True
) -> np.ndarray:
    """The confident joint ``C[i, j]``: items labelled i that confidently belong to class j.

    An item confidently belongs to j when ``p_j >= t_j``; when several classes pass their
    threshold, the one with the largest probability wins; items passing none are not counted.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)
    thresholds : array-like of shape (K,), optional
        Defaults to :func:`confident_thresholds`.
    calibrate : bool, default True
        Rescale each row so it sums to the number of items given that label
        (``C[i] / C[i].sum() * count_i``); the result is then a count estimate of the joint of
        given and true labels. A labelled class with no confident item keeps its count on the
        diagonal.

    Returns
    -------
    C : ndarray of shape (K, K)
        int64 counts when ``calibrate=False``, float64 otherwise.
    """
    y = _as_labels(labels)
    P = _as_probs(probs, len(y))
    K = P.shape[1]
    _check_labels_fit(y, K)
    t = confident_thresholds(y, P) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if t.shape != (K,):
        raise DataError(f"thresholds must have shape ({K},), one per class; got {t.shape}.")
    guess = _confident_assignment(P, t)
    ok = guess >= 0
    raw = np.bincount(y[ok] * K + guess[ok], minlength=K * K).reshape(K, K).astype(np.int64)
    if not calibrate:
        return raw
    counts = np.bincount(y, minlength=K).astype(np.float64)
    C = raw.astype(np.float64)
    row = C.sum(axis=1)
    empty = (row == 0) & (counts > 0)
    C[empty, empty.nonzero()[0]] = 1.0  # diagonal
    row = C.sum(axis=1)
    return C / np.maximum(row, 1.0)[:, None] * counts[:, None]


def estimate_noise(labels: Any, probs: Any, *, joint_counts: Any = None) -> dict[str, np.ndarray]:
    """Estimate the joint, the noise matrix and per-class noise rates from the confident joint.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)
    joint_counts : array-like of shape (K, K), optional
        A calibrated confident joint; computed when omitted.

    Returns
    -------
    dict with
        ``confident_joint`` (K, K): calibrated counts ``C[given, true]``;
        ``joint`` (K, K): ``Q = C / n``, the estimated ``P(given=i, true=j)``;
        ``noise_matrix`` (K, K): ``P(given=i | true=j)``, columns sum to 1 (a true class never
        seen confidently gets an identity column);
        ``noise_rate_per_class`` (K,): ``1 - noise_matrix[j, j]``, the share of items of true
        class j that carry another label;
        ``thresholds`` (K,).
    """
    y = _as_labels(labels)
    P = _as_probs(probs, len(y))
    K = P.shape[1]
    t = confident_thresholds(y, P)
    C = confident_joint(y, P, thresholds=t) if joint_counts is None else np.asarray(joint_counts, float)
    Q = C / max(C.sum(), 1e-12)
    col = Q.sum(axis=0)
    nm = np.where(col[None, :] > 0, Q / np.where(col > 0, col, 1.0)[None, :], np.eye(K))
    return {
        "confident_joint": C,
        "joint": Q,
        "noise_matrix": nm,
        "noise_rate_per_class": 1.0 - np.diag(nm),
        "thresholds": t,
    }


def label_quality_scores(labels: Any, probs: Any, *, method: str = "self_confidence") -> np.ndarray:
    """Per-item label quality from predicted probabilities, in [0, 1] (lower = more suspicious).

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)
    method : {"self_confidence", "normalized_margin"}
        ``self_confidence`` is ``p_given``; ``normalized_margin`` is
        ``(p_given - max_{k≠given} p_k + 1) / 2``.

    Returns
    -------
    scores : ndarray of shape (n,)
    """
    y = _as_labels(labels)
    P = _as_probs(probs, len(y))
    _check_labels_fit(y, P.shape[1])
    rows = np.arange(len(y))
    p_given = P[rows, y]
    if method == "self_confidence":
        return p_given
    if method == "normalized_margin":
        other = P.copy()
        other[rows, y] = -np.inf
        best_other = other.max(axis=1) if P.shape[1] > 1 else np.zeros(len(y))
        return (p_given - best_other + 1.0) / 2.0
    raise DataError(f"method must be 'self_confidence' or 'normalized_margin', got {method!r}.")


# --------------------------------------------------------------------------- kNN


def _chunk_rows(n: int, budget: int = _CHUNK_ELEMENTS) -> int:
    return max(1, min(n, budget // max(n, 1)))


def _n_workers(n_jobs: int | None) -> int:
    if n_jobs is not None:
        if n_jobs < 1:
            raise DataError(f"n_jobs must be a positive number of threads (or None for all cores), got {n_jobs}.")
        return int(n_jobs)
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _group_size(m: int, k: int) -> int:
    """Group size for selecting the top k of m: balances partitioning m/b group maxima vs k·b candidates."""
    return int(max(1, min(64, np.sqrt(m / max(k, 1)))))


def _top_k_columns(S: np.ndarray, k: int, block: int | None = None) -> np.ndarray:
    """Column indices of the k largest entries of each row of S (unordered).

    For wide rows, the columns are cut into ``g = n // block`` strided groups (group j holds
    columns j, j + g, j + 2g, …) and each row's group maxima taken — ``block`` elementwise
    ``maximum`` passes over contiguous (r, g) slices, about as fast as reading S once. The k
    largest entries lie in the k groups with the largest maxima (any other group's maximum is
    beaten by k distinct entries), so only those k·block columns, plus the ``n % block``
    leftover columns, need a partition: the same result as ``argpartition`` over the whole row,
    up to ties, and ~10x faster on wide rows (contiguous groups would reduce over a short inner
    axis, which numpy does ~4x slower than these strided ones).
    """
    r, n = S.shape
    block = _group_size(n, k) if block is None else block
    g = n // block
    if block < 2 or g < 4 * k:
        return np.argpartition(S, n - k, axis=1)[:, n - k:]
    M = S[:, :g].copy()
    for b in range(1, block):
        np.maximum(M, S[:, b * g:(b + 1) * g], out=M)
    top = np.argpartition(M, g - k, axis=1)[:, g - k:]  # (r, k) group ids
    cand = (top[:, :, None] + g * np.arange(block)).reshape(r, -1)
    if n > g * block:  # leftover columns are candidates for every row
        cand = np.concatenate([cand, np.broadcast_to(np.arange(g * block, n), (r, n - g * block))], axis=1)
    Sc = np.take_along_axis(S, cand, axis=1)
    m = Sc.shape[1]
    return np.take_along_axis(cand, np.argpartition(Sc, m - k, axis=1)[:, m - k:], axis=1)


_TILE = 4096  # target rows/columns per tile of the symmetric kNN (64 MiB of float32 similarities)
_STRIPE = 512  # rows of an off-diagonal tile computed at once (8 MiB: stays in cache while filtered)


def _tile_top_k(S: np.ndarray, k: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest entries of each row (``axis=1``) or column (``axis=0``) of a C-contiguous S.

    Returns (positions along ``axis``, values), both of shape (rows or columns of S, k),
    unordered. A lower bound ``tau`` on each line's k-th largest entry comes from cutting the
    line into 2k ranges and taking the k-th largest range maximum (k ranges hold an entry at
    least that large); only entries ``>= tau`` (~1.3·k per line) are then extracted and sorted
    by (line, value) in one flat ``argsort``. Every step is a whole-array numpy pass: no
    per-line call, which is what makes short lines (a few thousand entries) cheap.
    """
    r, m = S.shape
    L = m if axis == 1 else r  # entries per line
    nr = 2 * k
    w = L // nr
    if axis == 1:
        R = S[:, : w * nr].reshape(r, nr, w).max(axis=2)  # (r, nr)
        tau = np.sort(R, axis=1)[:, nr - k]
        flat = np.flatnonzero(S >= tau[:, None])
        line = flat // m
        pos = flat - line * m
    else:
        R = S[: w * nr].reshape(nr, w, m).max(axis=1)  # (nr, m)
        tau = np.sort(R, axis=0)[nr - k]
        flat = np.flatnonzero(S >= tau[None, :])
        line = flat % m
        pos = flat // m
    vals = S.ravel()[flat]
    order = np.argsort(line * 4.0 + (1.0 - vals.astype(np.float64)))  # by line, then value descending
    counts = np.bincount(line, minlength=r if axis == 1 else m)
    starts = np.cumsum(counts) - counts
    sel = order[starts[:, None] + np.arange(k)]  # every line has >= k entries >= tau
    return pos[sel], vals[sel]


def _knn_tiles(A: np.ndarray, k: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """kNN over the upper triangle of tiles, every similarity computed once.

    Phase 1 takes each diagonal tile's row-wise top k (:func:`_tile_top_k`); a row's k-th best
    similarity there, ``tau``, is a lower bound on its k-th best overall (they are k real
    neighbours). Phase 2 computes each off-diagonal tile A_I·A_Jᵀ in stripes of rows that stay in
    cache and keeps only the entries at or above the ``tau`` of their row (candidates for rows
    I) or of their column (candidates for rows J); each (row, tile) pair keeps its k best in its
    own slot, so threads never write the same cells. A true neighbour can only be dropped by k
    better ones in the same tile, so the result is exact.
    """
    import threading

    n = A.shape[0]
    nt = -(-n // _TILE)
    bounds = np.linspace(0, n, nt + 1).round().astype(np.int64)  # balanced: no tiny last tile
    cand_s = np.full((n, nt * k), -np.inf, np.float32)
    cand_i = np.zeros((n, nt * k), np.int64)
    side = int(np.diff(bounds).max())
    local = threading.local()

    def buffer(size: int) -> np.ndarray:
        # one reused buffer per thread: a fresh array per tile costs ~20% more in page faults
        if getattr(local, "buf", None) is None or local.buf.size < size:
            local.buf = np.empty(size, np.float32)
        return local.buf[:size]

    def diagonal(a: int) -> None:
        i0, i1 = bounds[a], bounds[a + 1]
        h = i1 - i0
        S = np.matmul(A[i0:i1], A[i0:i1].T, out=buffer(h * h).reshape(h, h))
        np.fill_diagonal(S, -np.inf)  # exclude self
        pos, vals = _tile_top_k(S, k, axis=1)
        cand_i[i0:i1, a * k:(a + 1) * k] = pos + i0
        cand_s[i0:i1, a * k:(a + 1) * k] = vals

    _run_threads(diagonal, range(nt), workers)
    tau = np.concatenate([cand_s[bounds[a]:bounds[a + 1], a * k:(a + 1) * k].min(axis=1) for a in range(nt)])

    def keep_best(lines: np.ndarray, partner: np.ndarray, vals: np.ndarray, n_lines: int, line0: int, slot: int) -> None:
        """Write the (up to) k best (partner, value) of each line into its slot."""
        if not len(lines):
            return
        order = np.argsort(lines * 4.0 + (1.0 - vals.astype(np.float64)))  # by line, value descending
        counts = np.bincount(lines, minlength=n_lines)
        starts = np.cumsum(counts) - counts
        j = np.arange(k)
        valid = j[None, :] < counts[:, None]
        sel = order[np.where(valid, starts[:, None] + j, 0)]
        cand_i[line0:line0 + n_lines, slot * k:(slot + 1) * k] = np.where(valid, partner[sel], 0)
        cand_s[line0:line0 + n_lines, slot * k:(slot + 1) * k] = np.where(valid, vals[sel], -np.inf)

    def off_diagonal(pair: tuple[int, int]) -> None:
        a, b = pair
        i0, i1, j0, j1 = bounds[a], bounds[a + 1], bounds[b], bounds[b + 1]
        m = j1 - j0
        tau_j = tau[None, j0:j1]
        rows_l, rows_p, rows_v, cols_l, cols_p, cols_v = [], [], [], [], [], []
        for s0 in range(i0, i1, _STRIPE):
            s1 = min(i1, s0 + _STRIPE)
            S = np.matmul(A[s0:s1], A[j0:j1].T, out=buffer((s1 - s0) * m).reshape(s1 - s0, m))
            flat = S.ravel()
            f = np.flatnonzero(S >= tau[s0:s1, None])  # candidates for rows s0..s1
            r = f // m
            rows_l.append(r + (s0 - i0))
            rows_p.append(f - r * m + j0)
            rows_v.append(flat[f])
            f = np.flatnonzero(S >= tau_j)  # candidates for rows j0..j1
            r = f // m
            cols_l.append(f - r * m)
            cols_p.append(r + s0)
            cols_v.append(flat[f])
        keep_best(np.concatenate(rows_l), np.concatenate(rows_p), np.concatenate(rows_v), i1 - i0, i0, b)
        keep_best(np.concatenate(cols_l), np.concatenate(cols_p), np.concatenate(cols_v), m, j0, a)

    _run_threads(off_diagonal, [(a, b) for a in range(nt) for b in range(a + 1, nt)], workers)
    sel = np.argpartition(cand_s, nt * k - k, axis=1)[:, nt * k - k:]
    return np.take_along_axis(cand_i, sel, axis=1), np.take_along_axis(cand_s, sel, axis=1)


def _knn_rows(A: np.ndarray, k: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """kNN by row chunks against all of A (every similarity computed twice); for small n."""
    n = A.shape[0]
    idx_out = np.empty((n, k), np.int64)
    sim_out = np.empty((n, k), np.float32)
    step = _chunk_rows(n)

    def run(i0: int) -> None:
        i1 = min(n, i0 + step)
        S = A[i0:i1] @ A.T
        rows = np.arange(i1 - i0)
        S[rows, rows + i0] = -np.inf  # exclude self
        part = _top_k_columns(S, k)
        idx_out[i0:i1] = part
        sim_out[i0:i1] = np.take_along_axis(S, part, axis=1)

    _run_threads(run, range(0, n, step), workers)
    return idx_out, sim_out


def _run_threads(fn, items, workers: int) -> None:
    items = list(items)
    if workers == 1 or len(items) == 1:
        for it in items:
            fn(it)
        return
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    # one BLAS thread per worker: the workers already fill the cores, and numpy's selection
    # code is single-threaded, so this keeps every core busy all the time
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, items))


def knn_graph(X: Any, *, k: int = 10, n_jobs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k-nearest neighbours of every row (self excluded), by blocked dot products.

    Rows are L2-normalised and compared block by block, so memory stays O(n·k + threads·block)
    and never holds n × n. From 2 tiles of 4,096 rows on, only the upper triangle of the
    similarity matrix is computed (each tile serves both its rows and its columns, see
    :func:`_knn_tiles`), halving the dot products; blocks run on ``n_jobs`` threads, each with a
    single-threaded BLAS. Measured on a 2-core machine (otherwise idle): 23,320 × 96 (VADER) in
    ~0.65 s, 60,000 × 128 in ~4.8 s, 2-2.5x faster than one thread over full rows. The dot
    products are most of it, so reduce the dimension first (e.g. with :func:`pca_reduce`).

    Parameters
    ----------
    X : array-like of shape (n, d)
    k : int, default 10
        Neighbours per item; capped at n - 1.
    n_jobs : int, optional
        Threads; default all usable cores.

    Returns
    -------
    indices : ndarray of shape (n, k), int64
        Neighbour indices, most similar first.
    similarities : ndarray of shape (n, k), float32
        Their cosine similarities.
    """
    A = _normalise_rows(_as_X(X))
    n = A.shape[0]
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}.")
    workers = _n_workers(n_jobs)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    A = np.ascontiguousarray(A)
    if n >= 2 * _TILE and 4 * k <= _TILE:  # tiles hold >= _TILE / 2 rows: room for 2k ranges
        idx, sims = _knn_tiles(A, k, workers)
    else:
        idx, sims = _knn_rows(A, k, workers)
    # most similar first, equal similarities by index
    order = np.argsort(idx, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    sims = np.take_along_axis(sims, order, axis=1)
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(sims, order, axis=1)


def knn_label_agreement(
    X: Any, labels: Any, *, k: int = 10, n_classes: int | None = None, neighbors: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """How much each item's cosine neighbours agree with its label.

    Parameters
    ----------
    X : array-like of shape (n, d)
    labels : array-like of shape (n,)
    k : int, default 10
    n_classes : int, optional
        K; defaults to ``labels.max() + 1``.
    neighbors : ndarray of shape (n, k), optional
        Precomputed neighbour indices from :func:`knn_graph` (then ``X`` is not used).

    Returns
    -------
    agreement : ndarray of shape (n,)
        Share of the k neighbours (self excluded) with the same label.
    votes : ndarray of shape (n, K)
        Neighbour-vote class distribution (rows sum to 1).
    """
    y = _as_labels(labels)
    K = int(n_classes) if n_classes is not None else int(y.max()) + 1
    _check_labels_fit(y, K, "n_classes")
    nb = knn_graph(X, k=k)[0] if neighbors is None else np.asarray(neighbors, dtype=np.int64)
    if nb.shape[0] != len(y):
        raise DataError(f"neighbors has {nb.shape[0]} rows but labels has {len(y)} items.")
    n, kk = nb.shape
    if kk == 0:
        votes = np.zeros((n, K))
        votes[np.arange(n), y] = 1.0
        return np.ones(n), votes
    nl = y[nb]
    flat = (np.arange(n)[:, None] * K + nl).ravel()
    votes = np.bincount(flat, minlength=n * K).reshape(n, K) / kk
    agreement = (nl == y[:, None]).mean(axis=1)
    return agreement, votes


def combined_label_quality(
    labels: Any,
    probs: Any,
    *,
    knn_agreement: Any = None,
    knn_votes: Any = None,
    weight: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """One label-quality score per item and a suggested label.

    ``score = weight · p_given + (1 - weight) · knn_agreement`` — the weighted mean of the
    probe's self-confidence and the share of neighbours that agree; both are in [0, 1], so the
    score is too (higher = more likely correct). The suggested label is
    ``argmax(weight · probs + (1 - weight) · knn_votes)``. Without kNN inputs the score is the
    self-confidence and the suggestion the probe's argmax.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)
    knn_agreement : array-like of shape (n,), optional
    knn_votes : array-like of shape (n, K), optional
    weight : float, default 0.5
        Weight of the probe (0..1).

    Returns
    -------
    score : ndarray of shape (n,)
    suggested : ndarray of shape (n,), int64
    """
    y = _as_labels(labels)
    P = _as_probs(probs, len(y))
    _check_labels_fit(y, P.shape[1])
    if not 0.0 <= weight <= 1.0:
        raise DataError(f"weight must be between 0 and 1, got {weight}.")
    sc = P[np.arange(len(y)), y]
    if knn_agreement is None:
        return sc, P.argmax(axis=1)
    ag = np.asarray(knn_agreement, dtype=np.float64)
    score = weight * sc + (1.0 - weight) * ag
    if knn_votes is None:
        return score, P.argmax(axis=1)
    V = np.asarray(knn_votes, dtype=np.float64)
    if V.shape != P.shape:
        raise DataError(f"knn_votes must have the shape of probs {P.shape}, got {V.shape}.")
    return score, (weight * P + (1.0 - weight) * V).argmax(axis=1)


# --------------------------------------------------------------------------- label issues


@dataclass
class LabelIssues:
    """What :func:`find_label_issues` found. Shapes: n items, K classes."""

    is_issue: np.ndarray  # (n,) bool — flagged as probably mislabelled
    score: np.ndarray  # (n,) label quality in [0, 1], higher = more likely correct
    suggested: np.ndarray  # (n,) int — most likely label
    rank: np.ndarray  # (n_issues,) indices of flagged items, most suspicious first
    noise_matrix: np.ndarray  # (K, K) P(given=i | true=j), columns sum to 1
    noise_rate_per_class: np.ndarray  # (K,) 1 - noise_matrix[j, j]
    thresholds: np.ndarray  # (K,) per-class confident thresholds
    confident_joint: np.ndarray  # (K, K) calibrated counts C[given, true]
    joint: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (K, K) Q = C / n
    method: str = "auto"
    knn_weight: float | None = None  # probe weight used in the blend/score (None without kNN)
    self_confidence: np.ndarray | None = None  # (n,) p_given
    knn_agreement: np.ndarray | None = None  # (n,) when X was given
    probs: np.ndarray | None = None  # (n, K) out-of-fold probabilities (set by detect_label_issues)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage (detect_label_issues)

    @property
    def n_issues(self) -> int:
        return int(self.is_issue.sum())


def _prune_counts(C: np.ndarray, counts: np.ndarray, min_keep: int) -> np.ndarray:
    """Integer numbers to prune per (given i, true j≠i): round(C[i, j]), leaving min_keep per class."""
    K = len(counts)
    N = np.zeros((K, K), np.int64)
    for i in range(K):
        if counts[i] == 0:
            continue
        N[i] = _round_preserving_total(C[i], int(counts[i]))
        off = N[i].sum() - N[i, i]
        allowed = max(int(counts[i]) - min_keep, 0)
        if off > allowed:  # scale the off-diagonals down so min_keep items survive
            scaled = np.where(np.arange(K) == i, 0.0, N[i] * allowed / off)
            N[i] = _round_preserving_total(scaled, allowed)
        N[i, i] = 0
    return N


def _class_members(y: np.ndarray, K: int) -> list[np.ndarray]:
    order = np.argsort(y, kind="stable")
    return np.split(order, np.cumsum(np.bincount(y, minlength=K))[:-1])


def _prune_by_noise_rate(y: np.ndarray, P: np.ndarray, N: np.ndarray) -> np.ndarray:
    """For each off-diagonal (i, j) flag the N[i, j] items labelled i with largest p_j - p_i."""
    mask = np.zeros(len(y), bool)
    members = _class_members(y, P.shape[1])
    for i, j in zip(*np.nonzero(N)):
        idx = members[i]
        m = min(int(N[i, j]), len(idx))
        margin = P[idx, j] - P[idx, i]
        top = np.argpartition(-margin, m - 1)[:m] if m < len(idx) else np.arange(len(idx))
        mask[idx[top]] = True
    return mask


def _prune_by_class(y: np.ndarray, P: np.ndarray, N: np.ndarray) -> np.ndarray:
    """For each class i flag the sum_j N[i, j] items labelled i with the lowest p_i."""
    mask = np.zeros(len(y), bool)
    members = _class_members(y, P.shape[1])
    for i in np.flatnonzero(N.sum(axis=1)):
        idx = members[i]
        m = min(int(N[i].sum()), len(idx))
        low = np.argpartition(P[idx, i], m - 1)[:m] if m < len(idx) else np.arange(len(idx))
        mask[idx[low]] = True
    return mask


def _cl_mask(y: np.ndarray, P: np.ndarray, method: str, min_keep: int) -> tuple[np.ndarray, dict]:
    est = estimate_noise(y, P)
    K = P.shape[1]
    counts = np.bincount(y, minlength=K)
    N = _prune_counts(est["confident_joint"], counts, min_keep)
    if method == "prune_by_noise_rate":
        mask = _prune_by_noise_rate(y, P, N)
    elif method == "prune_by_class":
        mask = _prune_by_class(y, P, N)
    elif method == "both":
        mask = _prune_by_noise_rate(y, P, N) & _prune_by_class(y, P, N)
    elif method == "confident_learning":
        g = _confident_assignment(P, est["thresholds"])
        mask = (g >= 0) & (g != y)
    elif method == "predicted_neq_given":
        mask = np.zeros(len(y), bool)
    else:  # pragma: no cover - guarded by the caller
        raise AssertionError(method)
    # never flag an item whose given label is (tied for) the model's prediction
    Pb = P.copy()
    Pb[np.arange(len(y)), y] += 1e-12
    mask &= Pb.argmax(axis=1) != y
    if method == "predicted_neq_given":
        mask = Pb.argmax(axis=1) != y
    return mask, est


_WEIGHT_GRID = (0.3, 0.4, 0.5, 0.6, 0.7)


def _choose_knn_weight(y: np.ndarray, P: np.ndarray, V: np.ndarray, neighbors: np.ndarray) -> float:
    """Probe weight w in the grid whose blend ``w·P + (1-w)·V`` agrees most with the given labels.

    Both sources are honest (out-of-fold probe, self-excluded kNN), so the better predictor of the
    given labels is, under noise that is not adversarial, the better predictor of the true ones.
    Ties go to the weight closest to 0.5. Only the probe's argmax and the neighbours' labels can
    be the blend's argmax (any other class has no votes), so only those k + 1 columns are scored.
    """
    n = len(y)
    cand = np.concatenate([P.argmax(axis=1)[:, None], y[neighbors]], axis=1)
    Pc = np.take_along_axis(P, cand, axis=1)
    Vc = np.take_along_axis(V, cand, axis=1)
    rows = np.arange(n)
    best, best_w = -1.0, 0.5
    for w in sorted(_WEIGHT_GRID, key=lambda v: abs(v - 0.5)):
        pick = cand[rows, (w * Pc + (1.0 - w) * Vc).argmax(axis=1)]
        acc = float((pick == y).mean())
        if acc > best + 1e-12:
            best, best_w = acc, w
    return best_w


def find_label_issues(
    labels: Any,
    probs: Any,
    *,
    X: Any = None,
    method: str = "auto",
    k: int = 10,
    knn_weight: float | str = "auto",
    min_examples_per_class: int = 1,
    neighbors: Any = None,
) -> LabelIssues:
    """Find items whose given label is probably wrong.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Given labels in ``[0, K)``.
    probs : array-like of shape (n, K)
        Out-of-fold predicted probabilities (e.g. :func:`out_of_fold_probs`). In-sample
        probabilities make every label look right.
    X : array-like of shape (n, d), optional
        Embeddings; when given, cosine-kNN label agreement enters the score, the suggestion and
        (for ``method="auto"``) the flagging rule.
    method : str, default "auto"
        Flagging rule (every rule finally drops items whose given label is the argmax of the
        probabilities it ran on):

        - ``"prune_by_noise_rate"``: confident learning; for each off-diagonal (i, j) of the
          calibrated confident joint flag the ``round(n·Q[i, j])`` items labelled i with the
          largest margin ``p_j - p_i``;
        - ``"prune_by_class"``: per class i, flag the ``n·sum_{j≠i} Q[i, j]`` items labelled i
          with the lowest ``p_i``;
        - ``"both"``: items flagged by both prune rules;
        - ``"confident_learning"``: the off-diagonals of the confident joint (items confidently
          in another class);
        - ``"predicted_neq_given"``: argmax ≠ given;
        - ``"blend_prune_by_noise_rate"``: ``prune_by_noise_rate`` run on the blend
          ``knn_weight · probs + (1 - knn_weight) · knn_votes`` (needs ``X`` or ``neighbors``);
        - ``"auto"``: ``"blend_prune_by_noise_rate"`` when kNN is available, else
          ``"prune_by_noise_rate"``.

        Why ``"auto"`` is the blend: the kNN vote distribution is a second, non-parametric
        estimate of ``P(given label | x)``, honest like the out-of-fold probe (self excluded),
        with different errors — the linear probe partly learns systematic flips (pair-flip
        noise) and over-fits noisy labels in high dimension, the kNN does neither. Confident
        learning on the average is more precise *and* recalls more. Measured on scikit-learn
        digits (1,797 items, 10 classes; 5-fold logistic probe; k = 10; ``inject_noise`` seeds
        0-2, mean; cleanlab 2.9 ``find_label_issues`` fed the same probabilities):

        ========================  ==================  ==================
        precision / recall / F1   20% symmetric       30% pair-flip
        ========================  ==================  ==================
        PCA-30, cleanlab          0.90 / 0.90 / 0.90  0.65 / 0.81 / 0.72
        PCA-30, no ``X``          0.90 / 0.90 / 0.90  0.65 / 0.81 / 0.72
        PCA-30, ``"auto"``        0.94 / 0.92 / 0.93  0.89 / 0.90 / 0.90
        pixels, cleanlab          0.84 / 0.91 / 0.87  0.60 / 0.77 / 0.67
        pixels, ``"auto"``        0.95 / 0.93 / 0.94  0.87 / 0.90 / 0.88
        ========================  ==================  ==================

        Also measured and not chosen (PCA-30, F1 sym / pair-flip): ``"both"`` 0.91 / 0.71,
        ``"prune_by_class"`` 0.92 / 0.70, ``"confident_learning"`` 0.84 / 0.70, prune set ∪
        kNN-disagreement 0.92 / 0.77, prune set ∩ kNN-disagreement 0.92 / 0.79, top-N by the
        combined score 0.95 / 0.80. On synthetic Gaussian classes where the kNN is far weaker
        than the probe (kNN accuracy 0.3 vs 0.6), the blend with the chosen weight still matched
        or beat plain confident learning. Cost: without ``X`` this takes ~5 ms on digits
        (cleanlab: ~10 ms); with ``X`` ~60 ms, nearly all of it the kNN graph, which at
        20,000 × 384 costs about as much as the 5-fold probe (a few seconds on 2 cores) — pass
        ``neighbors`` (from :func:`knn_graph`) to reuse a graph already computed.
    k : int, default 10
        Neighbours for kNN agreement.
    knn_weight : float or "auto", default "auto"
        Weight ``w`` of the probe in the blend ``w · probs + (1 - w) · knn_votes`` that gives the
        score, the suggestion and (for the blend rule) the flags and estimates. ``"auto"`` picks
        w from (0.3, …, 0.7) by how often the blend's argmax agrees with the given labels; on
        digits it picks 0.3-0.5.
    min_examples_per_class : int, default 1
        Never prune a class below this many items.
    neighbors : ndarray of shape (n, k), optional
        Precomputed :func:`knn_graph` indices (saves recomputing the graph).

    Returns
    -------
    LabelIssues
        ``is_issue`` (n,); ``score`` (n,) in [0, 1], higher = more likely correct:
        ``w · p_given + (1 - w) · knn_agreement`` (the blend's probability of the given label),
        or ``p_given`` alone without ``X``; ``suggested`` (n,): argmax of the blend (of
        ``probs`` without ``X``); ``rank``: flagged indices by ascending score; and the
        confident-learning estimates ``noise_matrix`` (K, K), ``noise_rate_per_class`` (K,),
        ``thresholds`` (K,), ``confident_joint`` (K, K) and ``joint`` (K, K), computed from the
        blend when the blend rule is used (on digits this cuts the noise-matrix error: off-
        diagonal MAE 0.022 → 0.006 and worst per-class noise-rate error 0.21 → 0.07 at 30%
        pair-flip; 0.006 → 0.004 and 0.05 → 0.03 at 20% symmetric), else from ``probs``.
    """
    y = _as_labels(labels)
    P = _as_probs(probs, len(y))
    K = P.shape[1]
    _check_labels_fit(y, K)
    if method not in ISSUE_METHODS:
        raise DataError(f"method must be one of {ISSUE_METHODS}, got {method!r}.")
    if min_examples_per_class < 0:
        raise DataError(f"min_examples_per_class must be >= 0, got {min_examples_per_class}.")
    have_knn = X is not None or neighbors is not None
    if method == "blend_prune_by_noise_rate" and not have_knn:
        raise DataError("method='blend_prune_by_noise_rate' needs X (embeddings) or neighbors; pass X=...")
    if not (knn_weight == "auto" or (isinstance(knn_weight, (int, float)) and 0.0 <= knn_weight <= 1.0)):
        raise DataError(f"knn_weight must be 'auto' or a number in [0, 1], got {knn_weight!r}.")
    agreement = votes = None
    w = 1.0
    if have_knn:
        if neighbors is None:
            neighbors = knn_graph(_as_X(X, len(y)), k=k)[0]
        neighbors = np.asarray(neighbors, dtype=np.int64)
        agreement, votes = knn_label_agreement(None, y, n_classes=K, neighbors=neighbors)
        w = _choose_knn_weight(y, P, votes, neighbors) if knn_weight == "auto" else float(knn_weight)
    rule = method
    if method == "auto":
        rule = "blend_prune_by_noise_rate" if have_knn else "prune_by_noise_rate"
    if rule == "blend_prune_by_noise_rate":
        B = w * P + (1.0 - w) * votes
        mask_, est = _cl_mask(y, B, "prune_by_noise_rate", min_examples_per_class)
    else:
        mask_, est = _cl_mask(y, P, rule, min_examples_per_class)
    score, suggested = combined_label_quality(y, P, knn_agreement=agreement, knn_votes=votes, weight=w)
    rank = np.flatnonzero(mask_)
    rank = rank[np.argsort(score[rank], kind="stable")]
    return LabelIssues(
        is_issue=mask_,
        score=score,
        suggested=suggested,
        rank=rank,
        noise_matrix=est["noise_matrix"],
        noise_rate_per_class=est["noise_rate_per_class"],
        thresholds=est["thresholds"],
        confident_joint=est["confident_joint"],
        joint=est["joint"],
        method=rule,
        knn_weight=w if have_knn else None,
        self_confidence=P[np.arange(len(y)), y],
        knn_agreement=agreement,
    )


def detect_label_issues(
    X: Any,
    labels: Any,
    *,
    n_components: int | None = 192,
    knn_components: int | None = 96,
    n_folds: int = 5,
    k: int = 10,
    seed: int = 0,
    C: float = 0.1,
    max_iter: int = 500,
    n_classes: int | None = None,
    method: str = "auto",
    min_examples_per_class: int = 1,
    n_jobs: int | None = None,
) -> LabelIssues:
    """The whole label-noise pipeline, from embeddings to flags.

    1. :func:`pca_reduce` to ``n_components`` dimensions (label-free, fitted on all items);
    2. :func:`out_of_fold_probs` — 5-fold logistic probe on those components;
    3. :func:`knn_graph` — exact cosine kNN on the leading ``knn_components`` of them;
    4. :func:`find_label_issues` with those probabilities and neighbours (``method="auto"``:
       confident learning on the probe/kNN blend).

    Why reduce, and why two sizes: the kNN graph costs n²·d and a probe iteration n·d·K, and the
    top principal components of a pretrained embedding keep its class structure. The probe is
    linear in n, so it can afford more components (it gains from them on VADER); the kNN is
    quadratic, so it gets fewer. Measured with ``benchmarks/bench_noise.py`` (F1 of the blend
    rule, noise/rater seed 0; VADER also as the mean and worst F1 margin over cleanlab across
    rater seeds 0-4):

    ============================  ===========  ===========  ===========  ===============
    components (probe / kNN)      64 / 64      128 / 128    192 / 96     128 / all of d
    ============================  ===========  ===========  ===========  ===============
    Fashion 10k, 20% symmetric    0.784        0.800        0.800        0.803
    Fashion 10k, 30% pair-flip    0.808        0.797        0.786        0.807
    Fashion 60k, 20% symmetric    —            0.838        0.843        —
    Fashion 60k, 30% pair-flip    —            0.854        0.856        —
    VADER, seed 0                 0.437        0.450        0.450        0.454
    VADER, margin mean / worst    —            +.009/+.001  +.010/+.004  —
    ============================  ===========  ===========  ===========  ===============

    (The last column's kNN on the full 1280-d / 384-d embedding costs 3-10x the time.)

    192 / 96 is the default: the safest margin on VADER (the hard task: one rater's label), a
    quarter less kNN work than 128 / 128, and within 0.02 of the best on Fashion-MNIST (where
    every setting beats cleanlab by 0.02-0.26 F1). ``C = 0.1`` scores like ``C = 1`` (within
    0.005 F1) and converges about twice as fast.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Embeddings (float32).
    labels : array-like of shape (n,)
        Given labels in ``[0, K)``.
    n_components : int or None, default 192
        PCA dimension of the probe (capped at d); None skips the PCA (probe and kNN then use
        ``X`` as given).
    knn_components : int or None, default 96
        Leading components used by the kNN graph; None uses all ``n_components``.
    n_folds, seed, C, max_iter, n_classes
        Passed to :func:`out_of_fold_probs` (``seed`` also seeds the PCA sample).
    k : int, default 10
        Neighbours in the kNN graph.
    method, min_examples_per_class
        Passed to :func:`find_label_issues`.
    n_jobs : int, optional
        Threads for the probe's folds and the kNN graph; default all usable cores.

    Returns
    -------
    LabelIssues
        As :func:`find_label_issues`, plus ``probs`` (n, K), the out-of-fold probabilities, and
        ``seconds``, wall time per stage (``pca``, ``probe``, ``knn``, ``confident_learning``).
    """
    import time

    y = _as_labels(labels)
    A = _as_X(X, len(y))
    if method not in ISSUE_METHODS:
        raise DataError(f"method must be one of {ISSUE_METHODS}, got {method!r}.")
    for name, v in (("n_components", n_components), ("knn_components", knn_components)):
        if v is not None and v < 1:
            raise DataError(f"{name} must be a positive number of components or None, got {v}.")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    Z = pca_reduce(A, n_components, seed=seed) if n_components is not None else A
    seconds["pca"] = time.perf_counter() - t
    t = time.perf_counter()
    probs = out_of_fold_probs(Z, y, n_folds=n_folds, seed=seed, C=C, n_classes=n_classes, max_iter=max_iter, n_jobs=n_jobs)
    seconds["probe"] = time.perf_counter() - t
    t = time.perf_counter()
    Zk = Z if n_components is None or knn_components is None else Z[:, :knn_components]
    neighbors = knn_graph(Zk, k=k, n_jobs=n_jobs)[0]
    seconds["knn"] = time.perf_counter() - t
    t = time.perf_counter()
    res = find_label_issues(y, probs, neighbors=neighbors, method=method, min_examples_per_class=min_examples_per_class)
    seconds["confident_learning"] = time.perf_counter() - t
    res.probs = probs
    res.seconds = seconds
    return res


# --------------------------------------------------------------------------- near-duplicates


@dataclass
class DuplicateCluster:
    """A group of items that are copies or near-copies of each other."""

    indices: np.ndarray  # (m,) sorted item indices, m >= 2
    kind: str  # "exact" (same hash), "near" (cosine >= threshold) or "exact+near"
    splits: tuple[str, ...] = ()  # split names the cluster spans (empty without split)
    cross_split: bool = False  # spans more than one split: a train/val/test leak

    def __len__(self) -> int:
        return len(self.indices)


def _components(n: int, edges_r: list[np.ndarray], edges_c: list[np.ndarray]) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not edges_r:
        return np.arange(n)
    r = np.concatenate(edges_r)
    c = np.concatenate(edges_c)
    g = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _compress(n: int, edges_r: list, edges_c: list) -> tuple[list, list]:
    """Replace accumulated edges by a star per component (at most n edges)."""
    comp = _components(n, edges_r, edges_c)
    order = np.argsort(comp, kind="stable")
    cs = comp[order]
    first = np.r_[True, cs[1:] != cs[:-1]]
    root = order[np.maximum.accumulate(np.where(first, np.arange(n), 0))]
    keep = root != order
    return [order[keep].astype(np.int32)], [root[keep].astype(np.int32)]


def near_duplicates(
    X: Any,
    *,
    threshold: float | None = 0.98,
    hashes: Sequence[Any] | None = None,
    split: Any = None,
) -> list[DuplicateCluster]:
    """Clusters of exact and near-duplicate items, flagged when they leak across splits.

    Items with equal ``hashes`` (e.g. a content hash of the raw file or text) are linked, as are
    pairs with cosine similarity ``>= threshold`` between their embeddings; linked items are
    merged into clusters (union-find via connected components). Similarities are computed in
    row blocks (~8M at a time) and the edge list is compressed to one star per component as it
    grows, so 60,000 × 384 never allocates n × n.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Embeddings. All-zero rows have similarity 0 to everything.
    threshold : float or None, default 0.98
        Cosine similarity at or above which two items are near-duplicates, in (0, 1];
        ``None`` uses only ``hashes``.
    hashes : sequence of shape (n,), optional
        Exact-content hashes; ``None``/NaN entries never match.
    split : array-like of shape (n,), optional
        Split codes (0 train, 1 val, 2 test); sets ``splits`` and ``cross_split``.

    Returns
    -------
    clusters : list of DuplicateCluster
        Largest first (ties by smallest index); cross-split clusters are the train/test leaks.
    """
    A = _as_X(X)
    n = A.shape[0]
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise DataError(f"threshold must be in (0, 1] (a cosine similarity) or None, got {threshold}.")
    sp = None
    if split is not None:
        sp = _as_labels(split, n, name="split")
        if sp.size and sp.max() > 2:
            raise DataError("split codes must be 0 (train), 1 (val) or 2 (test).")
    er: list[np.ndarray] = []
    ec: list[np.ndarray] = []
    hash_pairs = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if hashes is not None:
        h = list(hashes) if not isinstance(hashes, (np.ndarray, pd.Series)) else hashes
        if len(h) != n:
            raise DataError(f"hashes has {len(h)} entries but X has {n} rows; pass one hash per item.")
        codes, _ = pd.factorize(pd.Series(h, dtype=object), use_na_sentinel=True)
        valid = np.flatnonzero(codes >= 0)
        order = valid[np.argsort(codes[valid], kind="stable")]
        same = codes[order[1:]] == codes[order[:-1]]
        hash_pairs = (order[1:][same], order[:-1][same])
        er.append(hash_pairs[0].astype(np.int32))
        ec.append(hash_pairs[1].astype(np.int32))
    near_nodes = np.zeros(n, bool)
    if threshold is not None and n > 1:
        B = _normalise_rows(A)
        step = _chunk_rows(n)
        n_edges = sum(len(e) for e in er)
        for i0 in range(0, n, step):
            i1 = min(n, i0 + step)
            S = B[i0:i1] @ B[i0:].T  # only j >= i0 — each pair once
            r, c = np.nonzero(S >= threshold - 1e-6)
            c = c + i0
            r = r + i0
            keep = c > r
            r, c = r[keep], c[keep]
            if len(r):
                near_nodes[r] = True
                near_nodes[c] = True
                er.append(r.astype(np.int32))
                ec.append(c.astype(np.int32))
                n_edges += len(r)
            if n_edges > 4 * n + 1_000_000:
                er, ec = _compress(n, er, ec)
                n_edges = len(er[0])
    comp = _components(n, er, ec)
    hash_nodes = np.zeros(n, bool)
    hash_nodes[hash_pairs[0]] = True
    hash_nodes[hash_pairs[1]] = True
    order = np.argsort(comp, kind="stable")
    cs = comp[order]
    bounds = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1], True])
    clusters: list[DuplicateCluster] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b - a < 2:
            continue
        idx = np.sort(order[a:b])
        is_h, is_n = bool(hash_nodes[idx].any()), bool(near_nodes[idx].any())
        kind = "exact+near" if is_h and is_n else ("exact" if is_h else "near")
        splits: tuple[str, ...] = ()
        cross = False
        if sp is not None:
            present = np.unique(sp[idx])
            splits = tuple(SPLITS[s] for s in present)
            cross = len(present) > 1
        clusters.append(DuplicateCluster(indices=idx, kind=kind, splits=splits, cross_split=cross))
    clusters.sort(key=lambda c: (-len(c.indices), int(c.indices[0])))
    return clusters


# --------------------------------------------------------------------------- outliers


def outlier_scores(X: Any, *, k: int = 10) -> np.ndarray:
    """Mean cosine distance (1 - similarity) to the k nearest neighbours; higher = more isolated.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k : int, default 10
        Capped at n - 1.

    Returns
    -------
    scores : ndarray of shape (n,), float64, in [0, 2]
    """
    _, sims = knn_graph(X, k=k)
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0])
    return 1.0 - sims.astype(np.float64).mean(axis=1)


def outliers(X: Any, *, k: int = 10, quantile: float = 0.99) -> np.ndarray:
    """Indices of items whose :func:`outlier_scores` exceed the given quantile.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k : int, default 10
    quantile : float, default 0.99
        In (0, 1); 0.99 keeps about the most isolated 1%.

    Returns
    -------
    indices : ndarray of shape (m,), int64
        Most isolated first.
    """
    if not 0.0 < quantile < 1.0:
        raise DataError(f"quantile must be strictly between 0 and 1, got {quantile}.")
    s = outlier_scores(X, k=k)
    if s.size == 0:
        return np.zeros(0, np.int64)
    cut = np.quantile(s, quantile)
    idx = np.flatnonzero(s > cut)
    return idx[np.argsort(-s[idx], kind="stable")]


# --------------------------------------------------------------------------- coverage


def coverage(
    labels: Any,
    split: Any,
    n_classes: int,
    *,
    min_count: int = 5,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-class counts per split, and the gaps: missing, too few, unseen in train.

    Only splits that hold at least one item count: a dataset without a val split does not
    report every class as missing from val.

    Parameters
    ----------
    labels : array-like of shape (n,)
    split : array-like of shape (n,)
        Split codes: 0 train, 1 val, 2 test.
    n_classes : int
        K (classes with no item still get a row).
    min_count : int, default 5
        Fewer items than this in a present split sets ``below_min_<split>``.
    class_names : sequence of str of length K, optional

    Returns
    -------
    DataFrame with one row per class and columns ``class``, ``name``, ``train``, ``val``,
    ``test``, ``total``, ``missing_in`` (tuple of split names where the class has no item),
    ``below_min_train``, ``below_min_val``, ``below_min_test`` (bool) and ``unseen_in_train``
    (bool: in val or test but never in train).
    """
    y = _as_labels(labels)
    sp = _as_labels(split, len(y), name="split")
    if sp.size and sp.max() > 2:
        raise DataError("split codes must be 0 (train), 1 (val) or 2 (test).")
    K = int(n_classes)
    _check_labels_fit(y, K, "n_classes")
    if class_names is not None and len(class_names) != K:
        raise DataError(f"class_names has {len(class_names)} names but n_classes is {K}; pass one name per class.")
    names = [str(c) for c in class_names] if class_names is not None else [str(c) for c in range(K)]
    table = np.bincount(sp * K + y, minlength=3 * K).reshape(3, K)
    present = np.bincount(sp, minlength=3) > 0
    df = pd.DataFrame({"class": np.arange(K), "name": names})
    for s, nm in enumerate(SPLITS):
        df[nm] = table[s]
    df["total"] = table.sum(axis=0)
    df["missing_in"] = [
        tuple(SPLITS[s] for s in range(3) if present[s] and table[s, c] == 0) for c in range(K)
    ]
    for s, nm in enumerate(SPLITS):
        df[f"below_min_{nm}"] = present[s] & (table[s] < min_count)
    df["unseen_in_train"] = (table[0] == 0) & (table[1:].sum(axis=0) > 0)
    return df


# --------------------------------------------------------------------------- synthetic noise


def make_noise_matrix(K: int, *, kind: str = "symmetric", rate: float = 0.2) -> np.ndarray:
    """A noise matrix ``P(given=i | true=j)`` (K, K), columns summing to 1.

    Parameters
    ----------
    K : int
        Number of classes (≥ 2).
    kind : {"symmetric", "pairflip"}
        ``symmetric`` moves ``rate`` of each class uniformly to the other K - 1 classes;
        ``pairflip`` moves ``rate`` of class j to class ``(j + 1) % K``.
    rate : float
        Share of each class that gets a wrong label, in [0, 1).

    Returns
    -------
    noise_matrix : ndarray of shape (K, K)
    """
    if K < 2:
        raise DataError(f"K must be at least 2 to have label noise, got {K}.")
    if not 0.0 <= rate < 1.0:
        raise DataError(f"rate must be in [0, 1), got {rate}.")
    if kind == "symmetric":
        M = np.full((K, K), rate / (K - 1))
    elif kind == "pairflip":
        M = np.zeros((K, K))
        M[(np.arange(K) + 1) % K, np.arange(K)] = rate
    else:
        raise DataError(f"kind must be 'symmetric' or 'pairflip', got {kind!r}.")
    np.fill_diagonal(M, 1.0 - rate)
    return M


def inject_noise(labels: Any, noise_matrix: Any, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Relabel items according to a noise matrix, with exact per-class counts.

    For each true class j with m items, ``round(m · noise_matrix[i, j])`` of them (rounded to
    keep the total m) get label i, chosen by a seeded shuffle — so the realised noise matrix
    equals the requested one up to rounding.

    Parameters
    ----------
    labels : array-like of shape (n,)
        True labels in ``[0, K)``.
    noise_matrix : array-like of shape (K, K)
        ``P(given=i | true=j)``, columns summing to 1.
    seed : int, default 0

    Returns
    -------
    noisy_labels : ndarray of shape (n,), int64
    is_flipped : ndarray of shape (n,), bool
    """
    y = _as_labels(labels)
    M = np.asarray(noise_matrix, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise DataError(f"noise_matrix must be square (K, K), got shape {M.shape}.")
    K = M.shape[0]
    _check_labels_fit(y, K, "noise_matrix")
    if (M < 0).any() or np.abs(M.sum(axis=0) - 1.0).max() > 1e-6:
        raise DataError("noise_matrix columns must be non-negative and sum to 1 (column j = P(given | true=j)).")
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    for j in range(K):
        idx = np.flatnonzero(y == j)
        if not len(idx):
            continue
        cnt = _round_preserving_total(M[:, j] * len(idx), len(idx))
        perm = rng.permutation(idx)
        noisy[perm] = np.repeat(np.arange(K), cnt)
    return noisy, noisy != y
