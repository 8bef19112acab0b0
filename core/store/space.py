"""Disk space and write access of ``GAPSCOPE_HOME``: what the store does when either runs out.

- **A reserve.** A writable home keeps ``reserve/`` (``GAPSCOPE_RESERVE_MB``, default 8 MiB of real
  blocks in 1 MiB files, not sparse). When the disk fills up, the store gives back one piece at a
  time (``release_reserve``) so that what must still happen can: SQLite's shared-memory file for
  readers (32 KiB), a worker's final status, a runner marking a run failed. It is set aside again
  once there is room (``ensure_reserve``, at every ``Store()``).
- **Checks before large writes.** ``check_space`` refuses a write that would leave less than the
  reserve free, with a ``DiskFull`` that says how much is needed and where.
- **Errors a person can act on.** ``DiskFull`` and ``StoreReadOnly`` are ``DataError``s: every page
  already shows those as they are, and neither loses anything already stored.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

from core.errors import DataError

RESERVE_DIR = "reserve"
CHUNK = 2**20


class DiskFull(DataError):
    """The disk under ``GAPSCOPE_HOME`` has no room for a write; nothing stored was lost."""


class StoreReadOnly(DataError):
    """``GAPSCOPE_HOME`` cannot be written: browsing works, saving does not."""


def reserve_bytes() -> int:
    return int(float(os.environ.get("GAPSCOPE_RESERVE_MB", "8")) * 2**20)


def free_bytes(folder: str | Path) -> int:
    return int(shutil.disk_usage(folder).free)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop always returns


def writable(folder: Path) -> str | None:
    """None when a file can be created in ``folder``; else why not (read-only file system,
    permissions). Tried for real: ``os.access`` is wrong for root and for some mounts."""
    probe = folder / f".write-probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        if err.errno == errno.ENOSPC:
            return None  # writable, only full: handled as a full disk
        return err.strerror or str(err)
    return None


def _chunks(home: Path) -> list[Path]:
    n = max(0, -(-reserve_bytes() // CHUNK))
    return [home / RESERVE_DIR / f"{i}.bin" for i in range(n)]


def reserve_in_place(home: Path) -> int:
    """Bytes of reserve set aside now."""
    return sum(p.stat().st_size for p in (home / RESERVE_DIR).glob("*.bin")) if (home / RESERVE_DIR).is_dir() else 0


def ensure_reserve(home: Path) -> bool:
    """Set aside ``reserve_bytes()`` of real blocks in ``home/reserve/`` (1 MiB files), as far as
    the disk has room for them and as much again besides; return whether all of it is in place."""
    chunks = _chunks(home)
    if not chunks:
        return False
    try:
        (home / RESERVE_DIR).mkdir(exist_ok=True)
        for path in chunks:
            if path.exists() and path.stat().st_size >= CHUNK:
                continue
            if free_bytes(home) < reserve_bytes() + CHUNK:
                return False
            with open(path, "wb") as fh:
                try:
                    os.posix_fallocate(fh.fileno(), 0, CHUNK)
                except OSError:  # a file system without fallocate: write the blocks
                    fh.write(b"\0" * CHUNK)
        return True
    except OSError:
        return False


def release_reserve(home: Path) -> bool:
    """Give one 1 MiB piece of the reserve back to the file system (enough for SQLite to open and
    for a few status writes); return whether there was one."""
    for path in reversed(_chunks(home)):
        try:
            path.unlink()
            return True
        except OSError:
            continue
    return False


def check_space(home: Path, need: int, what: str) -> None:
    """Raise ``DiskFull`` unless ``need`` bytes fit on ``home``'s disk with a reserve to spare."""
    free = free_bytes(home)
    spare = max(CHUNK, reserve_bytes() - reserve_in_place(home))  # what is set aside already need not be free
    if need + spare > free:
        raise DiskFull(
            f"Not enough disk space to {what}: it needs about {human(need)} and {human(free)} is free on the disk of "
            f"{home} (Gapscope keeps {human(reserve_bytes())} spare so that runs can always end cleanly). "
            "Free some space, or point GAPSCOPE_HOME at a bigger disk. Nothing stored was changed."
        )


def is_disk_full(err: BaseException, home: Path | None = None) -> bool:
    """Whether ``err`` means the disk is full. SQLite says "database or disk is full", or — when
    it cannot grow its shared-memory file — only "disk I/O error"; that one counts as full when
    the disk has less than a reserve free."""
    if isinstance(err, DiskFull):
        return True
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(err, sqlite3.Error):
        text = str(err).lower()
        if "disk is full" in text:
            return True
        if "disk i/o error" in text and home is not None:
            try:
                return free_bytes(home) < reserve_bytes()
            except OSError:
                return False
    return False


def disk_low(home: Path) -> bool:
    """Less than a reserve free: an error met now (say torch's "unexpected pos" while writing a
    checkpoint) most likely came from the full disk."""
    try:
        return free_bytes(home) < max(reserve_bytes(), CHUNK)
    except OSError:
        return False


def is_locked(err: BaseException) -> bool:
    """SQLite gave up waiting for another connection's lock (after its busy timeout)."""
    return isinstance(err, sqlite3.OperationalError) and ("locked" in str(err).lower() or "busy" in str(err).lower())


def disk_full_message(home: Path, what: str) -> str:
    try:
        free = human(free_bytes(home))
    except OSError:
        free = "unknown"
    return (
        f"The disk of {home} is full ({free} free), so Gapscope could not {what}. Everything already stored is kept "
        "and can still be browsed; free some space (or point GAPSCOPE_HOME at a bigger disk) and try again."
    )
