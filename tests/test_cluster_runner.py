"""The Ray runner (core.runners.ray) against a Ray head this module starts on 127.0.0.1: real
tasks, a real relay actor, the app's real store, the queue keeper as its own process. Skipped, with
the reason, where Ray cannot start. Every wait is on a condition (the store, the relay, a folder),
never on a clock."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from core.data.demos import load_digits_8x8
from core.runners.base import Runner
from core.runners.local import LocalRunner
from core.runners.processes import process_start_time
from core.store import RunFiles, RunStatus, Store
from core.train.config import RunConfig
from tests.conftest import ROOT
from tests.test_runners import _wait_for

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head in this process, bound to 127.0.0.1 with 2 CPUs, the code shipped as a working_dir
    the way the app ships it. ``ray.shutdown()`` ends it (never ``ray stop``: that ends every Ray
    on the machine)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
    mp.delenv("RAY_ADDRESS", raising=False)
    # Ray's single-machine mode: the node keeps 127.0.0.1 instead of the machine's routable address
    # (read when ray is imported, and by the processes it starts)
    mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as err:
        mp.undo()
        pytest.skip(f"Ray cannot start here: {err} (pip install '.[ray]')")
    from core.runners.ray import NAMESPACE, code_runtime_env

    temp = tempfile.mkdtemp(prefix="gs-ray-", dir="/tmp")  # short: Ray's socket paths live under it
    try:
        ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            num_cpus=2,
            num_gpus=0,
            object_store_memory=200 * 2**20,
            namespace=NAMESPACE,
            runtime_env=code_runtime_env(),
            _temp_dir=temp,
            log_to_driver=False,
        )
    except Exception as err:
        with contextlib.suppress(Exception):
            ray.shutdown()
        mp.undo()
        shutil.rmtree(temp, ignore_errors=True)
        pytest.skip(f"Ray cannot start here: {type(err).__name__}: {err}")
    yield ray
    ray.shutdown()
    mp.undo()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def digits(store) -> int:
    return store.save_dataset(load_digits_8x8().dataset, source="demo:digits")


@pytest.fixture
def make_runner(ray_head, store, tmp_path):
    from core.runners.ray import RayRunner

    made = []

    def make(**kw):
        # the workers' home on the "node": a folder of its own, never the app's store
        runner = RayRunner(store, scratch_home=str(tmp_path / "node"), **kw)
        made.append(runner)
        return runner

    yield make
    for runner in made:  # no task left running into the next test
        for row in runner.store.runs(status=("running", "stopping")):
            runner.relay.cancel(int(row.id), RunStatus.FAILED)
        runner.close()


def _cfg(version_id: int, **kw) -> RunConfig:
    return RunConfig(
        **{"version_id": version_id, "model": "small_cnn", "epochs": 1, "batch_size": 64, "lr": 3e-3, "device": "cpu", "seed": 3, **kw}
    )


def _long(version_id: int, **kw) -> RunConfig:
    return _cfg(version_id, epochs=1000, eval_every_steps=10, **kw)


def _shape(store, run_id) -> dict[str, tuple[set[str], int | None]]:
    """Per split: the metric names, and the number of rows of each evaluation split (train points are
    written at most ~4 a second: their number depends on the machine's speed, their names do not)."""
    m = store.metrics(run_id)
    return {split: (set(g.name), None if split == "train" else len(g)) for split, g in m.groupby("split")}


def _raising_task(relay, home, run_id, config, dataset, scratch_home):
    raise RuntimeError(f"boom on the node (run {run_id})")


def test_ray_runner_implements_every_runner_method_with_its_signature():
    import inspect

    from core.runners.ray import RayRunner

    wanted = {name: fn for name, fn in inspect.getmembers(Runner, inspect.isfunction) if not name.startswith("_")}
    for name, proto in wanted.items():
        impl, spec = inspect.signature(getattr(RayRunner, name)), inspect.signature(proto)
        assert list(impl.parameters) == list(spec.parameters), name
        assert impl.return_annotation == spec.return_annotation, name


def test_a_run_on_ray_stores_what_a_local_run_stores_without_opening_sqlite(store, digits, home, make_runner, tmp_path, ray_head):
    local = LocalRunner(store, max_parallel=1)
    here = local.wait(local.submit(_cfg(digits)), timeout_s=300)
    assert here.status == "finished", here.message
    ray_runner = make_runner()
    run_id = ray_runner.submit(_cfg(digits))
    row = store.run(run_id)
    assert row.runner == "ray" and row.status == "running"
    # the app that launched it goes away; a new one reattaches to the relay and carries on
    ray_runner.close()
    again = make_runner()
    assert again.recover() == []
    row = again.wait(run_id, timeout_s=400)
    assert row.status == "finished", row.message + "\n" + again.logs(run_id, 80)
    assert row.message.startswith("done:")
    # the same rows as the local run: metric names and counts per split, predictions
    assert _shape(store, run_id) == _shape(store, here.id)
    assert len(store.predictions(run_id)) == len(store.predictions(here.id)) > 0
    assert len(store.predictions(run_id, split="test_ts")) == len(store.predictions(here.id, split="test_ts"))
    # the files came back to the run's folder; the ledger (written by the app's StoreSink) counts every row
    files = RunFiles(run_id, home=home)
    for name in ("config.json", "summary.json", "log.txt", "best.pt", "last.pt", "node.json"):
        assert (files.folder / name).is_file(), name
    assert files.read_json("summary.json")["status"] == "finished" and files.eval_steps() == RunFiles(here.id, home=home).eval_steps()
    assert files.ledger()["metrics"] == len(store.metrics(run_id))
    log = again.logs(run_id, 200)
    node = files.read_json("node.json")
    # 127.0.0.1 unless ray was imported before the fixture set Ray's single-machine mode
    assert node["node_ip"] in {n["NodeManagerAddress"] for n in ray_head.nodes()}
    assert f"on Ray node {node['node_ip']}" in log and "eval step" in log
    # the worker never opened SQLite (an audit hook in the task saw every sqlite3.connect), and its
    # home on the node is not the store
    assert node["sqlite_opened"] == [] and node["status"] == "finished"
    assert node["home"] == str(tmp_path / "node") and not (tmp_path / "node" / "gapscope.db").exists()
    scratch = tmp_path / "node" / "runs" / str(run_id)
    _wait_for(lambda: not scratch.exists(), timeout=120, what="the task to clean its scratch folder up")


def _held(runner, run_id: int) -> dict:
    """What the relay holds for ``run_id`` (nothing applied, nothing acknowledged); {} once it let go."""
    return runner.relay.drain(limit=0)["runs"].get(run_id, {})


def _prediction_rows(store, run_id: int) -> int:
    m = store.metrics(run_id)
    return sum(
        len(store.predictions(run_id, split=split, step=int(step)))
        for split in ("test", "test_ts")
        for step in set(m[m.split == split].step)
    )


def test_a_stop_reaches_a_worker_past_the_events_the_app_has_not_applied(store, digits, make_runner):
    runner = make_runner(grace_s=600.0)  # never cancelled here: each worker must end its run itself
    assert runner.capacity() == 2  # the test head's 2 CPUs
    assert runner.node_gpus() == 0  # and no GPU: the Train page offers no "GPUs for this run"
    a, b = runner.submit(_long(digits)), runner.submit(_long(digits))

    def both_training() -> bool:
        runner.tick()
        rows = [store.run(a), store.run(b)]
        # each worker has claimed its run (its pid is recorded) and stored an evaluation, and both
        # are still running: at the same moment, neither waited for the other
        return all(r.status == "running" and r.pid and (store.metrics(r.id).split == "val").any() for r in rows)

    _wait_for(both_training, timeout=400, what="both runs training at once")
    # the app stops applying: what both workers send piles up at the relay
    _wait_for(lambda: all(_held(runner, r).get("held", 0) >= 20 for r in (a, b)), timeout=300, what="a backlog of events at the relay")
    assert runner.stop(a) == "stopping"  # sets the relay's flag at once; nothing is applied
    _wait_for(lambda: _held(runner, a).get("done"), timeout=300, what="run a's worker to end its task with its events unapplied")
    assert store.run(a).stored_status == "stopping" and store.run(b).stored_status == "running"
    row = runner.wait(a, timeout_s=300)  # now the backlog is applied, the worker's final word last
    assert row.status == "stopped" and row.message.startswith("stopped at step"), row.message
    m = store.metrics(a)
    assert len(m) > 0 and (m.created_at <= row.finished_at).all()  # nothing stored after it read "stopped"
    assert store.run(b).status == "running"  # the other run goes on
    assert runner.stop(b, wait_s=300) == "stopped"
    assert store.run(b).message.startswith("stopped at step"), store.run(b).message


def _deaf_task(relay, home, run_id, config, dataset, scratch_home):
    """A worker that reports without end and never looks at its stop flag."""
    from core.runners.ray.relay_sink import RelaySink

    sink = RelaySink(relay, home, run_id, config, scratch=scratch_home)
    sink.files.folder.mkdir(parents=True, exist_ok=True)
    sink.files.write_json("config.json", config)
    sink.announce([sink.files.folder])
    sink.claim(os.getpid(), None)
    step = 0
    while True:
        step += 1
        sink.add_metrics(step, "train", {"loss": 1.0 / step})
        if step % 10 == 0:
            sink.heartbeat()  # sends its files; what it answers (stop!) is ignored
        time.sleep(0.02)


def test_a_stop_not_honoured_cancels_the_task_stores_nothing_after_and_clears_its_scratch(store, digits, make_runner, tmp_path):
    runner = make_runner(grace_s=0.0, task=_deaf_task)
    run_id = runner.submit(_cfg(digits))
    scratch = tmp_path / "node" / "runs" / str(run_id)

    def reporting() -> bool:
        runner.tick()
        return len(store.metrics(run_id)) >= 20

    _wait_for(reporting, timeout=300, what="the task's first reports")
    assert scratch.is_dir()
    assert runner.stop(run_id, wait_s=200) == "stopped"
    row = store.run(run_id)
    assert "the Ray task was cancelled 0 s after the stop request" in row.message, row.message

    def let_go() -> bool:
        runner.tick()
        return not _held(runner, run_id)

    _wait_for(let_go, timeout=200, what="the relay to let the cancelled run go")
    m = store.metrics(run_id)
    assert (m.created_at <= row.finished_at).all()  # its backlog after the stop was dropped, not stored
    assert (RunFiles(run_id, home=store.home).folder / "config.json").is_file()  # files still land
    _wait_for(lambda: not scratch.exists(), timeout=200, what="the cancelled task's scratch folder to be cleared on its node")


def test_events_sent_again_after_an_app_restart_are_stored_once(store, digits, make_runner):
    """The app applied a batch of events and went away before its next drain acknowledged them: the
    relay sends them to the next app again, and they must not double the run's rows or its ledger,
    which goes on counting in the new app."""
    runner = make_runner()
    run_id = runner.submit(_long(digits))

    def evaluated_twice() -> bool:
        runner.tick()
        return store.metrics(run_id).query("split == 'val'").step.nunique() >= 2

    _wait_for(evaluated_twice, timeout=400, what="two evaluations applied")
    before = len(store.metrics(run_id))
    runner.close()  # applied, not acknowledged
    again = make_runner()
    assert again.recover() == []  # is sent them again
    m = store.metrics(run_id)
    assert len(m) >= before
    assert not m.duplicated(["step", "split", "name"]).any(), m[m.duplicated(["step", "split", "name"], keep=False)]
    assert again.stop(run_id, wait_s=200) == "stopped"
    m = store.metrics(run_id)
    assert not m.duplicated(["step", "split", "name"]).any()
    ledger = RunFiles(run_id, home=store.home).ledger()
    assert ledger["metrics"] == len(m) and ledger["predictions"] == _prediction_rows(store, run_id) > 0


def test_a_restarted_keeper_brings_a_run_to_its_end_with_no_page_open(store, digits, home, ray_head, tmp_path):
    """The keeper (``./gapscope.sh run`` starts it beside Streamlit) applies what the cluster sends
    with no page open: killed, and started again, it takes over where the last one stopped."""
    from core.runners.ray import NAMESPACE, RELAY_NAME, home_key
    from core.store.status import ACTIVE

    env = {
        **os.environ,
        "GAPSCOPE_HOME": str(home),
        "GAPSCOPE_RAY_ADDRESS": ray_head.get_runtime_context().gcs_address,
        "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token"),  # Ray 2.60 starts a head with token authentication
    }
    command = [sys.executable, "-m", "core.runners.ray.keeper", "--interval", "0.5", "--scratch-home", str(tmp_path / "node")]
    command += ["--parent", str(os.getpid())]

    def keeper(name: str) -> subprocess.Popen:
        with open(tmp_path / f"{name}.log", "wb") as log:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def said(name: str) -> str:
        return (tmp_path / f"{name}.log").read_text(errors="replace")

    run_id = store.create_run(digits, _cfg(digits, epochs=3).to_dict(), name="left to the keeper")  # queued, as the Train page leaves it
    first = keeper("first")
    try:
        _wait_for(lambda: store.run(run_id).pid is not None, timeout=400, what="the keeper to launch the run and apply its claim")
    finally:
        first.kill()
        first.wait(timeout=60)
    # nobody applies anything now: the run trains on to its end, its reports wait at the relay
    relay = ray_head.get_actor(RELAY_NAME, namespace=NAMESPACE)
    key = home_key(store)
    _wait_for(
        lambda: ray_head.get(relay.drain.remote(key, {}, 0))["runs"].get(run_id, {"done": True})["done"],
        timeout=400,
        what="the run's task to end on the cluster",
    )
    second = keeper("second")
    try:
        row = _wait_for(
            lambda: (r := store.run(run_id)).stored_status not in ACTIVE and r, timeout=300, what="the new keeper to end the run"
        )
    finally:
        second.terminate()
        assert second.wait(timeout=60) == 0, said("second")
    assert row.status == "finished" and row.message.startswith("done:") and row.finished_at, row.message + "\n" + said("second")
    files = RunFiles(run_id, home=home)
    assert files.read_json("summary.json")["status"] == "finished"
    assert files.ledger()["metrics"] == len(store.metrics(run_id))
    assert "applying the runs of" in said("second")


def _evals(store, run_id: int) -> dict:
    m = store.metrics(run_id)
    return m[m.split != "train"].groupby(["split", "step"]).size().to_dict()


def _rank_pids(runner, run_id: int) -> list[int]:
    """The child ranks' pids, as the task's log names them."""
    import re

    found = re.search(r"ranks 1–\d+ are pids \[([\d, ]+)\]", runner.logs(run_id, 400))
    return [int(p) for p in found.group(1).split(",")] if found else []


def _gone(pid: int) -> bool:
    return process_start_time(pid) is None  # a zombie waiting to be reaped has ended too


def test_a_run_of_two_processes_trains_on_ray_and_rank_0_alone_reports(store, digits, make_runner):
    local = LocalRunner(store, max_parallel=1)
    single = local.wait(local.submit(_cfg(digits, epochs=2)), timeout_s=300)
    assert single.status == "finished", single.message
    runner = make_runner()
    run_id = runner.submit(_cfg(digits, epochs=2, processes=2))
    row = runner.wait(run_id, timeout_s=400)
    assert row.status == "finished", row.message + "\n" + runner.logs(run_id, 400)

    def log_complete() -> bool:  # the log's last lines come after the final status
        runner.tick()
        return "ended with exit codes" in runner.logs(run_id, 400)

    _wait_for(log_complete, timeout=120, what="the end of the run's log")
    log = runner.logs(run_id, 400)
    assert "2 processes: this one is rank 0" in log and "rank 1 (exit code 0): run 2 finished: rank 1 of 2 done" in log
    assert "ended with exit codes [0]" in log and log.count("eval step 46:") == 1  # rank 0's lines only
    # rank 0 wrote every evaluation once: the rows of a one-process run of the same config
    assert _evals(store, run_id) == _evals(store, single.id)
    assert len(store.predictions(run_id)) == len(store.predictions(single.id))
    assert RunFiles(run_id, home=store.home).ledger()["metrics"] == len(store.metrics(run_id))
    m = store.metrics(run_id)
    assert float(m[(m.split == "test") & (m.name == "accuracy")].sort_values("step").value.iloc[-1]) > 0.9


def test_a_rank_that_dies_fails_the_run_and_a_cancelled_run_leaves_no_rank(store, digits, make_runner):
    import os
    import signal

    runner = make_runner(grace_s=0.0)
    run_id = runner.submit(_long(digits, processes=2))

    def training() -> bool:
        runner.tick()
        return bool(_rank_pids(runner, run_id)) and (store.metrics(run_id).split == "val").any()

    _wait_for(training, timeout=400, what="a two-process run training")
    (child,) = _rank_pids(runner, run_id)
    os.kill(child, signal.SIGKILL)
    row = runner.wait(run_id, timeout_s=200)
    assert row.status == "failed", row.message
    assert f"rank 1 of 2 (pid {child}) ended with exit code -9" in row.message, row.message
    # a run cancelled by force (no grace): its task ends, and its child rank with it
    other = runner.submit(_long(digits, processes=2))
    _wait_for(lambda: runner.tick() is not None and bool(_rank_pids(runner, other)), timeout=400, what="the second run's ranks")
    (child,) = _rank_pids(runner, other)
    assert runner.stop(other, wait_s=200) == "stopped"
    _wait_for(lambda: _gone(child), timeout=120, what="the cancelled task's child rank to end")


def test_a_task_that_raises_fails_the_run_with_the_error(store, digits, make_runner):
    runner = make_runner(task=_raising_task)
    run_id = runner.submit(_cfg(digits))
    row = runner.wait(run_id, timeout_s=300)
    assert row.status == "failed"
    assert "RuntimeError: boom on the node" in row.message, row.message


def test_a_run_without_heartbeats_is_cancelled_and_failed(store, digits, make_runner, ray_head):
    # every heartbeat counts as too old: the runner treats the task as lost, cancels it and fails the run
    runner = make_runner(stale_after_s=0.0)
    run_id = runner.submit(_long(digits))
    row = runner.wait(run_id, timeout_s=300)
    assert row.status == "failed" and "no heartbeat for" in row.message, row.message

    # the cancelled task ends, and the relay lets the run go
    def relay_let_go() -> bool:
        runner.tick()
        return run_id not in runner.relay.drain(limit=0)["runs"]

    _wait_for(relay_let_go, timeout=120, what="the relay to let the run go")


def test_the_local_runner_leaves_the_clusters_runs_alone(store, digits):
    # no Ray needed: a run claimed by the Ray runner, with no pid and an old start, is not the local runner's to fail
    run_id = store.create_run(digits, _cfg(digits).to_dict())
    assert store.claim_next_run(1, runner="ray").id == run_id
    store.set_run_status(run_id, None, started_at=time.time() - 3600)
    local = LocalRunner(store, max_parallel=1, start_timeout_s=1.0)
    assert local.recover() == [] and store.run(run_id).status == "running"
    # and the cluster's slots are not this machine's: a local run starts beside it
    other = store.create_run(digits, _cfg(digits).to_dict())
    assert store.claim_next_run(1).id == other and store.run(other).runner == "local"


def test_a_ray_task_notes_every_sqlite_file_and_cannot_open_a_store(tmp_path):
    # what makes node.json's "sqlite_opened" trustworthy; in a process of its own (an audit hook stays for good)
    script = f"""
import sqlite3
from core.runners.ray import guard_sqlite
from core.store import Store
opened = guard_sqlite()
sqlite3.connect(":memory:").close()
try:
    Store({str(tmp_path / "home")!r})
except PermissionError as err:
    print("refused:", err)
print(opened)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "refused: a worker on a Ray node must not open a Gapscope store" in out.stdout
    assert f"[':memory:', '{tmp_path / 'home' / 'gapscope.db'}']" in out.stdout
    assert not (tmp_path / "home" / "gapscope.db").exists()


def test_files_from_a_node_stay_inside_the_runs_folder(tmp_path):
    from core.runners.ray import write_run_file

    folder = tmp_path / "runs" / "1"
    assert write_run_file(folder, "evals/3.json", b"{}").read_bytes() == b"{}"
    for bad in ("../2/best.pt", "/etc/passwd", "evals/../../x", ""):
        with pytest.raises(ValueError, match="outside the run's folder"):
            write_run_file(folder, bad, b"x")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["3.json"]


def test_a_store_opened_by_an_older_gapscope_gains_the_runner_column(home):
    import sqlite3

    Store(home)
    con = sqlite3.connect(home / "gapscope.db")
    assert "runner" in [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    con.close()
