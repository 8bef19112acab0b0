"""The Ray runner: each run a Ray task on a cluster; what it learns comes back to this app's store.

    export GAPSCOPE_RAY_ADDRESS=ray://head:10001   # or auto, or 10.0.0.5:6379 (pip install '.[ray]')
    runner = RayRunner(Store())   # connects (ray.init) unless Ray is already initialised here
    runner.recover()              # once at app start-up: reattach to the relay, mark lost runs failed
    run_id = runner.submit(cfg)   # queued; launched on the cluster by this or a later tick()
    runner.tick()                 # often (or runner.start_ticking())
    runner.stop(run_id)           # the relay's stop flag, at once → cancelled after grace_s if not honoured

How a run travels
-----------------
::

    this app (owns the store)                               the cluster
    claim_next_run(capacity, runner="ray")
    store.load_dataset → ray.put ───────────────────────▶ object store
    relay.launch(run, config, dataset) ─────────────────▶ Relay (core.runners.ray.relay): a named,
                                                          detached actor; it launches the task
                                                          train_task (core.runners.ray.task):
                                                            run_with_sink(RelaySink, …) — the worker
                                                            of a local run, another sink
                                                          RelaySink: every call → the relay, numbered
    tick(): relay.drain(acks) ◀───────────────────────── events in order, heartbeats, ended tasks
      decide(…) (core.runners.ray.drain, pure) → actions → Executor (core.runners.ray.executor):
      events through each run's AppSink (the rows, ledger and status of a local run), files into
      GAPSCOPE_HOME/runs/<id>/; stops, cancels, scratch cleaning through the relay
    stop(): the relay's stop flag, set directly (its control thread: never behind the events)

- The worker never opens SQLite; everything it writes travels as events (``core.runners.ray.protocol``).
- Delivery is at least once, storage exactly once: the app acknowledges the events it applied
  with its next drain, so an app killed between the two is sent a few again; applying one again
  changes nothing.
- One process per home drains (``core.runners.ray.leader``): the queue keeper that
  ``./gapscope.sh run`` starts beside the app (``core.runners.ray.keeper``), so results keep coming
  in and queued runs start with no page open; else the app's own runner. A runner that does not
  hold the lock leaves ``tick`` to the holder; its ``submit`` queues and its ``stop`` still sets
  the relay's flag at once.
- Capacity is the cluster's: one run per GPU (or per CPU on a cluster without GPUs).

What a runner writes when the worker cannot: see ``core.runners.ray.drain``. Rows already written
are kept; nothing is stored for a run after its final status.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.runners.queue import QueueRunner
from core.runners.ray.connect import ADDRESS_ENV, RUNNER, connect, error_text, home_key, import_ray
from core.runners.ray.drain import Limits, Mail, RunState, decide
from core.runners.ray.executor import Executor
from core.runners.ray.leader import DrainLock
from core.runners.ray.relay import RelayClient
from core.store.database import Store
from core.store.rows import RunRow
from core.store.status import ACTIVE, STALE_AFTER_S, WORKING, RunStatus

if TYPE_CHECKING:
    from core.runners.base import Runner

#: Events applied per run and drain: a drain (and the lock it holds) stays short however far
#: behind the app is; the rest come with the next ones.
DRAIN_LIMIT = 200


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
        The function each Ray task runs (default ``core.runners.ray.task.train_task``; tests pass another).
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
        super().__init__(store if store is not None else Store())
        self.address = address if address is not None else os.environ.get(ADDRESS_ENV, "").strip() or None
        ray = connect(self.address, ship_code=ship_code)
        self.grace_s, self.stale_after_s, self.start_timeout_s = grace_s, stale_after_s, start_timeout_s
        self._capacity, self.scratch_home, self.task, self.log_lines = capacity, scratch_home, task, log_lines
        self.home = home_key(self.store)
        try:  # the job's runtime_env as Ray resolved it (working_dir → a gcs:// package)
            self._runtime_env: dict[str, Any] = dict(ray.get_runtime_context().runtime_env or {})
        except Exception:  # not known here (e.g. an older Ray Client): the tasks inherit the relay's
            self._runtime_env = {}
        self.relay = RelayClient(ray, self.home)
        self.lead = DrainLock(self.store.home)
        self.executor = Executor(self.store, self.relay, self._end)
        self._datasets: dict[int, Any] = {}  # version id → ObjectRef while a run of it is active
        self._resources: tuple[float, dict[str, float]] | None = None
        self._node_gpus: tuple[float, int] | None = None

    # ------------------------------------------------------------------ Runner protocol (the rest: QueueRunner)
    def recover(self) -> list[int]:
        """At app start-up: reattach to the relay (by name) and apply what it holds; runs it does
        not know, or whose heartbeat is stale, are marked failed (rows kept). Returns their ids.
        Nothing, if another process drains this home (``core.runners.ray.leader``)."""
        with self._lock:
            return self._drain() if self.lead.acquire() else []

    def tick(self) -> list[int]:
        """Apply what the workers sent, forward stops, notice ended or lost tasks, launch queued
        runs while the cluster has room; return the ids launched. Nothing, if another process
        drains this home."""
        with self._lock:
            if not self.lead.acquire():
                return []
            self._drain()
            started: list[int] = []
            capacity = self.capacity()
            while (row := self.store.claim_next_run(capacity, runner=RUNNER)) is not None:
                self._launch(row)
                started.append(int(row.id))
            return started

    def stop(self, run_id: int, *, wait_s: float = 0.0) -> RunStatus:
        """Ask ``run_id`` to stop; return its status. The relay's stop flag is set at once (its
        worker polls it every 0.5 s, whatever backlog of events it has sent); a task that has not
        stopped ``grace_s`` later is cancelled. With ``wait_s`` > 0, tick until it has ended."""
        status = self.store.request_stop(run_id)
        if status in WORKING and self.store.run(run_id).runner == RUNNER:
            self.executor.forward_stop(run_id)
        return self._await_end(run_id, wait_s) if wait_s > 0 else status

    def close(self) -> None:
        """Stop ticking and let another process drain this home (runs keep going)."""
        super().close()
        with self._lock:
            self.lead.release()

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
    def limits(self) -> Limits:
        return Limits(grace_s=self.grace_s, stale_after_s=self.stale_after_s, start_timeout_s=self.start_timeout_s)

    def _task_options(self, config: dict[str, Any]) -> dict[str, Any]:
        """A run's task: one GPU per process when it may use CUDA and the cluster has GPUs, else one
        CPU per process; this app's runtime_env (its code, shipped with the job)."""
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
            self.relay.launch(run_id, config, self._datasets[vid], self._task_options(config), self.scratch_home, self.task)
        except Exception as err:
            self._end(row, RunStatus.FAILED, f"could not launch the run on the Ray cluster: {error_text(err)}")
            return
        self.store.set_run_status(run_id, None, only_if=WORKING, message="waiting for the cluster", heartbeat_at=time.time())

    def _drain(self) -> list[int]:
        """One drain: the relay's mail → ``decide`` → the executor; return the runs ended here."""
        reply = self.relay.drain(self.executor.acks(), DRAIN_LIMIT)
        self.executor.sent_acks()
        mail = {int(run_id): Mail.of(box) for run_id, box in reply["runs"].items()}
        rows = {int(r.id): r for r in self.store.runs(status=WORKING) if r.runner == RUNNER}
        for run_id in set(mail) - set(rows):  # ended runs the relay still holds mail for
            try:
                rows[run_id] = self.store.run(run_id)
            except KeyError:  # not in this store (any more): its mail is dropped
                continue
        states = {run_id: RunState.of(row) for run_id, row in rows.items()}
        actions = decide(states, mail, self.executor.past(), now=time.time(), relay_now=float(reply["now"]), limits=self.limits())
        marked = self.executor.carry_out(actions, rows)
        active = {
            int(r.config["version_id"]) for r in self.store.runs(status=ACTIVE) if r.stored_status == RunStatus.QUEUED or r.runner == RUNNER
        }
        for vid in set(self._datasets) - active:
            del self._datasets[vid]
        return marked


if TYPE_CHECKING:

    def _is_a_runner(runner: RayRunner) -> Runner:  # mypy checks that RayRunner satisfies Runner
        return runner
