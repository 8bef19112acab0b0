"""Label spreading: labels for the unlabelled pool from the labelled train items' neighbours.

``spread_labels`` runs scikit-learn's ``LabelSpreading`` (Zhou et al. 2004) with a kNN kernel on the
embeddings (reduced to their leading principal components: the graph's cost is in the dimension)
and keeps the pool items whose spread label distribution is confident enough. Torch-free.
Pseudo-labelling, which needs the model, is ``core.train.pseudo_labels``.
"""

from __future__ import annotations

import numpy as np


def spread_labels(
    X_train: np.ndarray, y_train: np.ndarray, X_pool: np.ndarray, *, k: int = 7, threshold: float = 0.9, components: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chosen pool rows, their labels, every pool row's confidence).

    ``y_train`` are class indices; a pool row is chosen when the largest entry of its spread label
    distribution is at least ``threshold``.
    """
    from sklearn.semi_supervised import LabelSpreading

    from core.diagnose.probe import pca_reduce

    if len(X_pool) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    X = np.vstack([np.asarray(X_train, np.float32), np.asarray(X_pool, np.float32)])
    Z = pca_reduce(X, min(components, X.shape[1]), seed=seed)
    y = np.r_[np.asarray(y_train, np.int64), np.full(len(X_pool), -1, np.int64)]
    model = LabelSpreading(kernel="knn", n_neighbors=min(k, len(X) - 1), alpha=0.2, max_iter=100)
    model.fit(Z, y)
    dist = model.label_distributions_[len(X_train) :]
    conf = dist.max(axis=1)
    conf = np.where(np.isfinite(conf), conf, 0.0)
    labels = model.classes_[dist.argmax(axis=1)]
    chosen = np.flatnonzero(conf >= threshold)
    return chosen, labels[chosen].astype(np.int64), conf
