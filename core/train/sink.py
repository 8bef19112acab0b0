"""Where a worker sends what it learns about its run: the only way the training code writes.

``RunSink`` is the interface; ``StoreSink`` writes to the local SQLite store and the run's folder.
A worker on another machine (a Ray job) gets a sink that sends the same calls to the app's store,
without opening SQLite itself; nothing else in the worker changes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from core.store.artifacts import RunFiles
from core.store.database import Store
from core.store.status import ACTIVE, RunStatus


class RunSink(Protocol):
    """What a training worker writes, for one run."""

    run_id: int
    files: RunFiles  # the run's folder: checkpoints, evaluation artifacts, config and summary

    def config(self) -> dict[str, object]:
        """The run's stored config."""
        ...

    def claim(self, pid: int, pid_started: float | None) -> RunStatus | None:
        """Mark the run running in this process; None when claimed, else the status that forbids it."""
        ...

    def stop_requested(self) -> bool: ...

    def heartbeat(self) -> bool:
        """Record that the worker lives; return whether a stop was asked for."""
        ...

    def progress(self, message: str, *, progress: float | None = None) -> None:
        """Update the run's message (and progress, 0..1) while it is active."""
        ...

    def add_metrics(self, step: int, split: str, values: Mapping[str, float | None], *, epoch: float | None = None) -> None: ...

    def add_predictions(self, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray) -> None: ...

    def finish(self, status: RunStatus, message: str) -> None:
        """The worker's final word: finished, stopped or failed (only if the run is still active)."""
        ...


class StoreSink:
    """A ``RunSink`` on the local store (``core.store``)."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store, self.run_id = store, int(run_id)
        self.files = RunFiles(run_id, home=store.home)

    def config(self) -> dict[str, object]:
        return dict(self.store.run(self.run_id)["config"])

    def claim(self, pid: int, pid_started: float | None) -> RunStatus | None:
        row = self.store.run(self.run_id)
        ok = self.store.set_run_status(
            self.run_id, RunStatus.RUNNING, only_if=(RunStatus.QUEUED, RunStatus.RUNNING), pid=pid, pid_started=pid_started,
            heartbeat_at=time.time(), started_at=row["started_at"] or time.time(), message="loading data",
        )  # fmt: skip
        return None if ok else RunStatus(self.store.run(self.run_id)["status"])

    def stop_requested(self) -> bool:
        return self.store.stop_requested(self.run_id)

    def heartbeat(self) -> bool:
        return self.store.heartbeat(self.run_id)

    def progress(self, message: str, *, progress: float | None = None) -> None:
        fields: dict[str, object] = {"message": message}
        if progress is not None:
            fields["progress"] = progress
        self.store.set_run_status(self.run_id, None, only_if=ACTIVE, **fields)

    def add_metrics(self, step: int, split: str, values: Mapping[str, float | None], *, epoch: float | None = None) -> None:
        self.store.add_metrics(self.run_id, step, split, values, epoch=epoch)

    def add_predictions(self, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray) -> None:
        self.store.add_predictions(self.run_id, step, split, items, labels, pred, conf)

    def finish(self, status: RunStatus, message: str) -> None:
        now = time.time()
        extra = {"progress": 1.0} if status == RunStatus.FINISHED else {}
        self.store.set_run_status(self.run_id, status, only_if=ACTIVE, message=message[:2000], finished_at=now, heartbeat_at=now, **extra)


def this_process() -> tuple[int, float | None]:
    """(pid, start time) of this process, as runners record it to tell a reused pid apart."""
    from core.runners.processes import process_start_time

    return os.getpid(), process_start_time(os.getpid())
