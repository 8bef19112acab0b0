"""The whole diagnosis of one dataset version, from embeddings to suspects, in one call.

``diagnose(ds)`` runs: embeddings (``core.embed``, cached) → the benchmarked label-noise detector
(``core.diagnose.label_issues.detect_label_issues``: PCA → out-of-fold probe → kNN graph →
the items most likely mislabelled under confident learning's noise estimate on the probe/kNN blend →
a second, reweighted pass → where it applies, the noise-aware probe) → near-duplicates and cross-split leaks → outliers from
the detector's own kNN graph → coverage → a 2-D PCA map. The result is cached on disk next to the
embeddings (``GAPSCOPE_HOME/cache/diagnosis``), so a second look — another tab, a reload, an app
restart — is instant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import paths
from core.atomic import atomic_write
from core.data.dataset import Dataset, content_hashes
from core.diagnose.coverage import coverage
from core.diagnose.duplicates import DuplicateCluster, near_duplicates
from core.diagnose.knn import knn_graph
from core.diagnose.label_issues import (
    K_NEIGHBOURS,
    KNN_COMPONENTS,
    N_FOLDS,
    LabelIssues,
    detect_label_issues,
    find_label_issues,
    flagged_rank,
)
from core.diagnose.maps import pca_2d
from core.embed import embeddings
from core.store.artifacts import RunFiles

DIAGNOSIS_VERSION = 10  # bump when the pipeline changes what it computes
Progress = Callable[[str, float], None]  # (stage description, overall fraction 0..1)
# seconds of everything after the embeddings: a constant + per item + per pair of items (the near-duplicate
# scan and the exact neighbour graph compare every pair: at 70k images they took 16.5 of 32.3 s), set on the
# 2-core CPU by benchmarks/bench_diagnose_time.py (benchmarks/RESULTS.md) to stay at or above the measured time
DETECT_S = 2.0
DETECT_PER_ITEM_S = 2.5e-4
DETECT_PER_PAIR_S = 3.5e-9


@dataclass(frozen=True)
class DiagnoseConfig:
    backbone: str = "auto"  # embedding backbone; see core.embed.embeddings.embed
    n_folds: int = N_FOLDS  # folds of the out-of-fold probe
    k: int = K_NEIGHBOURS  # neighbours for kNN label agreement and outlier distance
    duplicate_threshold: float = 0.98  # cosine similarity at or above which items are near-duplicates
    outlier_quantile: float = 0.99  # items above this quantile of kNN distance are outliers
    min_count: int = 5  # coverage: a class with fewer items than this in a split is flagged
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValueError("n_folds must be at least 2; 5 is the usual choice.")
        if self.k < 1:
            raise ValueError("k must be at least 1 neighbour; 10 is the usual choice.")
        if not 0 < self.duplicate_threshold <= 1:
            raise ValueError("duplicate_threshold is a cosine similarity in (0, 1]; 0.98 is a good start.")
        if not 0 < self.outlier_quantile < 1:
            raise ValueError("outlier_quantile must be between 0 and 1, e.g. 0.99 for the top 1%.")


@dataclass
class Diagnosis:
    """Everything the Diagnose page shows. n items, K classes."""

    probs: np.ndarray  # (n, K) out-of-fold probabilities
    issues: LabelIssues
    duplicates: list[DuplicateCluster]
    outlier_score: np.ndarray  # (n,) mean cosine distance to the k nearest neighbours
    outliers: np.ndarray  # indices above the quantile, most outlying first
    coverage: pd.DataFrame  # one row per class; see core.diagnose.coverage
    map2d: np.ndarray  # (n, 2) PCA of the embeddings
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage
    backbone: str = ""


def cache_path(ds: Dataset, cfg: DiagnoseConfig) -> Path:
    # the embedding key covers the items and the backbone; tabular features have none (they are
    # recomputed in milliseconds), so the items' content hashes stand in for it
    content = content_hashes(ds).tobytes() if ds.modality == "tabular" else embeddings.cache_key(ds, backbone=cfg.backbone).encode()
    key = hashlib.sha256(
        json.dumps({"v": DIAGNOSIS_VERSION, "cfg": cfg.__dict__, "labels": ds.labels.tolist(), "split": ds.split.tolist()}).encode()
        + content
    ).hexdigest()[:32]
    return paths.home() / "cache" / "diagnosis" / f"{key}.npz"


def is_cached(ds: Dataset, cfg: DiagnoseConfig = DiagnoseConfig()) -> bool:
    return cache_path(ds, cfg).exists()


def estimate_seconds(ds: Dataset, cfg: DiagnoseConfig = DiagnoseConfig()) -> float:
    """Rough wall time on this machine: embeddings of the items not embedded before (calibrated by
    the throughput this machine measured before, ``core.embed.throughput``) + detection."""
    missing = embeddings.uncached_items(ds, backbone=cfg.backbone)
    embed = 0.0 if missing == 0 else embeddings.estimate_seconds(ds.subset(np.arange(missing)), cfg.backbone)
    return embed + detection_seconds(ds)


def detection_seconds(ds: Dataset) -> float:
    """Rough wall time of everything after the embeddings (detector, duplicates, outliers, map)."""
    return DETECT_S + len(ds) * DETECT_PER_ITEM_S + len(ds) ** 2 * DETECT_PER_PAIR_S


def diagnose(
    ds: Dataset,
    cfg: DiagnoseConfig = DiagnoseConfig(),
    *,
    progress: Progress | None = None,
    cache: bool = True,
    embed_progress: Callable[[int, int], None] | None = None,
) -> Diagnosis:
    """Diagnose ``ds`` (all splits together: a wrong label in test misleads as much as one in train).

    ``embed_progress(done, total)`` is called after each embedding batch as well (items not
    embedded before), for callers that time the pass."""
    report = progress or (lambda stage, frac: None)
    path = cache_path(ds, cfg) if cache else None
    if path is not None and path.exists():
        report("loaded from cache", 1.0)
        return _load(path, ds, cfg)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    report("embedding items", 0.0)

    def on_batch(done: int, total: int) -> None:
        report(f"embedding items ({done:,} of the {total:,} not embedded before)", 0.7 * done / max(total, 1))
        if embed_progress is not None:
            embed_progress(done, total)

    X = np.ascontiguousarray(embeddings.embed(ds, backbone=cfg.backbone, progress=on_batch), dtype=np.float32)
    seconds["embedding"] = time.perf_counter() - t

    # the benchmarked detector, as it is (benchmarks/RESULTS.md); it hands back the PCA components
    # and the kNN graph it built, which the outliers and the map reuse (many texts: no graph, built here). Items of the unlabelled
    # pool have no label to judge: the detector sees the labelled items only.
    labelled = np.flatnonzero(ds.labelled)
    pooled = len(labelled) < len(ds)
    issues = detect_label_issues(
        X[labelled] if pooled else X,
        ds.labels[labelled],
        n_folds=cfg.n_folds,
        k=cfg.k,
        seed=cfg.seed,
        n_classes=ds.n_classes,
        progress=lambda stage, frac: report(stage, 0.71 + 0.22 * frac),
        texts=np.asarray(ds.items, dtype=object)[labelled] if ds.modality == "text" else None,  # their words: a second view
    )
    seconds.update(issues.seconds)
    assert issues.probs is not None and issues.components is not None
    probs, Z, nb_sims = issues.probs, issues.components, issues.neighbor_sims
    if nb_sims is None:  # many texts: the detector read their words, not neighbours; the outliers need them
        t = time.perf_counter()
        report("nearest neighbours", 0.93)
        nb_sims = knn_graph(Z[:, :KNN_COMPONENTS], k=cfg.k)[1]
        seconds["knn"] = time.perf_counter() - t
    issues.probs = issues.components = issues.neighbors = issues.neighbor_sims = None  # kept apart / not cached
    if pooled:
        issues, probs = _over_all_items(issues, probs, labelled, len(ds))

    t = time.perf_counter()
    report("duplicates and outliers", 0.93)
    # near-duplicates on the full embedding when it is small enough, else on the reduced one
    # (centred PCA raises cosines a little; exact copies are found by hash either way)
    dup_X = X if X.shape[0] * X.shape[1] <= 20_000 * 384 else Z
    dups = near_duplicates(dup_X, threshold=cfg.duplicate_threshold, hashes=content_hashes(ds), split=ds.split)
    # the detector's graph gives outliers: mean cosine distance to the k nearest neighbours
    outlier_score = np.full(len(ds), np.nan)
    outlier_score[labelled] = (1.0 - nb_sims.astype(np.float64).mean(axis=1)) if nb_sims.size else 0.0
    cut = np.nanquantile(outlier_score, cfg.outlier_quantile) if len(labelled) else 0.0
    out_idx = np.flatnonzero(outlier_score > cut)
    out_idx = out_idx[np.argsort(-outlier_score[out_idx], kind="stable")]
    seconds["duplicates_outliers"] = time.perf_counter() - t

    t = time.perf_counter()
    report("coverage and 2-D map", 0.97)
    cov = coverage(ds.labels[labelled], ds.split[labelled], ds.n_classes, min_count=cfg.min_count, class_names=ds.class_names)
    map2d = Z[:, :2].astype(np.float32) if Z.shape[1] >= 2 and not pooled else pca_2d(X)  # PCA components come sorted
    seconds["coverage_map"] = time.perf_counter() - t

    result = Diagnosis(probs.astype(np.float32), issues, dups, outlier_score.astype(np.float32), out_idx, cov, map2d, seconds, cfg.backbone)
    if path is not None:
        try:  # a cache: a full disk costs the next look its speed, never this result
            _save(path, result)
        except OSError as err:
            print(f"gapscope: diagnosis not cached ({err})", file=sys.stderr)
    report("done", 1.0)
    return result


def _over_all_items(issues: LabelIssues, probs: np.ndarray, labelled: np.ndarray, n: int) -> tuple[LabelIssues, np.ndarray]:
    """Label issues of the labelled items spread over all ``n`` items: a pool item is never
    flagged, its label quality is NaN and its suggestion -1."""
    full_probs = np.zeros((n, probs.shape[1]), probs.dtype)
    full_probs[labelled] = probs
    score = np.full(n, np.nan)
    score[labelled] = issues.score
    suggested = np.full(n, -1, np.int64)
    suggested[labelled] = issues.suggested
    flags = np.zeros(n, bool)
    flags[labelled] = issues.is_issue
    spread = dataclasses.replace(issues, is_issue=flags, score=score, suggested=suggested, rank=labelled[issues.rank])
    if issues.self_confidence is not None:
        spread.self_confidence = np.full(n, np.nan)
        spread.self_confidence[labelled] = issues.self_confidence
    if issues.knn_agreement is not None:
        spread.knn_agreement = np.full(n, np.nan)
        spread.knn_agreement[labelled] = issues.knn_agreement
    return spread, full_probs


def duplicate_table(dups: list[DuplicateCluster], ds: Dataset) -> pd.DataFrame:
    """One row per cluster: size, kind, splits, labels, leak, conflicting labels — leaks first."""
    rows = []
    for i, c in enumerate(dups):
        labels = sorted({str(ds.class_names[j]) for j in ds.labels[c.indices] if j >= 0})
        rows.append(
            {
                "cluster": i,
                "size": len(c),
                "kind": c.kind,
                "splits": ", ".join(c.splits),
                "labels": ", ".join(labels),
                "leak": c.cross_split,
                "conflict": len(labels) > 1,
                "items": [int(j) for j in c.indices],
            }
        )
    table = pd.DataFrame(rows, columns=["cluster", "size", "kind", "splits", "labels", "leak", "conflict", "items"])
    return table.sort_values(["leak", "conflict", "size"], ascending=False, ignore_index=True)


# ---------------------------------------------------------------------- cache (npz + json; no pickle)


def _save(path: Path, d: Diagnosis) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    iss = d.issues
    dup_idx = np.concatenate([c.indices for c in d.duplicates]) if d.duplicates else np.zeros(0, np.int64)
    dup_len = np.array([len(c) for c in d.duplicates], np.int64)
    meta = {
        "method": iss.method,
        "knn_weight": iss.knn_weight,
        "view_weight": iss.view_weight,
        "counts": iss.counts,
        "passes": iss.passes,
        "noise_aware": iss.noise_aware,
        "seconds": d.seconds,
        "backbone": d.backbone,
        "dup_kind": [c.kind for c in d.duplicates],
        "dup_splits": [list(c.splits) for c in d.duplicates],
        "dup_cross": [bool(c.cross_split) for c in d.duplicates],
    }
    arrays = dict(
        probs=d.probs,
        is_issue=iss.is_issue,
        score=iss.score,
        suggested=iss.suggested,
        rank=iss.rank,
        noise_matrix=iss.noise_matrix,
        noise_rate_per_class=iss.noise_rate_per_class,
        thresholds=iss.thresholds,
        confident_joint=iss.confident_joint,
        joint=iss.joint,
        outlier_score=d.outlier_score,
        outliers=d.outliers,
        map2d=d.map2d,
        dup_idx=dup_idx,
        dup_len=dup_len,
        meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
    )
    if iss.self_confidence is not None:
        arrays["self_confidence"] = iss.self_confidence
    if iss.knn_agreement is not None:
        arrays["knn_agreement"] = iss.knn_agreement
    atomic_write(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]  # numpy's stub: **kwds typed as the allow_pickle flag


def _load(path: Path, ds: Dataset, cfg: DiagnoseConfig) -> Diagnosis:
    with np.load(path, allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    meta = json.loads(a.pop("meta").tobytes().decode())
    issues = LabelIssues(
        is_issue=a["is_issue"],
        score=a["score"],
        suggested=a["suggested"],
        rank=a["rank"],
        noise_matrix=a["noise_matrix"],
        noise_rate_per_class=a["noise_rate_per_class"],
        thresholds=a["thresholds"],
        confident_joint=a["confident_joint"],
        joint=a["joint"],
        method=meta["method"],
        knn_weight=meta["knn_weight"],
        view_weight=meta.get("view_weight"),
        counts=meta.get("counts", {}),
        passes=meta.get("passes", 1),
        noise_aware=meta.get("noise_aware", False),
        self_confidence=a.get("self_confidence"),
        knn_agreement=a.get("knn_agreement"),
    )
    bounds = np.r_[0, np.cumsum(a["dup_len"])]
    dups = [
        DuplicateCluster(a["dup_idx"][bounds[i] : bounds[i + 1]], kind, tuple(splits), cross)
        for i, (kind, splits, cross) in enumerate(zip(meta["dup_kind"], meta["dup_splits"], meta["dup_cross"]))
    ]
    cov = coverage(ds.labels[ds.labelled], ds.split[ds.labelled], ds.n_classes, min_count=cfg.min_count, class_names=ds.class_names)
    return Diagnosis(a["probs"], issues, dups, a["outlier_score"], a["outliers"], cov, a["map2d"], meta["seconds"], meta["backbone"])


def label_issues_from_run(ds: Dataset, run_id: int, cfg: DiagnoseConfig = DiagnoseConfig()) -> tuple[LabelIssues, int] | None:
    """Label issues from a training run's held-out (test) probabilities instead of the probe.

    A fine-tuned model usually separates classes better than a probe on frozen embeddings, so its
    predictions on items it never trained on are a sharper lens for confident learning. Only those
    items (the test split) can be judged this way; every other item comes back unflagged with
    label quality NaN. Returns (issues over all n items, number of items judged), or None when the
    run has no held-out probabilities.
    """
    held = RunFiles(run_id).heldout_probs(ds.n_classes)
    if held is None:
        return None
    rows, probs = held
    X = None
    if ds.modality == "tabular" or embeddings.is_cached(ds, backbone=cfg.backbone):
        X = np.asarray(embeddings.embed(ds, backbone=cfg.backbone), dtype=np.float32)[rows]
    local = find_label_issues(ds.labels[rows], probs, X=X, k=min(cfg.k, max(1, len(rows) - 1)))
    n = len(ds)
    score = np.full(n, np.nan, np.float32)
    score[rows] = local.score
    is_issue = np.zeros(n, bool)
    is_issue[rows] = local.is_issue
    suggested = ds.labels.copy()
    suggested[rows] = local.suggested
    full = LabelIssues(
        is_issue=is_issue,
        score=score,
        suggested=suggested,
        rank=rows[local.rank],
        noise_matrix=local.noise_matrix,
        noise_rate_per_class=local.noise_rate_per_class,
        thresholds=local.thresholds,
        confident_joint=local.confident_joint,
        joint=local.joint,
        method=f"{local.method} on run #{run_id}'s held-out test split",
        knn_weight=local.knn_weight,
    )
    return full, len(rows)


def label_issues_from_dynamics(ds: Dataset, run_id: int, probe: LabelIssues, *, home: Any = None) -> tuple[LabelIssues, int] | None:
    """Label issues from a finished run's training dynamics: its *hard-to-learn* train items (the data
    map's low-confidence corner, ``core.select.scores.data_map``), ranked by confidence, lowest first.

    Such items are often label errors (Swayamdipta et al. 2020). The run saw every train item, so
    the whole train split is judged; val and test come back unflagged (label quality NaN). The
    suggested label and the class-level figures are the probe's (``probe``). Returns (issues over all
    n items, number of items judged), or None when the run kept no dynamics.
    """
    from core.select.scores import data_map

    dyn = RunFiles(run_id, home=home).dynamics()
    if dyn is None or len(dyn["p_given"]) == 0:
        return None
    m = data_map(dyn)
    rows = m["row"].to_numpy()
    inside = rows < len(ds)
    m, rows = m[inside], rows[inside]
    score = np.full(len(ds), np.nan, np.float32)
    score[rows] = m["confidence"].to_numpy(dtype=np.float32)
    is_issue = np.zeros(len(ds), bool)
    is_issue[rows] = (m["region"] == "hard to learn").to_numpy()
    issues = dataclasses.replace(
        probe,
        is_issue=is_issue,
        score=score,
        rank=flagged_rank(is_issue, score),
        method=f"hard to learn in run #{run_id}'s training dynamics (suggestions from the probe)",
        self_confidence=None,
        knn_agreement=None,
    )
    return issues, len(rows)
