"""The queue keeper: the Ray runner of a home, ticking in a process of its own, with no page open.

    GAPSCOPE_RAY_ADDRESS=ray://head:10001 python -m core.runners.ray.keeper [--parent PID]

Streamlit runs ``app.py`` — and so creates the app's runner — only when a browser connects: a
restarted app would apply nothing the cluster sends, and start no queued run, until someone opens
a page. ``./gapscope.sh run`` therefore starts this keeper beside Streamlit whenever
``GAPSCOPE_RAY_ADDRESS`` is set. It connects (trying again every 30 s while the cluster cannot be
reached), then ticks every 2 s: it drains the relay, ends runs whose tasks are gone and launches
queued runs. It holds the home's drain lock (``core.runners.ray.leader``), so the app's own runner
leaves draining to it; if the keeper dies, the app's runner takes over at its next tick, and a
restarted keeper takes over from whoever holds the lock when it lets go.

It ends on SIGTERM or SIGINT, or when the process ``--parent`` names (Streamlit's) has gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from core.errors import DataError
from core.runners.ray.connect import ADDRESS_ENV
from core.store.database import Store

if TYPE_CHECKING:
    from core.runners.ray.runner import RayRunner

RETRY_S = 30.0  # an unreachable cluster is tried again after this long


def _say(message: str) -> None:
    print(f"[keeper] {message}", file=sys.stderr, flush=True)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (from the main thread only: Python's rule)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())


def keep(
    store: Store,
    address: str,
    stop: threading.Event,
    *,
    interval_s: float = 2.0,
    retry_s: float = RETRY_S,
    parent: int | None = None,
    scratch_home: str | None = None,
) -> None:
    """Tick ``store``'s Ray runner every ``interval_s`` until ``stop`` is set (or ``parent`` ends)."""
    from core.runners.ray.runner import RayRunner

    runner: RayRunner | None = None
    try:
        while not stop.is_set() and (parent is None or os.getppid() == parent):
            if runner is None:
                try:
                    runner = RayRunner(store, address, scratch_home=scratch_home)
                except DataError as err:
                    _say(f"{err} Trying again in {retry_s:.0f} s.")
                    stop.wait(retry_s)
                    continue
                _stop_on_signals(stop)  # ray.init installs a SIGTERM handler of its own
                _say(f"{runner.describe()}; applying the runs of {store.home}")
            try:
                runner.tick()
            except Exception as err:  # the next tick may succeed
                _say(f"{type(err).__name__}: {err}")
            stop.wait(interval_s)
    finally:
        if runner is not None:
            runner.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.runners.ray.keeper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", type=int, help="end when this process (Streamlit's) has ended")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between ticks (2)")
    parser.add_argument("--scratch-home", help="the workers' home on the nodes (default: GAPSCOPE_NODE_HOME there)")
    args = parser.parse_args(argv)
    address = os.environ.get(ADDRESS_ENV, "").strip()
    if not address:
        _say(f"{ADDRESS_ENV} is not set: runs train on this machine, and the app's runner keeps their queue.")
        return 0
    store = Store()
    if store.read_only is not None:
        _say(f"{store.home} is read-only ({store.read_only}): nothing to apply.")
        return 0
    stop = threading.Event()
    _stop_on_signals(stop)
    keep(store, address, stop, interval_s=args.interval, parent=args.parent, scratch_home=args.scratch_home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
