"""Token label errors (NER): Gapscope's detector (core.tokens.detect) against cleanlab's token-classification method.

    .venv/bin/python benchmarks/bench_ner_noise.py                  # 3 noise seeds, engines compared
    .venv/bin/python benchmarks/bench_ner_noise.py --seeds 0 --engines 0 --repeats 1   # quick

Data: CoNLL-2003 English train (14,041 sentences, 203,621 tokens), read by the project's loader
(``core.data.demos.load_conll2003``, the pinned NeuroNER files). Noise: for each seed,
``core.tokens.corrupt.inject_noise(tokens, tags, sentence_share=0.10, seed=seed)``: 10 % of the
sentences holding an entity get one corruption each (type swapped, span deleted, boundary shifted,
in turn). A sentence is truly corrupted when its truth record is not None.

Shared step (timed apart, once per seed): word vectors (``core.tokens.embed.word_embeddings``,
MiniLM, first sub-token, cached; the cold time is kept in ``GAPSCOPE_HOME/cache/bench_ner_noise.json``),
probe features (``token_features``, label-free, once) and 5-fold out-of-fold tag probabilities by
sentence (``out_of_fold_token_probs``, seeded with the noise seed). The same probabilities go to:

- **cleanlab** 2.9: ``cleanlab.token_classification.filter.find_label_issues(labels, pred_probs)``
  (defaults: confident learning on the flattened tokens; a sentence is flagged when one of its
  tokens is) and ``rank.get_label_quality_scores(labels, pred_probs)`` (defaults: self-confidence,
  sentence = min) for the ranking;
- **reference** (Wang & Mueller's scores re-implemented in ``core.tokens.detect.reference_scores``;
  checked against cleanlab's numbers here): ranking only, min (default) and softmin (t = 0.05);
- **Gapscope**: ``core.tokens.detect.detect_token_issues(tokens, tags, probs, tag_names, seed=seed)``,
  flags and ranking, strings in.

Reported per seed: sentence-level precision / recall / F1 of the flags, precision@k for k = the
number of corrupted sentences (of each method's ranking), recall per corruption kind, and the
detection time (median of ``--repeats`` interleaved runs). Also: what each part of Gapscope's
detector adds (ablation, F1 and precision@k), how the count moves with ``odds``, and, with
``--knn``, the embedding kNN vote. The machine's load is recorded at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import paths  # noqa: E402

KINDS = ("swap", "delete", "shift")


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({model or platform.processor() or platform.machine()}), Python {platform.python_version()}"


def load_train() -> tuple[list[list[str]], list[list[str]]]:
    from core.data import demos

    ds = demos.load_conll2003().dataset
    train = np.flatnonzero(ds.split == 0)
    return [list(ds.items[i]) for i in train], [list(ds.tags[i]) for i in train]


def _times_file() -> Path:
    return paths.home() / "cache" / "bench_ner_noise.json"


def embed_timed(tokens: list[list[str]]) -> tuple[Any, dict]:
    """Word vectors; the cold time from this run or a previous one."""
    from core.tokens import embed

    store = _times_file()
    known = json.loads(store.read_text()) if store.exists() else {}
    key = embed.cache_key(tokens)
    timing: dict = {}
    t = time.perf_counter()
    last = [t]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"    embedding: {done:,}/{total:,} sentences ({time.perf_counter() - t:.0f} s)", flush=True)

    emb = embed.word_embeddings(tokens, progress=progress, timing=timing)
    secs = time.perf_counter() - t
    if not timing.get("cached"):
        known[key] = {"seconds": secs, "load": os.getloadavg()[0], "date": date.today().isoformat(),
                      **{k: timing[k] for k in ("engine", "pieces", "windows", "sentences", "model_s")}}  # fmt: skip
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(known, indent=1))
    info = dict(known.get(key, {}), measured_now=not timing.get("cached"), warm_s=secs if timing.get("cached") else None)
    return emb, info


def compare_engines(tokens: list[list[str]], n: int, rounds: int = 2) -> dict:
    """ONNX Runtime against torch on ``n`` seeded sentences, taking turns, no cache."""
    from core.tokens import embed

    rng = np.random.default_rng(0)
    sample = [tokens[i] for i in np.sort(rng.choice(len(tokens), min(n, len(tokens)), replace=False))]
    out: dict[str, Any] = {"sentences": len(sample), "onnx": [], "torch": []}
    vecs = {}
    for _ in range(rounds):
        for engine in ("onnx", "torch"):
            timing: dict = {}
            emb = embed.word_embeddings(sample, engine=engine, cache=False, timing=timing)
            out[engine].append(timing["pieces"] / timing["model_s"])
            out["pieces"] = timing["pieces"]
            vecs[engine] = np.asarray(emb.vectors)
    a, b = vecs["onnx"], vecs["torch"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    out.update(cos_min=float(cos.min()), max_abs=float(np.abs(a - b).max()))
    return out


# --------------------------------------------------------------------------- methods


def run_cleanlab(labels: list[list[int]], probs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict]:
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    t0 = time.perf_counter()
    issues = find_label_issues(labels, probs)
    t1 = time.perf_counter()
    scores, _ = get_label_quality_scores(labels, probs)
    t2 = time.perf_counter()
    flags = np.zeros(len(labels), bool)
    flags[sorted({i for i, _ in issues})] = True
    return flags, np.asarray(scores), {"find_label_issues": t1 - t0, "get_label_quality_scores": t2 - t1}


def run_gapscope(tokens, tags, P, names, seed: int, **kw) -> tuple[np.ndarray, np.ndarray, dict, Any]:
    from core.tokens.detect import detect_token_issues

    res = detect_token_issues(tokens, tags, P, names, seed=seed, **kw)
    return res.is_issue, res.sentence_score, dict(res.seconds), res


def prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & truth).sum())
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(truth.sum()), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def precision_at_k(scores: np.ndarray, truth: np.ndarray) -> float:
    k = int(truth.sum())
    return float(truth[np.argsort(scores, kind="stable")[:k]].mean())


def kind_recall(flags: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    return {k: float((flags & (kinds == k)).sum() / max(int((kinds == k).sum()), 1)) for k in KINDS}


# --------------------------------------------------------------------------- one seed


def one_seed(tokens, tags, names, feats, seed: int, repeats: int, knn_vectors=None) -> dict:
    from core.tokens.corrupt import inject_noise
    from core.tokens.detect import encode_tags, out_of_fold_token_probs, reference_scores

    noisy, truth = inject_noise(tokens, tags, sentence_share=0.10, seed=seed)
    corrupt = np.array([t is not None for t in truth])
    kinds = np.array([t["kind"] if t is not None else "" for t in truth])
    y, offsets = encode_tags(noisy, names)
    t = time.perf_counter()
    P = out_of_fold_token_probs(feats, y, offsets, len(names), seed=seed)
    oof_s = time.perf_counter() - t
    y_true, _ = encode_tags(tags, names)
    labels = [y[offsets[i] : offsets[i + 1]].tolist() for i in range(len(tokens))]
    probs = [P[offsets[i] : offsets[i + 1]] for i in range(len(tokens))]
    row: dict[str, Any] = {
        "seed": seed,
        "corrupted": int(corrupt.sum()),
        "kinds": {k: int((kinds == k).sum()) for k in KINDS},
        "oof_s": oof_s,
        "probe_accuracy_given": float((P.argmax(1) == y).mean()),
        "probe_accuracy_true": float((P.argmax(1) == y_true).mean()),
        "load_before": os.getloadavg()[0],
    }
    times: dict[str, list[float]] = {"cleanlab": [], "gapscope": []}
    results: dict[str, Any] = {}
    for _ in range(repeats):  # interleaved, so background load hits both alike
        t = time.perf_counter()
        results["cleanlab"] = run_cleanlab(labels, probs)
        times["cleanlab"].append(time.perf_counter() - t)
        t = time.perf_counter()
        results["gapscope"] = run_gapscope(tokens, noisy, P, names, seed)
        times["gapscope"].append(time.perf_counter() - t)
    row["load_after"] = os.getloadavg()[0]
    for name, (flags, scores, stages, *_) in results.items():
        p, r, f = prf(flags, corrupt)
        row[name] = {
            "precision": p, "recall": r, "f1": f, "flagged": int(flags.sum()), "p_at_k": precision_at_k(scores, corrupt),
            "kind_recall": kind_recall(flags, kinds), "times": times[name], "seconds": statistics.median(times[name]), "stages": stages,
        }  # fmt: skip
    res = results["gapscope"][3]
    tp = [i for i in res.issues if corrupt[i.sentence]]
    row["gapscope"]["suggestion_exact"] = sum(i.suggested == list(tags[i.sentence]) for i in tp) / max(len(tp), 1)
    # the reference scores, re-implemented: the same numbers as cleanlab's ranking?
    _, sent_min = reference_scores(y, P, offsets)
    _, sent_soft = reference_scores(y, P, offsets, method="softmin")
    row["reference"] = {
        "p_at_k_min": precision_at_k(sent_min, corrupt),
        "p_at_k_softmin": precision_at_k(sent_soft, corrupt),
        "max_diff_to_cleanlab": float(np.abs(sent_min - results["cleanlab"][1]).max()),
    }
    row["ablation"] = ablation(tokens, noisy, P, names, seed, corrupt, knn_vectors)
    return row


ABLATION = {
    "self-confidence / tag threshold (per-tag calibration only)": {"prior": float("inf"), "smoothing": 0.0, "span_rules": False},
    "+ word-form votes": {"smoothing": 0.0, "span_rules": False},
    "+ smoothing 0.03": {"span_rules": False},
    "+ span rules (the detector)": {},
    "the detector, odds 5": {"odds": 5.0},
    "the detector, odds 20": {"odds": 20.0},
}


def ablation(tokens, noisy, P, names, seed, corrupt, knn_vectors) -> dict[str, dict]:
    out = {}
    variants = dict(ABLATION)
    if knn_vectors is not None:
        variants["the detector + embedding kNN vote"] = {"embeddings": knn_vectors}
    for label, kw in variants.items():
        t = time.perf_counter()
        flags, scores, _, _ = run_gapscope(tokens, noisy, P, names, seed, **kw)
        secs = time.perf_counter() - t
        p, r, f = prf(flags, corrupt)
        out[label] = {
            "f1": f,
            "precision": p,
            "recall": r,
            "flagged": int(flags.sum()),
            "p_at_k": precision_at_k(scores, corrupt),
            "seconds": secs,
        }
    return out


# --------------------------------------------------------------------------- report


def _ms(values: list[float], fmt: str = ".3f") -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.mean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def report(rows: list[dict], head: dict) -> str:
    lines = [
        f"Machine: {head['machine']}; load average {head['load_start']:.2f} at the start, {head['load_end']:.2f} at the end "
        f"(other processes ran beside it). {head['versions']}.",
        "",
        f"Embedding: {head['embedding']}",
        "",
        "| method | F1 | precision | recall | flagged | precision@k | detection s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("cleanlab", "cleanlab 2.9 `find_label_issues` + `get_label_quality_scores`"),
        ("gapscope", "Gapscope `detect_token_issues`"),
    ):
        g = lambda key, name=name: [r[name][key] for r in rows]
        lines.append(
            f"| {label} | {_ms(g('f1'))} | {_ms(g('precision'))} | {_ms(g('recall'))} | {_ms(g('flagged'), '.0f')} | "
            f"{_ms(g('p_at_k'))} | {_ms(g('seconds'), '.2f')} |"
        )
    ref = [r["reference"] for r in rows]
    lines.append(f"| reference scores, min (ranking only) | | | | | {_ms([x['p_at_k_min'] for x in ref])} | |")
    lines.append(f"| reference scores, softmin t = 0.05 (ranking only) | | | | | {_ms([x['p_at_k_softmin'] for x in ref])} | |")
    lines += ["", "Per seed:", "", "| seed | corrupted | method | F1 | precision | recall | flagged | precision@k | recall swap / delete / shift | detection s (runs) | load before → after |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        for name in ("cleanlab", "gapscope"):
            m = r[name]
            kr = " / ".join(f"{m['kind_recall'][k]:.3f}" for k in KINDS)
            lines.append(
                f"| {r['seed']} | {r['corrupted']} | {name} | {m['f1']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | {m['flagged']} | "
                f"{m['p_at_k']:.3f} | {kr} | {m['seconds']:.2f} ({', '.join(f'{t:.2f}' for t in m['times'])}) | "
                f"{r['load_before']:.2f} → {r['load_after']:.2f} |"
            )
    lines += ["", "Shared step per seed (not in the detection times): out-of-fold probabilities "
              + ", ".join(f"seed {r['seed']} {r['oof_s']:.1f} s" for r in rows)
              + f"; probe features (once) {head['features_s']:.1f} s. Probe token accuracy against the given tags "
              + ", ".join(f"{r['probe_accuracy_given']:.4f}" for r in rows) + ", against the true tags "
              + ", ".join(f"{r['probe_accuracy_true']:.4f}" for r in rows) + ".",
              "", "Gapscope's suggested tags equal the true tags on "
              + ", ".join(f"{r['gapscope']['suggestion_exact']:.1%}" for r in rows)
              + " of the corrupted sentences it flags. Reference min vs cleanlab's sentence scores, largest difference: "
              + ", ".join(f"{r['reference']['max_diff_to_cleanlab']:.1e}" for r in rows) + "."]  # fmt: skip
    lines += ["", "What each part adds (mean over seeds):", "", "| variant | F1 | precision@k | flagged | s |", "|---|---|---|---|---|"]
    for label in rows[0]["ablation"]:
        a = [r["ablation"][label] for r in rows]
        lines.append(
            f"| {label} | {_ms([x['f1'] for x in a])} | {_ms([x['p_at_k'] for x in a])} | {_ms([x['flagged'] for x in a], '.0f')} | "
            f"{_ms([x['seconds'] for x in a], '.2f')} |"
        )
    if head.get("engines"):
        e = head["engines"]
        lines += ["", f"Engines ({e['sentences']} seeded sentences, {e['pieces']:,} pieces, no cache, taking turns): ONNX Runtime "
                  f"{', '.join(f'{x:,.0f}' for x in e['onnx'])} pieces/s, torch {', '.join(f'{x:,.0f}' for x in e['torch'])} pieces/s; "
                  f"word vectors agree to cosine ≥ {e['cos_min']:.6f} (largest difference {e['max_abs']:.1e})."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_ner_noise.py")
    ap.add_argument("--seeds", default="0,1,2", help="noise seeds, comma-separated")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved detection runs per method (median reported)")
    ap.add_argument("--engines", type=int, default=1000, help="sentences for the ONNX / torch comparison (0: skip)")
    ap.add_argument("--knn", action="store_true", help="also measure the embedding kNN vote (~40 s a seed on 2 cores)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]
    t_start = time.perf_counter()
    import cleanlab
    import sklearn

    from core.tokens.detect import token_features
    from core.tokens.spans import entity_types, tag_names

    tokens, tags = load_train()
    names = tag_names(entity_types(tags))
    print(f"CoNLL-2003 train: {len(tokens):,} sentences, {sum(map(len, tokens)):,} tokens; tags {names}", flush=True)
    emb, emb_info = embed_timed(tokens)
    print(f"  word vectors {emb.vectors.shape}: {emb_info}", flush=True)
    engines = compare_engines(tokens, args.engines) if args.engines > 0 else None
    if engines:
        print(f"  engines: {engines}", flush=True)
    t = time.perf_counter()
    feats = token_features(tokens, emb.vectors, seed=0)
    features_s = time.perf_counter() - t
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row = one_seed(tokens, tags, names, feats, seed, args.repeats, np.asarray(emb.vectors) if args.knn else None)
        rows.append(row)
        c, g = row["cleanlab"], row["gapscope"]
        print(f"  seed {seed}: cleanlab F1 {c['f1']:.3f} p@k {c['p_at_k']:.3f} {c['seconds']:.2f} s | "
              f"Gapscope F1 {g['f1']:.3f} p@k {g['p_at_k']:.3f} {g['seconds']:.2f} s | OOF {row['oof_s']:.1f} s", flush=True)  # fmt: skip
    cold = emb_info.get("seconds")
    head = {
        "machine": machine(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "versions": f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, cleanlab {cleanlab.__version__}",
        "features_s": features_s,
        "engines": engines,
        "embedding": (
            f"{emb_info.get('sentences', '?'):,} distinct sentences, {emb_info.get('pieces', 0):,} pieces in {emb_info.get('windows', '?'):,} windows "
            f"on {emb_info.get('engine', '?')}: {cold:.0f} s cold (load {emb_info.get('load', float('nan')):.1f}, {emb_info.get('date', '?')})"
            + (
                f", {emb_info['warm_s']:.2f} s from the cache in this run"
                if emb_info.get("warm_s") is not None
                else ", measured in this run"
            )
            if cold is not None
            else "cold time unknown"
        ),
    }
    text = report(rows, head)
    print()
    print(text)
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"head": head, "rows": rows}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
