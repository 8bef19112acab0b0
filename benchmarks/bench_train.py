"""Training benchmarks: start-up latency, a cached linear probe, and MiniLM fine-tuning throughput.

    .venv/bin/python benchmarks/bench_train.py            # all three parts (~5–10 min on 2 CPU cores)
    .venv/bin/python benchmarks/bench_train.py --only a   # or b, c

(a) Start → first metric point: seconds from ``LocalRunner.submit`` to the first metrics row
    (the train point at step 1) and to the first evaluation, for a digits small-CNN run and a
    full-VADER MiniLM run (which is then stopped: the stop latency is printed too).
(b) Linear probe on Fashion-MNIST (60k train, 10k test, MobileNetV2 features) end to end through
    the runner, once the features are cached (the extraction is timed separately, and done only
    when the cache lacks them).
(c) MiniLM fine-tuning samples/s, ``core.train`` vs a transformers ``Trainer`` with the same data
    and hyper-parameters, in this process: 2,000 VADER train texts (500 val, 500 test for ours),
    1 epoch, batch 32, lr 5e-5, weight decay 0.01, 6 % warm-up then cosine, gradient clipping 1.0,
    max 128 tokens, texts tokenised once for both. ``Trainer`` needs ``accelerate``
    (``pip install accelerate``); without it part (c) reports only ours.

The home is ``--home`` or ``GAPSCOPE_BENCH_HOME`` (default ``~/.cache/gapscope/bench-home``), kept
between invocations so the feature cache of (b) survives. ``OMP_WAIT_POLICY=PASSIVE`` is set for
this process as ``LocalRunner`` sets it for its workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported, as for the workers
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np


def _first_row_time(store, run_id: int, split: str | None = None) -> float | None:
    m = store.metrics(run_id)
    if split is not None:
        m = m[m.split == split]
    return float(m.created_at.min()) if len(m) else None


def _wait(pred, timeout: float, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    return None


def _final(store, run_id: int, split: str) -> dict[str, float]:
    m = store.metrics(run_id)
    m = m[m.split == split]
    m = m[m.step == m.step.max()]
    return dict(zip(m.name, m.value))


def part_a(store, runner, device: str) -> None:
    from core.data.demos import import_demo
    from core.train.config import RunConfig

    print("\n(a) Start → first metric point, through LocalRunner (a fresh worker process each)")
    vid = import_demo(store, "digits")
    cfg = RunConfig(version_id=vid, model="small_cnn", epochs=3, batch_size=64, lr=3e-3, device=device, name="bench digits")
    t0 = time.time()
    run_id = runner.submit(cfg)
    _wait(lambda: (runner.tick(), _first_row_time(store, run_id))[1], 120)
    row = runner.wait(run_id, timeout_s=300)
    first, first_eval = _first_row_time(store, run_id), _first_row_time(store, run_id, "val")
    print(
        f"  digits 8×8, small CNN, 3 epochs: first metric {first - t0:.1f} s · first evaluation {first_eval - t0:.1f} s · "
        f"{row.status} after {row.finished_at - t0:.1f} s · test accuracy {_final(store, run_id, 'test')['accuracy']:.3f}"
    )

    from core.data import assets

    if not assets.is_ready("vader") or not assets.is_ready("minilm"):
        print("  VADER MiniLM: skipped (run `python -m core.data.assets fetch`)")
        return
    vid = import_demo(store, "vader")
    cfg = RunConfig(version_id=vid, model="minilm", epochs=1, batch_size=32, device=device, name="bench vader")
    t0 = time.time()
    run_id = runner.submit(cfg)
    _wait(lambda: (runner.tick(), _first_row_time(store, run_id))[1], 300)
    first = _first_row_time(store, run_id)
    n_train = int((store.load_dataset(vid).split == 0).sum())
    t_stop = time.time()
    status = runner.stop(run_id, wait_s=120)
    stopped = time.time() - t_stop
    print(
        f"  VADER ({n_train:,} train texts), MiniLM full fine-tune: first metric {first - t0:.1f} s "
        f"(tokenising every text once included) · stop → '{status}' in {stopped:.1f} s"
    )


def part_b(store, runner, device: str, image_size: int) -> None:
    from core.data import assets
    from core.data.demos import import_demo
    from core.embed import embeddings as features
    from core.train.config import RunConfig

    print(f"\n(b) Linear probe on Fashion-MNIST, MobileNetV2 features at {image_size} px, through LocalRunner")
    if not assets.is_ready("fashion-mnist") or not assets.is_ready("mobilenet-v2"):
        print("  skipped: Fashion-MNIST or the MobileNetV2 weights are not fetched")
        return
    vid = import_demo(store, "fashion-mnist")
    ds = store.load_dataset(vid)
    if features.is_cached(ds, backbone="mobilenet_v2", image_size=image_size):
        print(f"  features: cached ({features.cached_embedding_path(ds, backbone='mobilenet_v2', image_size=image_size).name[:12]}…)")
    else:
        t = time.perf_counter()
        features.embed(ds, backbone="mobilenet_v2", image_size=image_size, device=device)
        print(f"  features: extracted for {len(ds):,} images in {time.perf_counter() - t:.1f} s (once; cached for every later run)")
    cfg = RunConfig(
        version_id=vid,
        model="mobilenet_v2",
        finetune="linear_probe",
        image_size=image_size,
        epochs=10,
        batch_size=256,
        device=device,
        name="bench fashion probe",
    )
    t0 = time.time()
    run_id = runner.submit(cfg)
    row = runner.wait(run_id, timeout_s=600)
    first = _first_row_time(store, run_id)
    test, ts = _final(store, run_id, "test"), _final(store, run_id, "test_ts")
    n_train = int((ds.split == 0).sum())
    print(
        f"  {n_train:,} train / {int((ds.split == 2).sum()):,} test, 10 epochs: {row.status} end to end in "
        f"{row.finished_at - t0:.1f} s (first metric {first - t0:.1f} s) · test accuracy {test['accuracy']:.3f} · "
        f"hallucination@0.9 {test['hallucination_rate']:.3f} → {ts.get('hallucination_rate', float('nan')):.3f} "
        f"after T={ts.get('temperature', float('nan')):.2f}"
    )


def part_c(store, device: str, n_train: int, *, trainer_first: bool = False) -> None:
    import torch

    from core.data import assets
    from core.data.demos import load_vader
    from core.train.config import RunConfig
    from core.train.worker import train_run

    print(
        f"\n(c) MiniLM fine-tuning throughput: core.train vs transformers Trainer ({n_train:,} VADER texts, 1 epoch, "
        f"batch 32, max 128 tokens, {torch.get_num_threads()} threads, device {device})"
    )
    if not assets.is_ready("vader") or not assets.is_ready("minilm"):
        print("  skipped: VADER or MiniLM not fetched")
        return
    source = f"bench:vader-{n_train}"
    vid_existing = store.find_dataset(source)
    if vid_existing is None:
        full = load_vader().dataset
        rng = np.random.default_rng(0)
        rows = np.concatenate(
            [rng.choice(np.flatnonzero(full.split == s), n, replace=False) for s, n in ((0, n_train), (1, 500), (2, 500))]
        )
        sub = full.subset(rows, name=f"VADER {n_train}")
        vid = store.save_dataset(sub, source=source, note="benchmark subset")
    else:
        vid = store.versions(vid_existing)[-1].id
    ds = store.load_dataset(vid)
    hp = dict(epochs=1, batch_size=32, lr=5e-5, weight_decay=0.01, warmup_ratio=0.06, max_length=128, seed=0)

    def run_ours() -> float:
        cfg = RunConfig(version_id=vid, model="minilm", device=device, name="bench minilm ours", **hp)
        run_id = store.create_run(vid, cfg.to_dict(), name=cfg.name)
        t = time.perf_counter()
        status = train_run(store, run_id)
        wall = time.perf_counter() - t
        tr = _final(store, run_id, "train")
        print(
            f"  core.train: {tr['train_samples_per_s']:.1f} samples/s (training {tr['train_runtime_s']:.1f} s; whole run with "
            f"load, tokenising, an evaluation of 500 val + 500 test texts and temperature scaling {wall:.1f} s; {status}; "
            f"test accuracy {_final(store, run_id, 'test')['accuracy']:.3f})"
        )
        return tr["train_samples_per_s"]

    try:
        import accelerate  # noqa: F401
    except ImportError:
        run_ours()
        print("  transformers Trainer: skipped — it needs `pip install accelerate`")
        return
    if trainer_first:
        theirs = run_trainer(ds, device, hp)
        ours = run_ours()
    else:
        ours = run_ours()
        theirs = run_trainer(ds, device, hp)
    print(
        f"  speed-up: {ours / theirs:.2f}× (target ≥ 1.2×). Why: length-bucketed batches pad to their own longest "
        "text; tokens are cut to that length on the device; no per-step host syncs"
    )


def run_trainer(ds, device: str, hp: dict) -> float:
    """The same fine-tune with a transformers ``Trainer``; returns its train_samples_per_second."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    from core.data import assets

    hf_logging.set_verbosity_error()
    src = str(assets.asset_path("minilm"))
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    train_rows = np.flatnonzero(ds.split == 0)
    enc = tok([str(x) for x in ds.items[train_rows]], truncation=True, max_length=hp["max_length"])  # tokenised once, as ours
    labels = ds.labels[train_rows]

    class Encoded(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(labels)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": int(labels[i])}

    torch.manual_seed(hp["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=3, local_files_only=True)
    steps = int(np.ceil(len(labels) / hp["batch_size"]))
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=hp["batch_size"],
            num_train_epochs=hp["epochs"],
            learning_rate=hp["lr"],
            weight_decay=hp["weight_decay"],
            warmup_steps=round(hp["warmup_ratio"] * steps),
            lr_scheduler_type="cosine",
            max_grad_norm=1.0,
            seed=hp["seed"],
            report_to="none",
            save_strategy="no",
            eval_strategy="no",
            logging_steps=10,
            disable_tqdm=True,
            use_cpu=device == "cpu",
            bf16=device != "cpu" and torch.cuda.is_available(),
            dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=Encoded(), data_collator=DataCollatorWithPadding(tok))
        result = trainer.train()
    theirs = result.metrics["train_samples_per_second"]
    print(
        f"  transformers Trainer: {theirs:.1f} samples/s (train_runtime {result.metrics['train_runtime']:.1f} s, "
        f"mean loss {result.training_loss:.3f})"
    )
    return theirs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["a", "b", "c"], action="append", help="run only these parts (repeatable)")
    parser.add_argument("--home", help="GAPSCOPE_HOME for the benchmark (kept: the feature cache lives there)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--probe-image-size", type=int, default=0, help="px for (b); default 32 on a CPU, 64 on a GPU")
    parser.add_argument("--texts", type=int, default=2000, help="VADER train texts for (c) (default 2,000)")
    parser.add_argument("--trainer-first", action="store_true", help="in (c), run the Trainer before core.train")
    args = parser.parse_args(argv)
    home = Path(args.home or os.environ.get("GAPSCOPE_BENCH_HOME") or Path.home() / ".cache" / "gapscope" / "bench-home").expanduser()
    os.environ["GAPSCOPE_HOME"] = str(home)

    from core.hardware import detect
    from core.runners.local import LocalRunner
    from core.store import Store

    info = detect(None if args.device == "auto" else args.device)
    device = info.kind
    parts = set(args.only or ["a", "b", "c"])
    print(f"Gapscope training benchmark · device {info.label} · home {home}")
    store = Store(home)
    runner = LocalRunner(store, max_parallel=1)
    runner.recover()
    t = time.perf_counter()
    if "a" in parts:
        part_a(store, runner, device)
    if "b" in parts:
        part_b(store, runner, device, args.probe_image_size or (32 if device == "cpu" else 64))
    if "c" in parts:
        part_c(store, device, args.texts, trainer_first=args.trainer_first)
    print(f"\ntotal {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
