"""What the Diagnose page shows of a diagnosis: the headline figures, the queue of items to review,
bulk decisions by filter, duplicate clusters, outliers and coverage gaps, why the suspect count
changed after a cleaning, and the sentences about them. Pure functions of a ``Diagnosis``, its
``LabelIssues`` and a ``CleaningPlan``; no I/O, no streamlit.

The review queue answers a click at once on tens of thousands of items: what it needs per item —
the finding masks, the label quality, the suggestions, the two orders — is worked out once per
diagnosis (``Findings``), and each click only masks arrays (``CleaningPlan.decided_mask``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.data.dataset import Dataset, item_ref
from core.data.overview import Figure
from core.diagnose.confident import ISSUE_METHOD_TITLES
from core.diagnose.progressive import eta_words

if TYPE_CHECKING:
    from core.diagnose.cleaning import CleaningPlan
    from core.diagnose.label_issues import LabelIssues
    from core.diagnose.pipeline import Diagnosis

FLAGGED_FIRST = "flagged, most suspicious first"
LOWEST_QUALITY_FIRST = "all items, lowest label quality first"
REVIEW_ORDERS = [FLAGGED_FIRST, LOWEST_QUALITY_FIRST]


def noise_rate(issues: LabelIssues) -> float:
    """The estimated share of wrong labels: 1 − trace of the estimated joint of given and true
    labels (NaN when nothing was judged)."""
    return 1 - float(np.trace(issues.joint)) if issues.joint.size else float("nan")


def coverage_gaps(coverage: pd.DataFrame) -> pd.DataFrame:
    """The rows of the coverage table whose class is missing from a split or unseen in train."""
    if "missing_in" not in coverage:
        return coverage.iloc[0:0]
    return coverage[(coverage["missing_in"].map(len) > 0) | coverage["unseen_in_train"]]


def headline(d: Diagnosis, issues: LabelIssues, *, n_items: int, outlier_quantile: float) -> list[Figure]:
    """The five numbers above the Diagnose page's tabs. ``issues`` is the probe's (``d.issues``) or
    a run's, whichever the page judges labels with."""
    leaks = sum(bool(c.cross_split) for c in d.duplicates)
    return [
        Figure("Suspected label errors", f"{issues.n_issues:,}", f"{issues.n_issues / n_items:.1%} of items"),
        Figure("Estimated label noise", f"{noise_rate(issues):.1%}", "1 − trace of the estimated joint of given and true labels"),
        Figure("Duplicate clusters", f"{len(d.duplicates):,}", f"{leaks:,} cross-split leaks"),
        Figure("Outliers", f"{len(d.outliers):,}", f"top {1 - outlier_quantile:.1%} by kNN distance"),
        Figure("Coverage gaps", f"{len(coverage_gaps(d.coverage)):,}", "classes missing from a split or unseen in train"),
    ]


def scope_words(scope: str, n_judged: int, n_items: int) -> str:
    """What a label-noise estimate was computed from: every item, or a seeded sample."""
    if scope == "sample":
        return (
            f"a stratified sample of {n_judged:,} of {n_items:,} items (seeded). A first look: with fewer items to "
            "learn from, the detector is less sure of itself and this estimate tends to run high; the diagnosis of every "
            "item replaces it"
        )
    return f"all {n_items:,} items"


def not_diagnosed(label: str, seconds: float, *, sample_size: int | None = None, first_seconds: float | None = None) -> str:
    """The invitation to diagnose ``label``: here and now (``sample_size`` None), or in the
    background, a stratified sample of ``sample_size`` items first (its estimate due in
    ``first_seconds``). Durations in words (``eta_words``)."""
    if sample_size is None:
        return (
            f"**{label}** has not been diagnosed with these settings yet. It takes {eta_words(seconds)} "
            "on this machine (embeddings are cached by item, so the next look is instant)."
        )
    first = "first" if first_seconds is None else f"in {eta_words(first_seconds)}"
    return (
        f"**{label}** has not been diagnosed with these settings yet: {eta_words(seconds)} on this "
        f"machine. It runs in the background — first on a stratified sample of {sample_size:,} items, whose label-noise "
        f"estimate appears here (and on the Data page) {first}, then on every item. You can leave this page meanwhile."
    )


def judged_by_run(run_id: int, n_judged: int) -> str:
    return f"Judging the {n_judged:,} test items run #{run_id} never trained on; other items are not flagged."


def flagging_rule(issues: LabelIssues) -> str:
    """The rule that flagged the suspects, in words and by its code name."""
    return (
        f"Flagging rule: {ISSUE_METHOD_TITLES.get(issues.method, issues.method)} (`{issues.method}`)"
        + (f", probe weight {issues.knn_weight:.2f} against kNN votes" if issues.knn_weight is not None else "")
        + (", probe and words blended" if issues.knn_weight is None and issues.view_weight else "")  # many texts: no kNN
        + (f" (of which the texts' words {issues.view_weight:.2f})" if issues.view_weight else "")
        + (f". {issue_count_words(issues.counts, issues.n_issues)}" if issues.counts else "")
        + (". A second pass refitted the sources with each item weighed by its first-pass label quality" if issues.passes == 2 else "")
        + (
            ". A noise-aware probe (it learns the true class through the estimated noise) then re-ranked the items"
            if issues.noise_aware
            else ""
        )
        + ". Label quality is in [0, 1]: low means the data disagrees with the given label."
    )


_COUNT_NAMES = {
    "confident_learning": "confident learning",
    "injected": "labels injected from the estimated noise",
    "expected_f1": "the best expected F1",
}


def issue_count_words(counts: dict[str, float], flagged: int) -> str:
    """How the posterior rule chose how many items to flag: the median of its estimates, named."""
    said = ", ".join(f"{round(v):,} by {_COUNT_NAMES.get(k, k)}" for k, v in counts.items())
    return f"{flagged:,} flagged, from the median of {len(counts)} estimates ({said})"


# ---------------------------------------------------------------------- the cleaning plan


def plan_line(version_id: int, plan: CleaningPlan, inherited: int) -> str:
    """The plan bar's sentence; ``inherited`` items were reviewed in the versions this one comes from."""
    return f"**Cleaning plan** for v{version_id}: {plan.summary()}, {len(plan.keep):,} reviewed and kept" + (
        f" ({inherited:,} reviewed in the versions v{version_id} comes from)." if inherited else "."
    )


def plan_is_fresh(plan: CleaningPlan, inherited: int) -> bool:
    """Nothing decided beyond what the version inherited: clearing would change nothing."""
    return plan.n_changes + len(plan.keep) == inherited


def open_items(items: np.ndarray | list[int], plan: CleaningPlan) -> list[int]:
    """``items`` (in their order) that the plan has no decision on yet."""
    return [int(i) for i in items if plan.decision(int(i)) is None]


def review_queue(
    issues: LabelIssues,
    labels: np.ndarray,
    plan: CleaningPlan,
    *,
    order: str,
    given: list[int],
    hide_reviewed: bool,
    by_quality: np.ndarray | None = None,
) -> np.ndarray:
    """The label-issue items to review, in order: the flagged ones most suspicious first
    (``FLAGGED_FIRST``) or every item by rising label quality (unjudged, NaN, last); only those
    whose given label is in ``given`` (all when empty); without the reviewed ones if asked.
    ``by_quality`` is ``np.argsort(issues.score, kind="stable")`` when the caller keeps it."""
    if order == FLAGGED_FIRST:
        queue = np.asarray(issues.rank, dtype=np.int64)
    else:
        queue = by_quality if by_quality is not None else np.argsort(issues.score, kind="stable")
    if given:
        queue = queue[np.isin(labels[queue], given)]
    if hide_reviewed:
        queue = queue[~plan.decided_mask(len(labels))[queue]]
    return np.asarray(queue, dtype=np.int64)


def queue_position(queue: np.ndarray, item: int | None, fallback: int) -> int:
    """Where the review cursor is in ``queue``: at ``item`` when it is still there, else at
    ``fallback`` (the position it had: the next item moved up to it), within the queue."""
    if item is not None:
        hit = np.flatnonzero(queue == item)
        if len(hit):
            return int(hit[0])
    return int(min(max(fallback, 0), max(len(queue) - 1, 0)))


# ---------------------------------------------------------------------- bulk decisions by filter

SUSPECT = "suspected label error"
DUPLICATE = "duplicate copy"
OUTLIER = "outlier"
FINDINGS = (SUSPECT, DUPLICATE, OUTLIER)
PLURALS = {SUSPECT: "suspected label errors", DUPLICATE: "duplicate copies", OUTLIER: "outliers"}
BULK_ACTIONS = ("drop", "relabel", "keep")


@dataclass(frozen=True)
class Findings:
    """What the diagnosis found, per item of one version (n items), worked out once: the given
    labels, label quality (NaN where unjudged), suggested classes (-1 where none) and one mask per
    kind of finding (``FINDINGS``); duplicate copies are every member of a cluster but its first."""

    labels: np.ndarray  # (n,) int, -1 for the unlabelled pool
    score: np.ndarray  # (n,) float
    suggested: np.ndarray  # (n,) int
    kinds: Mapping[str, np.ndarray]  # finding → (n,) bool
    by_quality: np.ndarray  # (n,) items by rising label quality, NaN last

    @property
    def n(self) -> int:
        return len(self.labels)


def findings(d: Diagnosis, issues: LabelIssues, labels: np.ndarray) -> Findings:
    """The ``Findings`` of diagnosis ``d`` judged by ``issues`` (the probe's or a run's)."""
    n = len(labels)
    copies = np.zeros(n, dtype=bool)
    for cluster in d.duplicates:
        copies[np.asarray(cluster.indices[1:], dtype=np.int64)] = True
    outlying = np.zeros(n, dtype=bool)
    outlying[np.asarray(d.outliers, dtype=np.int64)] = True
    score = np.asarray(issues.score, dtype=np.float64)
    return Findings(
        labels=np.asarray(labels, dtype=np.int64),
        score=score,
        suggested=np.asarray(issues.suggested, dtype=np.int64),
        kinds={SUSPECT: np.asarray(issues.is_issue, dtype=bool), DUPLICATE: copies, OUTLIER: outlying},
        by_quality=np.argsort(score, kind="stable"),
    )


@dataclass(frozen=True)
class BulkFilter:
    """Which items a bulk decision touches: any of the ``kinds`` of finding, whose given label is
    in ``classes`` (every class when empty) and whose label quality is in ``quality`` (both ends
    included; an unjudged item, NaN, only matches the full range 0–1), only the open ones (no
    decision yet) unless ``open_only`` is off."""

    kinds: tuple[str, ...] = (SUSPECT,)
    classes: tuple[int, ...] = ()
    quality: tuple[float, float] = (0.0, 1.0)
    open_only: bool = True

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in FINDINGS]
        if unknown:
            raise ValueError(f"unknown findings {unknown}; pick from {', '.join(FINDINGS)}.")
        lo, hi = self.quality
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"label quality range {self.quality} must satisfy 0 ≤ low ≤ high ≤ 1.")


def bulk_items(f: Findings, flt: BulkFilter, plan: CleaningPlan) -> np.ndarray:
    """The items (ascending) that ``flt`` picks out of ``f``."""
    mask = np.zeros(f.n, dtype=bool)
    for kind in flt.kinds:
        mask |= f.kinds[kind]
    if flt.classes:
        mask &= np.isin(f.labels, list(flt.classes))
    lo, hi = flt.quality
    if (lo, hi) != (0.0, 1.0):
        with np.errstate(invalid="ignore"):
            mask &= (f.score >= lo) & (f.score <= hi)
    if flt.open_only:
        mask &= ~plan.decided_mask(f.n)
    return np.flatnonzero(mask)


def bulk_targets(f: Findings, items: np.ndarray, action: str) -> np.ndarray:
    """The ``items`` that ``action`` changes: all of them for drop and keep; for relabel those
    with a suggested class other than their given label (relabelling to the same class is no
    change)."""
    if action not in BULK_ACTIONS:
        raise ValueError(f"unknown action {action!r}; use {', '.join(BULK_ACTIONS)}.")
    items = np.asarray(items, dtype=np.int64)
    if action != "relabel":
        return items
    to = f.suggested[items]
    return items[(to >= 0) & (to != f.labels[items])]


def bulk_words(f: Findings, items: np.ndarray, action: str, plan: CleaningPlan) -> str:
    """What a bulk ``action`` on ``items`` will do, said before it is applied: how many items,
    of which findings, how many are skipped and how many earlier decisions it replaces."""
    targets = bulk_targets(f, items, action)
    verb = {"drop": "Drop", "relabel": "Relabel", "keep": "Keep"}[action]
    what = "to the class the detector suggests for each" if action == "relabel" else "as they are" if action == "keep" else ""
    counts = {k: int(f.kinds[k][targets].sum()) for k in FINDINGS}
    parts = [f"{c:,} {k if c == 1 else PLURALS[k]}" for k, c in counts.items() if c]
    words = f"**{verb} {len(targets):,} items**" + (f" {what}" if what else "") + (f" ({', '.join(parts)})" if parts else "") + "."
    skipped = len(items) - len(targets)
    if skipped:
        words += f" {skipped:,} of the {len(items):,} matched are left alone: their suggested class is their label."
    replaced = int(plan.decided_mask(f.n)[targets].sum())
    if replaced:
        words += f" {replaced:,} of them had a decision already; this one replaces it."
    return words


def apply_bulk(plan: CleaningPlan, f: Findings, items: np.ndarray, action: str) -> int:
    """Decide ``action`` for every item ``bulk_targets`` keeps (relabel: to its suggested class);
    return how many."""
    targets = bulk_targets(f, items, action)
    for i in targets.tolist():
        plan.decide(i, action, int(f.suggested[i]) if action == "relabel" else None)
    return len(targets)


# ---------------------------------------------------------------------- after a cleaning


@dataclass(frozen=True)
class SuspectChange:
    """How the suspected label errors of a cleaned version compare with its parent's; items are
    matched by identity (``Dataset.item_ids``). ``before`` = dropped + relabelled + kept + cleared
    + still; ``after`` = still + new."""

    before: int  # suspects in the parent
    after: int  # suspects in the cleaned version
    dropped: int  # parent suspects the plan dropped
    relabelled: int  # parent suspects the plan relabelled, no longer suspected
    kept: int  # parent suspects reviewed and kept, no longer flagged
    cleared: int  # parent suspects nobody decided on, no longer flagged by the new diagnosis
    still: int  # suspected in both (relabelled ones still in doubt included)
    new: int  # suspected now, not in the parent
    noise_before: float
    noise_after: float


def suspect_change(
    before: LabelIssues, before_ids: np.ndarray, after: LabelIssues, after_ids: np.ndarray, plan: CleaningPlan
) -> SuspectChange:
    """Compare the parent's label issues (``before``, its items' ``before_ids``) with the cleaned
    version's (``after``, ``after_ids``), given the ``plan`` (parent rows) that made it."""
    before_ids, after_ids = np.asarray(before_ids, dtype=np.int64), np.asarray(after_ids, dtype=np.int64)
    was = set(before_ids[np.asarray(before.is_issue, dtype=bool)].tolist())
    now = set(after_ids[np.asarray(after.is_issue, dtype=bool)].tolist())

    def ids(rows: Sequence[int] | set[int]) -> set[int]:
        r = np.fromiter(rows, dtype=np.int64)
        return set(before_ids[r[(r >= 0) & (r < len(before_ids))]].tolist())

    dropped, relabelled, kept = was & ids(plan.drop), (was & ids(set(plan.relabel))) - now, (was & ids(plan.keep)) - now
    gone = was - now - dropped - relabelled - kept
    return SuspectChange(
        before=len(was),
        after=len(now),
        dropped=len(dropped),
        relabelled=len(relabelled),
        kept=len(kept),
        cleared=len(gone),
        still=len(was & now),
        new=len(now - was),
        noise_before=noise_rate(before),
        noise_after=noise_rate(after),
    )


def suspect_change_words(c: SuspectChange, parent_id: int) -> str:
    """Why the suspect count differs from the parent's, e.g. "**12 fewer suspects** than v3
    (40 → 28): 3 dropped by the cleaning, 9 no longer flagged …"."""
    delta = c.after - c.before
    head = (
        f"**{abs(delta):,} fewer suspects** than v{parent_id}"
        if delta < 0
        else f"**{delta:,} more suspects** than v{parent_id}"
        if delta > 0
        else f"**As many suspects** as v{parent_id}"
    )
    parts = []
    if c.dropped:
        parts.append(f"{c.dropped:,} dropped by the cleaning")
    if c.relabelled:
        parts.append(f"{c.relabelled:,} relabelled and no longer suspected")
    if c.cleared or c.kept:
        gone = c.cleared + c.kept
        parts.append(
            f"{gone:,} no longer flagged by this version's own diagnosis" + (f" ({c.kept:,} of them reviewed and kept)" if c.kept else "")
        )
    if c.new:
        parts.append(f"{c.new:,} newly flagged")
    words = f"{head} ({c.before:,} → {c.after:,})" + (": " + ", ".join(parts) if parts else "") + "."
    if c.cleared or c.kept or c.new:
        words += (
            " The detector is fitted again on the cleaned data, and it flags about as many items per class as it "
            f"estimates are wrong: estimated label noise {c.noise_before:.1%} → {c.noise_after:.1%}."
        )
    return words


# ---------------------------------------------------------------------- captions under items


def suspect_caption(ds: Dataset, issues: LabelIssues, i: int) -> str:
    suggested = ds.class_names[int(issues.suggested[i])]
    return f"{item_ref(ds, i)} · given **{ds.label_name(i)}** → suggested **{suggested}** · quality {issues.score[i]:.2f}"


def outlier_caption(ds: Dataset, issues: LabelIssues, outlier_score: np.ndarray, i: int) -> str:
    also = f" · also a suspected label error → **{ds.class_names[int(issues.suggested[i])]}**" if issues.is_issue[i] else ""
    return f"{item_ref(ds, i)} · {ds.label_name(i)} · distance {outlier_score[i]:.3f}" + also


def item_caption(ds: Dataset, i: int) -> str:
    return f"{item_ref(ds, i)} · {ds.label_name(i)}"


# ---------------------------------------------------------------------- duplicates


def duplicates_line(table: pd.DataFrame) -> str:
    """Clusters, the items they hold, leaks and conflicts of ``pipeline.duplicate_table``'s table."""
    return (
        f"**{len(table):,}** clusters holding **{int(table['size'].sum()):,}** items; **{int(table['leak'].sum()):,}** span splits "
        "(a test item also seen in training inflates test scores) and "
        f"**{int(table['conflict'].sum()):,}** carry conflicting labels."
    )


def extra_copies(table: pd.DataFrame, plan: CleaningPlan) -> list[int]:
    """Every item of a cluster but its first, that the plan has no decision on yet."""
    return open_items([j for items in table["items"] for j in items[1:]], plan)


def cluster_label(table: pd.DataFrame, cluster: int) -> str:
    row = table.set_index("cluster").loc[cluster]
    return f"cluster {cluster}: {row['size']} items, {row['splits']}"


def cluster_items(table: pd.DataFrame, cluster: int, n: int = 12) -> np.ndarray:
    """The first ``n`` items of ``cluster``."""
    return np.asarray(table.set_index("cluster").loc[cluster, "items"][:n], dtype=np.int64)


# ---------------------------------------------------------------------- outliers and coverage


def outlier_cut(scores: np.ndarray, quantile: float) -> float | None:
    """The distance above which items are outliers (None without items)."""
    return float(np.quantile(scores, quantile)) if len(scores) else None


def outliers_line(n_outliers: int, quantile: float) -> str:
    return f"{n_outliers:,} items above the {quantile:.1%} quantile, most unusual first: off-domain, corrupted or rare."


def coverage_words(gaps: pd.DataFrame, min_count: int) -> tuple[bool, str]:
    """(whether there are gaps, what to say): the classes missing from a split or never seen in
    training (the first 10 named), else that every class is everywhere."""
    if len(gaps):
        return True, (
            f"{len(gaps):,} class(es) are missing from a split or never seen in training — the model will either never "
            "learn them or be scored on nothing: " + ", ".join(str(c) for c in gaps["name"].head(10))
        )
    return False, f"Every class has items in every split (at least {min_count} flagged below otherwise)."


def coverage_table(coverage: pd.DataFrame) -> pd.DataFrame:
    """The coverage table as shown: the splits a class is missing from as one string."""
    table = coverage.copy()
    if "missing_in" in table:
        table["missing_in"] = table["missing_in"].map(lambda v: ", ".join(v) if isinstance(v, (list, tuple)) else str(v))
    return table


def stage_times(seconds: Mapping[str, float], backbone: str, resolved: str) -> str:
    """Wall time per stage and the backbone used (``resolved``: what ``backbone`` meant)."""
    return (
        "Stage times: "
        + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in seconds.items())
        + f" · backbone {resolved}"
        + (" (chosen automatically)" if backbone in ("", "auto") else "")
    )
