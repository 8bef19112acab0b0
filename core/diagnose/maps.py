"""2-D maps of the embeddings for the Diagnose page: PCA (fast, exact) and t-SNE (slow, local); which
items a map draws, their colours and hover lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.data.dataset import SPLITS, Dataset

if TYPE_CHECKING:
    from core.diagnose.label_issues import LabelIssues


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


# ---------------------------------------------------------------------- what the Diagnose page's map draws

MAP_LIMITS = {"PCA": 20_000, "t-SNE": 2_000}  # items a projection draws at most (a seeded sample above)
MAP_COLOURS = ["label", "label quality", "flagged", "split"]  # then meta columns of at most MAX_COLOUR_VALUES values
MAX_COLOUR_VALUES = 20


def projection_labels(n_items: int) -> dict[str, str]:
    """Each projection with what it draws: 'PCA (all 1,798 items)', 't-SNE (2,000 sampled)'."""
    return {m: f"{m} ({f'all {n_items:,} items' if n_items <= limit else f'{limit:,} sampled'})" for m, limit in MAP_LIMITS.items()}


def map_rows(n_items: int, method: str, *, seed: int = 0) -> np.ndarray:
    """The rows ``method`` draws: all of them, or a seeded sample of its limit, in row order."""
    limit = MAP_LIMITS[method]
    if n_items <= limit:
        return np.arange(n_items)
    return np.sort(np.random.default_rng(seed).choice(n_items, limit, replace=False))


def colour_options(ds: Dataset) -> list[str]:
    """What the map can colour by: ``MAP_COLOURS`` and the meta columns with few values."""
    return MAP_COLOURS + [c for c in ds.meta.columns if ds.meta[c].nunique() <= MAX_COLOUR_VALUES]


def map_colours(ds: Dataset, issues: LabelIssues, index: np.ndarray, colour_by: str) -> tuple[np.ndarray, bool]:
    """(a colour value per row of ``index``, whether the values are continuous)."""
    if colour_by == "label":
        return ds.label_names(index), False
    if colour_by == "label quality":
        return issues.score[index], True
    if colour_by == "flagged":
        return np.where(issues.is_issue[index], "suspect", "ok"), False
    if colour_by == "split":
        return np.asarray(SPLITS, dtype=object)[ds.split[index]], False
    return ds.meta[colour_by].astype(str).to_numpy()[index], False


def map_hover(ds: Dataset, issues: LabelIssues, index: np.ndarray) -> list[str]:
    """The line shown over each point: the item's number and label, then its text (text data) or
    its label quality."""
    ids = ds.item_ids()
    if ds.modality == "text":
        return [f"#{ids[i]} {ds.label_name(i)}: {str(ds.items[i])[:80]}" for i in index]
    return [f"#{ids[i]} {ds.label_name(i)} (quality {issues.score[i]:.2f})" for i in index]
