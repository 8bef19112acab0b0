"""Run rows as the store returns them (``core.store.rows.RunRow``): typed and frozen, one status for
every reader ("lost" included), and a run refused at submit when the disk cannot hold it."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest

from core.compare.runs import compatibility
from core.data.demos import load_digits_8x8
from core.metrics.results import RunResults
from core.runners.local import LocalRunner
from core.runners.processes import same_process
from core.simulate.sweep import sweep_results
from core.store import RunRow, RunStatus, Store, space
from core.store.space import DiskFull
from core.train.config import RunConfig
from core.train.estimates import disk_bytes
from tests.conftest import ROOT


def _digits(store: Store) -> int:
    return store.save_dataset(load_digits_8x8().dataset, source="demo:digits")


def _cfg(vid: int, **kw) -> RunConfig:
    return RunConfig(**{"version_id": vid, "model": "small_cnn", "epochs": 1, "batch_size": 64, "lr": 3e-3, "device": "cpu", **kw})


def test_a_run_row_is_typed_and_frozen(store):
    vid = _digits(store)
    run_id = store.create_run(vid, _cfg(vid).to_dict(), name="first")
    row = store.run(run_id)
    assert isinstance(row, RunRow) and row.id == run_id and row.version_id == vid and row.name == "first"
    assert row.status == row.stored_status == RunStatus.QUEUED and row.config["model"] == "small_cnn"
    assert row.pid is None and row.stop_requested is False and row.runner == "local" and row.processes == 1
    assert row.label == "⏳ queued"
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="never stored"):
        store.set_run_status(run_id, RunStatus.LOST)
    with pytest.raises(ValueError, match="unknown run fields"):
        store.set_run_status(run_id, None, colour="red")
    assert [r.id for r in store.runs()] == [run_id] and store.runs(status=[RunStatus.RUNNING]) == []


def _make_lost(store: Store, run_id: int, *, stale_s: float) -> None:
    now = time.time()
    store.set_run_status(run_id, RunStatus.RUNNING, pid=2**22 + 1, started_at=now - 600, heartbeat_at=now - stale_s)


def test_every_reader_shows_a_run_with_a_stale_heartbeat_as_lost(store):
    vid = _digits(store)
    a, b = (store.create_run(vid, _cfg(vid).to_dict(), name=n) for n in ("a", "b"))
    _make_lost(store, a, stale_s=5)
    assert store.run(a).status == RunStatus.RUNNING and not store.run(a).lost
    _make_lost(store, a, stale_s=10 * 60)
    store.set_run_status(b, RunStatus.FINISHED, heartbeat_at=time.time() - 3600)  # ended runs are never lost
    row = store.run(a)
    assert row.status == RunStatus.LOST and row.stored_status == RunStatus.RUNNING and row.lost
    assert row.label == "👻 lost (no heartbeat for 10 min; it was running)"
    assert not RunStatus.LOST.active and not RunStatus.LOST.has_worker
    assert store.run(b).status == RunStatus.FINISHED
    results = [RunResults(store, a), RunResults(store, b)]
    assert results[0].status == RunStatus.LOST  # Compare, the report and the sweep view read this
    notes = " ".join(compatibility(store, results))
    assert "Lost: #1 · a" in notes and "Still training" not in notes
    sweep = {"runs": [{"severity": 0.0, "arm": "baseline", "version_id": vid, "run_id": a}]}
    table = sweep_results(store, sweep)
    assert table["status"].tolist() == ["lost"] and table["ended"].tolist() == [True] and table["failed"].tolist() == [False]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_worker_reads_lost_on_runs_compare_and_the_sweep_view(home, monkeypatch):
    """A real worker, killed with no runner watching: after its heartbeat goes stale (shortened
    here), the Runs page, the Compare page and the sweep view all say "lost"."""
    from core.store import rows
    from tests.test_train_pages import open_page

    store = Store(home)
    vid = _digits(store)
    other = store.create_run(vid, _cfg(vid).to_dict(), name="reference")
    store.set_run_status(other, RunStatus.FINISHED)
    run_id = store.create_run(vid, _cfg(vid, epochs=1000, eval_every_steps=10).to_dict(), name="doomed")
    worker = subprocess.Popen([sys.executable, "-m", "core.train", str(run_id)], cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (store.run(run_id).heartbeat_at and len(store.metrics(run_id))):
            assert worker.poll() is None and time.monotonic() < deadline, store.run(run_id).message
            time.sleep(0.2)
        assert store.run(run_id).status == RunStatus.RUNNING and same_process(worker.pid, store.run(run_id).pid_started)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=60)
    beat = store.run(run_id).heartbeat_at
    assert beat is not None
    monkeypatch.setattr(rows, "STALE_AFTER_S", max(0.0, time.time() - beat - 1))  # as if a minute had passed
    assert store.run(run_id).status == RunStatus.LOST
    for method in ("recover", "tick"):  # no runner watching (one that is marks the run failed at once)
        monkeypatch.setattr(LocalRunner, method, lambda self: [])
    monkeypatch.setattr(LocalRunner, "start_ticking", lambda self, interval_s=2.0: None)
    at = open_page("app_pages/runs.py")
    assert any(f"Run #{run_id}" in s.value and "lost" in s.value for s in at.subheader)
    at = open_page("app_pages/compare.py")
    assert at.multiselect(key="cmp_runs").value == [other, run_id]
    assert any(f"Lost: #{run_id} · doomed" in w.value for w in at.warning)
    sweep = {"runs": [{"severity": 0.0, "arm": "baseline", "version_id": vid, "run_id": run_id}]}
    assert sweep_results(store, sweep)["status"].tolist() == ["lost"]


def test_a_run_that_cannot_fit_on_the_disk_is_refused_before_it_starts(store, monkeypatch):
    vid = _digits(store)
    cfg = _cfg(vid, model="mobilenet_v2", finetune="full", epochs=3)
    assert store.split_sizes(vid) == {0: 1445, 1: 176, 2: 176}
    need = disk_bytes(cfg, modality="image", n_train=1445, n_test=176, n_classes=10)
    assert need > 3 * 8 * 2**20  # three checkpoints of MobileNetV2's 8.7 MiB at least
    monkeypatch.setattr(space, "free_bytes", lambda folder: need // 2)  # a disk with half of that free
    runner = LocalRunner(store)
    try:
        with pytest.raises(DiskFull, match=r"start a run on Digits .* it needs about .* MiB and .* MiB is free"):
            runner.submit(cfg)
        assert store.runs() == []  # nothing stored, nothing started
        monkeypatch.setattr(space, "free_bytes", lambda folder: 4 * need)
        monkeypatch.setattr(runner, "tick", lambda: [])  # queued only: nothing to train in this test
        run_id = runner.submit(cfg)
        assert store.run(run_id).status == RunStatus.QUEUED
    finally:
        runner.close()


def test_disk_need_grows_with_the_model_the_test_items_and_the_evaluations():
    size = {"modality": "image", "n_train": 1_000, "n_test": 1_000, "n_classes": 10}
    small = disk_bytes(_cfg(1), **size)
    assert small == 3 * int(0.6 * 2**20) + 3 * 1_000 * (64 + 40) + 4 * 2**20  # 1 epoch: 1 evaluation + 2 re-scored
    assert disk_bytes(_cfg(1, model="resnet18"), **size) > small + 2 * 40 * 2**20
    assert disk_bytes(_cfg(1), **{**size, "n_test": 100_000}) > small
    assert disk_bytes(_cfg(1, epochs=20), **size) == small + 19 * 1_000 * (64 + 40)
    assert disk_bytes(_cfg(1, eval_every_steps=4), **size) == small + (16 // 4 - 1) * 1_000 * (64 + 40)  # 16 steps of 64
    assert disk_bytes(_cfg(1, model="auto"), **size) == disk_bytes(_cfg(1, model="mobilenet_v2"), **size)  # the larger choice


@pytest.mark.parametrize(
    ("model", "modality", "shape", "n_features"),
    [
        ("small_cnn", "image", (28, 28), 0),
        ("mobilenet_v2", "image", (64, 64, 3), 0),
        ("efficientnet_lite0", "image", (64, 64, 3), 0),
        ("resnet18", "image", (64, 64, 3), 0),
        ("minilm", "text", (), 0),
        ("mlp", "tabular", (), 1_000),
    ],
)
def test_the_registry_weights_figure_holds_a_built_models_checkpoint(model, modality, shape, n_features):
    from core.models import registry
    from core.models.build import build

    built = build(_cfg(1, model=model), modality=modality, n_classes=10, item_shape=shape, n_features=n_features)
    size = sum(v.numel() * v.element_size() for v in built.net.state_dict().values())
    figure = registry.weights_bytes(model)
    assert size <= figure <= max(1.25 * size, size + 2**20), (model, size, figure)
