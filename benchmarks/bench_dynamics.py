"""What recording training dynamics costs per step: the loop's step with and without ``Dynamics.record``.

    .venv/bin/python benchmarks/bench_dynamics.py              # 3 rounds of 30 steps per model
    .venv/bin/python benchmarks/bench_dynamics.py --steps 10   # a quick look

For each model — the small CNN on 28×28 images (batch 64) and MLP on 40 table columns (batch 256),
from the registry, and MiniLM fine-tuned on 64-token texts (batch 32) — the same training step
(forward, cross-entropy, backward, AdamW) runs ``--steps`` times with the record and ``--steps``
times without, in alternating rounds in one process, on random inputs and labels. Reported: the
median step time of each and the overhead (with ÷ without − 1). The goal: ≤ 5 % of the step time.
The machine and its load (``os.getloadavg``) are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _models(which: list[str]):
    import torch

    from core.models.build import build
    from core.train.config import RunConfig

    if "cnn" in which:
        built = build(RunConfig(model="small_cnn"), modality="image", n_classes=10, item_shape=(28, 28))
        x = built.image.prepare(torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8))  # type: ignore[union-attr]
        yield "small CNN, 28×28 images, batch 64", built.net, x, 10
    if "mlp" in which:
        built = build(RunConfig(model="mlp"), modality="tabular", n_classes=2, n_features=40)
        yield "MLP, 40 columns, batch 256", built.net, torch.randn(256, 40), 2
    if "minilm" in which:
        built = build(RunConfig(model="minilm"), modality="text", n_classes=3)
        from core.models.preprocess import tokenise

        tokens = tokenise(["a sentence of about sixty four tokens " * 8] * 32, built.tokenizer, 64)
        yield "MiniLM fine-tune, 64 tokens, batch 32", built.net, tokens.batch(np.arange(32), torch.device("cpu")), 3


def main() -> int:
    import torch
    import torch.nn.functional as F

    from core.hardware import limit_torch_threads
    from core.train.dynamics import Dynamics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["cnn", "mlp", "minilm"])
    args = parser.parse_args()
    limit_torch_threads()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} threads; load {os.getloadavg()}"
    )
    for name, net, x, k in _models(args.models):
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        n = 10_000
        dyn = Dynamics(n, torch.device("cpu"))
        b = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        times: dict[bool, list[float]] = {True: [], False: []}
        rng = np.random.default_rng(0)
        for _ in range(args.rounds):
            for record in (False, True):
                for _ in range(args.steps):
                    rows = torch.from_numpy(rng.choice(n, b, replace=False))
                    y = torch.randint(0, k, (b,))
                    t = time.perf_counter()
                    logits = net(x)
                    loss = F.cross_entropy(logits, y)
                    if record:
                        dyn.record(rows, logits, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    times[record].append(time.perf_counter() - t)
        without, with_ = statistics.median(times[False]), statistics.median(times[True])
        print(
            f"{name}: step {without * 1000:.1f} ms without, {with_ * 1000:.1f} ms with the record · overhead {with_ / without - 1:+.1%}",
            flush=True,
        )
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
