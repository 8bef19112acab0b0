"""Near-duplicates and exact copies, clustered, with train/val/test leaks flagged."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.data.dataset import SPLITS
from core.diagnose.arrays import as_embeddings, as_labels, normalise_rows
from core.diagnose.knn import chunk_rows
from core.errors import DataError


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
    hashes: Sequence[Any] | np.ndarray | None = None,
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
    A = as_embeddings(X)
    n = A.shape[0]
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise DataError(f"threshold must be in (0, 1] (a cosine similarity) or None, got {threshold}.")
    sp = None
    if split is not None:
        sp = as_labels(split, n, name="split")
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
        B = normalise_rows(A)
        step = chunk_rows(n)
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
    for a, b in itertools.pairwise(bounds):
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
