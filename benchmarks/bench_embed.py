"""Text embedding on the CPU: speed against sentence-transformers, agreement, first estimate, ETA.

    .venv/bin/python benchmarks/bench_embed.py                       # every part
    .venv/bin/python benchmarks/bench_embed.py --parts speed,f1      # some of them

Parts (each prints a Markdown table; the machine and its load come first):

- ``speed`` — the same ``--n`` VADER texts (seeded draw), the same all-MiniLM-L6-v2 weights (the
  project's local asset folder; sentence-transformers is given that folder, nothing is fetched),
  in the same process: ``core.embed.embeddings.embed_texts`` fp32 on ONNX Runtime (the CPU default),
  fp32 on torch, int8 on torch and onnx-int8 (ONNX Runtime, matrix products in int8), and ``SentenceTransformer.encode`` (batch 32, its default). The methods take
  turns, ``--rounds`` times, so a neighbour's load hits them alike; wall-clock texts/s (median) and
  CPU texts/s (process time over the run, both cores together) are reported. Agreement: cosine of
  each text's vector with the fp32 one (mean, 1st percentile, minimum), texts within 128 word
  pieces (sentence-transformers' own limit for this model is 256; the project truncates at 128).
- ``f1`` — the project's label-issue detector (``detect_label_issues``) on the noise benchmark's VADER
  task (``benchmarks/bench_noise.py``: one random rater's label against the sign of every rater's
  mean) with fp32, int8 and onnx-int8 embeddings, on a seeded subset of ``--f1-n`` texts.
- ``first`` — a 38k-text dataset (``--big-n``): the VADER demo's 23.7k texts plus copies of them
  with one small seeded change each (a word from a short list appended, two neighbouring words
  swapped, or a trailing "!" added) until ``--big-n`` distinct texts, each with its original's label.
  In a fresh ``GAPSCOPE_HOME`` (nothing cached, no throughput measured before) the app's
  ``DiagnosisJob`` runs as the Diagnose page starts it; measured: seconds from the start to the
  first estimate on disk (imports and model loading included), the first sample's size, the
  full pass's predicted seconds when it starts (from the sample's measured speed) against its
  measured seconds, and the noise rate each pass estimates.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app sets it (app.py)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

APPEND = ("today", "lol", "really", "honestly", "again", "tbh", "omg", "now", "though", "ok")


def machine() -> str:
    import platform

    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln), "?")
    load = os.getloadavg()
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(1 / 5 / 15 min; other jobs share the machine)"
    )


def vader():
    from core.data import demos

    return demos.load_vader().dataset


def perturbed(texts: list[str], labels: np.ndarray, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``texts`` plus seeded one-change copies until ``n`` distinct texts; labels follow."""
    rng = np.random.default_rng(seed)
    seen = set(texts)
    out, lab = list(texts), list(labels)
    while len(out) < n:
        i = int(rng.integers(len(texts)))
        words = texts[i].split()
        kind = int(rng.integers(3))
        if kind == 0:
            words = [*words, APPEND[int(rng.integers(len(APPEND)))]]
        elif kind == 1 and len(words) > 2:
            j = int(rng.integers(len(words) - 1))
            words[j], words[j + 1] = words[j + 1], words[j]
        else:
            words = [*words, "!"]
        t = " ".join(words)
        if t not in seen:
            seen.add(t)
            out.append(t)
            lab.append(labels[i])
    return out[:n], np.asarray(lab[:n], dtype=np.int64)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def part_speed(n: int, rounds: int, seed: int) -> str:
    import torch
    from sentence_transformers import SentenceTransformer

    from core.embed import embeddings
    from core.models.preprocess import tokenise
    from core.models.text import load_encoder, quantised_encoder, text_source

    ds = vader()
    rows = np.random.default_rng(seed).choice(len(ds), n, replace=False)
    texts = [str(t) for t in np.asarray(ds.items, dtype=object)[rows]]
    source = text_source("minilm")
    tokenizer, _ = load_encoder(source)
    quantised_encoder(source)  # built once, outside the timing
    st = SentenceTransformer(source, device="cpu", local_files_only=True)
    lengths = tokenise(texts, tokenizer, 512).lengths
    runs = {
        "Gapscope `embed_texts`, fp32 on ONNX Runtime (default)": lambda: embeddings.embed_texts(texts, device="cpu", engine="onnx"),
        "Gapscope `embed_texts`, fp32 on torch": lambda: embeddings.embed_texts(texts, device="cpu", engine="torch"),
        "Gapscope `embed_texts`, int8 on torch": lambda: embeddings.embed_texts(texts, device="cpu", method="int8"),
        "Gapscope `embed_texts`, onnx-int8": lambda: embeddings.embed_texts(texts, device="cpu", method="onnx-int8"),
        "sentence-transformers `encode` (batch 32)": lambda: st.encode(texts, batch_size=32, convert_to_numpy=True),
    }
    # warm-up (first-call allocations, lazy imports, the one-time ONNX export), not timed
    embeddings.embed_texts(texts[:64], device="cpu", engine="onnx")
    embeddings.embed_texts(texts[:64], device="cpu", engine="torch")
    embeddings.embed_texts(texts[:64], device="cpu", method="int8")
    embeddings.embed_texts(texts[:64], device="cpu", method="onnx-int8")
    st.encode(texts[:64], batch_size=32)
    walls: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    out: dict[str, np.ndarray] = {}
    for r in range(rounds):
        names = list(runs)
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            t, c = time.perf_counter(), time.process_time()
            out[name] = np.asarray(runs[name](), dtype=np.float32)
            walls[name].append(time.perf_counter() - t)
            cpus[name].append(time.process_time() - c)
            print(f"  round {r + 1} {name}: {n / walls[name][-1]:.1f} texts/s (load {os.getloadavg()[0]:.1f})", flush=True)
    ref = out["Gapscope `embed_texts`, fp32 on torch"]
    within = lengths <= embeddings.MAX_LENGTH
    st_name = "sentence-transformers `encode` (batch 32)"
    lines = [
        f"### Speed and agreement: {n:,} VADER texts (seeded draw), {rounds} rounds taking turns",
        "",
        f"{float(lengths.mean()):.1f} word pieces a text on average, {int((~within).sum())} over 128. Torch threads: {torch.get_num_threads()}.",
        "",
        "| method | texts/s wall (median) | texts/s CPU | × sentence-transformers: wall | CPU | cosine to torch fp32: mean | 1st pct | min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    st_wall, st_cpu = statistics.median(walls[st_name]), statistics.median(cpus[st_name])
    for name in runs:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        cos = _cos(out[name][within], ref[within])
        lines.append(
            f"| {name} | {n / wall:.1f} | {n / cpu:.1f} | {st_wall / wall:.2f}× | {st_cpu / cpu:.2f}× | {cos.mean():.4f} "
            f"| {np.percentile(cos, 1):.4f} | {cos.min():.4f} |"
        )
    ratios = [w_st / w for w, w_st in zip(walls[next(iter(runs))], walls[st_name], strict=True)]
    lines.append("")
    lines.append("ONNX Runtime against sentence-transformers, wall, per round: " + ", ".join(f"{r:.2f}×" for r in ratios))
    lines.append("")
    lines.append("Per round, wall seconds: " + "; ".join(f"{k}: " + ", ".join(f"{w:.1f}" for w in v) for k, v in walls.items()))
    return "\n".join(lines)


def part_f1(n: int, seed: int) -> str:
    from benchmarks.bench_noise import prf, vader_labels
    from core.diagnose.label_issues import detect_label_issues
    from core.embed import embeddings

    ds = vader()
    keep, given, truth = vader_labels(ds.meta, seed)
    pick = np.sort(np.random.default_rng(seed).choice(len(keep), min(n, len(keep)), replace=False))
    rows, y, noisy = keep[pick], given[pick], (given != truth)[pick]
    texts = [str(t) for t in np.asarray(ds.items, dtype=object)[rows]]
    lines = [
        f"### Detector F1 on the VADER noise task: {len(rows):,} texts (seeded subset), {noisy.mean():.1%} mislabelled",
        "",
        "| embeddings | embedding s | precision | recall | F1 | flagged | estimated noise rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in ("fp32", "int8", "onnx-int8"):
        t = time.perf_counter()
        X = embeddings.embed_texts(texts, device="cpu", method=method)
        took = time.perf_counter() - t
        res = detect_label_issues(X, y, seed=seed)
        p, r, f = prf(res.is_issue, noisy)
        rate = 1 - float(np.trace(res.joint))
        lines.append(f"| {method} | {took:.0f} | {p:.3f} | {r:.3f} | {f:.3f} | {int(res.is_issue.sum()):,} | {rate:.3f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def part_first(n: int, seed: int) -> str:
    home = Path(tempfile.mkdtemp(prefix="gapscope-bench-embed-"))
    os.environ["GAPSCOPE_HOME"] = str(home)
    try:
        return _first(home, n, seed)
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)


def _first(home: Path, n: int, seed: int) -> str:
    from core.data.dataset import Dataset
    from core.diagnose.pipeline import DiagnoseConfig, cache_path
    from core.diagnose.progressive import DiagnosisJob, eta_words, latest, locations

    base = vader()
    texts, labels = perturbed([str(t) for t in np.asarray(base.items, dtype=object)], base.labels, n, seed)
    ds = Dataset(
        name="tweets-38k",
        modality="text",
        items=np.asarray(texts, dtype=object),
        labels=labels,
        class_names=list(base.class_names),
        split=np.zeros(len(texts), np.int8),
    )
    cfg = DiagnoseConfig()
    load0 = os.getloadavg()[0]
    where = locations(ds, cfg)  # once, as the page keeps it: polling must not hash 38k texts each time
    t0 = time.monotonic()
    job = DiagnosisJob(ds, cfg)
    job.start()
    first_at = full_start = None
    predicted_full = None
    while job.is_alive():
        scope = job.status()[2]
        now = time.monotonic()
        if first_at is None and where.available() is not None:
            first_at = now - t0
            print(f"  first estimate after {first_at:.1f} s (sample of {job.sample_size:,})", flush=True)
        if full_start is None and scope == "full":
            full_start = now
            predicted_full = job.seconds_left(now)
            print(f"  full pass starts; predicted {predicted_full:.0f} s ({eta_words(predicted_full or 0)})", flush=True)
        time.sleep(0.25)
    if job.error:
        raise RuntimeError(job.error)
    end = time.monotonic()
    assert first_at is not None and full_start is not None and predicted_full is not None
    measured_full = end - full_start
    sample = latest(ds, cfg)
    assert sample is not None and sample.scope == "full"
    where_sample = job.sample_size
    rate = lambda iss: 1 - float(np.trace(iss.joint))
    from core.diagnose.pipeline import diagnose
    from core.diagnose.progressive import sample_of

    first = diagnose(sample_of(ds, where_sample or 500, seed=cfg.seed), cfg)
    err = (predicted_full - measured_full) / measured_full
    assert cache_path(ds, cfg).exists()
    return "\n".join(
        [
            f"### First estimate and ETA: {len(ds):,} distinct texts (VADER 23.7k + seeded one-change copies), fresh home",
            "",
            "| measure | value |",
            "|---|---|",
            f"| load average at the start / end | {load0:.1f} / {os.getloadavg()[0]:.1f} |",
            f"| first sample (chosen by `first_sample_size`) | {where_sample:,} texts |",
            f"| start → first estimate on disk (imports, model load, embedding, detection) | **{first_at:.1f} s** |",
            f"| full pass: predicted when it starts | {predicted_full:.0f} s ({eta_words(predicted_full)}) |",
            f"| full pass: measured | {measured_full:.0f} s ({eta_words(measured_full)}) |",
            f"| ETA error (predicted − measured) / measured | **{err:+.1%}** |",
            f"| estimated noise rate: first sample / full | {rate(first.issues):.3f} / {rate(sample.diagnosis.issues):.3f} |",
            f"| stage seconds of the full pass | {', '.join(f'{k} {v:.1f}' for k, v in sample.diagnosis.seconds.items())} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="speed,f1,first", help="comma-separated subset of speed, f1, first")
    ap.add_argument("--n", type=int, default=2_000, help="texts for the speed part")
    ap.add_argument("--rounds", type=int, default=3, help="turns per method in the speed part")
    ap.add_argument("--f1-n", type=int, default=6_000, help="VADER texts for the detector F1 part")
    ap.add_argument("--big-n", type=int, default=38_000, help="distinct texts for the first-estimate part")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    print(f"Machine: {machine()}", flush=True)
    out = []
    for part in parts:
        print(f"== {part}", flush=True)
        if part == "speed":
            out.append(part_speed(args.n, args.rounds, args.seed))
        elif part == "f1":
            out.append(part_f1(args.f1_n, args.seed))
        elif part == "first":
            out.append(part_first(args.big_n, args.seed))
        else:
            raise SystemExit(f"unknown part {part!r}; choose from speed, f1, first")
        print(out[-1], flush=True)
    print(f"\nMachine at the end: load average {os.getloadavg()[0]:.1f}\n")
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
