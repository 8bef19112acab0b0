"""The compute device Gapscope trains on: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda" | "mps" | "cpu"
    name: str  # "NVIDIA H100 80GB HBM3" or "CPU"
    memory_gb: float | None  # GPU memory; None on the CPU
    cpu_cores: int

    @property
    def label(self) -> str:
        if self.kind == "cpu":
            return f"CPU · {self.cpu_cores} cores"
        mem = f" · {self.memory_gb:.0f} GB" if self.memory_gb else ""
        return f"{self.name}{mem}"


def detect(override: str | None = None) -> DeviceInfo:
    """Pick the best device, or the one named by ``override`` ("cpu", "cuda", "cuda:1", "mps")."""
    import torch  # imported here: the app shows pages before torch has finished loading

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    want = (override or "auto").lower()
    if want.startswith("cuda") or (want == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; choose 'auto' or 'cpu'.")
        index = int(want.split(":")[1]) if ":" in want else 0
        props = torch.cuda.get_device_properties(index)
        return DeviceInfo("cuda", props.name, props.total_memory / 1024**3, cores)
    if want == "mps" or (want == "auto" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but Apple MPS is not available; choose 'auto' or 'cpu'.")
        return DeviceInfo("mps", "Apple GPU (MPS)", None, cores)
    if want not in ("auto", "cpu"):
        raise ValueError(f"unknown device {override!r}; use auto, cpu, cuda, cuda:N or mps.")
    return DeviceInfo("cpu", "CPU", None, cores)
