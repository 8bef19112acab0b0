"""Embedding throughput measured on this machine, kept so the next estimate starts calibrated.

``estimate_seconds`` in ``core.embed.embeddings`` starts from throughputs measured once on an idle
2-core CPU (``benchmarks/RESULTS.md``, *Embeddings*). A machine that is slower, faster or busier
than that one makes those estimates wrong by a factor, which is what a user notices ("837 s"
that took 18 minutes). So every embedding pass through ``embed`` measures its own rate — work
units per wall-clock second of the model's batches, after the model is loaded — and keeps it here,
per backbone and method (``key``), with the load average at the time. The next estimate for that
key uses the measured rate, scaled by how much busier or quieter the machine is now:

    rate_now = rate_measured × f(load_now) / f(load_measured),   f(L) = C / (L + C)

where ``C`` is the usable cores (the load correction ``estimate_seconds`` already applies; a
ratio close to 1 when the estimate follows the measurement, as the full pass follows the sample).

The unit of work is whatever the estimate counts: for text, word pieces estimated from characters
(``embeddings.text_units``), so a rate measured on a sample extrapolates to the same dataset without
the characters-per-token guess adding its own error. A rate is a running blend (the newest
measurement weighs ``NEW_WEIGHT``), so one odd pass does not undo the rest.

``GAPSCOPE_HOME/cache/throughput.json``, written atomically. Torch-free.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.atomic import atomic_write_json
from core.hardware import usable_cores

#: a measurement shorter than this (seconds of model time) is too noisy to keep
MIN_SECONDS = 1.0
#: weight of the newest measurement in the kept rate
NEW_WEIGHT = 0.7
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Rate:
    """A measured throughput: ``per_s`` units per wall-clock second at 1-minute load ``load``."""

    per_s: float
    load: float
    cores: int
    when: float

    def now(self, load: float | None = None) -> float:
        """The rate expected at ``load`` (default: the current 1-minute load average)."""
        load = current_load() if load is None else load
        return self.per_s * load_factor(load, self.cores) / load_factor(self.load, self.cores)


def load_factor(load: float, cores: int) -> float:
    """The share of ``cores`` a new process gets when others keep ``load`` threads runnable."""
    cores = max(1, cores)
    return min(1.0, cores / (max(load, 0.0) + cores))


def current_load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def path() -> Path:
    return paths.home() / "cache" / "throughput.json"


def _read() -> dict[str, dict[str, float]]:
    try:
        data = json.loads(path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def rate(key: str) -> Rate | None:
    """The rate measured for ``key`` on this machine (its cores now), or None."""
    entry = _read().get(key)
    cores = max(1, usable_cores())
    if not isinstance(entry, dict) or int(entry.get("cores", 0)) != cores:
        return None  # measured with another number of cores: the constants are as good a start
    try:
        per_s, load, when = float(entry["per_s"]), float(entry["load"]), float(entry.get("when", 0.0))
    except (KeyError, TypeError, ValueError):
        return None
    return Rate(per_s, load, cores, when) if per_s > 0 else None


def record(key: str, units: float, seconds: float, *, load: float | None = None) -> Rate | None:
    """Keep ``units`` done in ``seconds`` of wall-clock time as ``key``'s rate (blended with the
    last one); returns the kept rate, or None when the measurement was too short to trust.
    A read-only or full disk loses the measurement, never the caller's work."""
    if seconds < MIN_SECONDS or units <= 0:
        return None
    load = current_load() if load is None else load
    cores = max(1, usable_cores())
    measured = units / seconds
    with _LOCK:
        data = _read()
        old = rate(key)
        if old is not None:  # blend at the new load: the old rate as it would be now
            measured = NEW_WEIGHT * measured + (1 - NEW_WEIGHT) * old.now(load)
        kept = Rate(measured, load, cores, time.time())
        data[key] = {"per_s": kept.per_s, "load": kept.load, "cores": kept.cores, "when": kept.when}
        try:
            atomic_write_json(path(), data)
        except OSError:
            return kept
    return kept
