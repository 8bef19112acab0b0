"""Exact cosine k-nearest neighbours in tiles on all cores, and kNN label agreement.

n = 60,000 × d = 384 never allocates an n × n matrix; the same graph serves label agreement,
outliers (``core.diagnose.outliers``) and, reused by the pipeline, the Diagnose page.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.diagnose.arrays import as_embeddings, as_labels, check_labels_fit, n_workers, normalise_rows, run_threads
from core.errors import DataError

CHUNK_ELEMENTS = 1 << 23  # ~8M float32 (32 MiB) per similarity block
# the kNN's row blocks below 2 tiles: 8 MiB. On 2 cores 4,196 / 4,946 rows × 96 took 0.035 / 0.043 s
# against 0.042 / 0.056 s in 32 MiB blocks, and 1,797 rows get 2 blocks, one per core, rather than 1
KNN_ROW_BLOCK = 1 << 21


def chunk_rows(n: int, budget: int | None = None) -> int:
    """Rows of an (rows × n) similarity block that fit ``budget`` elements (default ``CHUNK_ELEMENTS``,
    read at call time)."""
    budget = CHUNK_ELEMENTS if budget is None else budget
    return max(1, min(n, budget // max(n, 1)))


# target rows/columns per tile of the symmetric kNN (36 MiB of float32 similarities). On 2 cores
# 3,072 beat 4,096 at every n from 4,000 to 60,000 (96-d, benchmarks/RESULTS.md): 10,000 rows make
# 4 tiles instead of 3: 4 diagonal and 6 off-diagonal blocks, each phase even on 2 threads (0.11 s against 0.17 s)
_TILE = 3072
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
    nt += nt % 2  # an even count shares 2 threads evenly: 8,000 × 96 in 4 tiles 0.073 s, in 3 0.101 s
    bounds = np.linspace(0, n, nt + 1).round().astype(np.int64)  # balanced: no tiny last tile
    cand_s = np.full((n, nt * k), -np.inf, np.float32)
    cand_i = np.zeros((n, nt * k), np.int64)
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
        cand_i[i0:i1, a * k : (a + 1) * k] = pos + i0
        cand_s[i0:i1, a * k : (a + 1) * k] = vals

    run_threads(diagonal, range(nt), workers)
    tau = np.concatenate([cand_s[bounds[a] : bounds[a + 1], a * k : (a + 1) * k].min(axis=1) for a in range(nt)])

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
        cand_i[line0 : line0 + n_lines, slot * k : (slot + 1) * k] = np.where(valid, partner[sel], 0)
        cand_s[line0 : line0 + n_lines, slot * k : (slot + 1) * k] = np.where(valid, vals[sel], -np.inf)

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

    run_threads(off_diagonal, [(a, b) for a in range(nt) for b in range(a + 1, nt)], workers)
    sel = np.argpartition(cand_s, nt * k - k, axis=1)[:, nt * k - k :]
    return np.take_along_axis(cand_i, sel, axis=1), np.take_along_axis(cand_s, sel, axis=1)


def _knn_rows(A: np.ndarray, k: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """kNN by row chunks against all of A (every similarity computed twice); for small n. Each
    block's top k by :func:`_tile_top_k` (on 4,196-4,946 rows × 96: 0.026 / 0.035 s against 0.032 /
    0.038 s for a strided group-maxima filter before ``argpartition``); same similarities, ties
    at the k-th place may pick other items."""
    n = A.shape[0]
    idx_out = np.empty((n, k), np.int64)
    sim_out = np.empty((n, k), np.float32)
    step = chunk_rows(n, KNN_ROW_BLOCK)

    def run(i0: int) -> None:
        i1 = min(n, i0 + step)
        S = A[i0:i1] @ A.T
        rows = np.arange(i1 - i0)
        S[rows, rows + i0] = -np.inf  # exclude self
        if n >= 4 * k:  # 2k ranges of at least 2 entries: each holds a finite similarity
            idx_out[i0:i1], sim_out[i0:i1] = _tile_top_k(S, k, axis=1)
        else:
            part = np.argpartition(S, n - k, axis=1)[:, n - k :]
            idx_out[i0:i1] = part
            sim_out[i0:i1] = np.take_along_axis(S, part, axis=1)

    run_threads(run, range(0, n, step), workers)
    return idx_out, sim_out


def knn_graph(X: Any, *, k: int = 10, n_jobs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k-nearest neighbours of every row (self excluded), by blocked dot products.

    Rows are L2-normalised and compared block by block, so memory stays O(n·k + threads·block)
    and never holds n × n. From 2 tiles of 3,072 rows on, only the upper triangle of the
    similarity matrix is computed (each tile serves both its rows and its columns, see
    :func:`_knn_tiles`), halving the dot products; blocks run on ``n_jobs`` threads, each with a
    single-threaded BLAS. Measured on a 2-core machine (otherwise idle, 96-d rows): 8,000 in
    ~0.08 s, 23,320 in ~0.5 s, 60,000 in ~3.4 s, 2-2.5x faster than one thread over full rows.
    The dot products are most of it, so reduce the dimension first (e.g. with :func:`pca_reduce`).

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
    A = normalise_rows(as_embeddings(X))
    n = A.shape[0]
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}.")
    workers = n_workers(n_jobs)
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
    X: Any, labels: Any, *, k: int = 10, n_classes: int | None = None, neighbors: Any = None, weights: Any = None
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
    weights : array-like of shape (n,), optional
        Positive weight of each item's vote when it is a neighbour (the label-issue detector's
        second pass: how likely its label is right); default 1 each.

    Returns
    -------
    agreement : ndarray of shape (n,)
        (Weighted) share of the k neighbours (self excluded) with the same label.
    votes : ndarray of shape (n, K)
        Neighbour-vote class distribution, each vote counted with its weight (rows sum to 1).
    """
    y = as_labels(labels)
    K = int(n_classes) if n_classes is not None else int(y.max()) + 1
    check_labels_fit(y, K, "n_classes")
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
    if weights is None:
        votes = np.bincount(flat, minlength=n * K).reshape(n, K) / kk
        return (nl == y[:, None]).mean(axis=1), votes
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or (w <= 0).any():
        raise DataError(f"weights must hold one positive, finite weight per item, shape ({n},); got shape {w.shape}.")
    mass = np.bincount(flat, weights=w[nb].ravel(), minlength=n * K).reshape(n, K)
    weighted = mass / mass.sum(axis=1, keepdims=True)
    return weighted[np.arange(n), y], weighted
