"""A run as the store holds it: ``RunRow``, typed and frozen, returned by every ``Store`` read.

    row = store.run(run_id)
    row.status          # what every page shows: a RunStatus, LOST for a run whose worker is gone
    row.stored_status   # the column itself (what runners compare-and-set against)
    row.config["lr"]    # the stored RunConfig as a dict
    row.label           # '🏃 running', or '👻 lost (no heartbeat for 3 min; it was running)'

A run a worker should hold (running or stopping) whose heartbeat is older than ``STALE_AFTER_S``
reads ``RunStatus.LOST``: its worker died while no runner watched. Every reader — the Runs page,
Compare, the sweep view, reports — gets that one status from here; only runners, which decide what
to write, look at ``stored_status``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from core.store.status import STALE_AFTER_S, WORKING, RunStatus


@dataclass(frozen=True)
class RunRow:
    """One row of the ``runs`` table (times are Unix seconds)."""

    id: int
    version_id: int
    name: str
    stored_status: RunStatus  # the ``runs.status`` column
    config: dict[str, Any]  # the RunConfig as stored (``RunConfig.from_dict`` reads it)
    progress: float  # 0..1
    message: str
    created_at: float
    pid: int | None = None  # the worker's process (or torchrun's) on this machine
    pid_started: float | None = None  # that process's start time, to tell a reused pid apart
    heartbeat_at: float | None = None
    stop_requested: bool = False
    stop_requested_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    gpu: int | None = None  # the GPU a local runner gave it
    runner: str = "local"  # who holds it: "local" or "ray"
    relay_seq: int | None = None  # the last relayed metrics write stored (a Ray run)
    read_at: float = 0.0  # when the row was read: ``lost`` is judged at that moment

    @property
    def lost(self) -> bool:
        """A worker should hold it, but its heartbeat (or start) is older than ``STALE_AFTER_S``."""
        beat = self.heartbeat_at or self.started_at
        return self.stored_status in WORKING and beat is not None and self.read_at - beat > STALE_AFTER_S

    @property
    def status(self) -> RunStatus:
        """The status every reader shows: the stored one, or ``LOST`` (see ``lost``)."""
        return RunStatus.LOST if self.lost else self.stored_status

    @property
    def label(self) -> str:
        """What a page shows: '🏃 running', or '👻 lost (no heartbeat for 3 min; it was running)'."""
        if not self.lost:
            return f"{self.status.icon} {self.status}"
        gone = self.read_at - float(self.heartbeat_at or self.started_at or self.read_at)
        ago = f"{gone / 60:.0f} min" if gone >= 120 else f"{gone:.0f} s"
        return f"{RunStatus.LOST.icon} lost (no heartbeat for {ago}; it was {self.stored_status})"

    @property
    def processes(self) -> int:
        """How many processes (one GPU each) the run asked for."""
        return max(1, int(self.config.get("processes", 1) or 1))

    @classmethod
    def from_sql(cls, r: sqlite3.Row, *, now: float | None = None) -> RunRow:
        keys = set(r.keys())
        get = lambda name: r[name] if name in keys else None
        return cls(
            id=int(r["id"]),
            version_id=int(r["version_id"]),
            name=r["name"] or "",
            stored_status=RunStatus(r["status"]),
            config=json.loads(r["config"]),
            progress=float(r["progress"] or 0.0),
            message=r["message"] or "",
            created_at=float(r["created_at"]),
            pid=_int(get("pid")),
            pid_started=_float(get("pid_started")),
            heartbeat_at=_float(get("heartbeat_at")),
            stop_requested=bool(get("stop_requested")),
            stop_requested_at=_float(get("stop_requested_at")),
            started_at=_float(get("started_at")),
            finished_at=_float(get("finished_at")),
            exit_code=_int(get("exit_code")),
            gpu=_int(get("gpu")),
            runner=get("runner") or "local",
            relay_seq=_int(get("relay_seq")),
            read_at=time.time() if now is None else now,
        )


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _float(v: Any) -> float | None:
    return None if v is None else float(v)
