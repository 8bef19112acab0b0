"""Importance weights: train the next run as if the train data came from the target.

- ``covariate_weights``: ``w(x) = p(target | x) / p(reference | x) · n_ref / n_target`` from a
  logistic regression fitted on the reference and the target (importance weighting for covariate
  shift, Sugiyama et al. 2007; the classifier trick of Bickel et al. 2009), clipped to
  ``CLIP`` and normalised to mean 1 over the weighted items.
- ``label_weights``: each item weighted by its class's BBSE weight ``q(y) / p(y)`` (label shift,
  Lipton et al. 2018), normalised the same way.
- ``weighted_version``: a new version of the dataset whose ``importance_weight`` meta column holds
  the weights of its train rows (1 elsewhere); a run on it with the ``importance`` sampler draws
  train items in proportion to them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import DataError

if TYPE_CHECKING:
    from core.store import Store

__all__ = ["CLIP", "WEIGHT_COLUMN", "covariate_weights", "label_weights", "weighted_version"]

WEIGHT_COLUMN = "importance_weight"
CLIP = (0.1, 10.0)  # weights beyond these would let a handful of items decide an epoch
MAX_FIT = 5000  # rows per side the weighting classifier is fitted on


def _normalised(w: np.ndarray, clip: tuple[float, float]) -> np.ndarray:
    w = np.clip(np.asarray(w, dtype=np.float64), *clip)
    return w / w.mean()


def covariate_weights(reference: Any, target: Any, items: Any, *, seed: int = 0, clip: tuple[float, float] = CLIP) -> np.ndarray:
    """Weights (n_items,) of ``items`` (rows in the reference's feature space) for the target."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from core.shift.detect import DC_COMPONENTS, MIN_ITEMS, PCA_ABOVE

    ref, tgt, x = (np.asarray(a, dtype=np.float64) for a in (reference, target, items))
    if min(len(ref), len(tgt)) < MIN_ITEMS:
        raise DataError(f"weights need at least {MIN_ITEMS} reference and target items; got {len(ref)} and {len(tgt)}.")
    if not (ref.shape[1] == tgt.shape[1] == x.shape[1]):
        raise DataError("the reference, the target and the items to weigh must have the same features; embed them with one model.")
    rng = np.random.default_rng(seed)
    ref = ref[rng.choice(len(ref), MAX_FIT, replace=False)] if len(ref) > MAX_FIT else ref
    tgt = tgt[rng.choice(len(tgt), MAX_FIT, replace=False)] if len(tgt) > MAX_FIT else tgt
    steps: list[Any] = [StandardScaler()]
    if ref.shape[1] > PCA_ABOVE:
        steps.append(PCA(DC_COMPONENTS, svd_solver="randomized", random_state=seed))
    model = make_pipeline(*steps, LogisticRegression(C=0.1, max_iter=2000))
    model.fit(np.vstack([ref, tgt]), np.r_[np.zeros(len(ref)), np.ones(len(tgt))])
    p = np.clip(model.predict_proba(x)[:, 1], 1e-6, 1 - 1e-6)
    return _normalised(p / (1 - p) * (len(ref) / len(tgt)), clip)


def label_weights(labels: Any, class_weights: Any, *, clip: tuple[float, float] = CLIP) -> np.ndarray:
    """Weights (n,) of items with model-class ``labels`` from per-class weights (BBSE's ``q/p``)."""
    y, w = np.asarray(labels, dtype=np.int64), np.asarray(class_weights, dtype=np.float64)
    if (y < 0).any() or (y >= len(w)).any():
        raise DataError(f"labels must be model classes 0..{len(w) - 1} to take a class weight.")
    return _normalised(w[y], clip)


def weighted_version(
    store: Store, version_id: int, train_weights: Any, *, note: str, params: dict | None = None, source: str | None = None
) -> int:
    """A new version of ``version_id`` whose ``importance_weight`` column holds ``train_weights``
    on its train rows (in order) and 1 elsewhere; returns its id."""
    info, ds = store.version(version_id), store.load_dataset(version_id)
    train = np.flatnonzero(ds.split == 0)
    w = np.asarray(train_weights, dtype=np.float64)
    if w.shape != (len(train),) or not np.isfinite(w).all() or (w < 0).any():
        raise DataError(f"give one finite, non-negative weight per train row ({len(train):,}); got shape {w.shape}.")
    meta = ds.meta.copy()
    column = np.ones(len(ds))
    column[train] = w
    meta[WEIGHT_COLUMN] = column
    out = dataclasses.replace(ds, meta=meta)
    return store.save_dataset(
        out,
        source=source or f"shift:{version_id}",
        dataset_id=info.dataset_id,
        parent_id=version_id,
        kind="weighted",
        note=note,
        params=params or {},
    )
