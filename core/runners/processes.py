"""Processes on this machine: when one started, to tell a reused pid apart.

A runner records a worker's pid with its start time (``process_start_time``); later,
``same_process(pid, started)`` is true only while that very process lives, not another that was
given the same pid after it ended.
"""

from __future__ import annotations

import os


def process_start_time(pid: int | None) -> float | None:
    """When process ``pid`` started (seconds since the epoch, to 0.01 s), or None if there is no
    such live process (a zombie counts as gone).

    From psutil. Where psutil cannot say (the process belongs to another user on a system that
    hides it, or psutil is not installed, as on a bare GPU image running the benchmarks) a pid that
    exists gives ``nan``: alive, start time unknown.
    """
    if not pid or pid <= 0:
        return None
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency; the GPU benchmarks may run without it
        return _exists(pid)
    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return round(proc.create_time(), 2)
    except psutil.NoSuchProcess:  # ZombieProcess included
        return None
    except psutil.AccessDenied:
        return float("nan")


def _exists(pid: int) -> float | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return float("nan")


def same_process(pid: int | None, started: float | None) -> bool:
    """True when ``pid`` is alive and is the process that started at ``started``."""
    now = process_start_time(pid)
    if now is None:
        return False
    if started is None or now != now:  # unknown start time: trust the pid
        return True
    return abs(now - float(started)) < 1.0
