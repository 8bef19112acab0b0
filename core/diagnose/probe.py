"""Out-of-fold probabilities from a linear probe on (PCA-reduced) embeddings."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from core.diagnose.arrays import as_embeddings, as_labels, check_labels_fit, n_workers, one_thread_each, run_threads
from core.errors import DataError

POOL_MIN_CELLS = 1_000_000  # items × dimensions from which the logistic probe fits its folds on threads
# items × dimensions from which the PCA splits its products over threads (2 cores: 23,320 × 384
# 0.053 → 0.041 s, 60,000 × 1280 0.52 → 0.38 s; no gain at 10,000 × 384)
PCA_THREADS_MIN_CELLS = 5_000_000


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


def fold_plan(y: np.ndarray, n_folds: int, seed: int, n_classes: int | None) -> tuple[np.ndarray, int, int]:
    """The out-of-fold models' folds, checked: ``(fold ids (n,), number of folds, K)``, with -1
    marking single-example classes' items (always in training, predicted by fold 0's model). A
    ``DataError`` when no item can be predicted out of fold."""
    n = len(y)
    if n_folds < 2:
        raise DataError(f"n_folds must be at least 2, got {n_folds}.")
    if n < 2:
        raise DataError("out_of_fold_probs needs at least 2 items.")
    K = int(n_classes) if n_classes is not None else int(y.max()) + 1
    check_labels_fit(y, K, "n_classes")
    if np.bincount(y, minlength=K).max() < 2:
        raise DataError(
            "Every class has a single item, so no item can be predicted out of fold; "
            "add more examples per class before looking for label noise."
        )
    folds, n_eff = _fold_assignment(y, n_folds, seed)
    return folds, n_eff, K


def _make_model(model: Any, C: float, max_iter: int):
    from sklearn.base import clone

    if isinstance(model, str):
        if model != "logreg":
            raise DataError(f"model must be 'logreg' or a scikit-learn classifier with predict_proba, got {model!r}.")
        from sklearn.linear_model import LogisticRegression

        # lbfgs on >2 classes is the multinomial (softmax) model in scikit-learn >= 1.5
        return LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter)
    if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
        raise DataError("model must be 'logreg' or a scikit-learn classifier with fit and predict_proba.")
    return clone(model)


def _model_inputs(model: Any, X: Any) -> Any:
    """What each fold's model is fitted on: for ``"logreg"``, the features standardised once over
    every item (it reads no label, like the PCA before it); else ``X`` as given.

    Standardised as scikit-learn's ``StandardScaler`` does (mean 0, population standard deviation
    1, a constant column left at scale 1), in numpy: the scaler's incremental mean and variance
    took ~5 ms of the probe's ~25 ms on 4,946 × 192, this ~2 ms; the tests compare the two."""
    if not isinstance(model, str):
        return X
    A = np.asarray(X)
    if not np.issubdtype(A.dtype, np.floating):  # integer features: scaled in double precision
        A = A.astype(np.float64)
    out = A - A.mean(axis=0, dtype=np.float64).astype(A.dtype)
    scale = np.sqrt((out * out).sum(axis=0, dtype=np.float64) / max(len(A), 1))
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    out /= scale.astype(A.dtype)
    return out


def pca_reduce(X: Any, n_components: int = 64, *, seed: int = 0, max_fit_rows: int = 8192, n_jobs: int | None = None) -> np.ndarray:
    """Centre the rows and project them onto their top principal components.

    The components are the top eigenvectors of the covariance of a seeded sample of at most
    ``max_fit_rows`` rows (a d × d eigenproblem, cheap for d ≤ a few thousand); every row is then
    projected. Label-free, so it can be fitted on all items before any out-of-fold split without
    leaking a label. From ``PCA_THREADS_MIN_CELLS`` on, the products are split by rows over
    ``n_jobs`` threads, each with a single-threaded BLAS; the eigenproblem is solved in single
    precision. On 60,000 × 1280 this takes ~0.4 s on 2 cores (0.5 s with the BLAS's own threads
    and a double-precision eigh), and 128 components make the kNN graph's dot products 10x cheaper.

    Parameters
    ----------
    X : array-like of shape (n, d)
    n_components : int, default 64
        Output dimension p; capped at d (then all components: a rotation of the centred rows).
    seed : int, default 0
        Seed of the row sample.
    max_fit_rows : int, default 8192
        Rows used to estimate the covariance.
    n_jobs : int, optional
        Threads for the products from ``PCA_THREADS_MIN_CELLS`` items × dimensions on; default
        all usable cores.

    Returns
    -------
    Z : ndarray of shape (n, min(p, d)), float32
        Components in order of decreasing variance.
    """
    A = as_embeddings(X)
    n, d = A.shape
    if n_components < 1:
        raise DataError(f"n_components must be at least 1, got {n_components}.")
    if n == 0:
        return np.zeros((0, min(n_components, d)), np.float32)
    n_components = min(n_components, d)
    rows = np.arange(n)
    if n > max_fit_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_fit_rows, replace=False))
    workers = n_workers(n_jobs) if n * d >= PCA_THREADS_MIN_CELLS else 1
    B = A if len(rows) == n else A[rows]  # a sample is copied once; all rows are read in place
    parts = np.linspace(0, len(B), workers + 1).round().astype(np.int64)
    grams: list[np.ndarray] = [np.empty(0)] * workers

    def gram(i: int) -> None:
        part = B[parts[i] : parts[i + 1]]
        grams[i] = part.T @ part

    run_threads(gram, range(workers), workers)
    mu = B.mean(axis=0, dtype=np.float64)
    gram_sum = grams[0] if workers == 1 else np.add.reduce(grams)
    cov = gram_sum.astype(np.float64) / len(rows) - np.outer(mu, mu)  # float32 products, float64 after
    from scipy.linalg import eigh

    # every eigenpair by divide and conquer in single precision, the top p kept: on d = 384 2-5x
    # faster than asking LAPACK for the top p only (its default for a subset, MRRR); single
    # precision halves the time again (d = 1280: 0.31 → 0.15 s on one thread), and the
    # covariance's own float32 products are no more precise than that
    with one_thread_each():
        _, V = eigh(cov.astype(np.float32), driver="evd")  # ascending: top p last
    V = np.ascontiguousarray(V[:, ::-1][:, :n_components], dtype=np.float32)
    Z = np.empty((n, n_components), np.float32)
    bounds = np.linspace(0, n, workers + 1).round().astype(np.int64)

    def project(i: int) -> None:
        np.matmul(A[bounds[i] : bounds[i + 1]], V, out=Z[bounds[i] : bounds[i + 1]])

    run_threads(project, range(workers), workers)
    Z -= (mu.astype(np.float32) @ V)[None, :]
    return Z


def _sample_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` as float64 (n,), or None; a ``DataError`` when it cannot weigh n items."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise DataError(f"sample_weight must hold one weight per item, shape ({n},); got {w.shape}.")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise DataError("sample_weight must be finite and non-negative.")
    return w


def _is_sparse(X: Any) -> bool:
    from scipy import sparse

    return bool(sparse.issparse(X))


def _sparse_rows(X: Any, n: int) -> Any:
    """A sparse matrix of counts (a custom ``model`` such as naive Bayes reads it), in CSR."""
    if X.shape[0] != n:
        raise DataError(f"X has {X.shape[0]} rows but labels has {n} items; pass one row per item.")
    return X.tocsr()


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
    sample_weight: Any = None,
) -> np.ndarray:
    """Out-of-fold predicted class probabilities from a linear probe on embeddings.

    Items are split into ``n_folds`` stratified folds; each fold is predicted by a model trained
    on the others, so no item's probability comes from a model that saw its (possibly wrong)
    label. With ``model="logreg"`` the probe is a multinomial
    ``LogisticRegression(solver="lbfgs", C=C)`` fitted inside the training folds on the features
    standardised once over all items (as ``StandardScaler`` does, :func:`_model_inputs`). The scaling reads no label, like the
    PCA before it, so no fold learns anything from the labels it holds out. Once rather than per
    fold, and with the libraries single-threaded, the probe took a quarter to a half less time on
    1,797-23,320 items (2 cores).

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
        Embeddings (float32), or a scipy sparse matrix (word counts) for a custom ``model``.
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
        Folds fitted at once (threads) for ``model="logreg"`` on at least ``POOL_MIN_CELLS``
        items × dimensions; default all usable cores. Smaller inputs and a custom ``model`` run one
        fold at a time. BLAS and OpenMP are single-threaded throughout (``one_thread_each``).
    sample_weight : array-like of shape (n,), optional
        Non-negative weight of each item in the training folds it belongs to (passed to each
        fold's ``fit``; the label-issue detector's second pass weighs items by how likely their
        label is right). The held-out items are predicted whatever their weight.

    Returns
    -------
    probs : ndarray of shape (n, K), float64
        Rows sum to 1.
    """
    y = as_labels(labels)
    sparse_x = _is_sparse(X)
    if sparse_x and isinstance(model, str):
        raise DataError(
            "A sparse X (word counts) needs a model that reads it, e.g. MultinomialNB; the logistic probe scales dense embeddings."
        )
    A = _sparse_rows(X, len(y)) if sparse_x else as_embeddings(X, len(y))
    n = len(y)
    weights = _sample_weights(sample_weight, n)
    folds, n_eff, K = fold_plan(y, n_folds, seed, n_classes)
    from sklearn.exceptions import ConvergenceWarning

    probs = np.zeros((n, K), dtype=np.float64)
    always_train = folds < 0
    A = _model_inputs(model, A)

    def fit_fold(f: int) -> None:
        test = folds == f
        train = ~test
        ytr = y[train]
        present = np.unique(ytr)
        targets = test | (always_train if f == 0 else np.zeros(n, bool))
        if len(present) == 1:  # degenerate fold: only one class to learn
            probs[targets, present[0]] = 1.0
            return
        est = _make_model(model, C, max_iter)
        if weights is None:
            est.fit(A[train], ytr)
        else:
            est.fit(A[train], ytr, sample_weight=weights[train])
        cols = np.asarray(est.classes_, dtype=np.int64)
        probs[np.ix_(np.flatnonzero(targets), cols)] = est.predict_proba(A[targets])  # folds write disjoint rows

    # lbfgs spends most of its time in single-threaded loss code and small BLAS calls: one fold
    # per core beats one fold at a time on a multi-threaded BLAS (60,000 × 192, 10 classes, 2
    # cores: 3.2 s vs 9-11 s); below ~1M cells the pool's own cost is more than it saves
    big = n * A.shape[1] >= POOL_MIN_CELLS
    workers = min(n_workers(n_jobs), n_eff) if isinstance(model, str) and big else 1
    with warnings.catch_warnings():
        # a probe a little short of convergence still gives usable out-of-fold probabilities
        warnings.simplefilter("ignore", ConvergenceWarning)
        run_threads(fit_fold, range(n_eff), workers)
    s = probs.sum(axis=1, keepdims=True)
    s[s == 0] = 1.0
    return probs / s
