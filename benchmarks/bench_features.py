"""Throughput of ``core.embed`` on real data, on the machine it runs on.

    .venv/bin/python benchmarks/bench_features.py [--texts 2000] [--images 5000] [--image-size 64]

Prints MiniLM texts/s on VADER texts (length-sorted batches, as ``embed`` runs them, and in the
given order, to show what the sorting saves), MobileNetV2 images/s on Fashion-MNIST at the
default size, and the time of a cache hit. Besides the wall-clock rate it prints the rate per CPU
second (× threads): on a machine shared with other jobs the wall-clock figure mostly measures them.
Nothing here is asserted; tests never look at wall-clock time.

On a machine where other processes keep the cores busy, run it as
``OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_features.py``: otherwise torch's
OpenMP threads spin while they wait for each other, which inflates the CPU time (and, on a busy
machine, the wall-clock time: 2–3× on a 2-core machine at load average 6–12).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(fn, n: int) -> tuple[np.ndarray, float, float]:
    """(result, items/s by the wall clock, items/s if this process had every thread's core to itself).

    The second figure divides by the CPU time this process used (over ``torch.get_num_threads()``
    threads): on a machine shared with other jobs it is the better estimate of what the code
    itself can do (a little pessimistic, since waiting OpenMP threads spin).
    """
    import torch

    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(progress=lambda done, total: None)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return out, n / wall, n / (cpu / torch.get_num_threads())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--image-size", type=int, default=None, help="default: features.DEFAULT_IMAGE_SIZE")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gapscope-bench-") as home:
        os.environ["GAPSCOPE_HOME"] = home  # a cold cache, thrown away afterwards
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import torch

    from core.data import assets, demos
    from core.embed import embeddings as features
    from core.hardware import detect
    from core.models.text import load_encoder, text_source

    dev = detect(None if args.device == "auto" else args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"device: {dev.label} · torch {torch.__version__} · {torch.get_num_threads()} threads · "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')} · load average {load:.1f} at the start"
    )

    if assets.is_ready("vader") and assets.is_ready("minilm"):
        vader = demos.load_vader().dataset
        rng = np.random.default_rng(0)
        ds = vader.subset(np.sort(rng.choice(len(vader), size=min(args.texts, len(vader)), replace=False)))
        texts = ds.items
        features.embed_texts(texts[:64], device=args.device)  # load the model, warm up
        tok = load_encoder(text_source("minilm"))[0]
        n_tokens = sum(len(x) for x in tok(list(texts), truncation=True, max_length=features.MAX_LENGTH)["input_ids"])
        runs = {
            "sorted by length (embed, cold cache)": lambda progress: features.embed(ds, device=args.device, progress=progress),
            "given order (embed_texts, no sort)  ": lambda progress: features.embed_texts(
                texts, device=args.device, sort_by_length=False, progress=progress
            ),
        }
        for label, fn in runs.items():
            X, rate, best = _timed(fn, len(texts))
            print(
                f"MiniLM   {len(texts):,} VADER texts, {label}: {rate:6.1f} texts/s ({rate * n_tokens / len(texts):,.0f} tokens/s; by CPU time {best:.0f} texts/s)"
            )
        t = time.perf_counter()
        X2 = features.embed(ds, device=args.device)
        hit = time.perf_counter() - t
        print(
            f"MiniLM   cache hit {hit * 1e3:.1f} ms; estimate_seconds said {features.estimate_seconds(ds, device=args.device):.1f} s cold"
        )
        print(f"MiniLM   sorted vs given order: max |difference| {np.abs(np.asarray(X2) - X).max():.2e}")
    else:
        print("MiniLM   skipped: VADER or MiniLM not fetched (python -m core.data.assets fetch)")

    if assets.is_ready("fashion-mnist") and assets.is_ready("mobilenet-v2"):
        fashion = demos.load_fashion_mnist().dataset
        ds = fashion.subset(np.arange(min(args.images, len(fashion))))
        size = args.image_size or features.default_image_size(ds.items.shape)
        features.embed_images(ds.items[:32], image_size=size, device=args.device)  # load, warm up
        X, rate, best = _timed(lambda progress: features.embed(ds, image_size=size, device=args.device, progress=progress), len(ds))
        print(
            f"MobileNetV2 {len(ds):,} Fashion-MNIST at {size}×{size} (embed, cold cache): {rate:6.1f} images/s ({1000 / rate:.1f} s per 1k; by CPU time {best:.0f} images/s)"
        )
        t = time.perf_counter()
        X2 = features.embed(ds, image_size=size, device=args.device)
        hit = time.perf_counter() - t
        assert np.array_equal(X, X2)
        print(
            f"MobileNetV2 cache hit {hit * 1e3:.1f} ms; estimate_seconds said {features.estimate_seconds(ds, device=args.device, image_size=size):.1f} s cold"
        )
        t = time.perf_counter()
        features.is_cached(fashion)
        print(f"content hash + cache lookup for all {len(fashion):,} Fashion-MNIST images: {(time.perf_counter() - t) * 1e3:.0f} ms")
    else:
        print("MobileNetV2 skipped: Fashion-MNIST or MobileNetV2 weights not fetched (python -m core.data.assets fetch)")
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} at the end (on a busy machine, trust 'by CPU time' over texts/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
