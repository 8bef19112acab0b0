"""Pseudo-labelling (self-training): at chosen epoch ends the model labels the unlabelled pool, and
the items it is sure of train with those labels from then on.

The rounds fall at evenly spaced epoch ends (with 3 epochs and 1 round: after the second), never
after the last. Each round replaces the previous round's pseudo-labels, so an item the model has
grown unsure of leaves train again. The train split grows, so the run's step count and its
learning-rate schedule are updated to match.
"""

from __future__ import annotations

import numpy as np

from core.train.events import Callback, Control, State
from core.train.loop import Job
from core.train.sink import RunSink


def round_epochs(epochs: int, rounds: int) -> list[int]:
    """0-based indices of the epochs after which the pool is labelled."""
    ends = sorted({round(epochs * r / (rounds + 1)) for r in range(1, rounds + 1)})
    return [e - 1 for e in ends if 1 <= e < epochs]


class PseudoLabeller(Callback):
    def __init__(self, job: Job, *, threshold: float, rounds: int, sink: RunSink | None = None) -> None:
        self.job, self.threshold, self.sink = job, threshold, sink
        self.after = set(round_epochs(job.cfg.epochs, rounds))
        self.labelled_train = job.data.train.copy()
        self.history: list[tuple[int, int]] = []  # (step, pool items that joined train)

    def on_epoch_end(self, state: State, control: Control) -> None:
        if state.epoch_index not in self.after or not len(self.job.data.pool):
            return
        from core.train.evaluate import predict

        job, data = self.job, self.job.data
        logits = predict(job, data.pool)
        job.built.train_mode()
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        sure = probs.max(axis=1) >= self.threshold
        data.y[data.pool] = -1
        data.y[data.pool[sure]] = probs.argmax(axis=1)[sure]
        data.train = np.r_[self.labelled_train, data.pool[sure]]  # in place: the loop draws from it next epoch
        left = job.cfg.epochs - state.epoch_index - 1
        first = job.inputs.epoch(data.train)
        per_epoch = len(first.batches(job.cfg.batch_size, np.random.default_rng(0), drop_last=job.speed.fixed_shapes))
        state.total_steps = state.step + left * per_epoch
        state.steps_per_epoch = per_epoch
        self.history.append((state.step, int(sure.sum())))
        if self.sink is not None:
            self.sink.add_metrics(state.step, "train", {"pseudo_labelled": float(sure.sum())}, epoch=state.epoch)
        print(
            f"pseudo-labelling after epoch {state.epoch_index + 1}: {int(sure.sum()):,} of {len(data.pool):,} pool items "
            f"join train (confidence ≥ {self.threshold:g})",
            flush=True,
        )
