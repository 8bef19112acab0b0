"""Reviewing items on the Diagnose page: the cleaning plan bar, keep / relabel / drop under each item,
and the tabs of suspected label errors, duplicate clusters and outliers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from core import charts
from core.data.browse import n_pages, page_slice
from core.data.dataset import Dataset
from core.diagnose import review
from core.diagnose.cleaning import CleaningPlan, save_cleaned, starting_plan
from core.diagnose.label_issues import LabelIssues
from core.diagnose.pipeline import DiagnoseConfig, Diagnosis, duplicate_table
from core.store import Store, VersionInfo
from ui import common
from ui.diagnose_run import NOTICE
from ui.items import gallery

PER_PAGE = 12  # items per page of a review gallery
PER_ROW = 3


@dataclass
class Review:
    """One version under review: its items, the label issues judged, and the plan in the session."""

    store: Store
    vid: int
    ds: Dataset
    issues: LabelIssues
    plan: CleaningPlan
    inherited: int  # items reviewed in the versions this one comes from

    @classmethod
    def open(cls, store: Store, info: VersionInfo, ds: Dataset, issues: LabelIssues) -> Review:
        """The session's plan for ``info`` (items reviewed in the versions it comes from stay reviewed)."""
        key = plan_key(info.id)
        if key not in st.session_state:
            st.session_state[key] = starting_plan(store, info.id, ds)
        inherited = len(starting_plan(store, info.id, ds).keep) if info.parent_id is not None else 0
        return cls(store, info.id, ds, issues, st.session_state[key], inherited)

    def decide(self, item: int, action: str, new_label: int | None = None) -> None:
        self.plan.decide(item, action, new_label)

    def actions(self, item: int) -> None:
        """keep / relabel / drop under one item. The relabel target is the detector's suggestion for
        a suspected label error, and the given label otherwise (an outlier or a duplicate has no
        reason to change class: pick one)."""
        current = self.plan.decision(item)
        flagged = bool(self.issues.is_issue[item])
        why = (
            "Suggested by the label-error detector."
            if flagged
            else "Not a suspected label error: the given label. Pick another to relabel."
        )
        target = st.selectbox(
            "Label",
            range(self.ds.n_classes),
            index=int(self.issues.suggested[item] if flagged else max(int(self.ds.labels[item]), 0)),
            help=why,
            format_func=lambda c: str(self.ds.class_names[c]),
            key=f"target_{self.vid}_{item}",
            label_visibility="collapsed",
        )
        for col, (action, title, new_label) in zip(
            st.columns(3), (("keep", "Keep", None), ("relabel", "Relabel", int(target)), ("drop", "Drop", None))
        ):
            col.button(
                title,
                key=f"{action}_{self.vid}_{item}",
                on_click=self.decide,
                args=(item, action) if new_label is None else (item, action, new_label),
                type="primary" if current == action else "secondary",
                width="stretch",
            )

    def gallery(self, items: np.ndarray, caption: Callable[[int], str]) -> None:
        gallery(self.ds, items, per_row=PER_ROW, footer=self.actions, caption=caption)


def plan_key(vid: int) -> str:
    return f"plan_{vid}"


def plan_bar(r: Review) -> None:
    """The plan so far, saved as a new version or cleared (always visible)."""
    with st.container(border=True):
        p1, p2, p3 = st.columns([3, 1, 1])
        p1.markdown(review.plan_line(r.vid, r.plan, r.inherited))
        if p2.button("Save as new version", type="primary", disabled=r.plan.n_changes == 0, key="save_plan", width="stretch"):
            with common.saving():
                new_vid = save_cleaned(r.store, r.vid, r.plan, dataset=r.ds)
            st.session_state.pop(plan_key(r.vid), None)
            common.set_current_version(new_vid)
            st.session_state[NOTICE] = f"Saved v{new_vid} ({r.plan.summary()}). Its parent v{r.vid} is unchanged; Undo goes back to it."
            st.rerun()
        if p3.button("Clear plan", disabled=review.plan_is_fresh(r.plan, r.inherited), key="clear_plan", width="stretch"):
            st.session_state[plan_key(r.vid)] = starting_plan(r.store, r.vid, r.ds)
            st.rerun()


def pager(n: int, key: str) -> slice:
    pages = n_pages(n, PER_PAGE)
    page = st.number_input(f"Page (of {pages:,})", 1, pages, 1, key=key)
    return page_slice(int(page), PER_PAGE)


def label_issues_tab(r: Review) -> None:
    """The noise matrix and rates, then the items to review, filtered and paged, with bulk actions."""
    ds, iss = r.ds, r.issues
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.noise_matrix(iss.noise_matrix, ds.class_names), width="stretch")
    c2.plotly_chart(charts.noise_rates(iss.noise_rate_per_class, ds.class_names), width="stretch")
    st.caption(review.flagging_rule(iss))
    f1, f2, f3 = st.columns([2, 2, 1])
    given = f1.multiselect("Given label", range(ds.n_classes), format_func=lambda c: str(ds.class_names[c]), key="sus_classes")
    order = f2.radio("Show", review.REVIEW_ORDERS, horizontal=True, key="sus_order")
    hide_reviewed = f3.toggle("Hide reviewed", value=True, key="sus_hide")
    queue = review.review_queue(iss, ds.labels, r.plan, order=str(order), given=list(given), hide_reviewed=hide_reviewed)
    open_suspects = review.open_items(iss.rank, r.plan)
    b1, b2, _ = st.columns([1, 1, 2])
    relabel_help = "Each one gets the class the detector suggests for it."
    if b1.button(f"Relabel all {len(open_suspects):,} open suspects", disabled=not open_suspects, key="bulk_relabel", help=relabel_help):
        for i in open_suspects:
            r.plan.decide(i, "relabel", int(iss.suggested[i]))
        st.rerun()
    if b2.button(f"Drop all {len(open_suspects):,} open suspects", disabled=not open_suspects, key="bulk_drop"):
        for i in open_suspects:
            r.plan.decide(i, "drop")
        st.rerun()
    st.caption(f"{len(queue):,} items to review")
    r.gallery(queue[pager(len(queue), "sus_page")], lambda i: review.suspect_caption(ds, iss, i))


def duplicates_tab(r: Review, d: Diagnosis, cfg: DiagnoseConfig) -> None:
    """Duplicate clusters and leaks: a table, one cluster's items, and dropping the extra copies."""
    table = duplicate_table(d.duplicates, r.ds)
    if len(table) == 0:
        st.success(f"No exact or near-duplicates (cosine ≥ {cfg.duplicate_threshold}).")
        return
    st.markdown(review.duplicates_line(table))
    extra = review.extra_copies(table, r.plan)
    if st.button(f"Drop the {len(extra):,} extra copies (keep the first item of each cluster)", disabled=not extra, key="drop_dups"):
        for j in extra:
            r.plan.decide(j, "drop")
        st.rerun()
    st.dataframe(table.drop(columns=["items"]).head(500), hide_index=True, width="stretch")
    pick = st.selectbox("Look at cluster", table["cluster"].tolist(), key="dup_pick", format_func=lambda c: review.cluster_label(table, c))
    cluster = int(table["cluster"].iloc[0] if pick is None else pick)
    r.gallery(review.cluster_items(table, cluster, PER_PAGE), lambda i: review.item_caption(r.ds, i))


def outliers_tab(r: Review, d: Diagnosis, cfg: DiagnoseConfig) -> None:
    """The distance histogram with its cut, then the outliers, most unusual first."""
    cut = review.outlier_cut(d.outlier_score, cfg.outlier_quantile)
    figure = charts.score_histogram(
        d.outlier_score, cut=cut, title="Distance to the nearest neighbours", x_title="mean cosine distance to k nearest"
    )
    st.plotly_chart(figure, width="stretch")
    st.caption(review.outliers_line(len(d.outliers), cfg.outlier_quantile))
    window = d.outliers[pager(len(d.outliers), "out_page")]
    r.gallery(window, lambda i: review.outlier_caption(r.ds, r.issues, d.outlier_score, i))
