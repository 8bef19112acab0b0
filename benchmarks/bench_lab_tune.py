"""The lab's real model, fine-tuned: SmolLM2-135M-Instruct taught facts it knew and facts it did not
(Gekhman et al. 2024), and what that does to the facts it was not taught.

    .venv/bin/python benchmarks/bench_lab_tune.py                              # seeds 0 1 2, arms known / mixed / unknown / idk
    .venv/bin/python benchmarks/bench_lab_tune.py --seeds 0 --arms mixed --facts 30 --cpu

Per seed: one probe of ``--facts`` facts (``core.lab.llm.run_probe``; 2 greedy prompts, 4 samples),
stored in a temporary home, then one fine-tuning per arm from that probe (``core.lab.llm.run_tune``;
40 % of each category held out — the same facts in every arm —, and every arm fine-tuned on the same
number of facts, the most the smallest arm allows):

- ``known``: fine-tuned only on facts the model knew (share of unknown 0);
- ``mixed``: half of the fine-tuned facts unknown, taught their answers;
- ``unknown``: only facts the model did not know (share 1), taught their answers;
- ``idk``: the same facts as ``mixed``, the unknown ones taught "I don't know".

Printed per arm: the fit of the fine-tuned known and unknown facts over epochs, and the probe before
and after on the held-out facts (accuracy, hallucination @0.9, abstained). Fine-tuning
needs a GPU in the app; ``--cpu`` runs it on a CPU all the same. The machine, its load and the time
are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARMS = {"known": (0.0, False), "mixed": (0.5, False), "unknown": (1.0, False), "idk": (0.5, True)}


def main() -> int:
    from core.lab.finetune import TuneSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--epochs", type=int, default=TuneSettings.epochs)
    parser.add_argument("--lr", type=float, default=TuneSettings.lr)
    parser.add_argument("--eval-every", type=int, default=TuneSettings.eval_every)
    parser.add_argument("--cpu", action="store_true", help="fine-tune on a CPU too")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    from core.lab.facts import ProbeSettings, save_probe
    from core.lab.finetune import plan
    from core.lab.llm import run_probe, run_tune

    out = []
    home = Path(tempfile.mkdtemp(prefix="gapscope-bench-tune-"))
    try:
        for seed in args.seeds:
            t0 = time.perf_counter()
            probe = save_probe(
                home, run_probe(ProbeSettings(n_facts=args.facts, greedy_prompts=2, samples=4, seed=seed), log=lambda _: None)
            )
            s = probe["summary"]
            print(f"seed {seed}: probe {probe['id']} in {time.perf_counter() - t0:.0f} s · "
                  + " · ".join(f"{c} {s[c]['share']:.2f}" for c in ("known", "maybe", "unknown") if c in s))  # fmt: skip
            cats = [r["category"] for r in probe["rows"]]
            size = min(list(plan(cats, TuneSettings(unknown_share=ARMS[a][0], seed=seed))).count("tuned") for a in args.arms)
            for arm in args.arms:
                share, idk = ARMS[arm]
                settings = TuneSettings(probe_id=probe["id"], unknown_share=share, idk=idk, max_facts=size, epochs=args.epochs, lr=args.lr,
                                        eval_every=args.eval_every, seed=seed)  # fmt: skip
                rec = run_tune(home, settings, log=lambda _: None, allow_cpu=args.cpu)
                _print_arm(arm, rec)
                out.append(
                    {
                        "seed": seed,
                        "arm": arm,
                        **{
                            k: rec[k] for k in ("settings", "roles", "categories", "history", "table", "seconds", "train_seconds", "device")
                        },
                    }
                )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"load at the end {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def _print_arm(arm: str, rec: dict) -> None:
    n_unknown = sum(1 for r, c in zip(rec["roles"], rec["categories"]) if r == "tuned" and c == "unknown")
    print(f"  {arm}: {rec['roles'].count('tuned')} facts fine-tuned ({n_unknown} unknown) on {rec['device']} · "
          f"training {rec['train_seconds']:.0f} s, all {rec['seconds']:.0f} s")  # fmt: skip
    for h in rec["history"]:
        fits = " · ".join(f"{k} {v:.2f}" for k, v in h.items() if k.startswith(("fit", "acc held", "idk")))
        loss = f" · loss {h['loss']:.3f}" if "loss" in h else ""
        print(f"    epoch {h['epoch']:.0f}{loss} · {fits}")
    for r in rec["table"]:
        if r["category"] in ("all", "known", "unknown"):
            print(f"    {r['set']:18s} {r['category']:8s} n {r['n']:3d} · accuracy {r['accuracy before']:.3f} → {r['accuracy after']:.3f} · "
                  f"hallucination@0.9 {r['hallucination before']:.3f} → {r['hallucination after']:.3f} · abstained {r['abstained after']:.3f}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
