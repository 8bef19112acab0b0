"""Checks and small helpers shared by the detectors: arrays in the shapes they expect, or a
``DataError`` that says what to pass instead."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import numpy as np

from core.errors import DataError
from core.hardware import usable_cores


def n_workers(n_jobs: int | None) -> int:
    """Threads to use: ``n_jobs``, or every usable core when it is None."""
    if n_jobs is not None:
        if n_jobs < 1:
            raise DataError(f"n_jobs must be a positive number of threads (or None for all cores), got {n_jobs}.")
        return int(n_jobs)
    return usable_cores()


@lru_cache(maxsize=1)
def _thread_pools() -> Any:
    # the detectors' libraries loaded first: numpy's BLAS, SciPy's own BLAS (eigh) and
    # scikit-learn's OpenMP, which a scan made before their import would miss
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401  (its loss code brings the OpenMP runtime)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # found once: a scan costs ~1 ms


def one_thread_each() -> Any:
    """A context in which BLAS and OpenMP run single-threaded, for code that is either small or
    fills the cores with threads of its own. On small problems a multi-threaded BLAS costs more
    than it gives: the logistic probe's five folds on 4,196 × 192 took 0.28-0.36 s one after the
    other with the library defaults and 0.04 s single-threaded (2 cores)."""
    return _thread_pools().limit(limits=1)


def run_threads(fn: Callable[[Any], None], items: Iterable[Any], workers: int) -> None:
    """``fn(item)`` for every item on ``workers`` threads, BLAS and OpenMP single-threaded in each
    (the workers already fill the cores, and numpy's selection code is single-threaded, so this
    keeps every core busy all the time); in the calling thread when one worker or one item."""
    items = list(items)
    with one_thread_each():
        if workers == 1 or len(items) == 1:
            for it in items:
                fn(it)
            return
        from concurrent.futures import ThreadPoolExecutor

        def limited(item: Any) -> None:
            with one_thread_each():  # OpenMP's limit holds per thread: a new thread starts at the default again
                fn(item)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(limited, items))


def as_labels(labels: Any, n: int | None = None, *, name: str = "labels") -> np.ndarray:
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


def as_embeddings(X: Any, n: int | None = None) -> np.ndarray:
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


def as_probs(probs: Any, n: int) -> np.ndarray:
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
        raise DataError("Each row of probs must sum to 1; pass softmax/predict_proba outputs (e.g. from out_of_fold_probs).")
    return P


def check_labels_fit(y: np.ndarray, K: int, what: str = "probs") -> None:
    if y.size and y.max() >= K:
        raise DataError(
            f"labels contain class {int(y.max())} but {what} has only {K} classes; "
            f"pass {what} with one column per class (K >= {int(y.max()) + 1})."
        )


def normalise_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0  # zero vectors stay zero: cosine similarity 0 to everything
    return (X / norms).astype(np.float32, copy=False)


def round_preserving_total(values: np.ndarray, total: int) -> np.ndarray:
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
