"""FGSM and PGD under an L∞ budget (Goodfellow et al. 2015; Madry et al. 2018), and the
adversarial-training seam.

Both maximise the cross-entropy of ``forward(x)`` against ``y`` within ``|x' − x|∞ ≤ eps``, kept in
``[lo, hi]`` (pixels in [0, 1]; no bounds for table columns). ``eps``, ``lo`` and ``hi`` may be
tensors that broadcast against ``x`` (per channel in a normalised space); ``mask`` (broadcasting
too) keeps parts of the input fixed (a table's one-hot columns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Bound = float | torch.Tensor | None


def _loss(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = forward(x).float()
    if y.dtype.is_floating_point:  # class probabilities (MixUp / CutMix targets)
        return -(y * F.log_softmax(logits, dim=1)).sum()
    return F.cross_entropy(logits, y, reduction="sum")


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: Any, lo: Bound, hi: Bound, mask: Any) -> torch.Tensor:
    delta = torch.maximum(torch.minimum(x_adv - x, eps * torch.ones_like(x)), -eps * torch.ones_like(x))
    if mask is not None:
        delta = delta * mask
    out = x + delta
    if lo is not None or hi is not None:
        out = torch.clamp(out, min=lo, max=hi)  # type: ignore[arg-type]
    return out


def _grad(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(_loss(forward, x, y), x)
    return g


def fgsm(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: Any, *,
         lo: Bound = 0.0, hi: Bound = 1.0, mask: Any = None) -> torch.Tensor:  # fmt: skip
    """One step of size ``eps`` along the sign of the loss gradient."""
    return _project(x + eps * _grad(forward, x, y).sign(), x, eps, lo, hi, mask).detach()


def pgd(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: Any, *, steps: int = 10,
        step_size: Any = None, lo: Bound = 0.0, hi: Bound = 1.0, mask: Any = None, random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """``steps`` signed-gradient steps of ``step_size`` (default 2.5 · eps / steps), each projected
    back into the ε-ball and the bounds, from a uniform random start in the ball."""
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    x0 = x.detach()
    if random_start:
        noise = torch.rand(x0.shape, generator=generator, device="cpu").to(x0.device, x0.dtype) * 2 - 1
        x_adv = _project(x0 + noise * eps, x0, eps, lo, hi, mask)
    else:
        x_adv = x0.clone()
    for _ in range(steps):
        x_adv = _project(x_adv + alpha * _grad(forward, x_adv, y).sign(), x0, eps, lo, hi, mask).detach()
    return x_adv


@dataclass
class Adversary:
    """The adversarial-training seam: a batch as the model reads it → its adversarial version.

    ``method`` "fgsm" is FGSM with a random start and step 1.25 ε (Wong et al. 2020, "fast is better
    than free"); "pgd" is PGD-``steps``. Images are attacked in the model's normalised space, so
    ``eps``, ``lo`` and ``hi`` are per channel there (ε / std; the pixel range's image); a table's
    standardised columns take ε in standard deviations, its one-hot columns are kept (``mask``).
    The model is attacked in eval mode (batch-norm statistics untouched) and handed back in train
    mode by ``train_mode``."""

    method: str
    eps: Any
    steps: int = 1
    lo: Bound = None
    hi: Bound = None
    mask: Any = None
    share: float = 1.0  # the share of each batch replaced by its adversarial version (the rest stays clean)
    generator: torch.Generator | None = None

    def __call__(self, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, train_mode: Callable[[], None]) -> torch.Tensor:
        n = round(self.share * len(x))
        if n == 0:
            return x
        net.eval()
        try:
            part, target = x[:n].float(), y[:n]
            if self.method == "fgsm":
                adv = pgd(net, part, target, self.eps, steps=1, step_size=1.25 * self.eps, lo=self.lo, hi=self.hi, mask=self.mask,
                          generator=self.generator)  # fmt: skip
            else:
                adv = pgd(net, part, target, self.eps, steps=self.steps, lo=self.lo, hi=self.hi, mask=self.mask, generator=self.generator)
        finally:
            train_mode()
        return torch.cat([adv.to(x.dtype), x[n:]]) if n < len(x) else adv.to(x.dtype)


def make_adversary(
    settings: Any, *, image: Any = None, n_features: int = 0, n_numeric: int = 0, device: Any = "cpu", seed: int = 0
) -> Adversary:
    """The run's ``Adversary`` from its ``Mitigations.adversarial``: for images the pixel budget and
    range carried into the model's normalised space (``image``: the run's ``ImageSpec``), for a
    table its ``n_numeric`` standardised columns free among ``n_features`` (one-hot columns kept)."""
    eps: Any = float(settings.eps)
    lo: Bound = None
    hi: Bound = None
    mask = None
    if image is not None:
        mean = torch.tensor(image.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        std = torch.tensor(image.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        eps, lo, hi = eps / std, (0.0 - mean) / std, (1.0 - mean) / std
    else:
        mask = torch.zeros(n_features, device=device)
        mask[:n_numeric] = 1.0
    gen = torch.Generator().manual_seed(int(seed))
    return Adversary(settings.method, eps, steps=int(settings.steps), lo=lo, hi=hi, mask=mask, share=float(settings.share), generator=gen)
