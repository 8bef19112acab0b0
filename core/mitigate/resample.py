"""Resampling in feature space with imbalanced-learn: SMOTE and friends make new points between
neighbours, the cleaning methods drop points. For runs whose inputs are vectors — a linear probe on
frozen embeddings, or an MLP on tabular columns — once, before training.

    X_res, y_res, origin = resample_features(X_train, y_train, "smote", k_neighbors=5, targets={3: 500})

``origin`` says where each output row came from: its row in ``X_train``, or -1 for a synthetic
point (imbalanced-learn puts the kept originals first, in their order, for these samplers, and
the synthetic ones after them). Torch-free.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.mitigate.settings import FEATURE_SAMPLERS, OVER_SAMPLERS, UNDER_SAMPLERS


def imblearn_sampler(method: str, *, k_neighbors: int, targets: dict[int, int], seed: int) -> Any:
    """The imbalanced-learn sampler object for ``method`` (a ``FEATURE_SAMPLERS`` name)."""
    from imblearn import combine, over_sampling, under_sampling

    strategy: Any = targets or ("not majority" if method in OVER_SAMPLERS else "not minority" if method in UNDER_SAMPLERS else "auto")
    smote_kw = {"sampling_strategy": strategy, "k_neighbors": k_neighbors, "random_state": seed}
    if method == "smote":
        return over_sampling.SMOTE(**smote_kw)
    if method == "borderline_smote":
        return over_sampling.BorderlineSMOTE(**smote_kw, m_neighbors=max(k_neighbors, 2) * 2)
    if method == "adasyn":
        return over_sampling.ADASYN(sampling_strategy=strategy, n_neighbors=k_neighbors, random_state=seed)
    if method == "svm_smote":
        return over_sampling.SVMSMOTE(**smote_kw, m_neighbors=max(k_neighbors, 2) * 2)
    if method == "near_miss":
        return under_sampling.NearMiss(sampling_strategy=strategy, n_neighbors=k_neighbors)
    if method == "tomek":
        return under_sampling.TomekLinks()
    if method == "enn":
        return under_sampling.EditedNearestNeighbours(n_neighbors=k_neighbors)
    if method == "smote_enn":
        return combine.SMOTEENN(
            smote=over_sampling.SMOTE(k_neighbors=k_neighbors, random_state=seed),
            random_state=seed,
            enn=under_sampling.EditedNearestNeighbours(n_neighbors=k_neighbors),
        )
    if method == "smote_tomek":
        return combine.SMOTETomek(smote=over_sampling.SMOTE(k_neighbors=k_neighbors, random_state=seed), random_state=seed)
    raise ValueError(f"{method!r} is not a feature-space sampler; choose one of {', '.join(FEATURE_SAMPLERS)}")


def resample_features(
    X: np.ndarray, y: np.ndarray, method: str, *, k_neighbors: int = 5, targets: dict[int, int] | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X_res float32, y_res int64, origin int64): the resampled training set (see module doc)."""
    sampler = imblearn_sampler(method, k_neighbors=k_neighbors, targets=targets or {}, seed=seed)
    X = np.ascontiguousarray(X, dtype=np.float32)
    X_res, y_res = sampler.fit_resample(X, np.asarray(y, dtype=np.int64))
    X_res = np.ascontiguousarray(X_res, dtype=np.float32)
    origin = _origin(sampler, len(X), len(X_res))
    return X_res, np.asarray(y_res, dtype=np.int64), origin


def _origin(sampler: Any, n: int, n_res: int) -> np.ndarray:
    """Row of the input each resampled row is, or -1 for a synthetic one."""
    kept = getattr(sampler, "sample_indices_", None)
    if kept is not None:  # under-samplers and cleaners: a subset of the input
        return np.asarray(kept, dtype=np.int64)
    cleaner = getattr(sampler, "enn_", None) or getattr(sampler, "tomek_", None)
    if cleaner is not None:  # SMOTE, then cleaning: indices into SMOTE's output (input rows first)
        idx = np.asarray(cleaner.sample_indices_, dtype=np.int64)
        return np.where(idx < n, idx, -1)
    # over-samplers: the input rows, in order, then the synthetic ones
    return np.r_[np.arange(n, dtype=np.int64), np.full(n_res - n, -1, np.int64)]
