"""One run on two processes under torchrun, with the gloo backend on the CPU: the same entrypoint a
machine with several GPUs uses (NCCL there)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from core.data.demos import load_digits_8x8
from core.runners.local import LocalRunner
from core.runners.processes import same_process
from core.store import RunFiles, Store
from core.train.config import RunConfig
from core.train.distributed import SINGLE, Dist, agree, from_env, shard

pytestmark = [pytest.mark.timeout(300)]


def test_each_process_takes_its_share_of_every_batch_and_none_is_left_empty(monkeypatch):
    pos = np.arange(10)
    two = [Dist(r, 2) for r in range(2)]
    assert [shard(pos, d).tolist() for d in two] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert np.array_equal(np.sort(np.concatenate([shard(pos, d) for d in two])), pos)  # every item once
    assert [shard(np.array([7]), Dist(r, 3)).tolist() for r in range(3)] == [[7], [7], [7]]  # a batch of one: all train on it
    assert shard(pos, SINGLE) is pos and agree(True, SINGLE, None) and not agree(False, SINGLE, None)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert from_env() == Dist(3, 4, 1) and not from_env().is_main
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert from_env() == SINGLE


def test_processes_is_validated():
    from core.mitigate.settings import Mitigations, SemiSupervision

    RunConfig(version_id=1, processes=2).validate()
    with pytest.raises(ValueError, match="processes must be a whole number between 1 and 64"):
        RunConfig(version_id=1, processes=0).validate()
    with pytest.raises(ValueError, match="pseudo-labelling runs in one process"):
        RunConfig(version_id=1, processes=2, mitigations=Mitigations(semi=SemiSupervision(method="pseudo_label"))).validate()


def _cfg(vid: int, **kw) -> RunConfig:
    return RunConfig(**{"version_id": vid, "model": "small_cnn", "epochs": 2, "batch_size": 64, "lr": 3e-3, "device": "cpu", **kw})


@pytest.mark.slow
def test_a_two_process_run_trains_and_rank_0_alone_writes(store, home):
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    runner = LocalRunner(store, max_parallel=1)
    single = runner.wait(runner.submit(_cfg(vid)), timeout_s=240)
    run_id = runner.submit(_cfg(vid, processes=2))
    row = runner.wait(run_id, timeout_s=240)
    assert row.status == "finished", row.message + runner.logs(run_id, 60)
    log = runner.logs(run_id, 200)
    assert "torch.distributed.run --standalone --nproc_per_node=2" in log and "rank 1 of 2 done" in log

    # rank 0 wrote every evaluation once: the same rows as the one-process run of this config (train
    # points follow the clock as well as the step, so only their first and last are compared)
    def evals(rid: int) -> dict:
        m = store.metrics(rid)
        return m[m.split != "train"].groupby(["split", "step"]).size().to_dict()

    assert evals(run_id) == evals(single.id)
    steps = store.metrics(run_id).query("split == 'train'").step
    assert steps.min() == 1 and steps.max() == store.metrics(single.id).query("split == 'train'").step.max()
    assert len(store.predictions(run_id)) == len(store.predictions(single.id))
    test = store.metrics(run_id)
    acc = float(test[(test.split == "test") & (test.name == "accuracy")].sort_values("step").value.iloc[-1])
    assert acc > 0.9
    assert RunFiles(run_id, home=home).checkpoint_path("best").exists()
    ledger = RunFiles(run_id, home=home).ledger()
    assert ledger is not None and ledger["metrics"] == len(store.metrics(run_id))  # one writer
    assert Store(home).run(run_id).exit_code in (0, None)


@pytest.mark.slow
def test_a_stop_ends_every_process_of_a_two_process_run(store, home):
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    runner = LocalRunner(store, max_parallel=1, grace_s=20.0)
    run_id = runner.submit(_cfg(vid, processes=2, epochs=1000, eval_every_steps=10))
    deadline = time.monotonic() + 180
    while not (store.metrics(run_id).split == "val").any():
        assert time.monotonic() < deadline, runner.logs(run_id, 60)
        time.sleep(0.2)
    leader = store.run(run_id).pid
    assert runner.stop(run_id, wait_s=120) == "stopped", runner.logs(run_id, 60)
    row = store.run(run_id)
    assert row.message.startswith("stopped at step"), row.message  # the processes agreed, no signal needed
    deadline = time.monotonic() + 60
    while True:  # the whole group (torchrun and both ranks) is gone, and reaped
        runner.tick()
        try:
            os.killpg(leader, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            import subprocess

            left = subprocess.run(["ps", "-o", "pid,stat,cmd", "-g", str(leader)], capture_output=True, text=True).stdout
            os.killpg(leader, signal.SIGKILL)
            raise AssertionError(f"processes of the run were left running:\n{left}")
        time.sleep(0.2)
    assert not same_process(leader, row.pid_started)


@pytest.mark.slow
def test_ranks_of_a_ray_task_a_dead_rank_is_noticed_named_and_its_lines_kept(tmp_path, monkeypatch):
    """core.runners.ranks without Ray: rank 1 started as a child of this process (rank 0, which
    never joins, so rank 1 waits for it) is killed; the watcher must notice it, and a failure's
    message must name it."""
    from core.data.demos import load_digits_8x8
    from core.runners.ranks import Ranks
    from tests.test_runners import _wait_for

    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.setenv(name, "")  # Ranks sets them for this process (rank 0); restored after the test
    ds = load_digits_8x8().dataset
    ranks = Ranks(7, _cfg(1).to_dict(), ds, tmp_path / "ranks", 2)
    assert ranks.dist == Dist(0, 2, 0) and os.environ["WORLD_SIZE"] == "2" and os.environ["RANK"] == "0"
    seen: list[str] = []
    ranks.watch(seen.append, poll_s=0.05)
    (child,) = ranks.children
    assert child.poll() is None  # waiting for rank 0 to join
    assert ranks.dead(within_s=0) is None and ranks.explain("boom") == "boom"  # alive: nothing to blame on it
    os.kill(child.pid, signal.SIGKILL)
    _wait_for(lambda: bool(seen), timeout=30, what="the watcher to notice")
    assert seen == ["rank 0 was still training"]
    assert ranks.explain("gloo: Connection reset by peer") == (
        f"rank 1 of 2 (pid {child.pid}) ended with exit code -9 (gloo: Connection reset by peer)"
    )
    assert ranks.close(timeout_s=5) == [-9]
