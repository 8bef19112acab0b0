"""2-D maps of the embeddings for the Diagnose page: PCA (fast, exact) and t-SNE (slow, local)."""

from __future__ import annotations

import numpy as np


def pca_2d(X: np.ndarray) -> np.ndarray:
    """First two principal components (centred SVD; randomized for big inputs)."""
    from sklearn.decomposition import PCA

    if len(X) < 3:
        return np.zeros((len(X), 2), np.float32)
    solver = "randomized" if len(X) > 5000 else "full"
    return PCA(n_components=2, svd_solver=solver, random_state=0).fit_transform(X).astype(np.float32)


def tsne_2d(X: np.ndarray, index: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """t-SNE of the rows ``index`` (keep it to a few thousand on a CPU), after PCA to 50 dims."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    sub = np.asarray(X[index], dtype=np.float32)
    if sub.shape[1] > 50 and len(sub) > 50:
        sub = PCA(n_components=50, random_state=seed).fit_transform(sub)
    perplexity = float(min(30, max(5, (len(sub) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(sub).astype(np.float32)
