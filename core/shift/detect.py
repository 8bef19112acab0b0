"""Two-sample tests: has the target left the reference's distribution?

- ``mmd_test``: maximum mean discrepancy (Gretton et al. 2012) between two embedding sets with a
  Gaussian kernel (bandwidth: the median pairwise distance of the pooled sample), the unbiased
  MMD² as statistic and a seeded permutation p-value. All permutations are scored at once from one
  kernel matrix: with ``x`` a permutation's 0/1 reference indicator and ``K₀`` the kernel with a
  zero diagonal, ``Σ_XX = xᵀK₀x``, ``Σ_XY = xᵀK₀1 − Σ_XX`` and ``Σ_YY = 1ᵀK₀1 − 2xᵀK₀1 + Σ_XX`` — one
  matrix product for every permutation.
- ``domain_classifier_test``: a linear classifier (ridge regression on the 0/1 side label, over
  standardised features — 64 principal components of embeddings wider than 512, both fitted on
  the pooled sample without the labels) told to separate target from reference, scored out of
  fold (shuffled k-fold: folds drawn without the labels, so that every relabelling is scored on
  the same footing). The statistic is its AUC; the p-value is a permutation p-value of the
  rank test of the target's held-out scores over the reference's within each fold, summed over
  the folds. Ridge makes every relabelling one matrix product (the held-out scores are linear in
  the labels), so the whole cross-validation is re-run for each of the permutations at the cost
  of one. The items it finds most "target-like" are returned for a gallery. (The earlier p-value,
  the same rank sum read from a normal table as if the folds were independent — van Elteren —
  fired on 9–11 % of no-shift draws at α = 0.05: the folds share training items, so their
  statistics move together.)
- ``feature_tests``: one test per table column — Kolmogorov–Smirnov for numbers, χ² on the
  category counts otherwise — with Benjamini–Hochberg adjusted p-values
  (``scipy.stats.false_discovery_control``).

Each test draws at most ``n_per_side`` items from each side (seeded) and reports its statistic,
p-value, the sizes it used and its time. A test is *shifted* when its p-value (adjusted, for the
per-feature table) is below ``alpha``.

Written here rather than taken from a drift library: alibi-detect's licence is no longer open
source, and Evidently and NannyML do not install beside the project's plotly; each test is a few
lines over SciPy and scikit-learn, tested on cases with known answers (tests/test_shift.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError

__all__ = ["FeatureShift", "ShiftTest", "domain_classifier_test", "feature_tests", "mmd_test"]

N_PER_SIDE = 500  # items drawn from each side by default
PERMUTATIONS = 500
ALPHA = 0.05
MIN_ITEMS = 10  # per side: fewer cannot be tested
DC_COMPONENTS = 64  # the domain classifier reads embeddings wider than PCA_ABOVE through this many principal components
PCA_ABOVE = 512  # 1,280-wide image features; 384-wide text needs none
RIDGE = 0.01  # the domain classifier's ridge penalty per training item, on standardised features


@dataclass(frozen=True)
class ShiftTest:
    """One two-sample test's result."""

    name: str  # "mmd" | "domain_classifier"
    statistic: float  # MMD² (unbiased) or AUC
    p_value: float
    n_reference: int  # items the test used from each side
    n_target: int
    seconds: float
    alpha: float = ALPHA
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def shifted(self) -> bool:
        return bool(self.p_value < self.alpha)


def _matrix(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (items × features); got shape {a.shape}.")
    if a.shape[0] < MIN_ITEMS:
        raise DataError(f"{name} has {a.shape[0]} items; a shift test needs at least {MIN_ITEMS} on each side.")
    if not np.isfinite(a).all():
        raise DataError(f"{name} holds NaN or infinite values; embed the items again or drop those rows.")
    return a


def _pair(reference: Any, target: Any, n_per_side: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both sides as float arrays, each cut to ``n_per_side`` rows drawn without replacement, and
    the rows drawn (positions in the inputs)."""
    ref, tgt = _matrix(reference, "reference"), _matrix(target, "target")
    if ref.shape[1] != tgt.shape[1]:
        raise DataError(f"reference and target have {ref.shape[1]} and {tgt.shape[1]} features; embed both with the same model.")
    if n_per_side < MIN_ITEMS:
        raise DataError(f"n_per_side must be at least {MIN_ITEMS}; got {n_per_side}.")
    ri = np.sort(rng.choice(len(ref), n_per_side, replace=False)) if len(ref) > n_per_side else np.arange(len(ref))
    ti = np.sort(rng.choice(len(tgt), n_per_side, replace=False)) if len(tgt) > n_per_side else np.arange(len(tgt))
    return ref[ri], tgt[ti], ri, ti


def _sq_distances(z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    d = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def _mmd2_all(k0: np.ndarray, x: np.ndarray, n: int, m: int) -> np.ndarray:
    """Unbiased MMD² for each column of ``x`` (N, P): a 0/1 indicator of the reference side."""
    kx = k0 @ x  # (N, P)
    row = k0.sum(axis=1)  # K₀1
    total = row.sum()  # 1ᵀK₀1
    s_xx = np.einsum("ij,ij->j", x, kx)
    x_row = row @ x  # xᵀK₀1
    s_xy = x_row - s_xx
    s_yy = total - 2.0 * x_row + s_xx
    return s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)


def mmd_test(
    reference: Any, target: Any, *, n_per_side: int = N_PER_SIDE, permutations: int = PERMUTATIONS, seed: int = 0, alpha: float = ALPHA
) -> ShiftTest:
    """MMD two-sample test with a Gaussian kernel and a permutation p-value.

    Parameters
    ----------
    reference, target : array_like, shape (n, d) and (m, d)
        Embeddings (or any numeric features) of the two sides.
    n_per_side : int
        At most this many items are drawn from each side (seeded by ``seed``).
    permutations : int
        Random relabellings of the pooled sample; p = (1 + #{MMD²_perm ≥ MMD²}) / (1 + permutations).
    """
    t0 = time.perf_counter()
    if permutations < 1:
        raise DataError(f"permutations must be at least 1; got {permutations}.")
    rng = np.random.default_rng(seed)
    ref, tgt, _, _ = _pair(reference, target, n_per_side, rng)
    n, m = len(ref), len(tgt)
    z = np.vstack([ref, tgt])
    d2 = _sq_distances(z)
    off = d2[np.triu_indices(len(z), k=1)]
    positive = off[off > 0]
    bandwidth2 = float(np.median(positive)) if len(positive) else 1.0
    k0 = np.exp(-d2 / bandwidth2)
    np.fill_diagonal(k0, 0.0)
    observed = np.zeros((n + m, 1))
    observed[:n] = 1.0
    stat = float(_mmd2_all(k0, observed, n, m)[0])
    x = np.zeros((n + m, permutations))
    for j in range(permutations):
        x[rng.permutation(n + m)[:n], j] = 1.0
    null = _mmd2_all(k0, x, n, m)
    p = float((1 + np.count_nonzero(null >= stat)) / (1 + permutations))
    detail = {"bandwidth": float(np.sqrt(bandwidth2)), "permutations": permutations, "null_95": float(np.quantile(null, 0.95))}
    return ShiftTest("mmd", stat, p, n, m, time.perf_counter() - t0, alpha, detail)


def domain_classifier_test(
    reference: Any,
    target: Any,
    *,
    n_per_side: int = N_PER_SIDE,
    folds: int = 5,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    alpha: float = ALPHA,
    top: int = 20,
) -> ShiftTest:
    """A classifier's out-of-fold AUC at telling target items from reference items, with a
    permutation p-value (the whole cross-validation re-run on ``permutations`` relabellings).

    ``detail["target_like"]``: positions in ``target`` of the ``top`` items scored most target-like,
    most first; ``detail["target_like_score"]`` their out-of-fold estimate of the probability of
    being target (the ridge regression's answer, clipped to [0, 1]).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold

    t0 = time.perf_counter()
    if permutations < 1:
        raise DataError(f"permutations must be at least 1; got {permutations}.")
    rng = np.random.default_rng(seed)
    ref, tgt, _, ti = _pair(reference, target, n_per_side, rng)
    y = np.r_[np.zeros(len(ref), np.int64), np.ones(len(tgt), np.int64)]
    k = max(2, min(folds, len(ref), len(tgt)))
    z = _domain_features(np.vstack([ref, tgt]), seed)
    # folds drawn without the labels keep every relabelling on the same footing
    splits = list(KFold(k, shuffle=True, random_state=seed).split(z))
    labels = np.column_stack([y] + [rng.permutation(y) for _ in range(permutations)]).astype(np.float64)
    score = np.empty_like(labels)
    for train, test in splits:
        score[test] = _ridge_scores(z[train], labels[train], z[test])
    stat = _fold_rank_sums(score, labels, [test for _, test in splits])
    p = float((1 + np.count_nonzero(stat[1:] >= stat[0])) / (1 + permutations))
    auc = float(roc_auc_score(y, score[:, 0]))
    t_score = np.clip(score[len(ref) :, 0], 0.0, 1.0)
    order = np.argsort(-score[len(ref) :, 0], kind="stable")[:top]
    detail = {
        "folds": k,
        "permutations": permutations,
        "features": int(z.shape[1]),
        "target_like": ti[order].tolist(),
        "target_like_score": t_score[order].round(4).tolist(),
    }
    return ShiftTest("domain_classifier", auc, p, len(ref), len(tgt), time.perf_counter() - t0, alpha, detail)


def _domain_features(z: np.ndarray, seed: int) -> np.ndarray:
    """Standardised features, through principal components when wider than ``PCA_ABOVE``; fitted on
    the pooled sample without its labels, so every relabelling sees the same features."""
    from sklearn.decomposition import PCA

    sd = z.std(axis=0)
    z = (z - z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    dims = min(DC_COMPONENTS, z.shape[1], len(z) - 1)
    if z.shape[1] > PCA_ABOVE and dims >= 2:
        z = PCA(dims, svd_solver="randomized", random_state=seed).fit_transform(z)
    return z


def _ridge_scores(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray) -> np.ndarray:
    """Held-out answers of a ridge regression with an intercept for each column of ``y_train``
    (N, P): one solve, then one matrix product for every column."""
    mu = z_train.mean(axis=0)
    zc = z_train - mu
    gram = zc.T @ zc + RIDGE * len(z_train) * np.eye(zc.shape[1])
    y_mean = y_train.mean(axis=0)
    coef = np.linalg.solve(gram, zc.T @ (y_train - y_mean))  # (d, P)
    return (z_test - mu) @ coef + y_mean


def _fold_rank_sums(score: np.ndarray, labels: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """Per column: the standardised Mann–Whitney U of the target's held-out scores over the
    reference's within each fold (each fold's scores come from one model that never saw them),
    summed over the folds."""
    from scipy.stats import rankdata

    total = np.zeros(score.shape[1])
    for test in folds:
        lab = labels[test]
        n1 = lab.sum(axis=0)
        n0 = len(test) - n1
        u = (rankdata(score[test], axis=0) * lab).sum(axis=0) - n1 * (n1 + 1) / 2
        var = n1 * n0 * (len(test) + 1) / 12
        total += np.divide(u - n1 * n0 / 2, np.sqrt(var), out=np.zeros_like(var), where=var > 0)
    return total


@dataclass(frozen=True)
class FeatureShift:
    """Per-column tests between two tables: ``table`` has one row per column tested — column,
    test ("ks" | "chi2"), statistic, p_value, p_adjusted (Benjamini–Hochberg), n_reference,
    n_target, shifted — and ``skipped`` names columns not tested, with why."""

    table: pd.DataFrame
    skipped: dict[str, str]
    seconds: float
    alpha: float = ALPHA

    @property
    def shifted(self) -> bool:
        return bool(self.table["shifted"].any()) if len(self.table) else False


def _is_numeric(s: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique(dropna=True) > 10)


def _column_test(a: pd.Series, b: pd.Series) -> tuple[str, float, float]:
    from scipy.stats import chi2_contingency, ks_2samp

    if _is_numeric(a) and _is_numeric(b):
        r = ks_2samp(a.to_numpy(np.float64), b.to_numpy(np.float64))
        return "ks", float(r.statistic), float(r.pvalue)
    counts = pd.concat([a.astype(str).value_counts(), b.astype(str).value_counts()], axis=1).fillna(0).to_numpy()
    if counts.shape[0] < 2:
        return "chi2", 0.0, 1.0
    r = chi2_contingency(counts.T, correction=False)
    return "chi2", float(r.statistic), float(r.pvalue)


def feature_tests(
    reference: pd.DataFrame, target: pd.DataFrame, *, columns: list[str] | None = None, n_per_side: int | None = None,
    seed: int = 0, alpha: float = ALPHA,
) -> FeatureShift:  # fmt: skip
    """KS (numeric columns with more than 10 values) or χ² (the rest) per column, BH-adjusted.

    ``columns``: the columns to test (default: every column both tables share). Missing values are
    left out of each column's test; a column with fewer than ``MIN_ITEMS`` values on a side is
    skipped and named in ``skipped``.
    """
    from scipy.stats import false_discovery_control

    t0 = time.perf_counter()
    cols = list(columns) if columns is not None else [c for c in reference.columns if c in target.columns]
    missing = [c for c in cols if c not in reference.columns or c not in target.columns]
    if missing:
        raise DataError(f"columns {missing} are not in both tables; pick columns both the reference and the target have.")
    if not cols:
        raise DataError("the reference and the target share no column to test; give tables with the same columns.")
    rng = np.random.default_rng(seed)
    if n_per_side is not None:
        reference = (
            reference.iloc[np.sort(rng.choice(len(reference), n_per_side, replace=False))] if len(reference) > n_per_side else reference
        )
        target = target.iloc[np.sort(rng.choice(len(target), n_per_side, replace=False))] if len(target) > n_per_side else target
    rows, skipped = [], {}
    for c in cols:
        a, b = reference[c].dropna(), target[c].dropna()
        if len(a) < MIN_ITEMS or len(b) < MIN_ITEMS:
            skipped[c] = f"{len(a)} reference and {len(b)} target values; a test needs {MIN_ITEMS} on each side"
            continue
        test, stat, p = _column_test(a, b)
        rows.append({"column": c, "test": test, "statistic": stat, "p_value": p, "n_reference": len(a), "n_target": len(b)})
    table = pd.DataFrame(rows, columns=["column", "test", "statistic", "p_value", "n_reference", "n_target"])
    table["p_adjusted"] = false_discovery_control(table["p_value"].to_numpy(), method="bh") if len(table) else []
    table["shifted"] = table["p_adjusted"] < alpha
    return FeatureShift(table, skipped, time.perf_counter() - t0, alpha)
