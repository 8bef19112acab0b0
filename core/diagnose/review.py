"""What the Diagnose page shows of a diagnosis: the headline figures, the queue of items to review,
duplicate clusters, outliers and coverage gaps, and the sentences about them. Pure functions of a
``Diagnosis``, its ``LabelIssues`` and a ``CleaningPlan``; no I/O, no streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.data.dataset import Dataset, item_ref
from core.data.overview import Figure
from core.diagnose.confident import ISSUE_METHOD_TITLES

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


def not_diagnosed(label: str, seconds: float, *, sample_size: int | None = None) -> str:
    """The invitation to diagnose ``label``: here and now (``sample_size`` None), or in the
    background, a stratified sample of ``sample_size`` items first."""
    if sample_size is None:
        return (
            f"**{label}** has not been diagnosed with these settings yet. It takes about "
            f"{seconds:,.0f} s on this machine (embeddings are cached by item, so the next look is instant)."
        )
    return (
        f"**{label}** has not been diagnosed with these settings yet: about {seconds:,.0f} s on this "
        f"machine. It runs in the background — first on a stratified sample of {sample_size:,} items, whose label-noise "
        "estimate appears here (and on the Data page) within seconds, then on every item. You can leave this page meanwhile."
    )


def judged_by_run(run_id: int, n_judged: int) -> str:
    return f"Judging the {n_judged:,} test items run #{run_id} never trained on; other items are not flagged."


def flagging_rule(issues: LabelIssues) -> str:
    """The rule that flagged the suspects, in words and by its code name."""
    return (
        f"Flagging rule: {ISSUE_METHOD_TITLES.get(issues.method, issues.method)} (`{issues.method}`)"
        + (f", probe weight {issues.knn_weight:.2f} against kNN votes" if issues.knn_weight is not None else "")
        + ". Label quality is in [0, 1]: low means the data disagrees with the given label."
    )


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
    issues: LabelIssues, labels: np.ndarray, plan: CleaningPlan, *, order: str, given: list[int], hide_reviewed: bool
) -> np.ndarray:
    """The label-issue items to review, in order: the flagged ones most suspicious first
    (``FLAGGED_FIRST``) or every item by rising label quality (unjudged, NaN, last); only those
    whose given label is in ``given`` (all when empty); without the reviewed ones if asked."""
    queue = issues.rank if order == FLAGGED_FIRST else np.argsort(issues.score, kind="stable")
    if given:
        queue = queue[np.isin(labels[queue], given)]
    if hide_reviewed:
        queue = np.array(open_items(queue, plan), dtype=np.int64)
    return np.asarray(queue, dtype=np.int64)


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
