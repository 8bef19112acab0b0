"""Where a worker sends what it learns about its run: the only way the training code writes.

``RunSink`` is the interface; ``StoreSink`` writes to the local SQLite store and the run's folder.
A worker on another machine (a Ray job) gets a sink that sends the same calls to the app's store,
without opening SQLite itself; nothing else in the worker changes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from core.store.artifacts import Ledger, RunFiles
from core.store.database import Store, StoreBusy
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


T = TypeVar("T")


class StoreSink:
    """A ``RunSink`` on the local store (``core.store``).

    Writes wait out a foreign write lock (``StoreBusy``) for up to ``lock_patience_s``
    (``GAPSCOPE_LOCK_PATIENCE_S``, default 600 s) instead of failing the run. The final status is
    written even on a full disk: it gives back the store's reserve a piece at a time
    (``core.store.space``) until the write fits. Metric and prediction rows are counted in the
    run's ledger (``core.store.artifacts.Ledger``).
    """

    def __init__(self, store: Store, run_id: int, *, lock_patience_s: float | None = None) -> None:
        self.store, self.run_id = store, int(run_id)
        self.files = RunFiles(run_id, home=store.home)
        if lock_patience_s is None:
            lock_patience_s = float(os.environ.get("GAPSCOPE_LOCK_PATIENCE_S", "600"))
        self.lock_patience_s = lock_patience_s
        self._ledger: Ledger | None = None

    def _retry(self, write: Callable[[], T], *, essential: bool = False) -> T:
        deadline = time.monotonic() + self.lock_patience_s
        pause = 0.2
        while True:
            try:
                return self.store.even_if_full(write) if essential else write()
            except StoreBusy as err:
                if time.monotonic() + pause > deadline:
                    raise
                print(f"run {self.run_id}: {err} Retrying.", file=sys.stderr, flush=True)
            time.sleep(pause)
            pause = min(2 * pause, 5.0)

    def config(self) -> dict[str, object]:
        return dict(self.store.run(self.run_id).config)

    def claim(self, pid: int, pid_started: float | None) -> RunStatus | None:
        row = self.store.run(self.run_id)
        ok = self._retry(
            lambda: self.store.set_run_status(
                self.run_id,
                RunStatus.RUNNING,
                only_if=(RunStatus.QUEUED, RunStatus.RUNNING),
                pid=pid,
                pid_started=pid_started,
                heartbeat_at=time.time(),
                started_at=row.started_at or time.time(),
                message="loading data",
            )
        )
        if ok:
            self._ledger = Ledger(self.files)
        return None if ok else self.store.run(self.run_id).stored_status

    def stop_requested(self) -> bool:
        return self.store.stop_requested(self.run_id)

    def heartbeat(self) -> bool:
        return self.store.heartbeat(self.run_id)

    def progress(self, message: str, *, progress: float | None = None) -> None:
        fields: dict[str, object] = {"message": message}
        if progress is not None:
            fields["progress"] = progress
        with contextlib.suppress(StoreBusy):  # a progress line can wait for the next one
            self.store.set_run_status(self.run_id, None, only_if=ACTIVE, **fields)

    def _counted(self, kind: str, n: int, write: Callable[[], object]) -> None:
        ledger = self._ledger
        if ledger is not None:
            ledger.begin(kind, n)
        stored = self._retry(write)  # on an error the pending count stays: the write's outcome is unknown
        if ledger is not None and stored is False:  # a write sent again: its rows were stored already
            ledger.begin(kind, 0)
        elif ledger is not None:
            ledger.commit(kind)

    def add_metrics(
        self, step: int, split: str, values: Mapping[str, float | None], *, epoch: float | None = None, seq: int | None = None
    ) -> None:
        """``seq``: the relay's number of this write (``core.runners.ray``), so a write sent
        twice is stored once (``Store.add_metrics``)."""
        self._counted("metrics", len(values), lambda: self.store.add_metrics(self.run_id, step, split, values, epoch=epoch, seq=seq))

    def add_predictions(self, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray) -> None:
        self._counted("predictions", len(items), lambda: self.store.add_predictions(self.run_id, step, split, items, labels, pred, conf))

    def finish(self, status: RunStatus, message: str) -> None:
        now = time.time()
        extra = {"progress": 1.0} if status == RunStatus.FINISHED else {}
        self._retry(
            lambda: self.store.set_run_status(
                self.run_id, status, only_if=ACTIVE, message=message[:2000], finished_at=now, heartbeat_at=now, **extra
            ),
            essential=True,
        )
        if self._ledger is not None:
            self._ledger.close()


class QuietSink:
    """The ``RunSink`` of a run's process other than rank 0 (under torchrun, or a child rank on a
    Ray node: ``core.runners.ranks``): it reads the run's config and its stop flag through the
    callables it is given and writes nothing (rank 0 writes for the run); files go to ``scratch``."""

    def __init__(
        self, run_id: int, scratch: str | Path, *, config: Callable[[], dict[str, object]], stop_requested: Callable[[], bool]
    ) -> None:
        self.run_id = int(run_id)
        self.files = RunFiles(run_id, home=scratch)
        self._config, self._stop = config, stop_requested

    @classmethod
    def on_store(cls, store: Store, run_id: int, scratch: str | Path) -> QuietSink:
        """Config and stop flag from the local store (a torchrun process)."""
        return cls(run_id, scratch, config=lambda: dict(store.run(run_id).config), stop_requested=lambda: store.stop_requested(run_id))

    def config(self) -> dict[str, object]:
        return self._config()

    def claim(self, pid: int, pid_started: float | None) -> RunStatus | None:
        return None

    def stop_requested(self) -> bool:
        return self._stop()

    def heartbeat(self) -> bool:
        return self._stop()

    def progress(self, message: str, *, progress: float | None = None) -> None:
        pass

    def add_metrics(self, step: int, split: str, values: Mapping[str, float | None], *, epoch: float | None = None) -> None:
        pass

    def add_predictions(self, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray) -> None:
        pass

    def finish(self, status: RunStatus, message: str) -> None:
        pass


def this_process() -> tuple[int, float | None]:
    """(pid, start time) of this process, as runners record it to tell a reused pid apart."""
    from core.runners.processes import process_start_time

    return os.getpid(), process_start_time(os.getpid())


def launcher_process() -> tuple[int, float | None]:
    """(pid, start time) of the process that started this one: ``torchrun`` for a distributed run,
    the leader of the process group the runner signals."""
    from core.runners.processes import process_start_time

    return os.getppid(), process_start_time(os.getppid())
