"""A piece of work in a background thread of the app, with its progress and its failure kept for the
page that follows it: subclasses write ``work``, calling ``progress(done, total, stage)``."""

from __future__ import annotations

import threading


class ProgressJob(threading.Thread):
    """``status()`` → (fraction done, stage); a failure keeps its message in ``error`` and the stage
    "failed"; the stage is "done" once ``work`` returned."""

    def __init__(self, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self._lock = threading.Lock()
        self._frac, self._stage = 0.0, "starting"
        self.error: str | None = None

    def status(self) -> tuple[float, str]:
        with self._lock:
            return self._frac, self._stage

    def progress(self, done: int, total: int, stage: str) -> None:
        with self._lock:
            self._frac, self._stage = done / max(total, 1), stage

    def work(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            self.work()
            self.progress(1, 1, "done")
        except Exception as err:  # the page shows it; the app goes on
            self.error = f"{type(err).__name__}: {err}"
            with self._lock:
                self._stage = "failed"
