"""The knowledge-gap lab: does a small GPT-2 trained from scratch reproduce the published shapes?

    .venv/bin/python benchmarks/bench_lab.py                          # every arm, seeds 0 1 2
    .venv/bin/python benchmarks/bench_lab.py --arms varied --seeds 0  # one arm, one seed

Per seed a corpus (``core.lab.corpus``: ``--people`` people, exposure buckets 1 / 2 / 4 / 8, a
held-out share of 0.2 who never appear) and one lab run per arm (``core.lab.train.train_lab``, the
model 4 layers × 128 wide, ``--epochs``, batch 32, on one CPU thread):

- ``varied``: biographies in 5 paraphrases with shuffled sentences; completion probes of every
  person — accuracy per exposure count (goal: chance at 0, ≥ 0.9 at 8, rising with exposure), and
  the held-out people's invented answers beside the Kalai–Vempala line (monofact rate − ECE);
- ``plain`` and ``plain+aug``: one template, fixed order, without and with paraphrase augmentation
  (each biography re-written every epoch) — the same biographies per epoch; the paraphrases are
  longer, so ``plain-long`` trains the plain corpus 20 % longer to read at least as many tokens;
  goal: accuracy on once-seen facts up by ≥ 0.3 at the same number of tokens;
- ``qa`` and ``qa+idk``: the varied corpus with the questions of half the people in training, the
  others asked; then with abstention training (half the held-out people answer ``unknown``) —
  goal: accuracy at 8 ≥ 0.9 and confidently invented answers on the other held-out people ≤ 10 %;
- ``qa+names``: the ``qa`` arm answering ``unknown`` when the asked person's name is less familiar
  to the model than the 5 % quantile of the corpus's names (``abstain_unfamiliar``), the same goal.

Printed per seed and arm: the per-exposure table, tokens trained, seconds; over seeds each goal's
figure with its range. The machine and its load are printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CORPUS: dict[str, dict[str, Any]] = {"varied": {"paraphrases": 5, "shuffle": True}, "plain": {"paraphrases": 1, "shuffle": False}}
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "varied": ("varied", {}),
    "plain": ("plain", {}),
    "plain+aug": ("plain", {"paraphrase_aug": True}),
    # paraphrases are longer than the first template: plain trained 20 % longer reads at least as many tokens as plain+aug
    "plain-long": ("plain", {"epochs_scale": 1.2}),
    "qa": ("varied", {"qa_share": 0.5}),
    "qa+idk": ("varied", {"qa_share": 0.5, "idk_share": 0.5}),
    # abstain when the asked name is less familiar to the model than 95 % of the corpus's names
    "qa+names": ("varied", {"qa_share": 0.5, "abstain_unfamiliar": 0.05}),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    import numpy as np
    import torch

    from core.lab.corpus import CorpusSpec, good_turing, make_corpus, monofact_rate
    from core.lab.metrics import kalai_vempala
    from core.lab.train import LabSettings, train_lab

    torch.set_num_threads(1)
    out = []
    for seed in args.seeds:
        for arm in args.arms:
            kind, knobs = ARMS[arm]
            corpus = make_corpus(CorpusSpec(n_people=args.people, buckets=(1, 2, 4, 8), held_out=0.2, seed=seed, **CORPUS[kind]))
            knobs = dict(knobs)
            epochs = round(args.epochs * knobs.pop("epochs_scale", 1.0))
            res = train_lab(corpus, LabSettings(epochs=epochs, seed=seed, eval_every=epochs, **knobs))
            table = res.evaluations[-1]["table"]
            mono = monofact_rate(corpus)
            shown_ece = float(np.mean([v["ece"] for k, v in table.items() if k > 0]))
            row = {"seed": seed, "arm": arm, "tokens": res.tokens_trained, "seconds": res.seconds, "parameters": res.n_parameters,
                   "monofact": mono, "good_turing": good_turing(corpus), "kv_line": kalai_vempala(mono, shown_ece),
                   "table": {str(k): v for k, v in table.items()}}  # fmt: skip
            out.append(row)
            print(
                f"seed {seed} {arm:10s} {res.tokens_trained:,} tokens · {res.seconds:.0f} s · {res.n_parameters:,} parameters · monofact {mono:.3f}"
            )
            for k, v in sorted(table.items()):
                extra = f" · invented {v['invented']:.3f} (confident {v['invented_confident']:.3f})" if k == 0 else ""
                print(
                    f"    {k}×: n {v['n']:.0f} · accuracy {v['accuracy']:.3f} · confidence {v['confidence']:.3f} · "
                    f"halluc@0.9 {v['hallucination']:.3f} · ECE {v['ece']:.3f} · abstained {v['abstained']:.3f}{extra}"
                )
            print(f"    Kalai–Vempala line (monofact − mean ECE of the seen people) {row['kv_line']:.3f}", flush=True)
    _goals(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"load at the end {os.getloadavg()}")
    return 0


def _goals(out: list[dict]) -> None:
    import numpy as np

    def span(values: list[float]) -> str:
        return f"{min(values):.3f}–{max(values):.3f} over {len(values)} seed(s)" if values else "not run"

    acc = {(r["seed"], r["arm"]): {int(k): v["accuracy"] for k, v in r["table"].items()} for r in out}
    varied = [a for (s, arm), a in acc.items() if arm == "varied"]
    print(f"varied: accuracy at 0× {span([a[0] for a in varied])}, at 8× {span([a[8] for a in varied])}")
    print(f"varied: rising with exposure on {sum(all(np.diff([a[k] for k in sorted(a)]) >= 0) for a in varied)} of {len(varied)}")
    for base in ("plain", "plain-long"):
        gains = [acc[(s, "plain+aug")][1] - acc[(s, base)][1] for (s, arm) in acc if arm == base and (s, "plain+aug") in acc]
        tokens = {(r["seed"], r["arm"]): r["tokens"] for r in out}
        ratio = [tokens[(s, base)] / tokens[(s, "plain+aug")] for (s, arm) in acc if arm == base and (s, "plain+aug") in acc]
        print(f"paraphrase augmentation against {base}: once-seen accuracy gain {span(gains)}; {base}'s tokens / augmented's {span(ratio)}")
    for arm in ("qa", "qa+idk"):
        rows = [r for r in out if r["arm"] == arm]
        print(
            f"{arm}: accuracy at 8× {span([r['table']['8']['accuracy'] for r in rows])}; "
            f"confidently invented on held-out {span([r['table']['0']['invented_confident'] for r in rows])}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
