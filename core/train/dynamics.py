"""Training dynamics, for free: what each train item's forward passes said, epoch by epoch.

Every training step already computes the logits of its batch; ``Dynamics.record`` reads them
(no extra forward pass) and keeps, per train item, the sums of its given label's probability, of
"right" (the argmax is the given label) and of EL2N (the L2 norm of softmax − one-hot, Paul et
al. 2021) over its presentations, and counts *forgetting events* (right at one presentation, wrong
at the next; Toneva et al. 2019). ``end_epoch`` turns the sums into the epoch's means. Written at
the end of training as ``dynamics.npz`` in the run's folder (``RunFiles.write_dynamics``):

- ``rows`` (n,) dataset rows of the train items;
- ``p_given``, ``right``, ``el2n`` (epochs, n) float16: per epoch, the mean over the item's
  presentations (NaN in an epoch that did not draw it);
- ``forgetting`` (n,) int32 and ``presentations`` (n,) int32.

The forward passes are the training ones — with dropout and augmentation on, so they are a little
noisier than a separate pass over the train split, and cost nothing. Batches with soft targets
(mixup, cutmix) are not recorded; a distributed (torchrun) run records nothing.
``core.select`` turns these into data maps and selection scores.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F


class Dynamics:
    """Per-position sums on the training device, turned into epoch means on the host.

    One ``(6, n)`` buffer holds, per position, the epoch's sums of the given label's probability,
    of "right", of EL2N and of presentations (rows 0–3, reset each epoch), and the run's
    presentations and forgetting events (rows 4–5, kept): a window of batches adds to it with one
    ``index_add_`` along its long side (4–5× faster on the CPU than along the short one) — on a
    small model's step the record's cost is its number of kernel launches."""

    EPOCH_ROWS = 4
    WINDOW = 32  # batches kept before they are read together: a small model's step pays for its launches once per window

    def __init__(self, n: int, device: torch.device) -> None:
        self.sums = torch.zeros((6, n), dtype=torch.float32, device=device)
        self.last = torch.full((n,), -1, dtype=torch.int8, device=device)
        self.epochs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    @property
    def count(self) -> torch.Tensor:
        """Presentations of each position in the epoch so far."""
        self.flush()
        return self.sums[3]

    @torch.no_grad()
    def record(self, rows: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """One batch: ``rows`` its local positions, ``logits`` (B, K), ``y`` the given classes (B,).
        Kept (detached) until ``WINDOW`` batches are waiting, then read together (``flush``)."""
        if y.is_floating_point() or logits.ndim != 2 or len(rows) != len(y):
            return
        self._pending.append((rows, logits.detach(), y))
        if len(self._pending) >= self.WINDOW:
            self.flush()

    @torch.no_grad()
    def flush(self) -> None:
        """Read the waiting batches, in runs of batches where no position repeats an earlier batch's
        — the whole window in the usual epoch — since a forgetting event compares a position with
        its last presentation."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        for run in _runs_without_repeats([r for r, _, _ in pending]):
            part = pending[run]
            self._read(torch.cat([r for r, _, _ in part]), torch.cat([z.float() for _, z, _ in part]), torch.cat([y for _, _, y in part]))

    def _read(self, rows: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        p = F.log_softmax(logits.detach().float(), dim=1).exp_()  # on the CPU twice as fast as softmax for a few classes
        p_given = p.gather(1, y[:, None])[:, 0]
        right = p.argmax(dim=1) == y
        # ‖p − onehot(y)‖² = Σ p² − 2 p_y + 1, without building the one-hot rows
        el2n = ((p * p).sum(dim=1) - 2 * p_given + 1).clamp(min=0).sqrt()
        forgot = (self.last.index_select(0, rows) == 1) & ~right
        one = torch.ones_like(p_given)
        self.sums.index_add_(1, rows, torch.stack([p_given, right.float(), el2n, one, one, forgot.float()]))
        self.last.index_copy_(0, rows, right.to(torch.int8))

    def end_epoch(self) -> None:
        """The epoch's means per position (NaN where the epoch drew nothing); the sums start again."""
        self.flush()
        epoch = self.sums[: self.EPOCH_ROWS]
        n = epoch[3:4].clamp(min=1)
        means = torch.where(epoch[3:4] == 0, torch.nan, epoch[:3] / n).cpu().numpy().astype(np.float16)
        self.epochs.append((means[0].copy(), means[1].copy(), means[2].copy()))
        epoch.zero_()

    def arrays(self, positions: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        """What ``dynamics.npz`` holds for local ``positions`` (the train items), named by dataset ``rows``."""
        self.flush()
        stack = lambda i: np.stack([e[i][positions] for e in self.epochs]) if self.epochs else np.zeros((0, len(positions)), np.float16)
        return {
            "rows": np.asarray(rows, dtype=np.int64),
            "p_given": stack(0),
            "right": stack(1),
            "el2n": stack(2),
            "forgetting": self.sums[5].cpu().numpy()[positions].round().astype(np.int32),
            "presentations": self.sums[4].cpu().numpy()[positions].round().astype(np.int32),
        }


def _runs_without_repeats(batches: list[torch.Tensor]) -> list[slice]:
    """Consecutive runs of ``batches`` (each a tensor of positions) that can be read as one: a new
    run starts at every batch holding a position that an earlier batch of the window holds."""
    if len(batches) <= 1:
        return [slice(0, len(batches))] if batches else []
    rows = torch.cat(batches)
    if int(torch.bincount(rows).max()) <= 1:  # the usual epoch: the whole window at once
        return [slice(0, len(batches))]
    batch = torch.repeat_interleave(
        torch.arange(len(batches), device=rows.device), torch.tensor([len(b) for b in batches], device=rows.device)
    )
    order = torch.argsort(rows, stable=True)
    r, b = rows[order], batch[order]
    again = (r[1:] == r[:-1]) & (b[1:] != b[:-1])  # a later presentation, in a later batch, of the same position
    cuts = sorted(set(b[1:][again].tolist()))
    bounds = [0, *cuts, len(batches)]
    return [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]
