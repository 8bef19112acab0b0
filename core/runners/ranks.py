"""Several processes of one run inside one Ray task: what ``torchrun`` does for a local run.

A run with ``processes = N > 1`` on a Ray cluster gets one task with N GPUs (N CPUs without
GPUs). The task's own process is rank 0: it alone reports, through its ``RelaySink``. ``Ranks``
starts ranks 1..N-1 as child processes of the task, on the same node, joined with rank 0 by
``torch.distributed`` over 127.0.0.1 (NCCL between GPUs, gloo on CPUs)::

    task process (rank 0, RelaySink) ──spawn──▶ python -c "…rank_main(scratch)"  (rank 1 … N-1)
                         ◀──── all-reduce of gradients and of "stop now?" at every step ────▶

- The children read the run's config and dataset from the task's scratch folder (``rank.json``
  and the dataset's files as ``core.store.payload`` writes them: arrays and Parquet, no pickle)
  and write through a ``QuietSink`` that never stops on its own: nothing reaches the app from them.
- A stop reaches them the way it reaches torchrun's ranks: rank 0 sees the relay's flag, and all
  ranks agree to stop at the same step (``core.train.distributed.agree``).
- They die with the task: each asks the kernel for SIGKILL when its parent ends (Linux), so a
  cancelled task (``ray.cancel(force=True)``) leaves no process behind. A child that ends with an
  error while rank 0 trains would leave rank 0 waiting in a collective: the watcher thread fails
  the run with the child's exit code and ends the task.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.data.dataset import Dataset
from core.store.artifacts import tail_of
from core.store.payload import read_payload, write_payload
from core.store.status import RunStatus
from core.train.distributed import Dist
from core.train.sink import QuietSink


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Ranks:
    """Ranks 1..``world``-1 of run ``run_id``, started as child processes of this one (rank 0)."""

    def __init__(self, run_id: int, config: dict[str, Any], dataset: Dataset, scratch: Path, world: int) -> None:
        self.scratch, self.world = scratch, world
        data = scratch / "dataset"
        data.mkdir(parents=True)
        write_payload(dataset, data)
        spec = {"run_id": run_id, "config": config, "name": dataset.name, "modality": dataset.modality, "class_names": dataset.class_names}
        (scratch / "rank.json").write_text(json.dumps(spec))
        port = str(_free_port())
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, WORLD_SIZE=str(world), RANK="0", LOCAL_RANK="0")
        code = f"from core.runners.ranks import rank_main; rank_main({str(scratch)!r}, {os.getpid()})"
        self.children = []
        for r in range(1, world):  # each rank's output to a file of its own: the run's log holds rank 0's
            with open(self.log_path(r), "wb") as log:
                env = {**os.environ, "RANK": str(r), "LOCAL_RANK": str(r)}
                self.children.append(subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT))
        self._closing = threading.Event()
        self._told = False  # a dead rank's last lines are printed once
        self.dist = Dist(0, world, 0)

    def log_path(self, rank: int) -> Path:
        return self.scratch / f"rank{rank}.log"

    def tail(self, rank: int, lines: int = 20) -> str:
        """The last ``lines`` lines rank ``rank`` printed."""
        return tail_of(self.log_path(rank), lines)

    def dead(self, *, within_s: float = 2.0) -> tuple[int, str] | None:
        """The first child rank that ended with an error, and a sentence saying so, waiting up to
        ``within_s`` for one (rank 0's collective may fail a moment before the dying rank's exit
        is seen); None if none did."""
        deadline = time.monotonic() + within_s
        while True:
            for rank, child in enumerate(self.children, start=1):
                code = child.poll()
                if code not in (None, 0):
                    return rank, f"rank {rank} of {self.world} (pid {child.pid}) ended with exit code {code}"
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def explain(self, message: str) -> str:
        """A failure's message, with the child rank that died first: rank 0's own error (a reset
        connection in a collective) is only its echo."""
        dead = self.dead()
        if dead is None:
            return message
        rank, said = dead
        if not self._told:
            self._told = True
            print(f"--- {said}; its last lines:\n{self.tail(rank)}", flush=True)
        return f"{said} ({message})"

    def watch(self, on_failure: Callable[[str], None], *, poll_s: float = 0.5) -> threading.Thread:
        """A thread that calls ``on_failure(message)`` once if a child ends with an error before
        ``close`` (a child that ends cleanly has finished its share of the run); rank 0 may be
        waiting for it in a collective that never returns."""

        def run() -> None:
            while not self._closing.wait(poll_s):
                if self.dead(within_s=0) is not None and not self._closing.is_set():
                    on_failure("rank 0 was still training")  # the sink's explain names the rank
                    return

        thread = threading.Thread(target=run, daemon=True, name="gapscope-ranks-watch")
        thread.start()
        return thread

    def close(self, *, timeout_s: float = 60.0) -> list[int | None]:
        """Wait for the children to end (they end at the step rank 0 ends), then kill any left;
        print each one's outcome (its last line) and return their exit codes."""
        self._closing.set()
        deadline = time.monotonic() + timeout_s
        for rank, child in enumerate(self.children, start=1):
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            if child.poll() is None:
                child.kill()
                child.wait()
            print(f"    rank {rank} (exit code {child.returncode}): {self.tail(rank, 1 if child.returncode == 0 else 20)}", flush=True)
        return [child.returncode for child in self.children]


def _die_with(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent ends; end now if it has already."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def rank_main(scratch: str, parent: int) -> None:
    """A child rank: train its share of the run described in ``scratch`` (``Ranks``)."""
    _die_with(parent)
    from core.train import distributed
    from core.train.worker import run_with_sink

    folder = Path(scratch)
    spec = json.loads((folder / "rank.json").read_text())
    dataset = read_payload(folder / "dataset", name=spec["name"], modality=spec["modality"], class_names=spec["class_names"])
    dist = distributed.from_env()
    # no stop of its own: rank 0's is agreed on at every step (core.train.distributed.agree)
    sink = QuietSink(spec["run_id"], folder / f"rank{dist.rank}", config=lambda: dict(spec["config"]), stop_requested=lambda: False)
    status = run_with_sink(sink, lambda version_id: dataset, dist=dist)
    sys.exit(0 if status in (RunStatus.FINISHED, RunStatus.STOPPED) else 1)
