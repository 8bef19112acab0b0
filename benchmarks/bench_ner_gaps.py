"""What gaps in token data do to a tagger, and whether the fix works: two experiments, three seeds.

    .venv/bin/python benchmarks/bench_ner_gaps.py drop-type      # CoNLL-2003 without MISC in train
    .venv/bin/python benchmarks/bench_ner_gaps.py wnut           # WNUT-16: baseline vs the rare-types preset

**drop-type**: a seeded CoNLL-2003 slice (``--train`` train sentences, ``--val`` val sentences, the
whole test split); one arm trains on it as it is, the other on the same slice after the token
simulator dropped every train sentence holding a MISC mention (``TokenRecipe(drop_types=("MISC",),
drop_mode="sentences")``). On the test split, the **forced-known type rate** is the share of MISC
mentions that a predicted span of another type covers with confidence ≥ τ; for the baseline (which
knows MISC) the same count is made with MISC treated as the dropped type — its MISC mentions
called PER, LOC or ORG, confidently.

**wnut**: the WNUT-16 demo (its seeded split) trained as it is and with the Train page's preset
for rare entity types (``--preset``); spurious-entity rate and entity macro-F1 on test. ``--loss``
swaps the preset's criterion over the tags and ``--copies`` its augmented copies per sentence
(ablations); ``--no-baseline`` trains the preset arm
alone and prints its val figures only, to compare variants on seeds that are not reported.

Every arm is a real run: stored in a temporary home and trained by ``core.train.worker.train_run``;
the scores come from the run's word probabilities at its result (``core.compare.entities``), the
change with a paired bootstrap 95 % interval over test sentences (2,000 resamples), per seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _slice(ds, n_train: int, n_val: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    parts = [np.flatnonzero(ds.split == 2)]
    for code, n in ((0, n_train), (1, n_val)):
        rows = np.flatnonzero(ds.split == code)
        parts.append(rows if not n or n >= len(rows) else rng.choice(rows, n, replace=False))
    return ds.subset(np.sort(np.concatenate(parts)))


def _without(ds, kind: str):
    """The dataset with every train sentence that holds a ``kind`` mention left out (the simulator)."""
    from core.tokens.corrupt import TokenRecipe, apply_recipe
    from core.tokens.data import token_dataset

    recipe = TokenRecipe(drop_types=(kind,), drop_mode="sentences")
    tags, kept, _ = apply_recipe([list(t) for t in ds.items], [list(t) for t in ds.tags], ds.split, recipe, seed=0)
    keep = np.flatnonzero(kept)
    out = token_dataset(f"{ds.name} without {kind}", [list(ds.items[i]) for i in keep], [tags[i] for i in keep], ds.split[keep])
    out.meta["source_item"] = ds.item_ids()[keep]
    return out


def _run(store, ds, cfg_kw: dict):
    from core.compare.entities import token_answers
    from core.metrics.results import RunResults
    from core.train.config import RunConfig
    from core.train.worker import train_run

    vid = store.save_dataset(ds, source="bench")
    cfg = RunConfig(version_id=vid, model="minilm", **cfg_kw)
    run_id = store.create_run(vid, cfg.to_dict())
    t0 = time.perf_counter()
    status = train_run(store, run_id)
    if status != "finished":
        raise RuntimeError(f"run {run_id} ended {status}: {store.run(run_id).message}")
    res, ds = RunResults(store, run_id), store.load_dataset(vid)
    answers = token_answers(res, ds)
    assert answers is not None
    history = _history(store, run_id)
    for h in history:  # every evaluation's answers (val and test), to read other result rules later
        h["answers"] = {split: _answers_at(res, ds, h["step"], split) for split in ("val", "test")}
    return answers, time.perf_counter() - t0, history


def _answers_at(res, ds, step: int, split: str):
    from core.compare.entities import TokenAnswers

    got = res.word_probs(step, split)
    if got is None:
        return None
    rows = np.asarray(got[0], dtype=np.int64)
    return TokenAnswers(
        keys=ds.item_ids()[rows],
        rows=rows,
        tokens=[[str(w) for w in ds.items[r]] for r in rows],
        true=[[str(t) for t in ds.tags[r]] for r in rows],
        probs=[np.asarray(p, dtype=np.float64) for p in got[1]],
        tag_names=list(got[2]),
        tau=res.tau,
    )


HISTORY = ("entity_f1_macro", "entity_f1_micro", "spurious_rate", "o_offset")


def _history(store, run_id: int) -> list[dict]:
    """Every evaluation of the run: step, and val / test entity macro-F1, micro-F1, spurious rate."""
    m = store.metrics(run_id)
    m = m[m["split"].isin(["val", "test"]) & m["name"].isin(HISTORY)]
    wide = m.pivot_table(index="step", columns=["split", "name"], values="value", aggfunc="last")
    return [{"step": int(step), **{f"{sp}/{n}": float(v) for (sp, n), v in row.items()}} for step, row in wide.iterrows()]


def _print_history(arm: str, history: list[dict]) -> None:
    for h in history:
        vals = "  ".join(f"{k} {v:.4f}" for k, v in h.items() if k not in ("step", "answers"))
        print(f"    {arm} step {h['step']}: {vals}")


def _treat_as_dropped(answers, kind: str):
    """The same answers scored as if ``kind`` were absent from the model's train (forced-known)."""
    from core.compare.entities import TokenAnswers

    class Dropped(TokenAnswers):
        @property
        def dropped(self) -> list[str]:
            return [kind]

    return Dropped(**{f.name: getattr(answers, f.name) for f in dataclasses.fields(answers)})


def _save(args, name: str, *answers) -> None:
    """With ``--save DIR``, the arms' answers pickled to ``DIR/name.pkl`` (to read them again later)."""
    if args.save:
        import pickle

        Path(args.save).mkdir(parents=True, exist_ok=True)
        (Path(args.save) / f"{name}.pkl").write_bytes(pickle.dumps(answers))


def _line(name: str, iv) -> str:
    return f"  {name}: {iv.a:.4f} → {iv.b:.4f}  change {iv.delta:+.4f}  [{iv.low:+.4f}, {iv.high:+.4f}]  {iv.verdict}"


def drop_type(args, store) -> list[dict]:
    from core.compare.entities import paired_entity_bootstrap
    from core.data.demos import load_conll2003

    base = _slice(load_conll2003().dataset, args.train, args.val)
    dropped = _without(base, "MISC")
    print(f"CoNLL-2003 slice: {int((base.split == 0).sum()):,} train sentences; {int((dropped.split == 0).sum()):,} without MISC")
    out = []
    for seed in args.seeds:
        kw = {"epochs": args.epochs, "batch_size": 32, "lr": args.lr, "seed": seed}
        a, ta, _ = _run(store, base, kw)
        b, tb, _ = _run(store, dropped, kw)
        print(f"seed {seed} ({ta:.0f} s + {tb:.0f} s; load {os.getloadavg()[0]:.1f})")
        row: dict = {"seed": seed}
        for tau in args.taus:  # the same answers read at each τ (the run's τ is a Train page setting)
            at = {k: dataclasses.replace(x, tau=tau) for k, x in (("a", a), ("b", b))}
            iv = paired_entity_bootstrap(_treat_as_dropped(at["a"], "MISC"), at["b"], metrics=("forced_known_type_rate", "entity_f1_micro"))
            for name in ("forced_known_type_rate", "entity_f1_micro") if tau == args.taus[0] else ("forced_known_type_rate",):
                if name in iv:
                    print(_line(f"{name} @τ={tau:g}", iv[name]))
            row[f"tau={tau:g}"] = {k: dataclasses.asdict(v) for k, v in iv.items()}
        out.append(row)
    return out


def wnut(args, store) -> list[dict]:
    from core.compare.entities import paired_entity_bootstrap
    from core.data.demos import load_wnut16
    from core.mitigate.presets import preset
    from core.mitigate.settings import LossSettings

    ds = load_wnut16().dataset
    mitigated = preset(args.preset, modality="tokens")
    if args.loss:  # an ablation: the preset with another criterion over the tags
        mitigated = dataclasses.replace(mitigated, loss=LossSettings(name=args.loss, tau=args.tau))
    if args.copies:  # an ablation: more augmented copies of each drawn sentence per epoch
        mitigated = dataclasses.replace(mitigated, token_augment=dataclasses.replace(mitigated.token_augment, copies=args.copies))
    print(f"WNUT-16: {int((ds.split == 0).sum()):,} train / {int((ds.split == 2).sum()):,} test tweets; preset {args.preset}: {mitigated}")
    out: list[dict] = []
    pairs: list = []
    for seed in args.seeds:
        kw = {"epochs": args.epochs, "batch_size": 32, "lr": args.lr, "seed": seed, "selection_window": args.window}
        if args.no_baseline:  # the preset arm alone: its val figures, to choose a variant without test
            _, tb, hb = _run(store, ds, {**kw, "mitigations": mitigated})
            print(f"seed {seed} ({tb:.0f} s; load {os.getloadavg()[0]:.1f})")
            _print_history("preset", [{k: v for k, v in h.items() if not k.startswith("test/")} for h in hb])
            continue
        a, ta, ha = _run(store, ds, kw)
        b, tb, hb = _run(store, ds, {**kw, "mitigations": mitigated})
        _save(args, f"wnut-seed{seed}", a, b, ha, hb)
        iv = paired_entity_bootstrap(a, b, metrics=("spurious_rate", "entity_f1_macro", "entity_f1_micro", "confident_spurious_rate"))
        print(f"seed {seed} ({ta:.0f} s + {tb:.0f} s; load {os.getloadavg()[0]:.1f})")
        for name in ("spurious_rate", "entity_f1_macro", "entity_f1_micro", "confident_spurious_rate"):
            if name in iv:
                print(_line(name, iv[name]))
        _print_history("baseline", ha)
        _print_history("preset", hb)
        out.append({"seed": seed, **{k: dataclasses.asdict(v) for k, v in iv.items()}})
        pairs.append((a, b))
    if len(pairs) > 1:
        _over_seeds(pairs, [{k: v["delta"] for k, v in row.items() if k != "seed"} for row in out])
    return out


OVER_SEEDS = ("spurious_rate", "entity_f1_macro", "entity_f1_micro")


def _over_seeds(pairs: list, deltas: list[dict]) -> None:
    """The mean change over the seeds twice: with a t 95 % interval over the seeds' changes (the
    training seeds' spread), and with the sentences resampled together across every seed
    (``core.compare.entities.seeds_entity_bootstrap``: the test sample's uncertainty)."""
    from scipy import stats

    from core.compare.entities import seeds_entity_bootstrap

    pooled = seeds_entity_bootstrap(pairs, metrics=OVER_SEEDS)
    print(f"over {len(pairs)} seeds:")
    for name, iv in pooled.items():
        d = np.array([row[name] for row in deltas])
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        print(
            f"  {name}: mean change {d.mean():+.4f}, sd {d.std(ddof=1):.4f}, t 95 % [{d.mean() - half:+.4f}, {d.mean() + half:+.4f}]; "
            f"sentences resampled across the seeds [{iv.low:+.4f}, {iv.high:+.4f}] {iv.verdict}"
        )


RULES = {
    "best val macro-F1 (selection window 1)": lambda h: _best(h, "entity_f1_macro", 1),
    "best val macro-F1 over 2 evaluations (selection window 2)": lambda h: _best(h, "entity_f1_macro", 2),
    "best val macro-F1 over 3 evaluations (selection window 3)": lambda h: _best(h, "entity_f1_macro", 3),
    "best val micro-F1": lambda h: _best(h, "entity_f1_micro", 1),
    "last evaluation": lambda h: len(h) - 1,
}


def _best(history: list[dict], metric: str, window: int) -> int:
    """The evaluation the product's "best" rule picks with ``window`` (``core.metrics.keys.best_index``)."""
    from core.metrics.keys import best_index

    i = best_index(metric, [h.get(f"val/{metric}", np.nan) for h in history], window)
    return 0 if i is None else i


def rules(args) -> None:
    """``--rules DIR``: for the answers ``--save DIR`` kept, the result each rule would have picked in
    each arm, and the change with its interval — the same runs read at other evaluations."""
    import pickle

    from core.compare.entities import paired_entity_bootstrap

    saved = sorted(Path(args.rules).glob("wnut-seed*.pkl"))
    for path in saved:
        _, _, ha, hb = pickle.loads(path.read_bytes())
        print(path.stem)
        for name, pick in RULES.items():
            ia, ib = pick(ha), pick(hb)
            iv = paired_entity_bootstrap(ha[ia]["answers"]["test"], hb[ib]["answers"]["test"], metrics=("spurious_rate", "entity_f1_macro"))
            print(f"  {name} (evaluations {ia + 1} and {ib + 1} of {len(ha)}):")
            for metric in ("spurious_rate", "entity_f1_macro"):
                print(_line(metric, iv[metric]))
    if len(saved) > 1:  # the results the runs kept (their own rule), over the seeds
        pairs = [pickle.loads(p.read_bytes())[:2] for p in saved]
        _over_seeds(pairs, [{k: v.delta for k, v in paired_entity_bootstrap(a, b, metrics=OVER_SEEDS).items()} for a, b in pairs])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["drop-type", "wnut"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--train", type=int, default=3000, help="drop-type: train sentences of the slice")
    parser.add_argument("--val", type=int, default=500, help="drop-type: val sentences of the slice")
    parser.add_argument("--preset", default="rare_types", help="wnut: the mitigation preset")
    parser.add_argument("--loss", default="", help="wnut: the preset with this loss over the tags instead (core.mitigate.settings.LOSSES)")
    parser.add_argument("--tau", type=float, default=1.0, help="wnut: τ of --loss logit_adjusted")
    parser.add_argument("--copies", type=int, default=0, help="wnut: the preset with this many augmented copies per sentence")
    parser.add_argument("--no-baseline", action="store_true", help="wnut: train the preset arm only (to read its val figures)")
    parser.add_argument("--taus", type=float, nargs="+", default=[0.5, 0.7, 0.9], help="drop-type: τ of the forced-known rate")
    parser.add_argument("--save", default="", help="a folder to pickle each seed's answers to")
    parser.add_argument("--window", type=int, default=1, help="wnut: the runs' selection window (both arms)")
    parser.add_argument("--rules", default="", help="wnut: read the answers --save kept in this folder and compare result rules")
    args = parser.parse_args()
    if args.rules:
        rules(args)
        return 0
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    from core.store import Store

    home = Path(tempfile.mkdtemp(prefix="gapscope-bench-ner-gaps-"))
    try:
        os.environ["GAPSCOPE_HOME"] = str(home)
        store = Store(home)
        (drop_type if args.experiment == "drop-type" else wnut)(args, store)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
