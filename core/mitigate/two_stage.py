"""Classifier re-training (cRT; Kang et al. 2020, "Decoupling representation and classifier"): the
second stage of two-stage training. The first stage learns the features with every item drawn
once per epoch; at the second stage's first epoch (``core.mitigate.sampler.second_stage``) the
classifier head — the network's last linear layer — is re-initialised, every other weight is frozen
(and kept in eval mode, so batch-norm statistics stay), the head's optimizer state is cleared, and
the head alone trains on the deferred sampler's draws (class-balanced in the paper).

The learning-rate schedule runs on over both stages, as one run; the paper restarts it for the
classifier. Not for token runs (their head reads words, not items) nor for a linear probe (which is a
head alone: deferred re-sampling without cRT is the same thing there).
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import nn

__all__ = ["HeadRetrain", "NoStage", "Stage", "classifier_head"]


class Stage(Protocol):
    active: bool  # whether it will change the network mid-run

    def begin_epoch(self, epoch: int, built: Any, optimizer: Any) -> None: ...


class NoStage:
    """One stage: nothing changes mid-run (every run without cRT)."""

    active = False

    def begin_epoch(self, epoch: int, built: Any, optimizer: Any) -> None:
        return None


def classifier_head(net: nn.Module) -> nn.Linear:
    """The network's classifier: its last ``nn.Linear`` module in registration order."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("classifier re-training needs a network whose classifier is a linear layer; this one has none.")
    return linears[-1]


class HeadRetrain:
    """At epoch ``start`` (0-based): re-initialise the head, freeze the rest, clear the head's
    optimizer state. ``begin_epoch`` is called by the loop as every epoch starts."""

    active = True

    def __init__(self, start: int) -> None:
        self.start = start
        self.done = False

    def begin_epoch(self, epoch: int, built: Any, optimizer: Any) -> None:
        if epoch != self.start or self.done:
            return
        net = built.net
        head = classifier_head(net)
        for p in net.parameters():
            p.requires_grad_(False)
        head.reset_parameters()
        for p in head.parameters():
            p.requires_grad_(True)
            optimizer.state.pop(p, None)
        built.frozen.append(net)  # eval mode for the frozen features; a linear head has no train-mode behaviour
        built.train_mode()  # from this step on
        self.done = True
