"""Criteria: the training loss from logits and targets, using the train split's class counts.

Every criterion takes targets as class indices (B,) or as class probabilities (B, K) — an
augmenter such as MixUp makes the latter — and returns the batch's mean loss in float32, whatever
the autocast dtype. ``begin_epoch`` lets a criterion change with training progress (deferred
re-weighting switches class weights on late) and with what the epoch draws: the logit offsets of
``logit_adjusted`` and ``balanced_softmax`` follow the class counts the sampler drew for the epoch
(``drawn``), not the train split's. Both losses stand for the label prior the model is trained
under (Ren et al. 2020 found balanced softmax on top of class-balanced sampling over-balancing);
under a class-balanced sampler that prior is uniform and the offsets cancel, so balanced softmax
followed by deferred class-balanced re-sampling trains on balanced softmax first and on the
balanced draws' plain cross-entropy after. Without a sampler the draws are the train split.

=================  ==========================================================================
loss               per item, with logits z, target y, class counts n_c, priors π_c = n_c / n
=================  ==========================================================================
cross_entropy      −log softmax(z)_y
focal              −(1 − p_y)^γ log p_y  (Lin et al. 2017)
logit_adjusted     cross-entropy of z + τ·log π  (Menon et al. 2021)
balanced_softmax   cross-entropy of z + log n  (Ren et al. 2020)
ldam               cross-entropy of s·(z − m_y·e_y), m_c ∝ n_c^−1/4, max m = max_margin (Cao et al. 2019)
=================  ==========================================================================

Class weights w (``inverse`` ∝ 1/n_c, ``effective_number`` ∝ (1 − β)/(1 − β^n_c), Cui et al.
2019; both scaled to sum to K) multiply each item's loss by w_y; with index targets the batch
mean is weighted (Σ w_y·ℓ / Σ w_y, as ``torch.nn.functional.cross_entropy``). Label smoothing
mixes ε/K into every class of the target. At evaluation the plain logits are used: the shifts and
margins only shape training, which is what makes the learned logits balanced. The per-class
numbers (weights, offsets, margins) come from ``core.mitigate.loss_terms``, which the Train page's
preview reads too.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from core.mitigate.loss_terms import class_weights, ldam_margins, logit_offsets
from core.mitigate.settings import LossSettings

__all__ = ["ClassAwareLoss", "Criterion", "class_weights", "ldam_margins", "make_criterion"]


class Criterion(Protocol):
    def begin_epoch(self, epoch: int, epochs: int, drawn: np.ndarray | None = None) -> None:
        """Called by the loop as each epoch starts (0-based), after the sampler drew the epoch;
        ``drawn`` is the model class of every item drawn (−1: unknown; None: not told)."""
        ...

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch; ``target`` is class indices (B,) or class probabilities (B, K)."""
        ...


class ClassAwareLoss:
    """The cross-entropy family of the table above: a logit transform, class weights (deferred or
    not), label smoothing; focal's modulating factor."""

    def __init__(self, settings: LossSettings, class_counts: np.ndarray) -> None:
        self.settings = settings
        self.counts = np.asarray(class_counts, dtype=np.float64)
        self.k = len(self.counts)
        self._weights = (
            None
            if settings.class_weights == "none"
            else torch.tensor(class_weights(self.counts, settings.class_weights, beta=settings.beta), dtype=torch.float32)
        )
        self.weight: torch.Tensor | None = self._weights if settings.reweight_from == 0 else None
        self.shift = self._offsets(self.counts)
        self.margins = (
            torch.tensor(ldam_margins(self.counts, settings.max_margin), dtype=torch.float32) if settings.name == "ldam" else None
        )

    def _offsets(self, counts: np.ndarray) -> torch.Tensor | None:
        shift = logit_offsets(self.settings, counts)
        return None if shift is None else torch.tensor(shift, dtype=torch.float32)

    def begin_epoch(self, epoch: int, epochs: int, drawn: np.ndarray | None = None) -> None:
        """Deferred re-weighting: class weights apply from epoch ``reweight_from · epochs`` on. The
        logit offsets follow the epoch's drawn class counts (the module's words)."""
        start = math.floor(self.settings.reweight_from * epochs)
        self.weight = self._weights if epoch >= start else None
        if drawn is not None and self.shift is not None:
            labels = np.asarray(drawn, dtype=np.int64)
            self.shift = self._offsets(np.bincount(labels[labels >= 0], minlength=self.k)[: self.k].astype(np.float64))

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        z = logits.float()
        soft = target.dtype.is_floating_point
        q = target.float() if soft else F.one_hot(target, self.k).float()  # (B, K) target distribution
        if self.shift is not None:
            self.shift = self.shift.to(z.device)  # moved once: no copy per step after the first
            z = z + self.shift
        if self.margins is not None:
            self.margins = self.margins.to(z.device)
            z = self.settings.scale * (z - q * self.margins)
        if self.weight is not None:
            self.weight = self.weight.to(z.device)
        weight = self.weight
        eps = self.settings.label_smoothing
        if self.settings.name != "focal":
            return F.cross_entropy(z, target, weight=weight, label_smoothing=eps)
        if eps:
            q = q * (1.0 - eps) + eps / self.k
        logp = F.log_softmax(z, dim=1)
        per_class = -q * (1.0 - logp.exp()).pow(self.settings.gamma) * logp  # (B, K)
        if weight is None:
            return per_class.sum(dim=1).mean()
        item = (per_class * weight).sum(dim=1)
        if soft:
            return item.mean()
        return item.sum() / weight[target].sum()  # weighted mean, as F.cross_entropy's


def make_criterion(settings: LossSettings, class_counts: np.ndarray) -> Criterion:
    """The criterion ``settings`` describe; ``class_counts`` (K,) are the train items per model class."""
    return ClassAwareLoss(settings, class_counts)
