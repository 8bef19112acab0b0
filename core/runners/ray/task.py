"""The Ray task that trains one run on a node, and what it needs there.

The relay launches ``train_task(relay, home, run_id, config, dataset, scratch_home)`` with the
run's resources (``core.runners.ray.relay``); it runs the worker of a local run
(``core.train.worker.run_with_sink``) with a ``RelaySink``::

    node: GAPSCOPE_NODE_HOME (default: <tmp>/gapscope-node-<uid>)
      runs/<id>/      the run's scratch folder: checkpoints, evaluation files, log → sent to the app
      ranks/<id>/     a run of several processes: its child ranks' dataset and logs (core.runners.ranks)

- The worker never opens SQLite: ``guard_sqlite`` refuses any ``gapscope.db`` and notes every
  SQLite file the process opened (``node.json`` records the list).
- Its stdout and stderr (file descriptors 1 and 2) go to the run's log, which travels with the files.
- Both folders are removed when the task ends. A task cancelled by force cannot do it: the relay
  then runs ``clean_scratch`` on the node once the task has ended (the worker announced them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.runners.ray.relay_sink import RelaySink
from core.store.status import RunStatus

NODE_HOME_ENV = "GAPSCOPE_NODE_HOME"  # on a node: the folder a worker uses as its home (scratch, caches)


def node_home() -> Path:
    """The folder a worker on this node uses as its ``GAPSCOPE_HOME``: never the app's store."""
    default = Path(tempfile.gettempdir()) / f"gapscope-node-{os.getuid()}"
    return Path(os.environ.get(NODE_HOME_ENV) or default)


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """This process's stdout and stderr (file descriptors 1 and 2, so child processes and C
    libraries too) appended to ``path`` while inside."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def guard_sqlite() -> list[str]:
    """From now on in this process, note every SQLite database opened (the list returned) and
    refuse a Gapscope store (``gapscope.db``) with ``PermissionError``. An audit hook: it cannot be
    removed, so only a process that ends with its task (a Ray worker with ``max_calls=1``) calls it."""
    opened: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event == "sqlite3.connect":
            opened.append(str(args[0]))
            if Path(str(args[0])).name == "gapscope.db":
                raise PermissionError(f"a worker on a Ray node must not open a Gapscope store ({args[0]}): it reports through the relay")

    sys.addaudithook(audit)
    return opened


def _node_ip() -> str:
    """The address this worker's node joined the cluster with."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    with contextlib.suppress(Exception):
        return next(str(n["NodeManagerAddress"]) for n in ray.nodes() if n["NodeID"] == node_id)
    return ray.util.get_node_ip_address()


def clean_scratch(folders: list[str]) -> list[str]:
    """Remove ``folders`` (a task's scratch on this node); return those that were there."""
    removed = [f for f in folders if Path(f).exists()]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def train_task(relay: Any, home: str, run_id: int, config: dict[str, Any], dataset: Any, scratch_home: str | None) -> dict[str, Any]:
    """A Ray task: train ``run_id`` with the worker of a local run, through a ``RelaySink``."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see core.runners.local: no spinning threads
    here = Path(scratch_home) if scratch_home else node_home()
    os.environ["GAPSCOPE_HOME"] = str(here)  # caches land on the node; the app's store is not here
    opened = guard_sqlite()  # for the life of this worker process (max_calls=1: it ends with the task)
    sink = RelaySink(relay, home, run_id, config, scratch=here)
    folder, ranks_dir = sink.files.folder, here / "ranks" / str(run_id)  # the run's files; its child ranks' (core.runners.ranks)
    for leftover in (folder, ranks_dir):  # of an earlier task of this run id on this node (one killed, say)
        shutil.rmtree(leftover, ignore_errors=True)
    folder.mkdir(parents=True)
    sink.announce([folder, ranks_dir])
    node = {"node_ip": _node_ip(), "hostname": socket.gethostname(), "pid": os.getpid(), "home": str(here), "sqlite_opened": opened}
    sink.node = node
    try:
        with _output_to(sink.files.log_path):
            status = _train(sink, run_id, config, dataset, ranks_dir)
        sink.flush()  # the log's last lines, after the final status
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(ranks_dir, ignore_errors=True)
    return {**node, "status": str(status)}


def _train(sink: RelaySink, run_id: int, config: dict[str, Any], dataset: Any, ranks_dir: Path) -> RunStatus:
    """The worker, with ranks 1..N-1 as child processes for a run of N processes."""
    import ray

    from core.train.distributed import SINGLE
    from core.train.worker import run_with_sink

    node = sink.node or {}
    print(
        f"--- run {run_id} on Ray node {node.get('node_ip')} ({node.get('hostname')}, pid {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')})"
    )
    print(f"    GPUs: {ray.get_gpu_ids() or 'none'} · scratch {sink.files.folder}", flush=True)

    def load_dataset(version_id: int) -> Any:
        if int(version_id) != int(config["version_id"]):
            raise ValueError(f"this task carries version {config['version_id']}, not {version_id}")
        return dataset

    ranks = None
    world = int(config.get("processes", 1) or 1)
    if world > 1:  # ranks 1..world-1 as processes of this task; this one is rank 0 (core.runners.ranks)
        from core.runners.ranks import Ranks

        ranks = Ranks(run_id, config, dataset, ranks_dir, world)
        print(f"    {world} processes: this one is rank 0; ranks 1–{world - 1} are pids {[c.pid for c in ranks.children]}", flush=True)
        ranks.watch(lambda why: _fail_now(sink, why))
        sink.explain = ranks.explain
    try:
        return run_with_sink(sink, load_dataset, dist=ranks.dist if ranks else SINGLE)
    finally:
        if ranks is not None:
            codes = ranks.close()
            print(f"    ranks 1–{world - 1} ended with exit codes {codes}", flush=True)


def _fail_now(sink: RelaySink, why: str) -> None:
    """A child rank failed while this process (rank 0) may wait for it in a collective forever:
    send the final status and end the task (its child ranks die with it)."""
    with contextlib.suppress(Exception):
        print(f"run {sink.run_id} failed: {why}", flush=True)
        sink.finish(RunStatus.FAILED, why)
        sink.flush()
    os._exit(1)
