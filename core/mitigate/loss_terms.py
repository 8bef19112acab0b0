"""The per-class numbers a criterion takes from the train split's class counts n_c: class weights,
logit offsets and LDAM margins; and focal's modulating factor. NumPy only: the criterion
(``core.mitigate.criterion``) turns them into tensors, and the Train page previews the very same
numbers without importing torch.

==================  ===========================================================================
term                per class c, counts n_c, priors π_c = n_c / n (an empty class counts as 1)
==================  ===========================================================================
weight, inverse     ∝ 1 / n_c, scaled to sum to K; 0 for an empty class
weight, effective   ∝ (1 − β) / (1 − β^n_c) (Cui et al. 2019), scaled to sum to K
offset, logit adj.  τ · log π_c, added to the logits while training (Menon et al. 2021)
offset, bal. soft.  log n_c, added to the logits while training (Ren et al. 2020)
margin, LDAM        ∝ n_c^(−1/4), the smallest class's = max_margin (Cao et al. 2019)
focal factor        (1 − p)^γ multiplies an item's cross-entropy, p its label's probability
==================  ===========================================================================
"""

from __future__ import annotations

import numpy as np

from core.mitigate.settings import LossSettings


def class_weights(counts: np.ndarray, scheme: str, *, beta: float = 0.999) -> np.ndarray:
    """Per-class weights (K,) summing to K; a class with no item gets weight 0."""
    n = np.asarray(counts, dtype=np.float64)
    present = n > 0
    if scheme == "none":
        return np.where(present, 1.0, 0.0) * len(n) / max(int(present.sum()), 1)
    if scheme == "inverse":
        raw = np.where(present, 1.0 / np.maximum(n, 1.0), 0.0)
    elif scheme == "effective_number":
        effective = (1.0 - np.power(beta, n)) / (1.0 - beta)
        raw = np.where(present, 1.0 / np.maximum(effective, 1e-12), 0.0)
    else:
        raise ValueError(f"unknown class weighting {scheme!r}")
    return raw / raw.sum() * len(n)


def ldam_margins(counts: np.ndarray, max_margin: float) -> np.ndarray:
    """m_c ∝ n_c^(−1/4), the smallest class getting ``max_margin`` (Cao et al. 2019)."""
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    m = 1.0 / np.sqrt(np.sqrt(n))
    return m * (max_margin / m.max())


def logit_offsets(settings: LossSettings, counts: np.ndarray) -> np.ndarray | None:
    """What the loss adds to each class's logit while training (K,), or None when it adds nothing:
    τ·log π for ``logit_adjusted``, log n for ``balanced_softmax``."""
    n = np.asarray(counts, dtype=np.float64)
    if settings.name == "logit_adjusted":
        return settings.tau * np.log(np.maximum(n, 1.0) / max(n.sum(), 1.0))
    if settings.name == "balanced_softmax":
        return np.log(np.maximum(n, 1.0))
    return None


def focal_factor(p: np.ndarray | float, gamma: float) -> np.ndarray:
    """(1 − p)^γ: the share of its cross-entropy an item keeps under focal loss, ``p`` being the
    probability the model gives its label."""
    return np.power(1.0 - np.asarray(p, dtype=np.float64), gamma)
