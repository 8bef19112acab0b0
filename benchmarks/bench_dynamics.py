"""What recording training dynamics costs per step: the loop's step with and without ``Dynamics.record``.

    .venv/bin/python benchmarks/bench_dynamics.py              # 12 rounds of 64 steps per model and arm
    .venv/bin/python benchmarks/bench_dynamics.py --rounds 4   # a quick look

For each model — the small CNN on 28×28 images (batch 64) and MLP on 40 table columns (batch 256),
from the registry, and MiniLM fine-tuned on 64-token texts (batch 32) — the same training step
(forward, cross-entropy, backward, AdamW) runs ``--steps`` times with the record and ``--steps``
times without, in alternating rounds in one process, on random inputs and labels, the batches'
train positions drawn as the loop draws them (a fresh permutation of 10,000 items per epoch, the
record's ``end_epoch`` at each epoch's end). ``--steps`` is a multiple of ``Dynamics.WINDOW`` so each
round with the record pays for its reads (``flush``): the time per step is a round's total over its
steps, the cost amortised as a run pays it. Reported: the mean step time of each arm, the overhead
(with ÷ without − 1, over all rounds) and a t 95 % interval of the per-round overheads (each round
with the record against the round without it next to it; which goes first alternates). The goal:
≤ 5 % of the step time. The machine and its load (``os.getloadavg``) are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
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


def _epoch_rows(n: int, b: int, rng: np.random.Generator):
    """Batches of positions as the loop draws them — a fresh permutation of ``n`` per epoch — and
    ``None`` where an epoch ends."""
    import torch

    while True:
        order = torch.from_numpy(rng.permutation(n))
        yield from (order[i : i + b] for i in range(0, n - b + 1, b))
        yield None


def main() -> int:
    import torch
    import torch.nn.functional as F
    from scipy import stats

    from core.hardware import limit_torch_threads
    from core.train.dynamics import Dynamics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2 * Dynamics.WINDOW, help="steps per round (a multiple of the record's window)")
    parser.add_argument("--rounds", type=int, default=12)
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
        rounds: dict[bool, list[float]] = {True: [], False: []}
        epochs = _epoch_rows(n, b, np.random.default_rng(0))
        for r in range(args.rounds):
            for record in (False, True) if r % 2 == 0 else (True, False):  # the arm that goes first alternates
                batches = [(next(epochs), torch.randint(0, k, (b,))) for _ in range(args.steps)]
                t = time.perf_counter()
                for rows, y in batches:
                    if rows is None:  # the loop's epoch ends: the record turns its sums into the epoch's means
                        if record:
                            dyn.end_epoch()
                        continue
                    logits = net(x)
                    loss = F.cross_entropy(logits, y)
                    if record:
                        dyn.record(rows, logits, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                dyn.flush()
                rounds[record].append((time.perf_counter() - t) / args.steps)
        without, with_ = np.array(rounds[False]), np.array(rounds[True])
        ratio = with_ / without - 1
        half = stats.t.ppf(0.975, len(ratio) - 1) * ratio.std(ddof=1) / np.sqrt(len(ratio)) if len(ratio) > 1 else float("nan")
        print(
            f"{name}: step {without.mean() * 1000:.2f} ms without, {with_.mean() * 1000:.2f} ms with the record · "
            f"overhead {with_.sum() / without.sum() - 1:+.1%} (per round {ratio.mean():+.1%} [{ratio.mean() - half:+.1%}, {ratio.mean() + half:+.1%}], "
            f"{len(ratio)} rounds of {args.steps} steps)",
            flush=True,
        )
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
