"""What the Train page says a run will do before it starts: steps per epoch as the worker cuts its
batches, evaluations as the cadence makes them, the batch and learning rate on a CPU and a GPU."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.dataset import Dataset
from core.data.demos import load_digits_8x8
from core.train.config import RunConfig
from core.train.estimates import evaluations, runs_on_gpu, step_plan, steps_per_epoch
from core.train.inputs import make_batches


@pytest.mark.parametrize(
    ("n", "batch", "drop_last", "want"),
    [
        (1445, 64, False, 23),  # 22 full batches and one of 37
        (1445, 64, True, 22),  # fixed shapes: the short one dropped
        (129, 64, False, 2),  # a last batch of one item is dropped
        (129, 64, True, 2),
        (128, 64, False, 2),
        (10, 64, False, 1),
        (10, 64, True, 1),  # no full batch: the only one stays
        (1, 64, False, 1),
        (0, 64, False, 0),
    ],
)
def test_steps_per_epoch_are_the_batches_the_worker_cuts(n, batch, drop_last, want):
    assert steps_per_epoch(n, batch, drop_last=drop_last) == want
    if n:
        assert len(make_batches(n, batch, np.random.default_rng(0), drop_last=drop_last)) == want


def test_evaluations_follow_the_cadence():
    cfg = RunConfig(version_id=1, model="small_cnn", epochs=3)
    assert evaluations(cfg, 1445, 64) == 3  # one per epoch
    every5 = RunConfig(version_id=1, model="small_cnn", epochs=3, eval_every_steps=5)
    assert evaluations(every5, 1445, 64) == 14  # 69 steps: every 5th and the last
    assert evaluations(every5, 1445, 64, drop_last=True) == 14  # 66 steps
    assert evaluations(RunConfig(version_id=1, model="small_cnn", epochs=1, eval_every_steps=4), 1000, 64) == 4  # 16 steps


def test_runs_on_gpu_only_where_one_is_visible_and_asked_for():
    assert runs_on_gpu("auto", 1) and runs_on_gpu("cuda", 2)
    assert not runs_on_gpu("cpu", 1) and not runs_on_gpu("auto", 0) and not runs_on_gpu("mps", 1)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits_8x8().dataset


def test_step_plan_on_a_cpu(digits):
    cfg = RunConfig(version_id=1, model="small_cnn", epochs=3, batch_size=64, lr=3e-3)
    plan = step_plan(cfg, digits, gpu=False)
    assert plan.splits == {"train": 1445, "val": 176, "test": 176}
    assert (plan.n_train, plan.n_used, plan.batch, plan.auto_batch) == (1445, 1445, 64, False)
    assert (plan.steps_per_epoch, plan.steps, plan.evaluations, plan.lr) == (23, 69, 3, 3e-3)
    fewer = step_plan(RunConfig(version_id=1, model="small_cnn", epochs=2, batch_size=0, lr=3e-3, max_train_items=500), digits, gpu=False)
    assert (fewer.n_used, fewer.batch, fewer.auto_batch, fewer.steps_per_epoch, fewer.steps, fewer.lr) == (500, 32, True, 16, 32, 3e-3)


def test_step_plan_on_a_gpu_grows_the_batch_scales_the_lr_and_drops_short_batches(digits):
    cfg = RunConfig(version_id=1, model="small_cnn", epochs=3, batch_size=0, lr=3e-3, eval_every_steps=10)
    plan = step_plan(cfg, digits, gpu=True)
    # 8×8 images: up to 1,024 a batch, but at least 8 steps an epoch: 1445 / 8 → 128
    assert (plan.batch, plan.auto_batch) == (128, True)
    assert plan.lr == pytest.approx(6e-3)  # 3e-3 × √(128 / 32)
    assert (plan.steps_per_epoch, plan.steps, plan.evaluations) == (11, 33, 4)  # 1445 // 128; every 10th and the last
    off = step_plan(RunConfig(version_id=1, model="small_cnn", epochs=3, batch_size=0, lr=3e-3, fast_path="off"), digits, gpu=True)
    assert (off.batch, off.steps_per_epoch) == (128, 12)  # no fixed shapes: the short batch stays
