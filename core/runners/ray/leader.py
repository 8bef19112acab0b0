"""One process at a time applies a home's Ray runs: the one holding ``GAPSCOPE_HOME/ray-drain.lock``.

    lock = DrainLock(store.home)
    if lock.acquire():      # non-blocking; True from then on until release() or the process ends
        ...drain the relay, launch queued runs...

Two processes draining the same relay would each apply the same events, each with its own ledger
count, and race on acknowledgements. The holder is whichever asks first: the queue keeper that
``./gapscope.sh run`` starts (``core.runners.ray.keeper``), else the app's own runner. The lock is
an ``flock`` on an open file, so the kernel lets go of it when its process ends however it ends,
and the next one to ask — the app's runner at its next tick, or a new keeper — takes over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = "ray-drain.lock"


class DrainLock:
    def __init__(self, home: str | Path) -> None:
        self.path = Path(home) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if no other process (or other ``DrainLock``) holds it; never waits."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only home: nothing to apply here
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        with contextlib.suppress(OSError):  # who holds it, for a person looking
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> int | None:
        """The pid the lock file names (the holder, if the lock is held)."""
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
