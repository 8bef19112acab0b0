"""The lab's real model, probed: what SmolLM2-135M-Instruct knows of the shipped facts, and how
confident it is where it does not.

    .venv/bin/python benchmarks/bench_lab_probe.py                    # 60 facts per seed, seeds 0 1 2
    .venv/bin/python benchmarks/bench_lab_probe.py --facts 30 --seeds 0

Per seed a draw of ``--facts`` facts in equal shares of capitals, element symbols and atomic numbers
(``core.lab.facts.choose``), each asked in 3 few-shot prompts greedily and sampled 6 times at
temperature 0.5 (``core.lab.llm.probe_facts``). Printed per seed: the share of facts known / maybe /
unknown (SliCK), accuracy, mean confidence (agreement of the samples), hallucination @0.9 and ECE
per category; over seeds the mean and range. The machine, its load and the time are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    import numpy as np
    import torch

    from core.lab.facts import CATEGORIES, ProbeSettings, by_family, choose, summarise
    from core.lab.llm import load_model, probe_facts

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, tok = load_model()
    print(f"model loaded in {time.perf_counter() - t0:.1f} s on {model.device}")
    out = []
    for seed in args.seeds:
        settings = ProbeSettings(n_facts=args.facts, seed=seed)
        t1 = time.perf_counter()
        rows = probe_facts(model, tok, choose(settings), settings)
        s = summarise(rows, settings.tau)
        out.append({"seed": seed, "seconds": time.perf_counter() - t1, "summary": s, "by_family": by_family(rows), "rows": rows})
        print(f"seed {seed}: {len(rows)} facts in {out[-1]['seconds']:.0f} s")
        for name, v in s.items():
            print(f"  {name:8s} share {v['share']:.3f} · accuracy {v['accuracy']:.3f} · confidence {v['confidence']:.3f} · "
                  f"hallucination@0.9 {v['hallucination']:.3f} · ECE {v['ece']:.3f}")  # fmt: skip
        for fam, shares in out[-1]["by_family"].items():
            print(f"  {fam:8s} " + " · ".join(f"{c} {shares[c]:.2f}" for c in CATEGORIES))
    if len(out) > 1:
        print("over seeds (mean [min, max]):")
        for name in (*CATEGORIES, "all"):
            for key in ("share", "accuracy", "confidence", "hallucination"):
                v = [r["summary"][name][key] for r in out if name in r["summary"]]
                if v:
                    print(f"  {name:8s} {key:13s} {np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]")
    print(f"load at the end {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
