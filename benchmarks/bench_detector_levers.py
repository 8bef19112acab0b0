"""Levers the label-issue detector could pull where its edge over confident learning is small.

    .venv/bin/python benchmarks/bench_detector_levers.py                          # NYT editorials, noise seeds 0-4
    .venv/bin/python benchmarks/bench_detector_levers.py --tasks vader-nyt vader-tweets --seeds 0 1 2

``bench_detector_edge.py`` measures the detector as it ships; this measures what it could do
instead, on any of that benchmark's tasks (the same data, the same noise seeds). Each lever is the
detector's own pieces (``core.diagnose``: the PCA-reduced embeddings, the 5-fold probe, the words'
naive Bayes, the neighbour votes, ``find_label_issues``) put together another way:

- ``detector``: the pieces as ``detect_label_issues`` puts them together (a first pass, then a
  second with the words and the votes refitted, each item weighed by its first-pass label
  quality, then the noise-aware step where it runs one: ``core.diagnose.noise_aware.applies``);
  the script checks that its flags are the shipped detector's;
- ``two passes``: the detector without its noise-aware step (DIAGNOSIS_VERSION 9), on the tasks
  where it runs one. The levers below up to ``oracle`` change the two passes and leave that step out;
- ``probe refit``: the second pass refits the probe too (the shipped detector does so only without
  words and from 1M items × components);
- ``bag B × P passes``: the probe averaged over B draws of the folds (an ensemble of probes over
  folds), and P reweighted passes, each refitting the probe, the words and the votes;
- ``k N``: the neighbour vote over N neighbours instead of 10;
- ``k 50 + bag 3 × 2 passes``: the two together;
- ``relabel``: the second pass refits the probe and the words on the labels with every flagged item
  given its suggested label (correction instead of weighing);
- ``probe C 0.01``: the probe ten times more regularised (the shipped C is 0.1). A different probe, so
  its edge is over confident learning on *that* probe;
- ``unscaled probe`` (and ``unscaled probe C 0.001``): the probe on the PCA components without
  scaling each to unit variance (one scale for all, so the leading components keep their weight),
  C = 0.01 (0.001). A different probe, so its edge is over confident learning on *that* probe;
- ``both probes`` (tasks without words): the unscaled probe joins the blend in the place the words
  take for texts, its weight chosen by the same Brier rule; the edge is over the better of
  confident learning on either probe;
- ``oracle: true-label probe`` (two-class tasks): the probe fitted on the true labels (which no
  detector has), as a ceiling on what a better probe could rank;
- ``noise-aware probe``: a probe that learns the *true* class through the detector's estimated
  noise matrix T (forward loss correction, Patrini et al. 2017: its softmax p is fitted so that
  ``T·p`` predicts the given labels), on the components under one common scale (as the unscaled
  probe), C = 0.01, the same folds; items ranked by the probability that their label is wrong under
  T (``core.diagnose.posterior.mislabel_posterior`` on p), the detector's count flagged. Its
  baseline is the better of confident learning on the detector's probe and on ``T·p``;
- ``noise-aware + detector``: the noise-aware step (``core.diagnose.label_issues.noise_aware_rerank``:
  the mean of that probability and the two passes' own, the two passes' count flagged) on the
  tasks where the detector does not run it (two classes, words, or fewer than 1M items ×
  components): what it would do there.

Printed per lever and seed: F1 at the flagging rule's count, its edge over the better of the
project's confident learning and cleanlab's ``find_label_issues`` on the first probe (as
``bench_detector_edge.py``), the edge at the best count (the F1-best cut of the lever's ranking, an
oracle: it reads the true labels), the edge over the strongest confident learning found (on the
detector's probe or on ``bench_detector_edge.stronger_probes``), and the lever's wall time over the
detector's (one run each, so only a rough guide). The goal ``bench_detector_edge.py`` checks is an
edge of +0.03 on every seed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_detector_edge import TASKS, TEXT_MULTI, UNSEEN, cl_f1, stronger_probes, task_data, unscaled_probe

LEVERS = (
    "detector",
    "two passes",
    "probe refit",
    "bag 2 × 1 pass",
    "bag 3 × 2 passes",
    "k 30",
    "k 50",
    "k 50 + bag 3 × 2 passes",
    "relabel",
    "probe C 0.01",
    "unscaled probe",
    "unscaled probe C 0.001",
    "both probes",
    "oracle: true-label probe",
    "noise-aware probe",
    "noise-aware + detector",
)


def best_cut_f1(quality: np.ndarray, noisy: np.ndarray) -> float:
    """F1 of the best count: flag the m lowest label qualities, m chosen with the true labels."""
    hits = np.cumsum(noisy[np.argsort(quality, kind="stable")])
    return float((2 * hits / (np.arange(1, len(hits) + 1) + noisy.sum())).max())


def other_probe(lever: str, pieces: Pieces, noisy: np.ndarray, cl: float, shipped_refit: bool) -> tuple[Any, float]:
    """The levers with another probe than the detector's: their result and baseline (see the docstring)."""
    y, seed = pieces.y, pieces.seed
    if lever == "probe C 0.01":
        P = pieces.probe(y, C=0.01)
        return pieces.run(P), max(cl_f1(y, P, noisy))
    if lever == "both probes":
        P = unscaled_probe(pieces.Z, y, seed)
        return pieces.run(pieces.probe(y), view=P, refit_probe=shipped_refit), max(cl, *cl_f1(y, P, noisy))
    P = unscaled_probe(pieces.Z, y, seed, C=0.001 if lever.endswith("0.001") else 0.01)
    return pieces.run(P), max(cl_f1(y, P, noisy))


def detector_lever(lever: str, pieces: Pieces, two_pass: Any, shipped: Any, refit: bool, where: str) -> Any | None:
    """``detector``: the pieces put together as ``detect_label_issues`` does, checked against it
    (its two passes, then its noise-aware step where it runs one); ``two passes``: without the
    noise-aware step, where the detector runs one; ``noise-aware + detector``: with it, where the
    detector does not run one. None where the lever would be the detector itself."""
    from core.diagnose.label_issues import noise_aware_rerank

    if (lever == "two passes" and not shipped.noise_aware) or (lever == "noise-aware + detector" and shipped.noise_aware):
        return None
    res = pieces.run(pieces.probe(pieces.y), refit_probe=refit)
    if not np.array_equal(res.is_issue, two_pass.is_issue):
        raise SystemExit(f"{where}: the pieces put together do not flag what detect_label_issues's two passes flag")
    if lever == "two passes" or not (shipped.noise_aware or lever == "noise-aware + detector"):
        return res
    res = noise_aware_rerank(res, pieces.y, pieces.Z, n_folds=pieces.li.N_FOLDS, seed=pieces.seed)
    if lever == "detector" and not np.array_equal(res.is_issue, shipped.is_issue):
        raise SystemExit(f"{where}: the pieces and the noise-aware step do not flag what detect_label_issues flags")
    return res


def noise_aware_alone(two_pass: Any, pieces: Pieces, noisy: np.ndarray, cl: float) -> tuple[SimpleNamespace, float]:
    """The ``noise-aware probe`` lever on the detector's two passes ``two_pass``: its result and
    baseline (see the docstring)."""
    from core.diagnose.label_issues import noise_aware_posterior
    from core.diagnose.posterior import flag_most_likely_wrong

    y = pieces.y
    wrong, p, T = noise_aware_posterior(two_pass, y, pieces.Z, n_folds=pieces.li.N_FOLDS, seed=pieces.seed)
    flags = flag_most_likely_wrong(y, wrong, two_pass.n_issues, min_keep=1)
    return SimpleNamespace(is_issue=flags, score=1.0 - wrong, n_issues=int(flags.sum())), max(cl, *cl_f1(y, p @ T.T, noisy))


class Pieces:
    """One task's inputs and the detector's pieces, each fitted on demand with the detector's settings."""

    def __init__(self, X: np.ndarray, y: np.ndarray, texts: Any, seed: int) -> None:
        from core.diagnose import label_issues as li
        from core.diagnose.probe import pca_reduce
        from core.diagnose.words import word_features

        self.y, self.seed, self.li = y, seed, li
        self.Z = pca_reduce(X, li.PROBE_COMPONENTS, seed=seed)
        self.words = None if texts is None else word_features(texts)
        self.K = int(y.max()) + 1

    def probe(self, labels: np.ndarray, weights: np.ndarray | None = None, bag: int = 1, C: float | None = None) -> np.ndarray:
        from core.diagnose.probe import out_of_fold_probs

        li = self.li
        fits = [
            out_of_fold_probs(self.Z, labels, n_folds=li.N_FOLDS, seed=self.seed + 1000 * b, C=li.PROBE_C if C is None else C, max_iter=li.PROBE_MAX_ITER,
                              n_classes=self.K, sample_weight=weights)
            for b in range(bag)
        ]  # fmt: skip
        return np.mean(fits, axis=0)

    def view(self, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | None:
        from core.diagnose.words import naive_bayes_out_of_fold

        if self.words is None:
            return None
        return naive_bayes_out_of_fold(self.words, labels, n_folds=self.li.N_FOLDS, seed=self.seed, n_classes=self.K, sample_weight=weights)

    def neighbours(self, k: int) -> np.ndarray | None:
        from core.diagnose.knn import knn_graph

        if self.words is not None and len(self.y) > self.li.KNN_WITH_WORDS_MAX:
            return None
        return knn_graph(self.Z[:, : self.li.KNN_COMPONENTS], k=k)[0]

    def run(
        self,
        probs: np.ndarray,
        *,
        k: int = 10,
        passes: int = 1,
        bag: int = 1,
        refit_probe: bool = False,
        relabel: bool = False,
        view: Any = None,
    ):
        """The first pass on ``probs``, then ``passes`` reweighted passes (the shipped detector: one,
        the probe not refitted). ``view``: fixed probabilities in the words' place (kept as they are)."""
        y, find = self.y, self.li.find_label_issues
        nb = self.neighbours(k)
        res = find(y, probs, neighbors=nb, view=self.view(y) if view is None else view)
        for _ in range(passes):
            w = np.clip(res.score, self.li.WEIGHT_FLOOR, 1.0)
            fit_on = np.where(res.is_issue, res.suggested, y) if relabel else y
            fit_w = None if relabel else w
            P = self.probe(fit_on, fit_w, bag) if refit_probe or relabel else probs
            V = self.view(fit_on, fit_w) if view is None else view
            res = find(y, P, neighbors=nb, view=V, vote_weights=None if nb is None else w)
        return res


def one(task: str, seed: int, cache: dict, levers: tuple[str, ...] = LEVERS) -> list[dict]:
    from benchmarks.bench_noise import prf
    from core.diagnose.label_issues import detect_label_issues

    X, y, noisy, texts = task_data(task, seed, cache)
    detect_label_issues(X, y, seed=seed, texts=texts)  # untimed: the process's first-call costs
    t = time.perf_counter()
    shipped = detect_label_issues(X, y, seed=seed, texts=texts)
    base_s = time.perf_counter() - t
    assert shipped.probs is not None
    # the first two passes alone, where the detector's last step (the noise-aware probe) changed them
    two_pass = detect_label_issues(X, y, seed=seed, texts=texts, noise_aware=False) if shipped.noise_aware else shipped
    cl = max(cl_f1(y, shipped.probs, noisy))
    # the strongest confident learning found: on the detector's probe or on one of the stronger probes (bench_detector_edge.py)
    strongest = max(cl, *(max(cl_f1(y, P, noisy)) for P in stronger_probes(shipped, y, seed).values()))
    t = time.perf_counter()
    pieces = Pieces(X, y, texts, seed)
    shared_s = time.perf_counter() - t  # the PCA and the word counts, which every lever reads
    shipped_refit = pieces.words is None and pieces.Z.size >= pieces.li.SECOND_PASS_PROBE_MIN_CELLS  # the detector's second-pass rule
    rows = []
    for lever in levers:
        t = time.perf_counter()
        baseline = cl
        if lever in ("detector", "two passes", "noise-aware + detector"):
            res = detector_lever(lever, pieces, two_pass, shipped, shipped_refit, f"{task} seed {seed}")
            if res is None:
                continue
        elif lever == "probe refit":
            res = pieces.run(pieces.probe(y), refit_probe=True)
        elif lever.startswith("bag"):
            bag, passes = int(lever.split()[1]), int(lever.split()[3])
            res = pieces.run(pieces.probe(y, bag=bag), bag=bag, passes=passes, refit_probe=True)
        elif lever == "k 50 + bag 3 × 2 passes":
            res = pieces.run(pieces.probe(y, bag=3), k=50, bag=3, passes=2, refit_probe=True)
        elif lever.startswith("k "):
            res = pieces.run(pieces.probe(y), k=int(lever.split()[1]))
        elif lever == "relabel":
            res = pieces.run(pieces.probe(y), relabel=True)
        elif lever in ("probe C 0.01", "unscaled probe", "unscaled probe C 0.001", "both probes"):
            if lever == "both probes" and pieces.words is not None:  # the unscaled probe takes the view's place
                continue
            res, baseline = other_probe(lever, pieces, noisy, cl, shipped_refit)
        elif lever == "noise-aware probe":
            res, baseline = noise_aware_alone(two_pass, pieces, noisy, cl)
        elif pieces.K == 2:  # the oracle: with two classes a wrong label's true class is the other one
            res = pieces.run(pieces.probe(np.where(noisy, 1 - y, y)))
        else:  # task_data keeps only which labels are wrong, not their true class
            continue
        seconds = shared_s + time.perf_counter() - t
        f1 = prf(res.is_issue, noisy)[2]
        rows.append({"task": task, "seed": seed, "lever": lever, "f1": f1, "edge": f1 - baseline, "best_edge": best_cut_f1(res.score, noisy) - baseline,
                     "edge_strongest": f1 - strongest, "flagged": int(res.n_issues), "baseline": baseline, "cl_first_probe": cl, "time_ratio": seconds / base_s})  # fmt: skip
        r = rows[-1]
        print(f"{task} seed {seed} · {lever:<25} F1 {f1:.3f} (CL {baseline:.3f}) · edge {r['edge']:+.3f} · at the best count {r['best_edge']:+.3f} · "
              f"over the strongest {r['edge_strongest']:+.3f} · {r['flagged']:,} flagged · {r['time_ratio']:.1f}× the detector's time", flush=True)  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["vader-nyt"], choices=TASKS + UNSEEN + TEXT_MULTI)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=LEVERS, help="which levers (the detector always runs first)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}", flush=True)
    cache: dict = {}
    rows = [
        r
        for task in args.tasks
        for seed in args.seeds
        for r in one(task, seed, cache, ("detector", *[v for v in args.levers if v != "detector"]))
    ]
    print(
        "\n| task | lever | F1, mean | edge at the rule's count, smallest (mean) | edge at the best count, smallest (mean) |"
        " edge over the strongest, smallest (mean) | time ÷ detector's, median |"
    )
    print("|---|---|---|---|---|---|---|")
    for task in args.tasks:
        for lever in LEVERS:  # in the table's order
            part = [r for r in rows if r["task"] == task and r["lever"] == lever]
            if not part:
                continue
            e, b, st = ([r[key] for r in part] for key in ("edge", "best_edge", "edge_strongest"))
            print(f"| {task} | {lever} | {np.mean([r['f1'] for r in part]):.3f} | {min(e):+.3f} ({np.mean(e):+.3f}) | {min(b):+.3f} ({np.mean(b):+.3f}) | "
                  f"{min(st):+.3f} ({np.mean(st):+.3f}) | {np.median([r['time_ratio'] for r in part]):.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
