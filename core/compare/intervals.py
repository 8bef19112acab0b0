"""How sure a change is: paired bootstrap intervals of the change in each metric between two runs
on the same test items, and McNemar's exact test of their accuracy.

Two runs are scored on the items both answered (matched by ``Dataset.item_ids``), each at its
result's step (``RunResults.result_step``). A resample draws the shared items with replacement
(``n`` draws of ``n`` items) and scores **both** runs on that same draw, so the noise the two runs
share (which items happen to be in the test split) cancels in their difference (Efron & Tibshirani
1993, ch. 16; the paired bootstrap of Koehn 2004 for system comparisons). The 95 % interval is the
2.5th–97.5th percentile of the resampled differences.

Every metric is a ratio of sums over items, so a resample is a weight vector ``w`` (how often each
item was drawn): per run, one matrix ``X`` (items × sums) of per-item indicators — right, wrong
with confidence ≥ τ, of class c, predicted c, in confidence bin b, its NLL and Brier terms — turns
``W @ X`` (resamples × sums) into every metric of every resample at once. With ``w`` all ones the
same arithmetic gives the values ``core.metrics.summary`` computes (``tests/test_intervals.py``
checks it to 1e-9), so each metric keeps one definition:

- accuracy = Σw·hit / Σw·known; hallucination rate = Σw·(wrong ∧ conf ≥ τ) / Σw·known
- per class c: tp, support, predicted → F1 = 2tp / (support + predicted) (0 when both are 0), macro
  over all K classes; recall = tp / support over the classes present → balanced accuracy (mean),
  worst-class recall (min)
- forced-known rate = Σw·(unknown ∧ conf ≥ τ) / Σw·unknown
- ECE = Σ_b |Σw·hit_b − Σw·conf_b| / Σw·known over 15 equal-width bins (``calibration._bin_index``)
- NLL = Σw·(−log max(p_y, 1e-12)) / Σw·known; Brier = Σw·(Σ_k p_k² − 2p_y + 1) / Σw·known

Classwise ECE, the AUROCs and AURC are not ratios of item sums: their deltas get no interval.

McNemar's exact test (``mcnemar``) asks whether the items one run gets right and the other wrong
split evenly: a two-sided binomial test (``scipy.stats.binomtest``) of one direction's count among
the discordant pairs (McNemar 1947; the exact form of Fagerland et al. 2013).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from core.compare.examples import shares_items
from core.metrics._common import conf_pred
from core.metrics.calibration import DEFAULT_N_BINS, NLL_CLIP, _bin_index
from core.metrics.keys import LOWER_IS_BETTER

if TYPE_CHECKING:
    from core.data.dataset import Dataset
    from core.metrics.results import RunResults

#: Metrics whose change gets a bootstrap interval.
BOOT_METRICS = (
    "accuracy",
    "macro_f1",
    "balanced_accuracy",
    "worst_class_recall",
    "hallucination_rate",
    "forced_known_rate",
    "ece",
    "nll",
    "brier",
)
N_BOOT = 1000  # resamples
SEED = 0
LEVEL = 0.95
CHUNK = 250  # resamples per matrix product: bounds the memory of the weights (CHUNK × items)
ZERO = 1e-12  # a difference smaller than this is rounding, not a change (real changes are ≥ 1 / items)
UNCLEAR = "no clear difference"
NO_INTERVAL = "no interval"


# ------------------------------------------------------------------ per-item sums


@dataclass(frozen=True)
class Answers:
    """One run's answers on test items: ``probs`` (n, K) over the classes it trained on, ``y`` (n,)
    the true class's column in ``probs`` or -1 for a class it never trained on, ``keys`` (n,) the
    items' identities across versions."""

    probs: np.ndarray
    y: np.ndarray
    keys: np.ndarray


def item_sums(probs: np.ndarray, y: np.ndarray, *, tau: float, n_bins: int = DEFAULT_N_BINS) -> np.ndarray:
    """Per-item terms (n, 5 + 3K + 2·n_bins + 2) whose weighted sums give every ``BOOT_METRICS``
    metric (``metrics_from_sums``): known, hit, confident wrong, unknown, confident unknown;
    tp, support, predicted per class; conf and hit per confidence bin of the known rows; NLL; Brier."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n, k = p.shape
    conf, pred = conf_pred(p)
    known = y >= 0
    yk = np.where(known, y, 0)
    hit = known & (pred == y)
    confident = conf >= tau
    classes = np.arange(k)
    of_class = (yk[:, None] == classes) & known[:, None]
    predicted = (pred[:, None] == classes) & known[:, None]
    in_bin = (_bin_index(conf, n_bins)[:, None] == np.arange(n_bins)) & known[:, None]
    py = p[np.arange(n), yk]
    nll = np.where(known, -np.log(np.maximum(py, NLL_CLIP)), 0.0)
    brier = np.where(known, np.einsum("ij,ij->i", p, p) - 2.0 * py + 1.0, 0.0)
    cols = [
        known[:, None], hit[:, None], (known & ~hit & confident)[:, None], (~known)[:, None], (~known & confident)[:, None],
        of_class & hit[:, None], of_class, predicted,
        in_bin * conf[:, None], in_bin & hit[:, None], nll[:, None], brier[:, None],
    ]  # fmt: skip
    return np.hstack([c.astype(np.float64) for c in cols])


def metrics_from_sums(sums: np.ndarray, k: int, n_bins: int = DEFAULT_N_BINS) -> dict[str, np.ndarray]:
    """``BOOT_METRICS`` from weighted sums (..., columns of ``item_sums``); NaN where undefined."""
    s = np.asarray(sums, dtype=np.float64)
    known, hit, halluc, unknown, forced = (s[..., i] for i in range(5))
    tp, support, predicted = s[..., 5 : 5 + k], s[..., 5 + k : 5 + 2 * k], s[..., 5 + 2 * k : 5 + 3 * k]
    o = 5 + 3 * k
    bin_conf, bin_hit = s[..., o : o + n_bins], s[..., o + n_bins : o + 2 * n_bins]
    nll, brier = s[..., o + 2 * n_bins], s[..., o + 2 * n_bins + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        any_known = known > 0
        per_known = lambda x: np.where(any_known, x / known, np.nan)
        denom = support + predicted
        f1 = np.where(denom > 0, 2.0 * tp / denom, 0.0)
        recall = np.where(support > 0, tp / support, np.nan)
        present = np.asarray((support > 0).any(axis=-1))
        out = {
            "accuracy": per_known(hit),
            "macro_f1": np.where(any_known, f1.mean(axis=-1), np.nan),
            "balanced_accuracy": np.where(present, np.nanmean(np.where(present[..., None], recall, 0.0), axis=-1), np.nan),
            "worst_class_recall": np.where(present, np.nanmin(np.where(present[..., None], recall, 0.0), axis=-1), np.nan),
            "hallucination_rate": per_known(halluc),
            "forced_known_rate": np.where(unknown > 0, forced / unknown, np.nan),
            "ece": per_known(np.abs(bin_hit - bin_conf).sum(axis=-1)),
            "nll": per_known(nll),
            "brier": per_known(brier),
        }
    return out


def bootstrap_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) float64: how often each of ``n`` items is drawn in each of ``n_boot`` resamples of
    ``n`` draws with replacement (a multinomial count row each)."""
    draws = rng.integers(0, n, size=(n_boot, n), dtype=np.int32 if n < 2**31 else np.int64)
    weights = np.empty((n_boot, n), dtype=np.float64)
    for r in range(n_boot):  # one row at a time: its counts stay in cache (3× faster than one flat bincount)
        weights[r] = np.bincount(draws[r], minlength=n)
    return weights


# ------------------------------------------------------------------ intervals


@dataclass(frozen=True)
class Interval:
    """The change ``delta`` (b − a) of one metric, its ``level`` interval [low, high] and its verdict."""

    metric: str
    a: float
    b: float
    delta: float
    low: float
    high: float
    verdict: str  # "better", "worse" or "no clear difference"


def verdict_of(metric: str, low: float, high: float) -> str:
    """ "better" / "worse" only when the interval [low, high] excludes 0 (``LOWER_IS_BETTER`` gives
    the direction); otherwise "no clear difference"."""
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 <= high:
        return UNCLEAR
    return "better" if (high < 0) == (metric in LOWER_IS_BETTER) else "worse"


def paired_bootstrap(
    a: Answers, b: Answers, *, tau: float, metrics: tuple[str, ...] = BOOT_METRICS, n_boot: int = N_BOOT, seed: int = SEED,
    level: float = LEVEL, n_bins: int = DEFAULT_N_BINS,
) -> dict[str, Interval]:  # fmt: skip
    """The change from run ``a`` to run ``b`` of each metric on the items both answered (matched by
    ``keys``), with a paired percentile bootstrap interval (``n_boot`` resamples, seeded). Empty
    when they share no item."""
    a, b = _shared(a, b)
    n = len(a.y)
    if n == 0:
        return {}
    ka, kb = a.probs.shape[1], b.probs.shape[1]
    xa, xb = item_sums(a.probs, a.y, tau=tau, n_bins=n_bins), item_sums(b.probs, b.y, tau=tau, n_bins=n_bins)
    va, vb = metrics_from_sums(xa.sum(axis=0), ka, n_bins), metrics_from_sums(xb.sum(axis=0), kb, n_bins)
    x = np.hstack([xa, xb])
    used = np.flatnonzero(x.any(axis=0))  # sums that stay 0 in every resample (empty bins, classes) cost nothing
    xu = x[:, used]  # float64: float32 sums of NLL or confidences drift by ~1e-7, enough to split identical runs
    rng = np.random.default_rng(seed)
    sums = np.zeros((n_boot, x.shape[1]))
    for start in range(0, n_boot, CHUNK):
        stop = min(start + CHUNK, n_boot)
        sums[start:stop, used] = bootstrap_weights(n, stop - start, rng) @ xu
    ra, rb = metrics_from_sums(sums[:, : xa.shape[1]], ka, n_bins), metrics_from_sums(sums[:, xa.shape[1] :], kb, n_bins)
    tail = 100 * (1 - level) / 2
    out = {}
    for m in metrics:
        da, db = float(va[m]), float(vb[m])
        diffs = rb[m] - ra[m]
        diffs = diffs[np.isfinite(diffs)]
        if not (np.isfinite(da) and np.isfinite(db)) or len(diffs) < n_boot // 2:
            continue
        low, high = (_snap(float(v)) for v in np.percentile(diffs, [tail, 100 - tail]))
        out[m] = Interval(m, da, db, db - da, low, high, verdict_of(m, low, high))
    return out


def _snap(v: float) -> float:
    """0 for a difference below ``ZERO`` (rounding in the sums: the same answers resampled in two
    columns of one product can differ in the last bits), else ``v``."""
    return 0.0 if abs(v) < ZERO else v


def _shared(a: Answers, b: Answers) -> tuple[Answers, Answers]:
    """Both runs' answers on the items they share, in one order."""
    common, ia, ib = np.intersect1d(a.keys, b.keys, assume_unique=True, return_indices=True)
    return Answers(a.probs[ia], a.y[ia], common), Answers(b.probs[ib], b.y[ib], common)


# ------------------------------------------------------------------ McNemar


@dataclass(frozen=True)
class McNemar:
    """Items of known classes only ``a`` got right (``a_only``) and only ``b`` got right (``b_only``),
    and the exact two-sided p-value of that split."""

    a_only: int
    b_only: int
    p_value: float


def mcnemar(a_right: np.ndarray, b_right: np.ndarray) -> McNemar:
    """McNemar's exact test of paired right/wrong answers (bool arrays of the same items)."""
    a_right, b_right = np.asarray(a_right, dtype=bool), np.asarray(b_right, dtype=bool)
    a_only, b_only = int(np.count_nonzero(a_right & ~b_right)), int(np.count_nonzero(~a_right & b_right))
    p = 1.0 if a_only + b_only == 0 else float(binomtest(b_only, a_only + b_only, 0.5).pvalue)
    return McNemar(a_only, b_only, p)


def paired_mcnemar(a: Answers, b: Answers) -> McNemar | None:
    """``mcnemar`` on the shared items of a known class to both runs; None when there are none."""
    a, b = _shared(a, b)
    both = (a.y >= 0) & (b.y >= 0)
    if not both.any():
        return None
    return mcnemar(a.probs[both].argmax(1) == a.y[both], b.probs[both].argmax(1) == b.y[both])


# ------------------------------------------------------------------ from stored runs


def answers(res: RunResults, ds: Dataset) -> Answers | None:
    """Run ``res``'s test answers at its result's step, from the held-out probabilities it stored;
    None before an evaluation, or for a run stored without them."""
    step = res.result_step
    art = res.artifacts(step) if step is not None else {}
    got = res.files.heldout_probs(len(ds.class_names), step=step) if art else None
    if got is None:
        return None
    rows, full = got
    classes = np.asarray(art["classes"], dtype=np.int64)
    column = np.full(len(ds.class_names), -1, dtype=np.int64)
    column[classes] = np.arange(len(classes))
    return Answers(full[:, classes].astype(np.float64), column[ds.labels[rows]], ds.item_ids()[rows])


@dataclass(frozen=True)
class Comparison:
    """One run against the reference: an ``Interval`` per metric that has one, McNemar's test of
    accuracy, and why there is no interval (None when there are)."""

    intervals: dict[str, Interval]
    mcnemar: McNemar | None
    why_none: str | None = None


def compare_to_reference(
    results: list[RunResults], datasets: list[Dataset], *, n_boot: int = N_BOOT, seed: int = SEED
) -> dict[int, Comparison]:
    """``run id → Comparison`` of every run but the first against the first (the reference)."""
    ref, ds_ref = results[0], datasets[0]
    base = answers(ref, ds_ref)
    out = {}
    for res, ds in zip(results[1:], datasets[1:]):
        if not shares_items(res.store, ref, res):
            out[res.run_id] = Comparison({}, None, "no interval: the runs share no test items (another dataset, or other classes)")
            continue
        other = answers(res, ds)
        if base is None or other is None:
            out[res.run_id] = Comparison({}, None, "no interval: a run has no stored test probabilities at its result's step yet")
            continue
        if np.intersect1d(base.keys, other.keys).size == 0:
            out[res.run_id] = Comparison({}, None, "no interval: the runs share no test items")
            continue
        out[res.run_id] = Comparison(paired_bootstrap(base, other, tau=ref.tau, n_boot=n_boot, seed=seed), paired_mcnemar(base, other))
    return out


def interval_table(comparisons: dict[int, Comparison], labels: dict[int, str], metrics: list[str]) -> pd.DataFrame:
    """Rows ``metrics``, one column per compared run (``labels``): "[low, high]" of the change, or
    "—" where there is none."""
    return pd.DataFrame(
        {labels[rid]: [_interval_text(c.intervals.get(m)) for m in metrics] for rid, c in comparisons.items()}, index=metrics
    )


def _interval_text(iv: Interval | None) -> str:
    return "—" if iv is None else f"[{iv.low:+.4f}, {iv.high:+.4f}]"
