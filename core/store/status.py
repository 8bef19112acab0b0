"""The status of a run, and which statuses mean what.

Moves: ``queued`` → ``running`` → ``finished`` | ``failed`` | ``stopping`` → ``stopped``; a queued
run can also go straight to ``stopped``. ``lost`` is never stored: a reader sees it for a run a
worker should hold whose heartbeat stopped (``core.store.rows.RunRow.status``). Only the move *out of* an ``ACTIVE`` status is ever
written (a compare-and-set in ``Store.set_run_status``), so a worker's own final word is never
overwritten by a runner that noticed its exit a moment later, nor the other way round.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's status; the values are what the ``runs.status`` column holds."""

    QUEUED = "queued"  # waiting for a runner to claim it
    RUNNING = "running"  # a worker holds it
    STOPPING = "stopping"  # asked to stop; its worker stops after the current step
    STOPPED = "stopped"  # ended by a stop request (rows written before it are kept)
    FINISHED = "finished"  # trained to the end (or stopped early by early stopping)
    FAILED = "failed"  # an error, or its worker died; ``message`` says why
    LOST = "lost"  # never stored: what readers see for a running run whose heartbeat stopped (``core.store.rows``)

    @property
    def active(self) -> bool:
        """Not ended yet: queued, running or stopping."""
        return self in ACTIVE

    @property
    def has_worker(self) -> bool:
        """A worker process holds the run (running or stopping)."""
        return self in WORKING

    @property
    def icon(self) -> str:
        return ICONS[self]


#: A run a worker holds whose heartbeat is older than this is shown as lost by every reader (its worker
#: died with no runner watching); a runner marks it failed (``core.runners.local``). Workers beat every ~2 s.
STALE_AFTER_S = 60.0

#: Not ended: the statuses a run can still leave. Pages redraw these live.
ACTIVE: tuple[RunStatus, ...] = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.STOPPING)
#: Held by a worker process; runners watch these for a dead or hung worker.
WORKING: tuple[RunStatus, ...] = (RunStatus.RUNNING, RunStatus.STOPPING)
#: Ended; nothing changes the status any more.
ENDED: tuple[RunStatus, ...] = (RunStatus.STOPPED, RunStatus.FINISHED, RunStatus.FAILED)

ICONS = {
    RunStatus.QUEUED: "⏳", RunStatus.RUNNING: "🏃", RunStatus.STOPPING: "✋",
    RunStatus.STOPPED: "⏹️", RunStatus.FINISHED: "✅", RunStatus.FAILED: "❌", RunStatus.LOST: "👻",
}  # fmt: skip
