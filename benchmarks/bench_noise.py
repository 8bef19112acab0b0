"""Label-noise detection: Gapscope (core.diagnose) against cleanlab, side by side.

    .venv/bin/python benchmarks/bench_noise.py                # full run (all four tasks)
    .venv/bin/python benchmarks/bench_noise.py --embed-only   # only warm the embedding cache

Precision, recall, F1 and wall time of label-noise detection on

- Fashion-MNIST, 10k items (seeded stratified subset of the 60k non-test images) and 60k items
  (train + val), each with 20% symmetric and 30% pair-flip noise (``core.diagnose.synthetic.make_noise_matrix``
  + ``inject_noise``, seeded);
- VADER, each text labelled by one randomly chosen rater, scored against the sign of the mean of
  all raters (rule below);

against cleanlab's ``find_label_issues`` fed 5-fold out-of-fold probabilities of a scikit-learn
``LogisticRegression`` on the same embeddings (cleanlab's standard recipe). Target: Gapscope's F1
at least cleanlab's on every task, and detection time at most cleanlab's.

Timing definitions
------------------
- embedding: ``core.embed.embeddings.embed`` (MobileNetV2 at 64 px for Fashion-MNIST, MiniLM for
  VADER), measured once per dataset on a cold cache and reported apart. The whole dataset is
  embedded (70k Fashion images, 23.7k VADER texts, the same cache files the app uses) and the
  tasks take rows of it. The cold time is kept in ``GAPSCOPE_HOME/cache/bench_noise.json`` so
  that later runs (cache hits) still report it.
- cleanlab detection: 5-fold out-of-fold probabilities (``StandardScaler`` +
  ``LogisticRegression(solver="lbfgs")``, CleanLearning's default classifier, on the full
  embeddings, fitted per fold by ``cleanlab.count.estimate_cv_predicted_probabilities`` with its
  ``StratifiedKFold``) + ``cleanlab.filter.find_label_issues(labels, pred_probs)`` (defaults).
- Gapscope detection: ``core.diagnose.label_issues.detect_label_issues(X, labels)`` — its own out-of-fold
  probabilities, the kNN graph and confident learning, from embeddings to flags. On VADER it reads the
  embeddings alone; the Diagnose page adds the texts' words for text data (``texts=``), measured by
  ``bench_detector_edge.py``.

Each detection is repeated (``--repeats`` / ``--repeats-60k``, default 3), the two methods
interleaved so background load hits both alike, and the median wall time reported; the flags are
deterministic, so precision/recall/F1 come from the first run. cleanlab's probe runs with a
single-threaded BLAS, its fastest setting on a 2-core CPU (see ``CLEANLAB_BLAS_THREADS``); one
extra run with the libraries' default threading is shown for reference (``--no-reference`` skips
it).

VADER task
----------
Every text has 10-20+ raters scoring -4..4. Truth = sign of the mean of all raters; texts whose
mean is exactly 0 have no true polarity and are left out, so the task is binary (negative /
positive). The given label is the sign of one rater chosen uniformly at random (seeded) per text;
when that rater said 0 (neutral), the label is drawn at random between negative and positive
(seeded) — a rater who abstains carries no polarity, so a coin flip is the unbiased reading of
that vote. An item is noisy when its given label differs from the truth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import paths  # noqa: E402

# --------------------------------------------------------------------------- embeddings


def _times_file() -> Path:
    return paths.home() / "cache" / "bench_noise.json"


def _embed_timed(ds, key: str) -> tuple[np.ndarray, float, bool]:
    """(embedding, cold seconds, measured now?). Cold time from this run or a previous one."""
    from core.embed import embeddings as features

    store = _times_file()
    known = json.loads(store.read_text()) if store.exists() else {}
    ck = features.cache_key(ds)
    cached = features.is_cached(ds)
    t = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"    embedding {key}: {done:,}/{total:,} ({time.perf_counter() - t:.0f} s)", flush=True)

    X = features.embed(ds, progress=progress)
    secs = time.perf_counter() - t
    if not cached:
        known[ck] = {"key": key, "seconds": secs, "n": len(ds), "date": date.today().isoformat()}
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(known, indent=1))
        return np.asarray(X), secs, True
    cold = known.get(ck, {}).get("seconds", float("nan"))
    return np.asarray(X), cold, False


# --------------------------------------------------------------------------- tasks


def _stratified_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(parts))


def fashion_tasks(sizes: tuple[str, ...], seed: int) -> tuple[list[dict], dict]:
    from core import diagnose as nz
    from core.data import demos

    ds = demos.load_fashion_mnist().dataset
    print(f"Fashion-MNIST: embedding {len(ds):,} images (MobileNetV2, 64 px) ...", flush=True)
    X_all, cold, now = _embed_timed(ds, "fashion-mnist")
    emb = {"dataset": "Fashion-MNIST", "n": len(ds), "cold_s": cold, "measured_now": now}
    nontest = np.flatnonzero(ds.split != 2)  # 55k train + 5k val
    index = {"60k": nontest, "10k": nontest[_stratified_subset(ds.labels[nontest], 1000, seed)]}
    tasks = []
    for size in sizes:
        idx = index[size]
        X = np.ascontiguousarray(X_all[idx])
        y_true = ds.labels[idx]
        for kind, rate in (("symmetric", 0.2), ("pairflip", 0.3)):
            M = nz.make_noise_matrix(10, kind=kind, rate=rate)
            y, flipped = nz.inject_noise(y_true, M, seed=seed)
            name = f"Fashion-MNIST {size}, {int(rate * 100)}% {'symmetric' if kind == 'symmetric' else 'pair-flip'}"
            tasks.append({"name": name, "X": X, "y": y, "noisy": flipped, "embedding": emb})
    return tasks, emb


def vader_labels(meta, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept row indices, given labels, true labels) for the one-random-rater VADER task.

    Binary: 0 = negative, 1 = positive. Texts whose mean rating is exactly 0 are dropped (no true
    polarity). Given = sign of one uniformly chosen rater; a rater's 0 becomes a seeded coin flip.
    """
    rng = np.random.default_rng(seed)
    ratings = [np.array(s.split(","), dtype=np.int8) for s in meta["ratings"].astype(str)]
    mean = np.array([r.mean() for r in ratings])
    keep = np.flatnonzero(mean != 0)
    picked = np.array([ratings[i][rng.integers(len(ratings[i]))] for i in keep])
    coin = rng.integers(0, 2, len(keep))
    given = np.where(picked > 0, 1, np.where(picked < 0, 0, coin)).astype(np.int64)
    truth = (mean[keep] > 0).astype(np.int64)
    return keep, given, truth


def vader_tasks(seed: int) -> tuple[list[dict], dict]:
    from core.data import demos

    ds = demos.load_vader().dataset
    print(f"VADER: embedding {len(ds):,} texts (MiniLM) ...", flush=True)
    X_all, cold, now = _embed_timed(ds, "vader")
    emb = {"dataset": "VADER", "n": len(ds), "cold_s": cold, "measured_now": now}
    keep, given, truth = vader_labels(ds.meta, seed)
    X = np.ascontiguousarray(X_all[keep])
    return [{"name": f"VADER one random rater ({len(keep):,} texts)", "X": X, "y": given, "noisy": given != truth, "embedding": emb}], emb


# --------------------------------------------------------------------------- methods


def run_cleanlab(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """cleanlab's recipe: 5-fold OOF probabilities of a logistic regression, then find_label_issues."""
    import warnings
    from contextlib import nullcontext

    from cleanlab.count import estimate_cv_predicted_probabilities
    from cleanlab.filter import find_label_issues
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    limit = nullcontext() if CLEANLAB_BLAS_THREADS is None else threadpool_limits(CLEANLAB_BLAS_THREADS, user_api="blas")
    with limit:
        t0 = time.perf_counter()
        clf = make_pipeline(StandardScaler(), LogisticRegression(solver="lbfgs"))  # CleanLearning's default clf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            probs = estimate_cv_predicted_probabilities(X, y, clf=clf, cv_n_folds=5, seed=seed)
        t1 = time.perf_counter()
        flags = find_label_issues(y, probs)
        t2 = time.perf_counter()
    return np.asarray(flags, bool), {"probe": t1 - t0, "find_label_issues": t2 - t1}


# cleanlab's probe is fastest here with a single-threaded BLAS (measured on a 2-core CPU: Fashion
# 10k 9.3 s vs 27.9 s with the library defaults, VADER 1.4 s vs 2.9 s — OpenBLAS threads and
# scikit-learn's OpenMP loss oversubscribe 2 cores), so that is how it is timed; --cleanlab-blas-threads
# default restores the defaults.
CLEANLAB_BLAS_THREADS: int | None = 1


def run_gapscope(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    from core import diagnose as nz

    res = nz.detect_label_issues(X, y, seed=seed)
    return res.is_issue, dict(res.seconds)


def run_cleanlab_default_threads(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """The same cleanlab recipe with the libraries' default threading (timed once, for reference)."""
    global CLEANLAB_BLAS_THREADS
    saved, CLEANLAB_BLAS_THREADS = CLEANLAB_BLAS_THREADS, None
    try:
        return run_cleanlab(X, y, seed)
    finally:
        CLEANLAB_BLAS_THREADS = saved


METHODS = {"cleanlab": run_cleanlab, "gapscope": run_gapscope}
REFERENCE_ONCE = {"cleanlab-default-threads": run_cleanlab_default_threads}
LABELS = {
    "cleanlab": "cleanlab 2.9: LogReg 5-fold OOF + `find_label_issues` (BLAS 1 thread)",
    "cleanlab-default-threads": "cleanlab 2.9, same, library-default threads (1 run, reference)",
    "gapscope": "Gapscope `detect_label_issues`",
}


def prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & truth).sum())
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(truth.sum()), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def evaluate(task: dict, repeats: int, seed: int, reference: bool = True) -> list[dict]:
    rows = []
    for rep in range(repeats):
        methods = dict(METHODS, **(REFERENCE_ONCE if rep == 0 and reference else {}))
        for name, fn in methods.items():  # interleaved, so background load hits both alike
            t = time.perf_counter()
            flags, stages = fn(task["X"], task["y"], seed)
            secs = time.perf_counter() - t
            if rep == 0:
                p, r, f = prf(flags, task["noisy"])
                rows.append(
                    {
                        "method": name,
                        "precision": p,
                        "recall": r,
                        "f1": f,
                        "times": [secs],
                        "stages": [stages],
                        "n_flagged": int(flags.sum()),
                    }
                )
            else:
                row = next(x for x in rows if x["method"] == name)
                row["times"].append(secs)
                row["stages"].append(stages)
            print(
                f"    {name:9s} run {rep + 1}/{repeats}: {secs:7.2f} s  " + " ".join(f"{k}={v:.2f}" for k, v in stages.items()), flush=True
            )
    return rows


def table(task: dict, rows: list[dict]) -> str:
    emb = task["embedding"]
    n, noisy = len(task["y"]), int(task["noisy"].sum())
    lines = [
        f"### {task['name']}",
        "",
        f"n = {n:,}, d = {task['X'].shape[1]}, actually mislabelled = {noisy:,} ({noisy / n:.1%}). "
        f"Embedding: {emb['dataset']} ({emb['n']:,} items) {emb['cold_s']:.0f} s cold, once, not included below.",
        "",
        "| method | precision | recall | F1 | flagged | detection s (median) | runs | stages (median s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: list(LABELS).index(r["method"])):
        med = statistics.median(r["times"])
        keys = r["stages"][0].keys()
        stages = ", ".join(f"{k} {statistics.median(s[k] for s in r['stages']):.2f}" for k in keys)
        label = LABELS[r["method"]]
        lines.append(
            f"| {label} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['n_flagged']:,} | "
            f"{med:.1f} | {len(r['times'])} ({', '.join(f'{t:.1f}' for t in r['times'])}) | {stages} |"
        )
    return "\n".join(lines)


def vader_seed_table(n_seeds: int) -> str:
    """F1 of both methods on VADER for several random-rater draws (one run each)."""
    from core.data import demos
    from core.embed import embeddings as features

    ds = demos.load_vader().dataset
    X_all = np.asarray(features.embed(ds))
    lines = [
        "### VADER, other random-rater draws (robustness; F1 only, one run each)",
        "",
        "| rater seed | mislabelled | cleanlab F1 | Gapscope F1 | difference |",
        "|---|---|---|---|---|",
    ]
    diffs = []
    for s in range(n_seeds):
        keep, given, truth = vader_labels(ds.meta, s)
        X = np.ascontiguousarray(X_all[keep])
        f = {name: prf(fn(X, given, 0)[0], given != truth)[2] for name, fn in METHODS.items()}
        diffs.append(f["gapscope"] - f["cleanlab"])
        lines.append(f"| {s} | {(given != truth).mean():.1%} | {f['cleanlab']:.4f} | {f['gapscope']:.4f} | {diffs[-1]:+.4f} |")
        print(f"    VADER rater seed {s}: cleanlab {f['cleanlab']:.4f} gapscope {f['gapscope']:.4f}", flush=True)
    lines.append(f"| mean | | | | {np.mean(diffs):+.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_noise.py")
    ap.add_argument("--tasks", default="fashion10k,fashion60k,vader", help="comma-separated subset of fashion10k, fashion60k, vader")
    ap.add_argument("--repeats", type=int, default=3, help="runs per method on 10k and VADER (median reported)")
    ap.add_argument("--repeats-60k", type=int, default=3, help="runs per method on 60k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embed-only", action="store_true", help="only compute (and cache) the embeddings")
    ap.add_argument(
        "--vader-seeds", type=int, default=5, help="extra VADER draws (rater seeds 0..N-1) scored once each, for robustness (0: none)"
    )
    ap.add_argument(
        "--cleanlab-blas-threads", default="1", help="BLAS threads for cleanlab's probe: a number, or 'default' (library default)"
    )
    ap.add_argument("--no-reference", action="store_true", help="skip the one reference run of cleanlab with library-default threads")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)
    global CLEANLAB_BLAS_THREADS
    CLEANLAB_BLAS_THREADS = None if args.cleanlab_blas_threads == "default" else int(args.cleanlab_blas_threads)
    wanted = set(args.tasks.split(","))
    t_start = time.perf_counter()
    tasks: list[dict] = []
    sizes = tuple(s for s in ("10k", "60k") if f"fashion{s}" in wanted)
    if sizes:
        tasks += fashion_tasks(sizes, args.seed)[0]
    if "vader" in wanted:
        tasks += vader_tasks(args.seed)[0]
    if args.embed_only:
        return 0
    import cleanlab
    import sklearn

    print(f"cleanlab {cleanlab.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs", flush=True)
    out, raw = [], []
    for task in tasks:
        print(f"{task['name']}: n={len(task['y']):,}", flush=True)
        reps = args.repeats_60k if "60k" in task["name"] else args.repeats
        rows = evaluate(task, reps, args.seed, reference=not args.no_reference)
        out.append(table(task, rows))
        raw.append({"task": task["name"], "rows": rows})
    if "vader" in wanted and args.vader_seeds > 0:
        out.append(vader_seed_table(args.vader_seeds))
    print()
    print("\n\n".join(out))
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
