"""The optimiser and the learning-rate schedule: AdamW with linear warm-up and cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(
    net: nn.Module, *, lr: float, weight_decay: float, warmup_ratio: float, total_steps: Callable[[], int], device: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, list[nn.Parameter]]:
    """(AdamW, its schedule, the trainable parameters). Biases and norms get no weight decay; on
    CUDA the fused kernel, elsewhere the foreach one. ``total_steps`` is read at every step, so the
    cosine decay follows a run whose train split grows (pseudo-labelling); the warm-up length is
    fixed at the start."""
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    cuda = device.type == "cuda"
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=True if cuda else None, foreach=None if cuda else True)
    warmup = round(warmup_ratio * total_steps())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps(), warmup))
    return opt, sched, params
