"""The training loop's seams and events, in this process: a custom sampler, criterion and augmenters
plug in without touching the loop; callbacks see the events in order; a worker writes only through
its sink (a run trains with an in-memory sink and no SQLite at all)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.data import Dataset
from core.data.demos import load_digits_8x8
from core.mitigate.seams import Seams
from core.store import RunFiles, RunStatus
from core.train.callbacks import Cadence
from core.train.config import RunConfig
from core.train.events import BestEval, Callback
from core.train.inputs import make_batches
from core.train.loop import fit
from core.train.prepare import prepare
from core.train.worker import plan, run_with_sink
from tests.conftest import needs_asset

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits_8x8().dataset


def _cfg(**kw) -> RunConfig:
    return RunConfig(**{"version_id": 1, "model": "small_cnn", "epochs": 2, "batch_size": 64, "lr": 3e-3, "device": "cpu", **kw})


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_train_begin(self, state, control):
        self.events.append("train_begin")

    def on_epoch_begin(self, state, control):
        self.events.append(f"epoch_begin {state.epoch_index}")

    def on_log(self, state, control, logs):
        self.events.append(f"log {state.step}")

    def on_evaluate(self, state, control, result):
        self.events.append(f"evaluate {result.step}")

    def on_epoch_end(self, state, control):
        self.events.append(f"epoch_end {state.epoch_index}")

    def on_train_end(self, state, control):
        self.events.append("train_end")


def test_events_come_in_order_and_the_best_evaluation_is_typed(digits):
    job = prepare(digits, _cfg())
    state = plan(job, run_id=0)
    rec = Recorder()
    control, best = fit(job, state, [Cadence(log_every_steps=1000, eval_every_steps=0), rec])
    per_epoch = state.steps_per_epoch
    assert state.total_steps == 2 * per_epoch == state.step and state.n_evals == 2
    assert rec.events == [
        "train_begin",
        "epoch_begin 0",
        "log 1",
        "epoch_end 0",
        f"evaluate {per_epoch}",
        "epoch_begin 1",
        f"log {2 * per_epoch}",
        "epoch_end 1",
        f"evaluate {2 * per_epoch}",
        "train_end",
    ]
    assert isinstance(best, BestEval) and best.step in (per_epoch, 2 * per_epoch) and best.metric_name == "macro_f1"
    assert set(best.logits) == {"val", "test"} and best.logits["test"].shape == (len(job.data.test), 10)
    assert not control.should_stop and not control.should_log and not control.should_evaluate


def test_eval_every_steps_evaluates_on_that_cadence_and_at_the_last_step(digits):
    job = prepare(digits, _cfg(epochs=1, eval_every_steps=7))
    state = plan(job, run_id=0)
    rec = Recorder()
    fit(job, state, [Cadence(log_every_steps=1000, eval_every_steps=7), rec])
    steps = [int(e.split()[1]) for e in rec.events if e.startswith("evaluate")]
    last = state.total_steps
    assert steps == [*range(7, last, 7), last] and state.evals_planned == len(steps)


class ClassZeroThrice:
    """A sampler with repeats: every train item once, and class 0's items two more times."""

    def __init__(self, y: np.ndarray) -> None:
        self.y = y

    def epoch(self, train, epoch, rng):
        zeros = train[self.y[train] == 0]
        return rng.permutation(np.concatenate([train, zeros, zeros]))


class RecordingCriterion:
    """Cross-entropy that remembers every target it was given, built with the class counts."""

    def __init__(self, class_counts: np.ndarray) -> None:
        self.class_counts = class_counts
        self.targets: list[torch.Tensor] = []
        self.epochs: list[int] = []
        self.drawn: list[np.ndarray] = []

    def begin_epoch(self, epoch, epochs, drawn=None):
        self.epochs.append(epoch)
        self.drawn.append(drawn)

    def __call__(self, logits, target):
        self.targets.append(target.detach().clone())
        return F.cross_entropy(logits.float(), target)


class FlipAndOneHot:
    """An augmenter on the raw batch: uint8 images are flipped left-right, targets become one-hot."""

    def __init__(self, k: int) -> None:
        self.k, self.seen = k, []

    def __call__(self, x, y):
        self.seen.append((x.dtype, tuple(x.shape)))
        return torch.flip(x, dims=[-1]), F.one_hot(y, self.k).float()


def test_a_sampler_with_repeats_and_a_custom_criterion_plug_in(digits):
    job = prepare(digits, _cfg(epochs=1))
    data = job.data
    criterion = RecordingCriterion(data.train_counts)
    job.seams = dataclasses.replace(job.seams, sampler=ClassZeroThrice(data.y), criterion=criterion)
    state = plan(job, run_id=0)
    drawn = len(data.train) + 2 * int(data.train_counts[0])
    fit(job, state, [Cadence(log_every_steps=1000, eval_every_steps=0)])
    kept = sum(len(b) for b in make_batches(drawn, job.cfg.batch_size, np.random.default_rng(0)))
    assert drawn - 1 <= kept <= drawn and state.samples == kept  # a last batch of one item is dropped
    seen = torch.cat(criterion.targets).numpy()
    assert len(seen) == state.samples
    assert np.bincount(seen, minlength=10)[0] == 3 * data.train_counts[0]  # class 0 drawn three times
    assert (np.bincount(seen, minlength=10)[1:] == data.train_counts[1:]).all()
    assert criterion.class_counts.sum() == len(data.train)
    # the criterion was told the epoch's draws before its first batch: the labels the sampler drew
    assert (np.bincount(criterion.drawn[0], minlength=10) == data.train_counts + np.eye(10)[0] * 2 * data.train_counts[0]).all()


def test_an_augmenter_gets_the_raw_uint8_batch_and_may_return_soft_targets(digits):
    job = prepare(digits, _cfg(epochs=1))
    aug = FlipAndOneHot(k=10)
    job.seams = Seams(job.seams.sampler, job.seams.criterion, aug)
    state = plan(job, run_id=0)
    fit(job, state, [Cadence(log_every_steps=1000, eval_every_steps=0)])
    assert len(aug.seen) == state.total_steps
    assert all(dtype == torch.uint8 and shape[1:] == (1, 8, 8) for dtype, shape in aug.seen)


@needs_asset("minilm")
def test_a_text_augmenter_rewrites_texts_before_tokenising(tmp_path):
    from core.data.splits import stratified_split
    from tests.test_models import tiny_bert_dir

    texts = np.array([f"{w} movie number {i}" for i, w in enumerate(["great", "awful"] * 40)], dtype=object)
    labels = np.arange(80) % 2
    ds = Dataset("t", "text", texts, labels, ["pos", "neg"], stratified_split(labels, seed=0))
    folder = tiny_bert_dir(tmp_path / "bert")
    job = prepare(ds, _cfg(model=str(folder), epochs=1, batch_size=8, max_length=32))
    calls = []

    def shout(batch_texts, batch_labels, rng):
        calls.append(len(batch_texts))
        return [t + " and then some more words at the end" for t in batch_texts]

    order = job.seams.sampler.epoch(job.data.train, 0, np.random.default_rng(0))
    plain = job.inputs.epoch(order)
    louder = job.inputs.epoch(order, text_augmenter=shout, labels=job.data.y, rng=np.random.default_rng(0))
    assert calls == [len(order)] and (louder.lengths > plain.lengths).all()
    job.seams = dataclasses.replace(job.seams, text_augmenter=shout)
    state = plan(job, run_id=0)
    fit(job, state, [Cadence(log_every_steps=1000, eval_every_steps=0)])
    assert calls[1:] == [len(job.data.train)]  # once per epoch, on the epoch's draw


class MemorySink:
    """A RunSink that keeps everything in memory: what a remote worker's sink would send."""

    def __init__(self, run_id: int, config: dict, folder) -> None:
        self.run_id, self._config = run_id, config
        self.files = RunFiles(run_id, home=folder)
        self.metrics: list[tuple] = []
        self.predictions: list[tuple] = []
        self.status: list[tuple] = []
        self.messages: list[str] = []

    def config(self):
        return self._config

    def claim(self, pid, pid_started):
        self.status.append(("running", pid))
        return None

    def stop_requested(self):
        return False

    def heartbeat(self):
        return False

    def progress(self, message, *, progress=None):
        self.messages.append(message)

    def add_metrics(self, step, split, values, *, epoch=None):
        self.metrics += [(step, split, k, v) for k, v in values.items()]

    def add_predictions(self, step, split, items, labels, pred, conf):
        self.predictions.append((step, split, len(items)))

    def finish(self, status, message):
        self.status.append((status, message))


def test_a_worker_writes_only_through_its_sink(digits, tmp_path, home):
    sink = MemorySink(7, _cfg(version_id=3, epochs=1).to_dict(), tmp_path / "remote")
    status = run_with_sink(sink, lambda version_id: digits if version_id == 3 else None)
    assert status == RunStatus.FINISHED and sink.status[-1][0] == RunStatus.FINISHED
    assert not home.exists() or not (home / "gapscope.db").exists()  # no SQLite was opened
    splits = {split for _, split, _, _ in sink.metrics}
    assert splits == {"train", "val", "test", "val_ts", "test_ts"}
    n_test = int((digits.split == 2).sum())
    assert (sink.predictions[0][1], sink.predictions[0][2]) == ("test", n_test)
    files = sink.files
    assert files.checkpoint_path("best").exists() and files.read_json("summary.json")["status"] == "finished"
    assert files.eval_artifacts()["test"]["confusion"].sum() == n_test


class OrderSink(MemorySink):
    """Records the order an evaluation reaches the sink, and what its files held at each metric write."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.events: list[tuple] = []

    def add_metrics(self, step, split, values, *, epoch=None):
        has_artifacts = split != "train" and step in self.files.eval_steps() and split in self.files.eval_artifacts(step)
        self.events.append(("metrics", step, split, has_artifacts))
        super().add_metrics(step, split, values, epoch=epoch)

    def add_predictions(self, step, split, items, labels, pred, conf):
        self.events.append(("predictions", step, split, None))
        super().add_predictions(step, split, items, labels, pred, conf)


def test_an_evaluation_is_complete_once_its_val_rows_are_written(digits, tmp_path):
    # readers take the best step from the val rows: its test rows, predictions and artifacts must be there
    sink = OrderSink(8, _cfg(version_id=3, epochs=2).to_dict(), tmp_path / "remote")
    assert run_with_sink(sink, lambda version_id: digits) == RunStatus.FINISHED
    steps = sorted({step for kind, step, split, _ in sink.events if split == "val"})
    assert len(steps) >= 2
    for step in steps:
        mine = [(kind, split, art) for kind, s, split, art in sink.events if s == step and split in ("val", "test")]
        assert mine[-1][:2] == ("metrics", "val")  # the val rows close the evaluation
        assert ("predictions", "test", None) in mine and ("metrics", "test", True) in mine
        assert all(art for kind, split, art in mine if kind == "metrics")  # the artifacts file came first
