"""The GPU fast path checked on a real CUDA device, with nothing but torch, torchvision, transformers,
numpy, pandas and pyarrow installed (no pytest), as on a bare GPU machine.

    bash scripts/gpu_assets.sh                                          # with the setup: the assets, into .gpu-assets
    GAPSCOPE_ASSETS=.gpu-assets/assets python benchmarks/gpu_check.py   # on the GPU machine: about a minute
    GAPSCOPE_ASSETS=.gpu-assets/assets python benchmarks/bench_gpu.py   # then the measurements

``scripts/gpu_bench.sh`` runs this, ``bench_gpu.py`` and ``gpu_profile.py`` in one call.

Each check prints PASS or FAIL with its figures; the exit code is the number of failures.
``tests/test_gpu.py`` runs the same checks under pytest on a machine with a GPU and the test
extras. The CPU tests of the same rules are in ``tests/test_speed.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

#: "cuda"; ``--cpu`` runs the same checks on the CPU with the fast path forced on (a dry run of this
#: script: the rules that only a GPU shows — the larger batch, ids on the device — are not asserted).
DEVICE = "cuda"


def _on_gpu() -> bool:
    return DEVICE == "cuda"


def _cfg(**kw):
    from core.train.config import RunConfig

    return RunConfig(device=DEVICE, fast_path="auto" if _on_gpu() else "on", **kw)


def _store():
    from core.store import Store

    home = Path(tempfile.mkdtemp(prefix="gapscope-gpu-check-"))
    os.environ["GAPSCOPE_HOME"] = str(home)
    return Store(home)


def _fashion(store, n: int = 4000) -> int:
    """``n`` Fashion-MNIST images (28 px, 10 classes) in train / val / test, from the assets
    ``scripts/gpu_assets.sh`` copies (the digits demo needs scikit-learn, which this script may not count on)."""
    from core.data.demos import load_fashion_mnist
    from core.data.splits import stratified_split

    ds = load_fashion_mnist().dataset
    part = ds.subset(np.random.default_rng(0).permutation(len(ds))[:n], name=f"Fashion-MNIST {n}")
    part.split = stratified_split(part.labels, val=0.15, test=0.15, seed=0)
    return store.save_dataset(part, source="gpu-check")


def _shapes(store, cfg) -> tuple[list[tuple[bool, tuple[int, ...]]], object]:
    """Train ``cfg`` in this process with a forward hook: (training?, input shape) of every forward."""
    from core.train.callbacks import Cadence
    from core.train.loop import fit
    from core.train.prepare import prepare
    from core.train.worker import plan

    job = prepare(store.load_dataset(cfg.version_id), cfg)
    seen: list[tuple[bool, tuple[int, ...]]] = []

    def record(module, args):
        x = args[0]
        seen.append((module.training, tuple(x["input_ids"].shape) if isinstance(x, dict) else tuple(x.shape)))

    job.built.net.register_forward_pre_hook(record)
    state = plan(job, run_id=0)
    fit(job, state, [Cadence(log_every_steps=10**6, eval_every_steps=0)])
    return seen, job


def check_image_run_auto_batch(store) -> str:
    """A Fashion-MNIST run at batch 0 through the worker: the batch and lr it chose, first step, accuracy."""
    from core.store import RunFiles
    from core.train.worker import train_run

    vid = _fashion(store)
    cfg = _cfg(version_id=vid, model="small_cnn", epochs=3, batch_size=0, lr=3e-3)
    run_id = store.create_run(vid, cfg.to_dict())
    status = train_run(store, run_id)
    assert status == "finished", store.run(run_id).message
    used = RunFiles(run_id, home=store.home).read_json("config.json") or {}
    if _on_gpu():
        assert used["batch_size"] > 32 and used["lr"] > 3e-3, used  # a GPU: a larger batch, the lr scaled with it
    m = store.metrics(run_id)
    test = m[(m.split == "test") & (m.step == m[m.split == "test"].step.max())].set_index("name")["value"]
    first = float(m[(m.split == "train") & (m.name == "first_step_s")].value.iloc[0])
    assert test["accuracy"] > 0.7, test["accuracy"]  # a small CNN, 2,800 images, 3 epochs: about 0.8
    return f"batch {used['batch_size']}, lr {used['lr']:.2g}, first step {first:.2f} s, test accuracy {test['accuracy']:.3f}"


def check_one_image_shape(store) -> str:
    """On the fast path the net meets one batch shape in training and evaluation."""

    vid = _fashion(store, 1000)
    seen, job = _shapes(store, _cfg(version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3))
    shapes = {s for _, s in seen}
    assert job.speed.fixed_shapes and shapes == {(64, 1, 28, 28)}, (job.speed, shapes)  # type: ignore[attr-defined]
    return f"{len(seen)} forwards, shapes {sorted(shapes)}"


def check_text_on_the_gpu(store) -> str:
    """Texts: token ids on the GPU, widths in multiples of 16, every batch full."""
    from transformers import BertConfig, BertForSequenceClassification

    from core.data import Dataset, assets
    from core.data.splits import stratified_split

    folder = Path(tempfile.mkdtemp(prefix="gpu-check-bert-"))
    try:
        torch.manual_seed(0)
        BertForSequenceClassification(
            BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, num_labels=2)
        ).save_pretrained(folder)
        src = assets.asset_path("minilm")  # a BERT vocabulary, as the config below expects
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
            if (src / name).exists():
                shutil.copy(src / name, folder / name)
        rng = np.random.default_rng(0)
        words = ["good", "bad", "film", "plot", "acting", "music", "story", "scene", "cast", "ending"]
        texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for _ in range(640)]
        labels = np.array([int("good" in t) for t in texts])
        ds = Dataset(
            "words", "text", np.array(texts, dtype=object), labels, ["no", "yes"], stratified_split(labels, val=0.2, test=0.2, seed=0)
        )
        vid = store.save_dataset(ds, source="gpu-check")
        seen, job = _shapes(store, _cfg(version_id=vid, model=str(folder), epochs=2, batch_size=32))
        widths = {w for _, (_, w) in seen}
        rows = {b for _, (b, _) in seen}
        assert job.inputs.tokens.ids.device.type == DEVICE, job.inputs.tokens.ids.device  # type: ignore[attr-defined]
        assert all(w % 16 == 0 for w in widths) and rows == {32}, (widths, rows)
        return f"widths {sorted(widths)}, batch rows {sorted(rows)}, ids on {job.inputs.tokens.ids.device}"  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_grouped_augmentation(store) -> str:
    """Every image augmentation, in groups of 16, on a CUDA batch; the time against one call per item."""
    from core.mitigate.augment import ImageAugmenter
    from core.mitigate.settings import IMAGE_AUGMENTATIONS

    names = [n for n in IMAGE_AUGMENTATIONS if n not in ("mixup", "cutmix")]
    n = 1024 if _on_gpu() else 128
    x = torch.randint(0, 255, (n, 1, 28, 28), dtype=torch.uint8, device=DEVICE)
    y = torch.randint(0, 10, (n,), device=DEVICE)
    out = {}
    for group in (1, 16):
        augment = ImageAugmenter(names, strength=0.5, size=(28, 28), channels=1, n_classes=10, group=group)
        augment(x, y)  # warm-up
        _sync()
        t = time.perf_counter()
        z, _ = augment(x, y)
        _sync()
        out[group] = time.perf_counter() - t
        assert z.device.type == DEVICE and z.shape == x.shape
    return f"{n:,} images, {len(names)} operations: {out[1] * 1e3:.0f} ms per item, {out[16] * 1e3:.0f} ms in groups of 16 ({out[1] / out[16]:.1f}×)"


def _sync() -> None:
    if _on_gpu():
        torch.cuda.synchronize()


def check_compiled_run(store) -> str:
    """``compile=on``: the run finishes; its first step includes the compile."""
    from core.train.worker import train_run

    vid = _fashion(store, 1000)
    cfg = _cfg(version_id=vid, model="small_cnn", epochs=2, batch_size=128, lr=3e-3, compile="on")
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    m = store.metrics(run_id)
    first = float(m[(m.split == "train") & (m.name == "first_step_s")].value.iloc[0])
    # the worker's folder (GAPSCOPE_HOME/cache/inductor), unless this process had one set already
    cache = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or store.home / "cache" / "inductor")
    return f"first step (compiling) {first:.1f} s, compile cache {cache}: {sum(1 for p in cache.rglob('*') if p.is_file())} files"


CHECKS: list[Callable[..., str]] = [
    check_image_run_auto_batch,
    check_one_image_shape,
    check_text_on_the_gpu,
    check_grouped_augmentation,
    check_compiled_run,
]


def main() -> int:
    global DEVICE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="a dry run on the CPU, the fast path forced on")
    parser.add_argument("--skip", nargs="*", default=[], choices=[c.__name__ for c in CHECKS], help="checks not to run")
    args = parser.parse_args()
    if args.cpu:
        DEVICE = "cpu"
    elif not torch.cuda.is_available():
        print("no CUDA GPU visible: nothing to check (--cpu runs a dry run; tests/test_speed.py checks the same rules on a CPU)")
        return 0
    print(f"device: {torch.cuda.get_device_name(0) if _on_gpu() else 'CPU (dry run, fast path forced on)'} · torch {torch.__version__}")
    failures = 0
    for check in (c for c in CHECKS if c.__name__ not in args.skip):
        store = _store()
        t = time.perf_counter()
        try:
            figures = check(store)
            print(f"PASS {check.__name__} ({time.perf_counter() - t:.1f} s): {figures}", flush=True)
        except Exception:
            failures += 1
            print(f"FAIL {check.__name__} ({time.perf_counter() - t:.1f} s):\n{traceback.format_exc()}", flush=True)
        finally:
            shutil.rmtree(store.home, ignore_errors=True)
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
