"""The local runner: each run a subprocess of this machine, at most ``max_parallel`` at a time.

    runner = LocalRunner(Store())
    runner.recover()              # once at app start-up: runs whose worker is gone → failed
    run_id = runner.submit(cfg)   # queued; started by this or a later tick()
    runner.tick()                 # often (or runner.start_ticking() for a background thread)
    runner.status(run_id)         # the store's run row
    runner.stop(run_id)           # cooperative flag → SIGTERM after grace_s → SIGKILL after 2 × grace_s
    runner.logs(run_id, tail=50)

Life of a local run
-------------------
``queued`` → ``running`` (claimed; the worker is started with ``start_new_session=True`` so it and
its children form one process group, cwd = the repository root, ``GAPSCOPE_HOME`` in its
environment, stdout and stderr appended to ``GAPSCOPE_HOME/runs/<id>/log.txt``; its pid and its
start time (``core.runners.processes``) are recorded) → the worker writes ``finished``, ``stopped``
or ``failed`` itself. When it cannot (killed, crashed, lost), a runner writes it instead:

- exit without a final status (e.g. ``kill -9``, out of memory) → ``failed``, with the exit
  code and the last log lines in ``message``;
- pid gone, or the pid now belongs to another process (its start time differs), e.g. after the
  machine or the app restarted → ``failed`` the same way (``recover``);
- no heartbeat for ``stale_after_s`` while the process lives (hung) → its group is killed and the
  run is ``failed``;
- a stop that needed signals → ``stopped``.

Runs another runner claimed (``runs.runner`` = "ray": ``core.runners.ray``) are that runner's:
this one neither counts their slots nor marks them.

Only the move out of an active status is ever written (a compare-and-set), so a worker's own final
word always wins. Nothing a worker wrote — metric rows, predictions, checkpoints, logs — is
deleted by any of this.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from core.runners.processes import process_start_time, same_process
from core.runners.queue import QueueRunner
from core.store.artifacts import RunFiles
from core.store.database import Store
from core.store.rows import RunRow
from core.store.status import STALE_AFTER_S, WORKING, RunStatus

if TYPE_CHECKING:
    from core.runners.base import Runner

REPO_ROOT = Path(__file__).resolve().parents[2]


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # torch missing or broken: the CPU it is
        return 0


def is_local(row: RunRow) -> bool:
    """Whether this machine's runner holds the run (``runs.runner`` NULL or "local"; "ray" is a cluster's)."""
    return row.runner == "local"


# ---------------------------------------------------------------------- the local runner


class LocalRunner(QueueRunner):
    """Runs each run as a subprocess of this machine, at most ``max_parallel`` at a time.

    Parameters
    ----------
    store : Store, optional
        Default: ``Store()`` at ``GAPSCOPE_HOME``.
    max_parallel : int, optional
        Runs at once; default one per GPU, or 1 without a GPU.
    grace_s : float
        After a stop request, seconds before SIGTERM goes to the worker's process group; SIGKILL
        follows after another ``grace_s``.
    stale_after_s : float
        A live worker without a heartbeat for this long is killed and marked failed.
    start_timeout_s : float
        A claimed run whose worker never recorded a pid within this long is marked failed.
    log_lines : int
        Log lines copied into ``message`` when a worker dies.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        max_parallel: int | None = None,
        grace_s: float = 10.0,
        stale_after_s: float = STALE_AFTER_S,
        start_timeout_s: float = 60.0,
        log_lines: int = 20,
        python: str | None = None,
    ) -> None:
        super().__init__(store if store is not None else Store())
        self.n_gpus = _gpu_count() if max_parallel is None else None
        self.max_parallel = max_parallel if max_parallel is not None else max(1, self.n_gpus or 0)
        if self.max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1; got {max_parallel}")
        self.grace_s, self.stale_after_s, self.start_timeout_s = grace_s, stale_after_s, start_timeout_s
        self.log_lines = log_lines
        self.python = python or sys.executable
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ upkeep
    def log_path(self, run_id: int) -> Path:
        return RunFiles(run_id, home=self.store.home).log_path

    def tick(self) -> list[int]:
        """Notice ended or lost workers, escalate overdue stops, start queued runs; return the ids
        started. Cheap (a few small queries): call it often."""
        with self._lock:
            self._reap()
            started: list[int] = []
            while True:
                row = self.store.claim_next_run(self.max_parallel, runner="local")
                if row is None:
                    return started
                self._start(row)
                started.append(int(row.id))

    def recover(self) -> list[int]:
        """At app start-up: mark runs left running by a killed app or worker (pid gone, or reused
        by another process) as failed, keeping all their rows. Returns the ids it marked."""
        with self._lock:
            return self._reap()

    # ------------------------------------------------------------------ internals
    def _start(self, row: RunRow) -> None:
        run_id = int(row.id)
        log = self.log_path(run_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GAPSCOPE_HOME": str(self.store.home), "PYTHONUNBUFFERED": "1"}
        # OpenMP threads that sleep instead of spinning while they wait: a worker shares the
        # machine with the app (and other workers); spinning threads on a busy 2-core machine made
        # steps of small models up to 20× slower in our measurements.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        processes = int(row.config.get("processes", 1) or 1)
        gpu = self._pick_gpu(row) if processes == 1 else None  # several processes: one per visible GPU
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        command = [self.python, "-m", "core.train", str(run_id)]
        if processes > 1:  # torchrun starts the processes and leads their group (core.train.distributed)
            command = [self.python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *command[1:]]
        try:
            with open(log, "ab") as fh:
                fh.write(f"--- run {run_id}: {' '.join(command)} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode())
                fh.flush()
                proc = subprocess.Popen(
                    command,
                    cwd=REPO_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as err:
            self.store.set_run_status(
                run_id, RunStatus.FAILED, only_if=WORKING, finished_at=time.time(), message=f"could not start the worker: {err}"
            )
            return
        self._procs[run_id] = proc
        self.store.set_run_status(
            run_id, None, only_if=WORKING, pid=proc.pid, pid_started=process_start_time(proc.pid), heartbeat_at=time.time(), gpu=gpu
        )

    def _pick_gpu(self, row: RunRow) -> int | None:
        if not self.n_gpus:
            return None
        device = str(row.config.get("device", "auto"))
        if device not in ("auto", "cuda"):
            return None  # cpu, mps, or an explicit cuda:N that the worker honours itself
        busy = {r.gpu for r in self.store.runs(status=WORKING) if r.id != row.id and is_local(r)}
        return next((i for i in range(self.n_gpus) if i not in busy), 0)

    def _reap(self) -> list[int]:
        marked = []
        now = time.time()
        live_rows = [r for r in self.store.runs(status=WORKING) if is_local(r)]  # a cluster's runs are its runner's
        live_ids = {int(r.id) for r in live_rows}
        for run_id, proc in list(self._procs.items()):  # workers that ended with their own final status
            if run_id not in live_ids and proc.poll() is not None:
                self._procs.pop(run_id)  # reaped: no zombie left behind
                self.store.set_run_status(run_id, None, exit_code=proc.returncode)
        for row in live_rows:
            run_id, pid = int(row.id), row.pid
            running = self._procs.get(run_id)
            alive: bool | None
            if running is not None:
                rc = running.poll()
                alive = rc is None
            else:
                rc = None
                alive = same_process(pid, row.pid_started) if pid else None
            if alive is None:  # claimed, no pid recorded yet
                never = f"the worker never started (no pid after {self.start_timeout_s:.0f} s)"
                if now - (row.started_at or now) > self.start_timeout_s and self._end(row, RunStatus.FAILED, never):
                    marked.append(run_id)
                continue
            if not alive:
                self._procs.pop(run_id, None)
                if self._end(row, *self._verdict(row, rc), exit_code=rc):
                    marked.append(run_id)
                continue
            if row.stored_status == RunStatus.STOPPING:
                self._escalate(row, now)
            beat = row.heartbeat_at
            if beat is not None and now - beat > self.stale_after_s:
                self._signal(row, signal.SIGKILL)
                if running is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        running.wait(timeout=5)
                    self._procs.pop(run_id, None)
                if self._end(row, RunStatus.FAILED, f"no heartbeat for {now - beat:.0f} s: the worker hung and was killed"):
                    marked.append(run_id)
        return marked

    def _verdict(self, row: RunRow, rc: int | None) -> tuple[RunStatus, str]:
        if row.stored_status == RunStatus.STOPPING or row.stop_requested:
            return RunStatus.STOPPED, "stopped (the worker was ended by a signal after the stop request)"
        if rc is None:
            why = f"the worker (pid {row.pid}) is gone — the app or the machine restarted, or it was killed"
        elif rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            why = f"the worker was killed by {name}"
        else:
            why = f"the worker exited with code {rc} without a final status"
        return RunStatus.FAILED, why

    def _escalate(self, row: RunRow, now: float) -> None:
        asked = row.stop_requested_at or now
        if now - asked > 2 * self.grace_s:
            self._signal(row, signal.SIGKILL)
        elif now - asked > self.grace_s:
            self._signal(row, signal.SIGTERM)

    def _signal(self, row: RunRow, sig: int) -> None:
        """Send ``sig`` to the worker's process group, only if the pid is still that worker."""
        pid = row.pid
        if not pid or not same_process(pid, row.pid_started):
            return
        try:
            os.killpg(pid, sig)  # start_new_session=True: the worker leads its own group
        except ProcessLookupError:
            pass
        except PermissionError:  # pragma: no cover - not our process after all
            pass


if TYPE_CHECKING:

    def _is_a_runner(runner: LocalRunner) -> Runner:  # mypy checks that LocalRunner satisfies Runner
        return runner
