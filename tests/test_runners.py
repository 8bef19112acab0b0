"""Background runs through core.runners.local.LocalRunner: real worker processes, a real store, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from core.data.demos import load_digits_8x8
from core.runners.base import Runner
from core.runners.local import LocalRunner
from core.runners.processes import process_start_time, same_process
from core.store import Store
from core.train.config import RunConfig
from tests.conftest import needs_asset

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture
def digits(store) -> int:
    return store.save_dataset(load_digits_8x8().dataset, source="demo:digits")


@pytest.fixture
def runner(store):
    r = LocalRunner(store, max_parallel=1, grace_s=10.0)
    yield r
    # never leave a worker behind, whatever the test did (only the ones this home started)
    for row in Store(store.home).runs(status=("running", "stopping")):
        if row.pid and same_process(row.pid, row.pid_started):
            os.killpg(row.pid, signal.SIGKILL)
    r.close()


def _cfg(version_id: int, **kw) -> RunConfig:
    return RunConfig(**{"version_id": version_id, "model": "small_cnn", "epochs": 2, "batch_size": 64, "lr": 3e-3, "device": "cpu", **kw})


def _long(version_id: int) -> RunConfig:
    # runs for minutes unless stopped; evaluates every 10 steps so rows appear at once
    return _cfg(version_id, epochs=1000, eval_every_steps=10)


def _wait_for(predicate, *, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _test_metrics(store, run_id) -> dict[str, float]:
    m = store.metrics(run_id)
    m = m[(m.split == "test") & (m.step == m[m.split == "test"].step.max())]
    return dict(zip(m.name, m.value))


def _has_val_rows(store, run_id) -> bool:
    return bool((store.metrics(run_id).split == "val").any())


def test_local_runner_implements_every_runner_method_with_its_signature():
    import inspect

    wanted = {name: fn for name, fn in inspect.getmembers(Runner, inspect.isfunction) if not name.startswith("_")}
    assert set(wanted) == {"submit", "status", "stop", "logs", "recover", "tick", "close"}
    for name, proto in wanted.items():
        impl = inspect.signature(getattr(LocalRunner, name))
        spec = inspect.signature(proto)
        assert list(impl.parameters) == list(spec.parameters), name
        assert [p.kind for p in impl.parameters.values()] == [p.kind for p in spec.parameters.values()], name
        assert impl.return_annotation == spec.return_annotation, name


def test_queued_runs_start_in_turn_finish_and_same_seed_gives_same_metrics(store, runner, digits, home):
    cfg = _cfg(digits, seed=3, epochs=1)
    a, b = runner.submit(cfg), runner.submit(cfg)
    assert store.run(a).status == "running" and store.run(b).status == "queued"  # max_parallel = 1
    ra = runner.wait(a, timeout_s=120)
    rb = runner.wait(b, timeout_s=120)
    assert ra.status == rb.status == "finished", (ra.message, runner.logs(a), runner.logs(b))
    assert rb.started_at >= ra.finished_at - 1.0  # b waited for a's slot (a's tick may lag a little)
    assert ra.pid != rb.pid and ra.pid_started > 0
    # the workers' exits are reaped (no zombies) and their exit codes kept
    _wait_for(lambda: (runner.tick(), store.run(b).exit_code is not None)[1], timeout=30, what="b's exit")
    assert store.run(a).exit_code == store.run(b).exit_code == 0
    np.testing.assert_equal(_test_metrics(store, a), _test_metrics(store, b))  # seeded: identical on the CPU
    assert _test_metrics(store, a)["accuracy"] > 0.8
    log = runner.logs(a, tail=200)
    assert "eval step" in log and "finished" in log
    assert (home / "runs" / str(a) / "best.pt").exists() and (home / "runs" / str(a) / "log.txt").exists()
    assert len(store.predictions(a)) == int((store.load_dataset(digits).split == 2).sum())


def test_metrics_stream_while_running_and_stop_keeps_them(store, runner, digits, home):
    run_id = runner.submit(_long(digits))
    queued = runner.submit(_cfg(digits))
    assert runner.stop(queued) == "stopped"  # a queued run stops at once and never starts
    _wait_for(lambda: _has_val_rows(store, run_id), what="the first evaluation")
    row = runner.status(run_id)
    assert row.status == "running" and 0 < row.progress < 1 and "samples/s" in row.message
    assert row.started_at <= row.heartbeat_at <= time.time()  # the watchdog beats
    before = store.metrics(run_id)
    assert {"loss", "samples_per_s", "eta_s"} <= set(before[before.split == "train"].name)
    assert runner.stop(run_id, wait_s=60) == "stopped"
    row = store.run(run_id)
    assert row.message.startswith("stopped at step") and row.stop_requested == 1
    after = store.metrics(run_id)
    assert len(after) >= len(before)  # nothing deleted
    assert (home / "runs" / str(run_id) / "last.pt").exists()
    assert runner.stop(run_id) == "stopped"  # stopping twice is harmless
    runner.tick()
    assert store.run(queued).pid is None and store.run(queued).message == "stopped before it started"


def test_stop_escalates_to_sigterm_after_the_grace_period(store, digits):
    # asked to stop while it is still starting (no stop-flag polling yet): after 0.5 s SIGTERM goes
    # to its process group and the run ends "stopped"
    runner = LocalRunner(store, max_parallel=1, grace_s=0.5)
    run_id = runner.submit(_long(digits))
    t0 = time.monotonic()
    assert runner.stop(run_id, wait_s=60) == "stopped"
    assert time.monotonic() - t0 < 30
    row = store.run(run_id)
    assert row.exit_code in (None, -signal.SIGTERM, -signal.SIGKILL, 0)


def test_kill_9_marks_the_run_failed_with_its_last_log_lines(store, runner, digits):
    run_id = runner.submit(_long(digits))
    # the worker stores an evaluation's rows, then prints its line: wait for the line, which is what
    # the message below must quote (waiting for the rows alone let the kill land in between)
    _wait_for(lambda: "eval step" in runner.logs(run_id, tail=200), what="the first evaluation in the log")
    assert _has_val_rows(store, run_id)
    n_rows = len(store.metrics(run_id))
    os.kill(store.run(run_id).pid, signal.SIGKILL)
    row = runner.wait(run_id, timeout_s=30)
    assert row.status == "failed" and row.exit_code == -signal.SIGKILL
    assert "killed by SIGKILL" in row.message and "Last log lines:" in row.message
    assert "eval step" in row.message  # the log's own lines
    assert len(store.metrics(run_id)) >= n_rows and len(store.predictions(run_id)) > 0


def test_a_restarted_app_recovers_lost_runs_and_sees_every_run(store, digits, home):
    # 1. an app starts a run, then the app and the worker die together (kill -9, no tick after)
    app = LocalRunner(store, max_parallel=1)
    lost = app.submit(_long(digits))
    _wait_for(lambda: (store.metrics(lost).split == "train").any(), what="the first train point")
    pid = store.run(lost).pid
    os.kill(pid, signal.SIGKILL)
    # a signal is delivered when the process next runs: on a loaded machine it can take a moment to die
    _wait_for(lambda: process_start_time(pid) is None, timeout=60, what="the killed worker to be gone")
    n_rows = len(store.metrics(lost))
    del app
    # 2. a run whose pid now belongs to another process (this one: same pid, other start time)
    reused = store.create_run(digits, _cfg(digits).to_dict())
    me = os.getpid()
    store.set_run_status(reused, "running", pid=me, pid_started=process_start_time(me) - 1000.0, started_at=time.time())
    # 3. a run still alive when the app restarts: adopted, not failed
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    alive = store.create_run(digits, _cfg(digits).to_dict())
    store.set_run_status(
        alive, "running", pid=sleeper.pid, pid_started=process_start_time(sleeper.pid), started_at=time.time(), heartbeat_at=time.time()
    )
    # 4. a run that was waiting in the queue
    waiting = store.create_run(digits, _cfg(digits, epochs=1).to_dict())

    restarted = LocalRunner(Store(home), max_parallel=1, grace_s=0.2)
    assert sorted(restarted.recover()) == sorted([lost, reused])
    fresh = Store(home)
    assert {r.id for r in fresh.runs()} == {lost, reused, alive, waiting}
    assert fresh.run(lost).status == "failed" and "is gone" in fresh.run(lost).message
    assert "Last log lines:" in fresh.run(lost).message
    assert len(fresh.metrics(lost)) == n_rows  # every row the worker wrote is kept
    assert fresh.run(reused).status == "failed"
    assert fresh.run(alive).status == "running" and fresh.run(waiting).status == "queued"
    restarted.tick()
    assert fresh.run(waiting).status == "queued"  # the adopted run holds the only slot
    os.killpg(sleeper.pid, signal.SIGKILL)
    sleeper.wait()
    assert restarted.recover() == [alive]
    assert restarted.tick() == [waiting]  # the queue moves on (its own run is covered above)
    assert restarted.stop(waiting, wait_s=60) == "stopped"


@needs_asset("minilm")
def test_text_run_with_a_tiny_local_bert_through_the_runner(store, runner, tmp_path):
    from tests.test_models import tiny_bert_dir

    ds = _small_texts()
    vid = store.save_dataset(ds, source="upload:texts.csv")
    folder = tiny_bert_dir(tmp_path / "bert")
    cfg = RunConfig(version_id=vid, model=str(folder), epochs=1, batch_size=16, lr=1e-3, max_length=64, device="cpu")
    run_id = runner.submit(cfg)
    row = runner.wait(run_id, timeout_s=150)
    assert row.status == "finished", row.message + "\n" + runner.logs(run_id)
    test = _test_metrics(store, run_id)
    assert test["n_known"] == int((ds.split == 2).sum()) and {"recall/0", "recall/1", "recall/2"} <= set(test)
    m = store.metrics(run_id)
    assert {"val", "test", "val_ts", "test_ts", "train"} <= set(m.split)
    from core.train.checkpoints import load_checkpoint

    ck = load_checkpoint(run_id)
    assert ck["arch"] == "transformer" and any(k.startswith("model.bert.encoder.layer.1.") for k in ck["model"])


def _small_texts():
    """~300 VADER rows (100 per class), or hand-written texts when VADER is not fetched."""
    from core.data import Dataset, assets
    from core.data.splits import stratified_split

    if assets.is_ready("vader"):
        from core.data.demos import load_vader

        full = load_vader().dataset
        rng = np.random.default_rng(0)
        rows = np.concatenate([rng.choice(np.flatnonzero(full.labels == c), 100, replace=False) for c in range(3)])
        texts, labels = full.items[rows], full.labels[rows]
    else:  # pragma: no cover - depends on the machine
        words = {0: ["awful", "bad", "boring", "sad"], 1: ["a", "the", "some", "plain"], 2: ["great", "lovely", "fun", "good"]}
        texts = np.array([f"{words[i % 3][i % 4]} movie {i}" for i in range(300)], dtype=object)
        labels = np.arange(300) % 3
    return Dataset("texts", "text", texts, labels, ["negative", "neutral", "positive"], stratified_split(labels, seed=1))
