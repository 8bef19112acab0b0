"""Checkpoints: a run's ``best.pt`` and ``last.pt`` (state dicts, written atomically, loaded with
``torch.load(weights_only=True)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.atomic import atomic_write
from core.store.artifacts import RunFiles


def save_checkpoint(path: Path, net: nn.Module, **meta: Any) -> None:
    """``{"model": state_dict on the CPU, **meta}`` at ``path`` (meta: step, epoch, metric, classes, config, arch)."""
    sd = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
    payload = {"model": sd, **meta}
    atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(run_id: int, which: str = "best", *, home: str | Path | None = None) -> dict[str, Any]:
    """``best.pt`` or ``last.pt`` of a run: ``{"model": state_dict, "step", "epoch", "classes",
    "config", "arch", "metric"}``."""
    path = RunFiles(run_id, home=home).checkpoint_path(which)
    return torch.load(path, map_location="cpu", weights_only=True)
