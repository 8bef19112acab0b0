"""The Ray runner: each run a Ray task on a cluster; what it learns comes back to this app's store.

    export GAPSCOPE_RAY_ADDRESS=ray://head:10001   # or auto, or 10.0.0.5:6379 (pip install '.[ray]')
    runner = RayRunner(Store())   # connects (ray.init) unless Ray is already initialised here
    runner.recover()              # once at app start-up: reattach to the relay, mark lost runs failed
    run_id = runner.submit(cfg)   # queued; launched on the cluster by this or a later tick()
    runner.tick()                 # often (or runner.start_ticking())
    runner.stop(run_id)           # the worker's cooperative stop → ray.cancel(force=True) after grace_s

How a run travels
-----------------
::

    this app (owns the store)                               the cluster
    claim_next_run(capacity, runner="ray")
    store.load_dataset → ray.put ───────────────────────▶ object store
    relay.launch(run, config, [dataset]) ───────────────▶ Relay: a named, detached actor ("gapscope"
                                                          namespace, num_cpus=0); it launches the task
                                                          train_task (num_gpus or num_cpus=1):
                                                            run_with_sink(RelaySink, …) — the worker
                                                            of a local run, another sink
                                                          RelaySink: every call → the relay, numbered
    tick(): relay.drain(acks) ◀───────────────────────── events in order, heartbeats, finished tasks
      each event through a StoreSink (the rows, ledger and status of a local run), files into
      GAPSCOPE_HOME/runs/<id>/, stop requests forwarded to the relay

- The worker never opens SQLite: ``RelaySink`` sends claim, progress, metrics, predictions and the
  final status to the relay, and on every heartbeat the files of its scratch folder that changed
  (config, summary, checkpoints, evaluations, its log). An audit hook in the task refuses any
  ``gapscope.db`` it tries to open anyway, and ``node.json`` records every SQLite file it opened.
- The relay launches the tasks, so it owns them: a run outlives the app that started it, and a
  restarted app finds the relay by name and goes on draining (``recover``).
- Delivery is at least once, storage exactly once: the app acknowledges the events it applied
  with its next drain, so an app killed between the two is sent a few again rather than lose them.
  Applying one again changes nothing: predictions, files and log chunks are replaced in place, and
  metric rows carry the event's number into the store with them (``runs.relay_seq``), which skips
  a number it holds already.
- Capacity is the cluster's: one run per GPU (or per CPU on a cluster without GPUs), so a severity
  sweep or a side-by-side pair runs at once instead of one after the other.

What a runner writes when the worker cannot: a task that ended without the worker's final status
(it raised, its worker process died, its node was lost) → ``failed`` with Ray's error; a stop not
honoured within ``grace_s`` → the task is cancelled (``ray.cancel(force=True)``), ``stopped``; no
heartbeat for ``stale_after_s`` → cancelled, ``failed``; not started within ``start_timeout_s`` (no
node with the resources) → cancelled, ``failed``. Rows already written are kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.atomic import atomic_write_bytes
from core.errors import DataError
from core.runners.queue import QueueRunner
from core.store.artifacts import RunFiles
from core.store.database import Store
from core.store.rows import RunRow
from core.store.status import ACTIVE, STALE_AFTER_S, WORKING, RunStatus
from core.train.sink import StoreSink

if TYPE_CHECKING:
    from core.runners.base import Runner

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDRESS_ENV = "GAPSCOPE_RAY_ADDRESS"  # ray://head:10001, auto, or host:6379
NODE_HOME_ENV = "GAPSCOPE_NODE_HOME"  # on a node: the folder a worker uses as its home (scratch, caches)
NAMESPACE = "gapscope"
RELAY_NAME = "gapscope-relay-v1"  # the version changes when the relay's methods do
RUNNER = "ray"  # runs.runner of the runs this runner claims

#: Left out of the code shipped to the cluster (``runtime_env`` ``working_dir``).
CODE_EXCLUDES = [
    ".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "**/__pycache__", "*.egg-info",
    ".gapscope", ".streamlit/secrets.toml", "benchmarks/out", "build", "dist", "tests/e2e",
]  # fmt: skip


def check_reachable(address: str, *, timeout_s: float = 3.0) -> None:
    """A ``DataError`` unless ``host:port`` of ``address`` (``ray://host:port`` or ``host:port``)
    accepts a TCP connection within ``timeout_s``: ``ray.init`` would otherwise retry for minutes
    and hold every page that needs the runner. ``auto`` and ``local`` are not checked."""
    target = address.removeprefix("ray://")
    if address in ("auto", "local") or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as err:
        raise DataError(
            f"Cannot reach the Ray cluster at {address} ({err}). Start the cluster, correct {ADDRESS_ENV}, "
            "or unset it to train on this machine."
        ) from err


def import_ray() -> Any:
    """``import ray``, or a ``DataError`` saying how to get it."""
    try:
        import ray
    except ImportError as err:
        raise DataError(
            f"Running on a Ray cluster needs Ray in this environment ({err}): pip install '.[ray]' "
            f"(or unset {ADDRESS_ENV} to train on this machine)."
        ) from err
    return ray


def code_runtime_env() -> dict[str, Any]:
    """The ``runtime_env`` that ships this checkout's code to every node with each job (nodes need
    the same Python packages installed; the code itself travels)."""
    return {"working_dir": str(REPO_ROOT), "excludes": list(CODE_EXCLUDES)}


def home_key(store: Store) -> str:
    """Which store a run id belongs to, on a relay that several apps (homes) may share."""
    return f"{socket.gethostname()}:{store.home.resolve()}"


def _error_text(err: BaseException) -> str:
    cause = getattr(err, "cause", None)  # a RayTaskError carries the task's own exception
    if isinstance(cause, BaseException):
        err = cause
    text = f"{type(err).__name__}: {err}".strip()
    return text[-2000:]


# ---------------------------------------------------------------------- the relay (a Ray actor)


@dataclass
class _Mailbox:
    """One run's events at the relay: ``ready`` in order and not yet acknowledged; ``early``
    arrived ahead of a gap."""

    ref: Any = None
    next_seq: int = 0
    ready: list[tuple[int, str, tuple]] = field(default_factory=list)
    early: dict[int, tuple[int, str, tuple]] = field(default_factory=dict)
    stop: bool = False
    beat: float | None = None
    ended: str | None = None  # the app's own final word (a cancelled task may not claim any more)
    done: bool = False
    error: str | None = None


class Relay:
    """The mailbox between remote workers and the app: a named, detached Ray actor (``ray.remote``
    is applied when the runner creates it). It launches each run's task, so it owns them."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, int], _Mailbox] = {}
        self._remote: dict[Any, Any] = {}

    def _box(self, home: str, run_id: int) -> _Mailbox:
        return self.runs.setdefault((home, int(run_id)), _Mailbox())

    def launch(self, home: str, run_id: int, config: dict, dataset: list, options: dict, node_home: str | None, task: Any) -> None:
        """Start ``run_id``'s task (``options``: its resources, and the launching app's runtime_env,
        so a relay started by an older app still runs this app's code)."""
        import ray

        box = self._box(home, run_id)
        fn = task or train_task
        if fn not in self._remote:
            self._remote[fn] = ray.remote(max_retries=0, max_calls=1)(fn)  # a run never reruns; one worker each
        me = ray.get_runtime_context().current_actor
        box.ref = self._remote[fn].options(name=f"gapscope-run-{run_id}", **options).remote(me, home, run_id, config, dataset[0], node_home)

    def post(self, home: str, run_id: int, seq: int, kind: str, args: tuple) -> None:
        box = self._box(home, run_id)
        box.early[int(seq)] = (int(seq), kind, args)
        while box.next_seq in box.early:
            box.ready.append(box.early.pop(box.next_seq))
            box.next_seq += 1

    def claim(self, home: str, run_id: int, seq: int, args: tuple) -> str | None:
        self.post(home, run_id, seq, "claim", args)
        return self._box(home, run_id).ended

    def beat(self, home: str, run_id: int) -> bool:
        box = self._box(home, run_id)
        box.beat = time.time()
        return box.stop

    def stop_requested(self, home: str, run_id: int) -> bool:
        return self._box(home, run_id).stop

    def request_stop(self, home: str, run_id: int) -> None:
        self._box(home, run_id).stop = True

    def cancel(self, home: str, run_id: int, status: str) -> None:
        import ray

        box = self._box(home, run_id)
        box.ended, box.stop = status, True
        if box.ref is not None and not box.done:
            with contextlib.suppress(Exception):  # already ended: nothing to cancel
                ray.cancel(box.ref, force=True)

    def drain(self, home: str, acks: dict[int, int]) -> dict[str, Any]:
        """Drop the events the app acknowledged; return, for each run of ``home``: its events in
        order, its last heartbeat (this actor's clock), whether its task has ended and with what
        error. ``now`` is this actor's clock, so the app needs no synchronised clocks."""
        import ray

        for run_id, seq in acks.items():
            box = self.runs.get((home, int(run_id)))
            if box is not None:
                box.ready = [e for e in box.ready if e[0] > seq]
        mine = {run_id: box for (h, run_id), box in self.runs.items() if h == home}
        pending = [box.ref for box in mine.values() if box.ref is not None and not box.done]
        if pending:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
            finished = set(ready)
            for box in mine.values():
                if box.ref in finished:
                    box.done = True
                    try:
                        ray.get(box.ref)
                    except Exception as err:
                        box.error = _error_text(err)
        return {
            "now": time.time(),
            "runs": {
                run_id: {"events": list(box.ready), "beat": box.beat, "done": box.done, "error": box.error} for run_id, box in mine.items()
            },
        }

    def forget(self, home: str, run_id: int) -> None:
        self.runs.pop((home, int(run_id)), None)

    def ping(self) -> float:
        return time.time()


# ---------------------------------------------------------------------- the remote side


class RelaySink:
    """The ``RunSink`` of a worker on a Ray node: every call goes to the relay as a numbered actor
    call (in order), never to SQLite; files are written to a scratch folder on the node and sent
    when they change (each heartbeat, and at the end)."""

    def __init__(self, relay: Any, home: str, run_id: int, config: dict[str, Any], *, scratch: str | Path) -> None:
        self.relay, self.home, self.run_id = relay, home, int(run_id)
        self._config = dict(config)
        self.files = RunFiles(run_id, home=scratch)
        self._seq = 0
        self._lock = threading.Lock()  # numbers are handed out in the order the calls are sent
        self._files_lock = threading.Lock()
        self._sent: dict[str, tuple[int, int, int]] = {}
        self._log_sent = 0
        self._last: Any = None
        #: Written as ``node.json`` (with the final status) just before the final status is sent,
        #: so a run that has ended has it: where it ran, the SQLite files its process opened.
        self.node: dict[str, Any] | None = None
        #: Rewrites a failure's message before it is sent: a run of several processes names the
        #: child rank that died (``core.runners.ranks``) before the error rank 0 saw of it.
        self.explain: Callable[[str], str] | None = None

    def _numbered(self, method: Any, *args: Any) -> Any:
        """Call relay ``method`` with the next sequence number (numbers go out in call order)."""
        with self._lock:
            seq, self._seq = self._seq, self._seq + 1
            self._last = method.remote(self.home, self.run_id, seq, *args)
            return self._last

    def _send(self, kind: str, *args: Any) -> Any:
        return self._numbered(self.relay.post, kind, args)

    def config(self) -> dict[str, object]:
        return dict(self._config)

    def claim(self, pid: int, pid_started: float | None) -> RunStatus | None:
        import ray

        ended = ray.get(self._numbered(self.relay.claim, (pid, pid_started)))
        return None if ended is None else RunStatus(ended)

    def stop_requested(self) -> bool:
        import ray

        return bool(ray.get(self.relay.stop_requested.remote(self.home, self.run_id)))

    def heartbeat(self) -> bool:
        import ray

        self.send_files()
        return bool(ray.get(self.relay.beat.remote(self.home, self.run_id)))

    def progress(self, message: str, *, progress: float | None = None) -> None:
        self._send("progress", message, progress)

    def add_metrics(self, step: int, split: str, values: Any, *, epoch: float | None = None) -> None:
        self._send("metrics", int(step), split, {k: (None if v is None else float(v)) for k, v in values.items()}, epoch)

    def add_predictions(self, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray) -> None:
        arrays = (np.asarray(items, np.int64), np.asarray(labels, np.int64), np.asarray(pred, np.int64), np.asarray(conf, np.float64))
        self._send("predictions", int(step), split, *arrays)

    def finish(self, status: RunStatus, message: str) -> None:
        import ray

        if self.node is not None:
            with contextlib.suppress(OSError):
                self.files.write_json("node.json", {**self.node, "status": RunStatus(status).value})
        if self.explain is not None and status == RunStatus.FAILED:
            message = self.explain(message)
        self.send_files()
        ray.get(self._send("finish", RunStatus(status).value, message))  # everything before it is delivered first

    def send_files(self) -> None:
        """Send what changed in the run's scratch folder since the last call: whole files, and the
        log from where the last call left it."""
        folder = self.files.folder
        with self._files_lock:
            if not folder.is_dir():
                return
            for path in sorted(folder.rglob("*")):
                rel = path.relative_to(folder).as_posix()
                if not path.is_file() or path.name.startswith(".") or rel == self.files.ledger_path.name:
                    continue  # temporary files of atomic writes; the ledger is the app's
                try:
                    st = path.stat()
                    if rel == self.files.log_path.name:
                        if st.st_size > self._log_sent:
                            with open(path, "rb") as fh:
                                fh.seek(self._log_sent)
                                chunk = fh.read(st.st_size - self._log_sent)
                            self._send("log", self._log_sent, chunk)
                            self._log_sent += len(chunk)
                        continue
                    key = (st.st_size, st.st_mtime_ns, st.st_ino)
                    if self._sent.get(rel) != key:
                        self._send("file", rel, path.read_bytes())
                        self._sent[rel] = key
                except FileNotFoundError:  # replaced while we looked: the next call sends it
                    continue

    def flush(self) -> None:
        """Send the files, and wait until the relay has everything sent so far."""
        import ray

        self.send_files()
        if self._last is not None:
            ray.get(self._last)


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


def train_task(relay: Any, home: str, run_id: int, config: dict[str, Any], dataset: Any, scratch_home: str | None) -> dict[str, Any]:
    """A Ray task: train ``run_id`` with the worker of a local run, through a ``RelaySink``."""
    import ray

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see core.runners.local: no spinning threads
    here = Path(scratch_home) if scratch_home else node_home()
    os.environ["GAPSCOPE_HOME"] = str(here)  # caches land on the node; the app's store is not here
    opened = guard_sqlite()  # for the life of this worker process (max_calls=1: it ends with the task)
    sink = RelaySink(relay, home, run_id, config, scratch=here)
    folder, ranks_dir = sink.files.folder, here / "ranks" / str(run_id)  # the run's files; its child ranks' (core.runners.ranks)
    for leftover in (folder, ranks_dir):  # of an earlier task of this run id on this node (one killed, say)
        shutil.rmtree(leftover, ignore_errors=True)
    folder.mkdir(parents=True)
    node = {"node_ip": _node_ip(), "hostname": socket.gethostname(), "pid": os.getpid(), "home": str(here), "sqlite_opened": opened}
    sink.node = node
    try:
        with _output_to(sink.files.log_path):
            print(
                f"--- run {run_id} on Ray node {node['node_ip']} ({node['hostname']}, pid {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')})"
            )
            print(f"    GPUs: {ray.get_gpu_ids() or 'none'} · scratch {folder}", flush=True)
            from core.train.distributed import SINGLE
            from core.train.worker import run_with_sink

            def load_dataset(version_id: int) -> Any:
                if int(version_id) != int(config["version_id"]):
                    raise ValueError(f"this task carries version {config['version_id']}, not {version_id}")
                return dataset

            ranks = None
            world = int(config.get("processes", 1) or 1)
            if world > 1:  # ranks 1..world-1 as processes of this task; this one is rank 0 (core.runners.ranks)
                from core.runners.ranks import Ranks

                ranks = Ranks(run_id, config, dataset, ranks_dir, world)
                print(
                    f"    {world} processes: this one is rank 0; ranks 1–{world - 1} are pids {[c.pid for c in ranks.children]}", flush=True
                )
                ranks.watch(lambda why: _fail_now(sink, why))
                sink.explain = ranks.explain
            try:
                status = run_with_sink(sink, load_dataset, dist=ranks.dist if ranks else SINGLE)
            finally:
                if ranks is not None:
                    codes = ranks.close()
                    print(f"    ranks 1–{world - 1} ended with exit codes {codes}", flush=True)
        sink.flush()  # the log's last lines, after the final status
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(ranks_dir, ignore_errors=True)
    return {**node, "status": str(status)}


def _fail_now(sink: RelaySink, why: str) -> None:
    """A child rank failed while this process (rank 0) may wait for it in a collective forever:
    send the final status and end the task (its child ranks die with it)."""
    with contextlib.suppress(Exception):
        print(f"run {sink.run_id} failed: {why}", flush=True)
        sink.finish(RunStatus.FAILED, why)
        sink.flush()
    os._exit(1)


# ---------------------------------------------------------------------- files from the node


def write_run_file(folder: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` to ``folder / rel`` atomically; refuse a path that leaves ``folder``."""
    target = _inside(folder, rel)
    return atomic_write_bytes(target, data)


def write_log_chunk(path: Path, offset: int, data: bytes) -> None:
    """Put ``data`` at ``offset`` of the log (idempotent: a chunk applied twice lands in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, int(offset))
    finally:
        os.close(fd)


def _inside(folder: Path, rel: str) -> Path:
    path = Path(rel)
    root = folder.resolve()
    target = (root / path).resolve()
    if path.is_absolute() or ".." in path.parts or not target.is_relative_to(root) or target == root:
        raise ValueError(f"refusing a file outside the run's folder: {rel!r}")
    return target


# ---------------------------------------------------------------------- the runner (this app)


class RayRunner(QueueRunner):
    """Runs each run as a Ray task on a cluster; the app's store stays the one source of truth.

    Parameters
    ----------
    store : Store, optional
        Default: ``Store()`` at ``GAPSCOPE_HOME``.
    address : str, optional
        The cluster (``ray://head:10001``, ``auto``, ``host:6379``); default ``GAPSCOPE_RAY_ADDRESS``.
        Ignored when Ray is already initialised in this process.
    grace_s : float
        After a stop request, seconds before the task is cancelled by force.
    stale_after_s : float
        A run whose worker sent no heartbeat for this long is cancelled and marked failed.
    start_timeout_s : float
        A launched task that has not begun within this long (no node has the resources) is
        cancelled and marked failed.
    capacity : int, optional
        Runs at once; default the cluster's GPUs, or its CPUs when it has none.
    ship_code : bool
        Connect with ``code_runtime_env()``: this checkout's code travels to the nodes with the job.
    scratch_home : str, optional
        The workers' home on the nodes; default ``GAPSCOPE_NODE_HOME`` there, else a folder in
        the node's temporary directory.
    task : callable, optional
        The function each Ray task runs (default ``train_task``; tests pass another).
    """

    poll_s = 0.2
    thread_name = "gapscope-ray-runner"

    def __init__(
        self,
        store: Store | None = None,
        address: str | None = None,
        *,
        grace_s: float = 10.0,
        stale_after_s: float = STALE_AFTER_S,
        start_timeout_s: float = 600.0,
        capacity: int | None = None,
        ship_code: bool = True,
        scratch_home: str | None = None,
        task: Callable[..., Any] | None = None,
        log_lines: int = 20,
    ) -> None:
        ray = import_ray()
        super().__init__(store if store is not None else Store())
        self.address = address if address is not None else os.environ.get(ADDRESS_ENV, "").strip() or None
        if not ray.is_initialized():
            if self.address is None:
                raise DataError(f"No Ray cluster to connect to: set {ADDRESS_ENV} (ray://head:10001, auto, or host:6379).")
            check_reachable(self.address)
            try:
                ray.init(
                    address=self.address, namespace=NAMESPACE, runtime_env=code_runtime_env() if ship_code else None,
                    ignore_reinit_error=True, log_to_driver=False,
                )  # fmt: skip
            except Exception as err:
                raise DataError(
                    f"Could not connect to the Ray cluster at {self.address}: {type(err).__name__}: {err}. A cluster with token "
                    "authentication (Ray's default) also needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token."
                ) from err
        self.grace_s, self.stale_after_s, self.start_timeout_s = grace_s, stale_after_s, start_timeout_s
        self._capacity, self.scratch_home, self.task, self.log_lines = capacity, scratch_home, task, log_lines
        self.home = home_key(self.store)
        try:  # the job's runtime_env as Ray resolved it (working_dir → a gcs:// package)
            self._runtime_env: dict[str, Any] = dict(ray.get_runtime_context().runtime_env or {})
        except Exception:  # not known here (e.g. an older Ray Client): the tasks inherit the relay's
            self._runtime_env = {}
        self.relay = (
            ray.remote(Relay)
            .options(name=RELAY_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0, max_restarts=0)
            .remote()
        )
        self._sinks: dict[int, StoreSink] = {}
        self._acks: dict[int, int] = {}
        self._stops_sent: set[int] = set()
        self._datasets: dict[int, Any] = {}  # version id → ObjectRef while a run of it is active
        self._resources: tuple[float, dict[str, float]] | None = None
        self._node_gpus: tuple[float, int] | None = None

    # ------------------------------------------------------------------ Runner protocol (the rest: QueueRunner)
    def recover(self) -> list[int]:
        """At app start-up: reattach to the relay (by name) and apply what it holds; runs it does
        not know, or whose heartbeat is stale, are marked failed (rows kept). Returns their ids."""
        with self._lock:
            return self._drain()

    def tick(self) -> list[int]:
        """Apply what the workers sent, forward stops, notice ended or lost tasks, launch queued
        runs while the cluster has room; return the ids launched."""
        with self._lock:
            self._drain()
            started: list[int] = []
            capacity = self.capacity()
            while (row := self.store.claim_next_run(capacity, runner=RUNNER)) is not None:
                self._launch(row)
                started.append(int(row.id))
            return started

    def resources(self) -> dict[str, float]:
        """The cluster's resources (``ray.cluster_resources()``, refreshed every 10 s)."""
        now = time.monotonic()
        if self._resources is None or now - self._resources[0] > 10.0:
            self._resources = (now, dict(import_ray().cluster_resources()))
        return self._resources[1]

    def node_gpus(self) -> int:
        """GPUs of the cluster's largest node (refreshed every 10 s): the most one run can have,
        since a run's processes share a node (``core.runners.ranks``)."""
        now = time.monotonic()
        if self._node_gpus is None or now - self._node_gpus[0] > 10.0:
            alive = [n for n in import_ray().nodes() if n.get("Alive")]
            self._node_gpus = (now, max((int(n.get("Resources", {}).get("GPU", 0)) for n in alive), default=0))
        return self._node_gpus[1]

    def capacity(self) -> int:
        """Runs at once: as given, else one per GPU of the cluster, or per CPU without GPUs."""
        if self._capacity is not None:
            return max(1, int(self._capacity))
        res = self.resources()
        gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 0))
        return max(1, gpus or cpus)

    def describe(self) -> str:
        """'Ray cluster at ray://head:10001 · 3 nodes · 96 CPUs · 8 GPUs · 8 runs at once'."""
        res = self.resources()
        nodes = sum(1 for k in res if k.startswith("node:") and not k.startswith("node:__internal"))
        parts = [f"Ray cluster at {self.address or 'this process'}", f"{nodes} node{'s' * (nodes != 1)}", f"{int(res.get('CPU', 0))} CPUs"]
        if res.get("GPU"):
            parts.append(f"{int(res['GPU'])} GPUs")
        return " · ".join([*parts, f"{self.capacity()} runs at once"])

    # ------------------------------------------------------------------ internals
    def _own(self) -> dict[int, RunRow]:
        return {int(r.id): r for r in self.store.runs(status=WORKING) if r.runner == RUNNER}

    def _task_options(self, config: dict[str, Any]) -> dict[str, Any]:
        """A run's task: one GPU per process when it may use CUDA and the cluster has GPUs, else one
        CPU; this app's runtime_env (its code, shipped with the job)."""
        device = str(config.get("device", "auto"))
        processes = max(1, int(config.get("processes", 1) or 1))  # core.runners.ranks: one process per GPU, or per CPU
        options: dict[str, Any] = {"num_cpus": processes}
        if self.resources().get("GPU") and (device == "auto" or device.startswith("cuda")):
            options = {"num_gpus": processes}
        if self._runtime_env:
            options["runtime_env"] = self._runtime_env
        return options

    def _launch(self, row: RunRow) -> None:
        ray = import_ray()
        run_id, config = int(row.id), dict(row.config)
        try:
            vid = int(config["version_id"])
            if vid not in self._datasets:
                self._datasets[vid] = ray.put(self.store.load_dataset(vid))  # nodes need no access to this home
            ray.get(
                self.relay.launch.remote(
                    self.home, run_id, config, [self._datasets[vid]], self._task_options(config), self.scratch_home, self.task
                ),
                timeout=120,
            )
        except Exception as err:
            self._end(row, RunStatus.FAILED, f"could not launch the run on the Ray cluster: {_error_text(err)}")
            return
        self.store.set_run_status(run_id, None, only_if=WORKING, message="waiting for the cluster", heartbeat_at=time.time())

    def _drain(self) -> list[int]:  # noqa: C901 - being split
        ray = import_ray()
        marked: list[int] = []
        reply = ray.get(self.relay.drain.remote(self.home, self._acks), timeout=120)
        self._acks = {}
        offset = time.time() - float(reply["now"])  # this clock minus the relay's
        boxes: dict[int, dict[str, Any]] = {int(k): v for k, v in reply["runs"].items()}
        behind: set[int] = set()  # runs with events left for the next tick (the store was busy)
        for run_id, box in boxes.items():
            if box["events"]:
                done_to = self._apply(run_id, box["events"])
                if done_to is not None:
                    self._acks[run_id] = done_to
                if done_to != box["events"][-1][0]:
                    behind.add(run_id)
        now = time.time()
        for run_id, row in self._own().items():
            mail = boxes.get(run_id)
            if run_id in behind:
                continue
            if mail is None:
                if self._end(row, RunStatus.FAILED, "the Ray cluster no longer knows this run (its relay or the cluster restarted)"):
                    marked.append(run_id)
                continue
            if mail["done"]:
                why = f"the Ray task ended without the worker's final status: {mail['error'] or 'it returned early'}"
                if self._end(row, RunStatus.FAILED, why):
                    marked.append(run_id)
                continue
            if row.stop_requested and run_id not in self._stops_sent:
                ray.get(self.relay.request_stop.remote(self.home, run_id), timeout=60)
                self._stops_sent.add(run_id)
            if row.stored_status == RunStatus.STOPPING and now - (row.stop_requested_at or now) > self.grace_s:
                self._cancel(run_id, RunStatus.STOPPED)
                if self._end(row, RunStatus.STOPPED, f"stopped (the Ray task was cancelled {self.grace_s:.0f} s after the stop request)"):
                    marked.append(run_id)
                continue
            beat = None if mail["beat"] is None else float(mail["beat"]) + offset
            if beat is None:  # launched, not begun: no node had room yet, or its environment is being set up
                waited = now - (row.started_at or now)
                if waited > self.start_timeout_s:
                    self._cancel(run_id, RunStatus.FAILED)
                    why = f"the Ray task did not start within {self.start_timeout_s:.0f} s (does a node have the resources it asks for?)"
                    if self._end(row, RunStatus.FAILED, why):
                        marked.append(run_id)
                else:  # waiting, not lost: readers must not show it as lost
                    self.store.set_run_status(run_id, None, only_if=WORKING, heartbeat_at=now)
                continue
            if now - beat > self.stale_after_s:
                self._cancel(run_id, RunStatus.FAILED)
                if self._end(
                    row, RunStatus.FAILED, f"no heartbeat for {now - beat:.0f} s: the Ray task was lost (its node died?) and was cancelled"
                ):
                    marked.append(run_id)
                continue
            self.store.set_run_status(run_id, None, only_if=WORKING, heartbeat_at=beat)
        still = self._own()
        for run_id, box in boxes.items():
            if box["done"] and run_id not in still and run_id not in behind:  # ended, and everything it sent is applied: let go
                self.relay.forget.remote(self.home, run_id)
                self._acks.pop(run_id, None)
                self._sinks.pop(run_id, None)
                self._stops_sent.discard(run_id)
        active_versions = {
            int(r.config["version_id"]) for r in self.store.runs(status=ACTIVE) if r.stored_status == RunStatus.QUEUED or r.runner == RUNNER
        }
        for vid in set(self._datasets) - active_versions:
            del self._datasets[vid]
        return marked

    def _apply(self, run_id: int, events: list[tuple[int, str, tuple]]) -> int | None:
        """Apply ``events`` through the run's ``StoreSink``; return the last sequence number applied."""
        sink = self._sinks.get(run_id)
        if sink is None:
            sink = self._sinks[run_id] = StoreSink(self.store, run_id, lock_patience_s=5.0)
        last = None
        for seq, kind, args in events:
            try:
                if kind == "claim":
                    sink.claim(*args)
                elif kind == "progress":
                    sink.progress(args[0], progress=args[1])
                elif kind == "metrics":
                    sink.add_metrics(args[0], args[1], args[2], epoch=args[3], seq=seq)  # stored once, even if sent twice
                elif kind == "predictions":
                    sink.add_predictions(*args)
                elif kind == "finish":
                    sink.finish(RunStatus(args[0]), args[1])
                elif kind == "file":
                    write_run_file(sink.files.folder, args[0], args[1])
                elif kind == "log":
                    write_log_chunk(sink.files.log_path, args[0], args[1])
            except ValueError as err:  # a path outside the run's folder: never written
                print(f"run {run_id}: {err}", file=sys.stderr)
            except Exception as err:  # the store busy or full: this event and the rest wait for the next tick
                print(f"run {run_id}: {type(err).__name__}: {err}; retrying at the next tick", file=sys.stderr)
                return last
            last = seq
        return last

    def _cancel(self, run_id: int, status: RunStatus) -> None:
        with contextlib.suppress(Exception):
            import_ray().get(self.relay.cancel.remote(self.home, run_id, status.value), timeout=60)


if TYPE_CHECKING:

    def _is_a_runner(runner: RayRunner) -> Runner:  # mypy checks that RayRunner satisfies Runner
        return runner
