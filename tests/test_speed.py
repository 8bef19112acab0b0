"""The GPU fast path (core.train.speed), checked on the CPU: the automatic batch and its learning
rate, a fixed set of batch shapes in training and evaluation, token widths in multiples of 16,
indices copied once per epoch, grouped augmentation, and torch.compile through the worker."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch

from core.data import Dataset
from core.data.demos import load_digits_8x8
from core.mitigate.augment import ImageAugmenter
from core.store import RunFiles
from core.train import speed
from core.train.callbacks import Cadence
from core.train.config import RunConfig
from core.train.evaluate import predict_logits
from core.train.loop import fit
from core.train.prepare import prepare
from core.train.worker import plan, train_run
from tests.conftest import needs_asset
from tests.test_models import tiny_bert_dir

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


# ---------------------------------------------------------------------- the plan


def test_auto_batch_is_32_on_a_cpu_and_grows_with_the_gpu_and_the_data():
    assert speed.auto_batch(feed="image", device_type="cpu", n_train=60_000, image_side=28) == 32
    assert speed.auto_batch(feed="image", device_type="cuda", n_train=55_000, image_side=64) == 1024
    assert speed.auto_batch(feed="image", device_type="cuda", n_train=55_000, image_side=128) == 256  # 4× the pixels
    assert speed.auto_batch(feed="image", device_type="cuda", n_train=55_000, image_side=512) == 64  # never below 64 for images
    assert speed.auto_batch(feed="image", device_type="cuda", n_train=2_000, image_side=28) == 128  # ≥ 8 steps per epoch
    assert speed.auto_batch(feed="image", device_type="cuda", n_train=100, image_side=28) == 32  # and never below 32
    assert speed.auto_batch(feed="tokens", device_type="cuda", n_train=19_000) == 64
    assert speed.auto_batch(feed="vector", device_type="cuda", n_train=100_000) == 512
    assert speed.scaled_lr(1e-3, 32) == pytest.approx(1e-3)
    assert speed.scaled_lr(1e-3, 512) == pytest.approx(4e-3)  # √16


def test_the_fast_path_is_on_for_a_gpu_and_tunes_or_compiles_only_when_it_pays():
    assert speed.plan(fast_path="auto", compile_mode="auto", device_type="cpu", feed="image", steps=10**6) == speed.OFF
    short = speed.plan(fast_path="auto", compile_mode="auto", device_type="cuda", feed="image", steps=100)
    assert short.fixed_shapes and short.aug_group == speed.AUG_GROUP and not short.autotune and not short.compile
    long = speed.plan(fast_path="auto", compile_mode="auto", device_type="cuda", feed="image", steps=speed.COMPILE_MIN_STEPS)
    assert long.autotune and long.compile
    text = speed.plan(fast_path="auto", compile_mode="auto", device_type="cuda", feed="tokens", steps=10**6)
    assert text.pad_tokens_to == speed.PAD_TOKENS_TO and not text.compile  # texts have several widths
    assert speed.plan(fast_path="off", compile_mode="auto", device_type="cuda", feed="image", steps=10**6) == speed.OFF
    forced = speed.plan(fast_path="on", compile_mode="on", device_type="cpu", feed="image", steps=1)
    assert forced.fixed_shapes and forced.compile and not forced.autotune  # no cuDNN on a CPU
    with pytest.raises(ValueError, match="auto, on, off"):
        speed.plan(fast_path="yes", compile_mode="auto", device_type="cpu", feed="image", steps=1)


# ---------------------------------------------------------------------- shapes in a real run


def _digits(store) -> int:
    return store.save_dataset(load_digits_8x8().dataset, source="upload:digits")


def _train_recording_shapes(store, cfg: RunConfig) -> tuple[list[tuple[bool, tuple[int, ...]]], object]:
    """Train ``cfg`` in this process; return (training?, input shape) of every forward, and the job."""
    job = prepare(store.load_dataset(cfg.version_id), cfg)
    seen: list[tuple[bool, tuple[int, ...]]] = []

    def record(module, args):
        x = args[0]
        shape = tuple(x["input_ids"].shape) if isinstance(x, dict) else tuple(x.shape)
        seen.append((module.training, shape))

    job.built.net.register_forward_pre_hook(record)
    state = plan(job, run_id=0)
    _control, best = fit(job, state, [Cadence(log_every_steps=10**6, eval_every_steps=0)])
    assert best is not None and state.step == state.total_steps
    return seen, job


def test_fixed_shapes_give_one_batch_shape_in_training_and_evaluation(store):
    vid = _digits(store)
    cfg = RunConfig(version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3, device="cpu", fast_path="on")
    seen, job = _train_recording_shapes(store, cfg)
    train = {s for training, s in seen if training}
    evals = {s for training, s in seen if not training}
    assert train == {(64, 1, 8, 8)}, train  # the last, partial batch of each epoch is dropped
    assert evals == {(64, 1, 8, 8)}, evals  # evaluation batches are padded to the train batch
    n_train = len(job.data.train)
    assert n_train % 64, "the digits train split should not divide into whole batches, or the test proves nothing"
    assert sum(training for training, _ in seen) == 2 * (n_train // 64)

    off = RunConfig(version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3, device="cpu", fast_path="off")
    seen_off, _ = _train_recording_shapes(store, off)
    assert len({s for training, s in seen_off if training}) == 2  # the CPU path keeps every item: a last, smaller batch


def test_padded_evaluation_gives_the_same_logits(store):
    vid = _digits(store)
    job = prepare(store.load_dataset(vid), RunConfig(version_id=vid, model="small_cnn", device="cpu"))
    idx = job.data.test
    assert len(idx) % 64
    kw = {"n_classes": len(job.data.classes), "batch_size": 64, "autocast": contextlib.nullcontext}
    plain = predict_logits(job.built, job.inputs, idx, **kw)
    padded = predict_logits(job.built, job.inputs, idx, pad=True, **kw)
    assert padded.shape == plain.shape == (len(idx), len(job.data.classes))
    np.testing.assert_allclose(padded, plain, rtol=1e-5, atol=1e-5)


def test_an_epoch_copies_its_indices_once_and_they_match_the_draw(store):
    vid = _digits(store)
    job = prepare(store.load_dataset(vid), RunConfig(version_id=vid, model="small_cnn", device="cpu"))
    rng = np.random.default_rng(0)
    view = job.inputs.epoch(rng.permutation(job.data.train))
    batches = view.batches(64, rng, drop_last=True)
    on_device = view.to_device(batches)
    assert len(on_device) == len(batches)
    for b, where in zip(batches, on_device):
        np.testing.assert_array_equal(where.positions.numpy(), b)
        np.testing.assert_array_equal(where.rows.numpy(), view.order[b])
        torch.testing.assert_close(view.raw(b, where), view.raw(b))


@needs_asset("minilm")
def test_text_widths_are_multiples_of_16_and_every_train_batch_is_full(store, tmp_path):
    from core.data.splits import stratified_split

    words = ["good", "bad", "film", "plot", "acting", "music", "story", "scene", "cast", "ending"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 40)))) for _ in range(240)]
    labels = np.array([int("good" in t) for t in texts])
    split = stratified_split(labels, val=0.2, test=0.2, seed=0)
    ds = Dataset("reviews", "text", np.array(texts, dtype=object), labels, ["negative", "positive"], split)
    vid = store.save_dataset(ds, source="upload:reviews.csv")
    folder = tiny_bert_dir(tmp_path / "bert")
    cfg = RunConfig(version_id=vid, model=str(folder), epochs=2, batch_size=16, device="cpu", fast_path="on", max_length=64)
    seen, _ = _train_recording_shapes(store, cfg)
    widths = {w for _, (_, w) in seen}
    assert widths and all(w % 16 == 0 for w in widths) and max(widths) <= 64, widths
    assert len(widths) > 1  # bucketed by length: short batches stay short
    assert {b for training, (b, _) in seen if training} == {16}
    assert {b for training, (b, _) in seen if not training} == {16}


def test_grouped_augmentation_shares_one_draw_per_group():
    torch.manual_seed(0)
    augment = ImageAugmenter(["flip"], strength=1.0, size=(8, 8), channels=1, n_classes=2, group=4)
    x = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8).repeat(32, 1, 1, 1)
    out, _ = augment(x, torch.zeros(32, dtype=torch.int64))
    flipped = [bool(torch.equal(out[i], x[i].flip(-1))) for i in range(32)]
    assert all(flipped[i] == flipped[i - i % 4] for i in range(32))  # a group is flipped, or not, as one
    assert 0 < sum(flipped) < 32  # and groups draw apart
    per_item = ImageAugmenter(["flip"], strength=1.0, size=(8, 8), channels=1, n_classes=2)
    assert per_item.group == 1  # the CPU path: one draw per item, as before


def test_the_compile_cache_is_the_homes_unless_the_user_chose_one(tmp_path, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # torch's own default, set by torch
    assert speed.compile_cache(tmp_path / "home") == tmp_path / "home" / "cache" / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))  # the user's choice is kept
    assert speed.compile_cache(tmp_path / "home") == tmp_path / "mine"
    assert (tmp_path / "mine").is_dir()


# ---------------------------------------------------------------------- the worker


@pytest.mark.slow
def test_a_compiled_run_finishes_and_keeps_its_kernels_under_the_home(store, home, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    # what torch leaves once anything asked it for the cache (importing transformers does, with
    # some versions): its own default, which the run replaces with the home's folder
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # restored after the test
    vid = _digits(store)
    cfg = RunConfig(version_id=vid, model="small_cnn", epochs=1, batch_size=64, lr=3e-3, device="cpu", fast_path="on", compile="on")
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    metrics = store.metrics(run_id)
    test = metrics[(metrics.split == "test") & (metrics.name == "accuracy")]
    assert len(test) == 1 and math.isfinite(test.value.iloc[0]) and test.value.iloc[0] > 0.3
    cache = home / "cache" / "inductor"
    assert cache.is_dir() and any(p.is_file() for p in cache.rglob("*"))


def test_a_fast_path_run_with_augmentation_and_resampling_finishes_like_the_cpu_path(store, home):
    """The whole worker on the fast path (forced on the CPU) with per-item and batch augmentations on
    the tail classes and a weighted sampler: every evaluation scores every test item once."""
    from core.mitigate.settings import Augmentation, Mitigations, Resampling

    vid = _digits(store)
    mitigations = Mitigations(
        resample=Resampling(method="class_balanced"),
        augment=Augmentation(image=["flip", "rotate", "mixup"], strength=0.5, classes=["7", "8", "9"], multiplier=2),
    )
    cfg = RunConfig(
        version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3, device="cpu", fast_path="on", mitigations=mitigations
    )
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    n_test = int((store.load_dataset(vid).split == 2).sum())
    metrics = store.metrics(run_id)
    steps = sorted(int(s) for s in metrics[metrics.split == "test"].step.unique())
    assert len(steps) == 2
    for step in steps:
        at = store.predictions(run_id, step=step)
        assert len(at) == at["item"].nunique() == n_test  # padding added no rows, lost none
    used = RunFiles(run_id, home=home).read_json("config.json")
    assert used is not None and used["fast_path"] == "on" and used["batch_size"] == 64


def test_normalisation_constants_are_made_once_per_device_not_per_batch():
    """``ImageSpec.prepare`` runs every step: its mean and std are built on the device once (on a
    GPU each new tensor would be a host→device copy per step), and the result is unchanged."""
    from core.models.preprocess import ImageSpec

    spec = ImageSpec.for_model("imagenet", (16, 16))
    x = torch.randint(0, 255, (4, 1, 8, 8), dtype=torch.uint8)
    first = spec.prepare(x)
    made = spec._norm[(x.device, torch.float32)]
    again = spec.prepare(x)
    assert spec._norm[(x.device, torch.float32)] is made and len(spec._norm) == 1
    torch.testing.assert_close(first, again)
    expected = torch.nn.functional.interpolate(x.float() / 255, size=(16, 16), mode="bilinear", align_corners=False)
    expected = (expected.expand(-1, 3, -1, -1) - torch.tensor(spec.mean).view(1, -1, 1, 1)) / torch.tensor(spec.std).view(1, -1, 1, 1)
    torch.testing.assert_close(first, expected)
