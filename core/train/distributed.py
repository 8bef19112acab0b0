"""One run on several processes of one machine (``torchrun``; one per GPU, or gloo on the CPU).

``RunConfig.processes > 1`` makes the local runner start the worker as

    python -m torch.distributed.run --standalone --nproc_per_node N -m core.train RUN_ID

Every process runs the same loop with the same seed, so each draws the same epoch order and the
same batches; each trains on its share of every batch (``shard``) and DistributedDataParallel
averages the gradients. Decisions that end the loop (a stop request, early stopping) are agreed on
by all processes at every step (``agree``), so none waits for a partner that has left. Evaluation
runs on every process (the weights are the same after each step) and rank 0 alone writes: metric
rows, predictions, checkpoints, the final status — the other ranks write through a ``QuietSink``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: ``rank`` of ``world`` (0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()


def from_env() -> Dist:
    """The ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` torchrun sets (single process without them)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(dist: Dist, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo on the CPU."""
    if dist.active and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, rank=dist.rank, world_size=dist.world)


def close(dist: Dist) -> None:
    if dist.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def shard(pos: np.ndarray, dist: Dist) -> np.ndarray:
    """This rank's share of one batch (every ``world``-th item from ``rank``). A batch smaller
    than the number of processes lends its first item to the ranks that would get none: every
    rank must take part in every step."""
    if not dist.active:
        return pos
    mine = pos[dist.rank :: dist.world]
    return mine if len(mine) else pos[:1]


def agree(flag: bool, dist: Dist, device: torch.device) -> bool:
    """True on every rank when it is True on any (an all-reduce of one number)."""
    if not dist.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


def wrap(net: torch.nn.Module, dist: Dist, device: torch.device) -> torch.nn.Module:
    """The module the loop trains through: DistributedDataParallel over ``net`` when distributed
    (``net`` itself keeps the weights, so evaluation and checkpoints use it unchanged)."""
    if not dist.active:
        return net
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" and device.index is not None else None
    return DistributedDataParallel(net, device_ids=ids)
