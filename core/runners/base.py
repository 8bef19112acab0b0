"""The ``Runner`` protocol: what the pages need from whatever runs training — local processes
(``core.runners.local``), torchrun on several GPUs, or a Ray cluster.

The queue lives in the store, not in a runner: a run is ``queued`` until a runner claims it
(``Store.claim_next_run``, atomic), so a restarted app — or a second one on the same home — sees
and continues the same queue.
"""

from __future__ import annotations

from typing import Protocol

from core.store.rows import RunRow
from core.store.status import RunStatus
from core.train.config import RunConfig


class Runner(Protocol):
    def submit(self, config: RunConfig) -> int:
        """Validate ``config``, queue a run for it (start it if a slot is free); return its id."""
        ...

    def status(self, run_id: int) -> RunRow:
        """The run's row after a ``tick``: status, progress, message, timings, config."""
        ...

    def stop(self, run_id: int, *, wait_s: float = 0.0) -> RunStatus:
        """Ask a run to stop; a queued run stops at once. With ``wait_s`` > 0, wait for it to end."""
        ...

    def logs(self, run_id: int, tail: int = 50) -> str:
        """The last ``tail`` lines of the run's log."""
        ...

    def recover(self) -> list[int]:
        """At start-up: mark runs whose worker is gone as failed (rows kept); return their ids."""
        ...

    def tick(self) -> list[int]:
        """Notice ended or lost workers, escalate overdue stops, start queued runs; return the ids
        started. Cheap: call it often (the app does, from a background thread)."""
        ...

    def close(self) -> None:
        """Stop background work of this runner (workers keep running; a later runner adopts them)."""
        ...
