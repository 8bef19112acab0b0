"""What a worker on a Ray node reports, and how the app applies each report to its store.

Every call the worker's ``RelaySink`` makes becomes an event ``(seq, kind, args)``: numbered in
the order it was made, ``kind`` a ``Kind`` value on the wire. The app applies events through
``HANDLERS``, the one table from a kind to the code that stores it::

    from core.runners.ray.protocol import AppSink, Kind, apply_event
    sink = AppSink(store, run_id)                       # the app's sink for one relayed run
    apply_event(sink, 12, "metrics", (40, "val", {"accuracy": 0.91}, 1.0))

Applying an event twice changes nothing: metric rows carry ``seq`` into the store, which skips a
number it holds already; predictions, files and log chunks are replaced in place. ``Handler.rows``
says whether a kind writes the run's rows in SQLite: those are dropped once the run has ended
(``core.runners.ray.drain``), while files and log chunks still land in the run's folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write_bytes
from core.store.artifacts import Ledger
from core.store.database import Store
from core.store.status import RunStatus
from core.train.sink import StoreSink


class Kind(Enum):
    """What an event reports; the value is what travels."""

    CLAIM = "claim"  # (pid, pid start time): the worker holds the run
    PROGRESS = "progress"  # (message, progress or None)
    METRICS = "metrics"  # (step, split, {name: value}, epoch)
    PREDICTIONS = "predictions"  # (step, split, items, labels, pred, conf)
    FINISH = "finish"  # (status, message): the worker's final word
    FILE = "file"  # (path inside the run's folder, bytes)
    LOG = "log"  # (offset, bytes) of the run's log

    @classmethod
    def parse(cls, value: str) -> Kind | None:
        """The kind called ``value``, or None for one this app does not know."""
        try:
            return cls(value)
        except ValueError:
            return None


class AppSink(StoreSink):
    """The ``StoreSink`` the app applies one relayed run's events through.

    Its ledger (``written.txt``) means what a local run's means — the run's rows in the store —
    after an app restart too: a sink made for a run whose ledger exists goes on counting from it,
    its metric rows re-counted from the store, and predictions sent again (an evaluation's rows
    are replaced in place) count only the rows the store did not hold.
    """

    def __init__(self, store: Store, run_id: int, *, lock_patience_s: float | None = 5.0) -> None:
        super().__init__(store, run_id, lock_patience_s=lock_patience_s)
        if self.files.ledger() is not None:  # claimed under an app that has since restarted
            self._ledger = Ledger(self.files, counts={"metrics": len(store.metrics(run_id))})

    def claim(self, pid: int, pid_started: float | None) -> RunStatus | None:
        before = self._ledger
        blocked = super().claim(pid, pid_started)
        if before is not None and self._ledger is not before:  # a claim sent again: one ledger open
            before.close()
        return blocked

    def close(self) -> None:
        """Let go of the ledger (the run's mail is all applied)."""
        if self._ledger is not None:
            self._ledger.close()

    def add_predictions(self, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray) -> None:
        held = len(self.store.predictions(self.run_id, split=split, step=step))
        write = lambda: self.store.add_predictions(self.run_id, step, split, items, labels, pred, conf)
        self._counted("predictions", max(0, len(items) - held), write)


@dataclass(frozen=True)
class Handler:
    """How one kind of event is applied: ``apply(sink, seq, args)``; ``rows``: it writes the
    run's rows in SQLite (dropped once the run has ended)."""

    apply: Callable[[AppSink, int, tuple], object]
    rows: bool


def _metrics(sink: AppSink, seq: int, args: tuple) -> None:
    step, split, values, epoch = args
    sink.add_metrics(step, split, values, epoch=epoch, seq=seq)  # stored once, even if sent twice


#: The one dispatch table: each kind, and how it reaches the store.
HANDLERS: Mapping[Kind, Handler] = {
    Kind.CLAIM:       Handler(lambda sink, seq, args: sink.claim(*args), rows=True),
    Kind.PROGRESS:    Handler(lambda sink, seq, args: sink.progress(args[0], progress=args[1]), rows=True),
    Kind.METRICS:     Handler(_metrics, rows=True),
    Kind.PREDICTIONS: Handler(lambda sink, seq, args: sink.add_predictions(*args), rows=True),
    Kind.FINISH:      Handler(lambda sink, seq, args: sink.finish(RunStatus(args[0]), args[1]), rows=True),
    Kind.FILE:        Handler(lambda sink, seq, args: write_run_file(sink.files.folder, args[0], args[1]), rows=False),
    Kind.LOG:         Handler(lambda sink, seq, args: write_log_chunk(sink.files.log_path, args[0], args[1]), rows=False),
}  # fmt: skip


def writes_rows(kind: str) -> bool:
    """Whether an event of ``kind`` writes the run's rows (an unknown kind counts as one)."""
    known = Kind.parse(kind)
    return known is None or HANDLERS[known].rows


def apply_event(sink: AppSink, seq: int, kind: str, args: tuple) -> None:
    """Apply one event; raises what the store raised, or ``ValueError`` for a kind this app does
    not know or a file outside the run's folder."""
    known = Kind.parse(kind)
    if known is None:
        raise ValueError(f"an event of a kind this app does not know: {kind!r}")
    HANDLERS[known].apply(sink, seq, tuple(args))


# ---------------------------------------------------------------------- files from the node


def write_run_file(folder: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` to ``folder / rel`` atomically; refuse a path that leaves ``folder``."""
    target = _inside(folder, rel)
    return atomic_write_bytes(target, data)


def write_log_chunk(path: Path, offset: int, data: bytes) -> None:
    """Put ``data`` at ``offset`` of the log (idempotent: a chunk applied twice lands in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, int(offset))
    finally:
        os.close(fd)


def _inside(folder: Path, rel: str) -> Path:
    path = Path(rel)
    root = folder.resolve()
    target = (root / path).resolve()
    if path.is_absolute() or ".." in path.parts or not target.is_relative_to(root) or target == root:
        raise ValueError(f"refusing a file outside the run's folder: {rel!r}")
    return target


def as_event(raw: Any) -> tuple[int, str, tuple]:
    """``(seq, kind, args)`` of an event as the relay returns it."""
    seq, kind, args = raw
    return int(seq), str(kind), tuple(args)
