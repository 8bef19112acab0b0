"""The machine Gapscope runs on: usable CPU cores and the compute device (CUDA, then MPS, then CPU).

Importing this module does not import torch: the app shows pages before torch has loaded, and
``usable_cores`` is needed by numpy-only code (the kNN graph, the probe's folds).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")  # what a config may name; also "cuda:N"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; all cores where that is unknown)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda" | "mps" | "cpu"
    name: str  # "NVIDIA H100 80GB HBM3" or "CPU"
    memory_gb: float | None  # GPU memory; None on the CPU
    cpu_cores: int
    gpus: int = 0  # CUDA GPUs visible (a run can use several: RunConfig.processes)

    @property
    def label(self) -> str:
        if self.kind == "cpu":
            return f"CPU · {self.cpu_cores} cores"
        mem = f" · {self.memory_gb:.0f} GB" if self.memory_gb else ""
        return f"{self.name}{mem}"


def detect(override: str | None = None) -> DeviceInfo:
    """Pick the best device, or the one named by ``override`` ("cpu", "cuda", "cuda:1", "mps")."""
    import torch  # imported here: the app shows pages before torch has finished loading

    cores = usable_cores()
    want = (override or "auto").lower()
    if want.startswith("cuda") or (want == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; choose 'auto' or 'cpu'.")
        index = int(want.split(":")[1]) if ":" in want else 0
        props = torch.cuda.get_device_properties(index)
        return DeviceInfo("cuda", props.name, props.total_memory / 1024**3, cores, torch.cuda.device_count())
    mps = getattr(torch.backends, "mps", None)
    if want == "mps" or (want == "auto" and mps is not None and mps.is_available()):
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' was asked for but Apple MPS is not available; choose 'auto' or 'cpu'.")
        return DeviceInfo("mps", "Apple GPU (MPS)", None, cores)
    if want not in ("auto", "cpu"):
        raise ValueError(f"unknown device {override!r}; use auto, cpu, cuda, cuda:N or mps.")
    return DeviceInfo("cpu", "CPU", None, cores)


def torch_device(name: str = "auto") -> torch.device:
    """The ``torch.device`` for a config's device name ("auto" resolves with ``detect``)."""
    import torch

    kind = detect(None if name == "auto" else name).kind
    if kind == "cuda" and str(name).startswith("cuda:"):
        return torch.device(str(name))
    return torch.device(kind)


_THREADS_LOCK = threading.Lock()


def limit_torch_threads() -> None:
    """Keep torch's default intra-op thread count, but never above the cores this process may use.

    On the CPU the kernels Gapscope uses are deterministic for a fixed thread count, so this also
    keeps seeded runs repeatable on machines whose affinity mask is narrower than ``cpu_count``.
    """
    import torch

    with _THREADS_LOCK:
        if torch.get_num_threads() > usable_cores():
            torch.set_num_threads(usable_cores())


def autocast(device: torch.device) -> Any:
    """bf16 autocast on CUDA (fp16 where bf16 is unsupported); a no-op context elsewhere."""
    import torch

    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)
