"""What every runner does the same way on the store's queue: submit, status, stop, logs, wait, and
ticking from a background thread. A runner adds how it starts and watches runs (``tick``,
``recover``): ``core.runners.local.LocalRunner`` with subprocesses, ``core.runners.ray.RayRunner``
with Ray tasks."""

from __future__ import annotations

import sys
import threading
import time

from core.store.artifacts import RunFiles
from core.store.database import Store
from core.store.rows import RunRow
from core.store.space import check_space
from core.store.status import ACTIVE, WORKING, RunStatus
from core.train.config import RunConfig
from core.train.estimates import disk_bytes


class QueueRunner:
    """The store-queue half of a ``core.runners.base.Runner``; subclasses define ``tick``."""

    poll_s = 0.1  # seconds between ticks while ``stop`` or ``wait`` waits
    thread_name = "gapscope-runner"
    log_lines = 20  # log lines copied into ``message`` when a runner ends a run itself

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._ticker_stop = threading.Event()

    def tick(self) -> list[int]:  # pragma: no cover - every runner defines it
        raise NotImplementedError

    def submit(self, config: RunConfig) -> int:
        """Validate ``config``, queue a run for it and start it if there is room; return its id.
        A run whose checkpoints and results cannot fit on the home's disk is refused (``DiskFull``,
        saying how much it needs) before anything is stored."""
        config.validate()
        info = self.store.version(config.version_id)
        sizes = self.store.split_sizes(config.version_id)
        need = disk_bytes(config, modality=info.modality, n_train=sizes.get(0, 0), n_test=sizes.get(2, 0), n_classes=len(info.class_names))
        check_space(self.store.home, need, f"start a run on {info.label} (its checkpoints and results)")
        run_id = self.store.create_run(config.version_id, config.to_dict(), name=config.display_name())
        self.tick()
        return run_id

    def status(self, run_id: int) -> RunRow:
        """The run's row (after a ``tick``): status, progress, message, timings, config."""
        self.tick()
        return self.store.run(run_id)

    def stop(self, run_id: int, *, wait_s: float = 0.0) -> RunStatus:
        """Ask ``run_id`` to stop; return its status. A queued run is stopped at once; a running one
        stops after its current step (the runner enforces it after its grace period if it does
        not). With ``wait_s`` > 0, tick until it has ended or ``wait_s`` has passed."""
        status = self.store.request_stop(run_id)
        self.tick()
        return self._await_end(run_id, wait_s) if wait_s > 0 else status

    def _await_end(self, run_id: int, wait_s: float) -> RunStatus:
        """Tick until ``run_id`` is no longer held by a worker, or ``wait_s`` has passed; its status."""
        deadline = time.monotonic() + wait_s
        while self.store.run(run_id).stored_status in WORKING and time.monotonic() < deadline:
            time.sleep(self.poll_s)
            self.tick()
        return self.store.run(run_id).stored_status

    def logs(self, run_id: int, tail: int = 50) -> str:
        """The last ``tail`` lines of the run's log."""
        return RunFiles(run_id, home=self.store.home).log_tail(tail)

    def wait(self, run_id: int, *, timeout_s: float = 600.0, poll_s: float | None = None) -> RunRow:
        """Tick until ``run_id`` is no longer queued or live (or ``timeout_s``); return its row."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.tick()
            row = self.store.run(run_id)
            if row.stored_status not in ACTIVE or time.monotonic() > deadline:
                return row
            time.sleep(self.poll_s if poll_s is None else poll_s)

    def start_ticking(self, interval_s: float = 2.0) -> None:
        """Tick every ``interval_s`` from a daemon thread (an app process that wants the queue to
        move without reruns). Idempotent."""
        if self._ticker is not None and self._ticker.is_alive():
            return
        self._ticker_stop.clear()

        def loop() -> None:
            while not self._ticker_stop.wait(interval_s):
                try:
                    self.tick()
                except Exception as err:  # keep ticking; the next tick may succeed
                    print(f"{self.thread_name}: {type(err).__name__}: {err}", file=sys.stderr)

        self._ticker = threading.Thread(target=loop, name=self.thread_name, daemon=True)
        self._ticker.start()

    def close(self) -> None:
        """Stop the background thread (runs keep going; a later runner adopts them)."""
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)

    def _end(self, row: RunRow, status: RunStatus, why: str, *, exit_code: int | None = None) -> bool:
        """End a run whose worker cannot say so itself (gone, hung, cancelled): ``status`` with
        ``why`` and the log's last lines, even on a full disk. False if the run had ended already."""
        run_id = int(row.id)
        tail = self.logs(run_id, self.log_lines)
        message = why + (f". Last log lines:\n{tail}" if tail else "")
        return self.store.even_if_full(  # a run must not stay "running", not even on a full disk
            lambda: self.store.set_run_status(
                run_id, status, only_if=WORKING, message=message[-4000:], finished_at=time.time(), exit_code=exit_code
            )
        )
