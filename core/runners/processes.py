"""Processes on this machine: when one started, to tell a reused pid apart."""

from __future__ import annotations

import os
from pathlib import Path

_BOOT_TIME: float | None = None


def _boot_time() -> float:
    global _BOOT_TIME
    if _BOOT_TIME is None:
        with open("/proc/stat") as fh:
            _BOOT_TIME = next(float(line.split()[1]) for line in fh if line.startswith("btime"))
    return _BOOT_TIME


def process_start_time(pid: int | None) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if there is no such
    live process (a zombie counts as gone).

    Linux: field 22 of ``/proc/<pid>/stat`` (clock ticks after boot) + boot time. Elsewhere:
    psutil when installed; else ``nan`` for a pid that exists (start time unknown).
    """
    if not pid or pid <= 0:
        return None
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        raw = None
    if raw is not None:
        fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
        if fields[0] in ("Z", "X"):
            return None
        return round(_boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK"), 2)
    try:  # pragma: no cover - not Linux
        import psutil

        p = psutil.Process(pid)
        return None if p.status() == psutil.STATUS_ZOMBIE else round(p.create_time(), 2)
    except ImportError:  # pragma: no cover
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return float("nan")
    except Exception:  # pragma: no cover - psutil.NoSuchProcess and friends
        return None


def same_process(pid: int | None, started: float | None) -> bool:
    """True when ``pid`` is alive and is the process that started at ``started``."""
    now = process_start_time(pid)
    if now is None:
        return False
    if started is None or now != now:  # unknown start time: trust the pid
        return True
    return abs(now - float(started)) < 1.0
