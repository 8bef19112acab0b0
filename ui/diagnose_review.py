"""Reviewing items on the Diagnose page: the cleaning plan bar, keep / relabel / drop under each item,
the review queue with keyboard shortcuts, bulk decisions by filter, and the tabs of suspected label
errors, duplicate clusters and outliers.

A click must answer at once on tens of thousands of items, so each review panel is a fragment
(``st.fragment``): a decision reruns the panel it was made in, never the page (charts, map,
settings), and exactly once — callbacks only record, they never ask for another rerun. The panel
draws the plan bar too, into the slot the page keeps for it above the tabs, so the bar's counts
follow every click. What a panel needs per item is computed once per page run
(``core.diagnose.review.Findings``, kept on the ``Review``); the decisions live in the session's
``CleaningPlan`` and reach the store in one write when the plan is saved as a new version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
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
from ui.diagnose_run import NOTICE, plan_key
from ui.items import gallery, show_item
from ui.state import default, default_choices, default_within, follow_default

PER_PAGE = 12  # items per page of a review gallery
PER_ROW = 3
QUEUE = "review_queue"  # fragment keys
DUPLICATES = "duplicate_review"
OUTLIERS = "outlier_review"
SHORTCUTS = {"keep": "K", "relabel": "L", "drop": "D", "next": "J", "previous": "P"}  # C and R are Streamlit's own
BULK_PENDING = "bulk_pending"  # session key: the bulk decision waiting for its confirmation
GALLERY_UP_TO = 5_000  # items in a version up to which the queue's gallery is shown by default
GALLERY_HELP = (
    f"The queue's page as a gallery, {PER_PAGE} items with keep / relabel / drop under each. Every click then "
    f"redraws the gallery too; off by default above {GALLERY_UP_TO:,} items, where one item at a time with "
    "the keyboard is faster."
)
BULK_OPEN = "bulk_panel_open"  # the bulk panel's expander: open or not (drawn only when open)


@dataclass
class Review:
    """One version under review: its items, the label issues judged, what was found per item, and
    the plan in the session."""

    store: Store
    vid: int
    ds: Dataset
    issues: LabelIssues
    found: review.Findings
    inherited: int  # items reviewed in the versions this one comes from
    bar: Any = None  # the plan bar's slot above the tabs (a container), set by ``plan_bar``
    bar_drawn: bool = False  # a review panel drew the bar in this page run

    @classmethod
    def open(cls, store: Store, info: VersionInfo, ds: Dataset, issues: LabelIssues, d: Diagnosis) -> Review:
        """The session's plan for ``info`` (items reviewed in the versions it comes from stay reviewed)."""
        start = starting_plan(store, info.id, ds)
        st.session_state.setdefault(plan_key(info.id), start.copy())
        inherited = len(start.keep) if info.parent_id is not None else 0
        return cls(store, info.id, ds, issues, review.findings(d, issues, ds.labels), inherited)

    @property
    def plan(self) -> CleaningPlan:
        """The plan as it is now (a fragment rerun reuses this object; the plan may have been replaced)."""
        return st.session_state.setdefault(plan_key(self.vid), CleaningPlan())

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
                on_click=_decide,
                args=(self.vid, item, action, new_label),
                type="primary" if current == action else "secondary",
                width="stretch",
            )

    def gallery(self, items: np.ndarray, caption: Callable[[int], str]) -> None:
        gallery(self.ds, items, per_row=PER_ROW, footer=self.actions, caption=caption)


def _decide(vid: int, item: int, action: str, new_label: int | None) -> None:
    """A decision's callback: record it and move the queue's cursor past the item. What reruns is
    what the click came from: its panel (a fragment), which draws the plan bar again."""
    st.session_state[plan_key(vid)].decide(item, action, new_label)
    cursor = st.session_state.get(_cursor_key(vid))
    if cursor is not None and cursor[0] == item:
        st.session_state[_cursor_key(vid)] = (None, cursor[1] + (0 if st.session_state.get("dg_sus_hide", True) else 1))


def _cursor_key(vid: int) -> str:
    return f"review_cursor_{vid}"


def _move(vid: int, queue: list[int], pos: int, step: int) -> None:
    new = min(max(pos + step, 0), max(len(queue) - 1, 0))
    st.session_state[_cursor_key(vid)] = (queue[new] if queue else None, new)


def plan_bar(r: Review) -> None:
    """Keep the plan bar's slot here; a review panel draws it (``draw_plan_bar``), or the page
    after its tabs when the open tab has none (``plan_bar_if_undrawn``)."""
    r.bar = st.container()


def plan_bar_if_undrawn(r: Review) -> None:
    if not r.bar_drawn:
        draw_plan_bar(r)


def draw_plan_bar(r: Review) -> None:
    """The plan so far, saved as a new version or cleared, in its slot above the tabs (a panel
    draws it on each of its reruns, so it follows every decision)."""
    r.bar_drawn = True
    with r.bar if r.bar is not None else st.container():
        _plan_bar_body(r)


def _plan_bar_body(r: Review) -> None:
    plan = r.plan
    with st.container(border=True):
        p1, p2, p3 = st.columns([3, 1, 1])
        p1.markdown(review.plan_line(r.vid, plan, r.inherited))
        if p2.button("Save as new version", type="primary", disabled=plan.n_changes == 0, key="save_plan", width="stretch"):
            with common.saving():
                new_vid = save_cleaned(r.store, r.vid, plan, dataset=r.ds)
            st.session_state.pop(plan_key(r.vid), None)
            common.set_current_version(new_vid)
            st.session_state[NOTICE] = f"Saved v{new_vid} ({plan.summary()}). Its parent v{r.vid} is unchanged; Undo goes back to it."
            st.rerun()
        if p3.button("Clear plan", disabled=review.plan_is_fresh(plan, r.inherited), key="clear_plan", width="stretch"):
            st.session_state[plan_key(r.vid)] = starting_plan(r.store, r.vid, r.ds)
            st.rerun()


def pager(n: int, key: str) -> slice:
    pages = n_pages(n, PER_PAGE)
    default_within(key, 1, 1, pages)
    page = st.number_input(f"Page (of {pages:,})", 1, pages, key=key, persist_state="session")
    return page_slice(int(page), PER_PAGE)


def label_issues_tab(r: Review) -> None:
    """The noise matrix and rates (drawn once per page run), then the review queue (a fragment)."""
    ds, iss = r.ds, r.issues
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.noise_matrix(iss.noise_matrix, ds.class_names), width="stretch")
    c2.plotly_chart(charts.noise_rates(iss.noise_rate_per_class, ds.class_names), width="stretch")
    st.caption(review.flagging_rule(iss))
    review_queue(r)


@st.fragment(key=QUEUE)
def review_queue(r: Review) -> None:
    """The items to review, filtered: the current one with keyboard shortcuts, bulk decisions by
    filter, and the queue's page with keep / relabel / drop under each item."""
    draw_plan_bar(r)
    ds, iss, plan = r.ds, r.issues, r.plan
    default_choices("dg_sus_classes", range(ds.n_classes))
    default("dg_sus_order", review.REVIEW_ORDERS[0], allowed=review.REVIEW_ORDERS)
    default("dg_sus_hide", True)
    f1, f2, f3 = st.columns([2, 2, 1])
    given = f1.multiselect(
        "Given label", range(ds.n_classes), format_func=lambda c: str(ds.class_names[c]), key="dg_sus_classes", persist_state="session"
    )
    order = f2.radio("Show", review.REVIEW_ORDERS, horizontal=True, key="dg_sus_order", persist_state="session")
    hide_reviewed = f3.toggle("Hide reviewed", key="dg_sus_hide", persist_state="session")
    queue = review.review_queue(
        iss, ds.labels, plan, order=str(order), given=list(given), hide_reviewed=hide_reviewed, by_quality=r.found.by_quality
    )
    current_item(r, queue)
    # drawn only while open: closed, a click reruns none of its widgets or counts
    bulk = st.expander("Bulk decisions by filter", key=BULK_OPEN, on_change="rerun")
    with bulk:
        if bulk.open:
            bulk_panel(r)
    g1, g2 = st.columns([3, 1])
    g1.caption(f"{len(queue):,} items to review")
    # on a large version the keyboard queue above is the fast path: a click then redraws one item,
    # not a gallery of them (about 150 of a click's 200 elements)
    follow_default("dg_sus_gallery", len(ds) <= GALLERY_UP_TO)
    if g2.toggle("Gallery", key="dg_sus_gallery", persist_state="session", help=GALLERY_HELP):
        r.gallery(queue[pager(len(queue), "dg_sus_page")], lambda i: review.suspect_caption(ds, iss, i))


def current_item(r: Review, queue: np.ndarray) -> None:
    """The queue's current item, large, with keep / relabel-to-the-suggestion / drop and previous /
    next, each on a key of its own (``SHORTCUTS``)."""
    if len(queue) == 0:
        st.success("Nothing left to review with these filters.")
        return
    item, fallback = st.session_state.get(_cursor_key(r.vid), (None, 0))
    pos = review.queue_position(queue, item, fallback)
    i = int(queue[pos])
    st.session_state[_cursor_key(r.vid)] = (i, pos)
    suggested = int(r.found.suggested[i])
    with st.container(border=True):
        left, right = st.columns([1, 2])
        with left:
            show_item(r.ds, i, width=180)
        with right:
            st.markdown(f"**{pos + 1:,} of {len(queue):,}** · {review.suspect_caption(r.ds, r.issues, i)}")
            decided = r.plan.decision(i)
            st.caption(f"Decision: **{decided}**" if decided else "No decision yet.")
            relabel_to = r.ds.class_names[suggested] if suggested >= 0 else None
            buttons = (
                ("keep", "Keep", None, "Keep the item and its label"),
                ("relabel", f"Relabel → {relabel_to}", suggested, "Relabel to the class the detector suggests"),
                ("drop", "Drop", None, "Drop the item from the cleaned version"),
            )
            cols = st.columns(5)
            for col, (action, title, new_label, words) in zip(cols, buttons):
                col.button(
                    title,
                    key=f"q_{action}",
                    on_click=_decide,
                    args=(r.vid, i, action, new_label),
                    type="primary" if decided == action else "secondary",
                    disabled=action == "relabel" and (relabel_to is None or suggested == int(r.ds.labels[i])),
                    shortcut=SHORTCUTS[action],
                    help=f"{words} (shortcut: {SHORTCUTS[action]}).",
                    width="stretch",
                )
            items = queue.tolist()
            cols[3].button(
                "Previous",
                key="q_previous",
                on_click=_move,
                args=(r.vid, items, pos, -1),
                disabled=pos == 0,
                shortcut=SHORTCUTS["previous"],
                help=f"The previous item of the queue (shortcut: {SHORTCUTS['previous']}).",
                width="stretch",
            )
            cols[4].button(
                "Next",
                key="q_next",
                on_click=_move,
                args=(r.vid, items, pos, 1),
                disabled=pos >= len(queue) - 1,
                shortcut=SHORTCUTS["next"],
                help=f"The next item of the queue, leaving this one as it is (shortcut: {SHORTCUTS['next']}).",
                width="stretch",
            )


def bulk_panel(r: Review) -> None:
    """Pick items by finding, class and label quality; see how many an action will touch; apply it
    after a confirmation."""
    ds = r.ds
    default_choices("dg_bulk_kinds", review.FINDINGS, [review.SUSPECT])
    default_choices("dg_bulk_classes", range(ds.n_classes))
    default("dg_bulk_quality", (0.0, 1.0))
    default("dg_bulk_open", True)
    default("dg_bulk_action", review.BULK_ACTIONS[0], allowed=list(review.BULK_ACTIONS))
    b1, b2 = st.columns(2)
    kinds = b1.multiselect("Found as", review.FINDINGS, key="dg_bulk_kinds", persist_state="session")
    classes = b2.multiselect(
        "Given label", range(ds.n_classes), format_func=lambda c: str(ds.class_names[c]), key="dg_bulk_classes", persist_state="session"
    )
    b3, b4, b5 = st.columns([2, 1, 1])
    low, high = cast(
        "tuple[float, float]", b3.slider("Label quality", 0.0, 1.0, step=0.01, key="dg_bulk_quality", persist_state="session")
    )  # a range: (0, 1) to start
    open_only = b4.toggle("Only items without a decision", key="dg_bulk_open", persist_state="session")
    action = str(b5.radio("Action", review.BULK_ACTIONS, horizontal=True, key="dg_bulk_action", persist_state="session"))
    flt = review.BulkFilter(
        kinds=tuple(kinds), classes=tuple(int(c) for c in classes), quality=(float(low), float(high)), open_only=open_only
    )
    items = review.bulk_items(r.found, flt, r.plan)
    n = len(review.bulk_targets(r.found, items, action))
    st.markdown(review.bulk_words(r.found, items, action, r.plan))
    pending = st.session_state.get(BULK_PENDING)
    if pending != (r.vid, flt, action):
        st.button(
            f"{action.capitalize()} these {n:,} items…", key="bulk_apply", disabled=n == 0, on_click=_ask, args=((r.vid, flt, action),)
        )
        return
    st.warning(f"Apply this to {n:,} items? The plan changes; nothing is saved until you save it as a new version.")
    c1, c2 = st.columns(2)
    c1.button(f"Confirm: {action} {n:,} items", key="bulk_confirm", type="primary", on_click=_bulk, args=(r, flt, action))
    c2.button("Cancel", key="bulk_cancel", on_click=_ask, args=(None,))


def _ask(pending: tuple | None) -> None:
    st.session_state[BULK_PENDING] = pending


def _bulk(r: Review, flt: review.BulkFilter, action: str) -> None:
    plan = r.plan
    n = review.apply_bulk(plan, r.found, review.bulk_items(r.found, flt, plan), action)
    st.session_state[BULK_PENDING] = None
    st.toast(f"{action.capitalize()}: {n:,} items added to the plan.")


def duplicates_tab(r: Review, d: Diagnosis, cfg: DiagnoseConfig) -> None:
    """Duplicate clusters and leaks: a table, one cluster's items, and dropping the extra copies."""
    table = duplicate_table(d.duplicates, r.ds)
    if len(table) == 0:
        st.success(f"No exact or near-duplicates (cosine ≥ {cfg.duplicate_threshold}).")
        return
    st.markdown(review.duplicates_line(table))
    st.dataframe(table.drop(columns=["items"]).head(500), hide_index=True, width="stretch")
    duplicate_review(r, table)


@st.fragment(key=DUPLICATES)
def duplicate_review(r: Review, table: pd.DataFrame) -> None:
    draw_plan_bar(r)
    extra = review.extra_copies(table, r.plan)
    st.button(
        f"Drop the {len(extra):,} extra copies (keep the first item of each cluster)",
        disabled=not extra,
        key="drop_dups",
        on_click=_drop_all,
        args=(r.vid, extra),
    )
    clusters = table["cluster"].tolist()
    default("dg_dup_pick", clusters[0], allowed=clusters)
    pick = st.selectbox(
        "Look at cluster", clusters, key="dg_dup_pick", persist_state="session", format_func=lambda c: review.cluster_label(table, c)
    )
    cluster = int(table["cluster"].iloc[0] if pick is None else pick)
    r.gallery(review.cluster_items(table, cluster, PER_PAGE), lambda i: review.item_caption(r.ds, i))


def _drop_all(vid: int, items: list[int]) -> None:
    plan = st.session_state[plan_key(vid)]
    for j in items:
        plan.decide(j, "drop")


def outliers_tab(r: Review, d: Diagnosis, cfg: DiagnoseConfig) -> None:
    """The distance histogram with its cut, then the outliers, most unusual first."""
    cut = review.outlier_cut(d.outlier_score, cfg.outlier_quantile)
    figure = charts.score_histogram(
        d.outlier_score, cut=cut, title="Distance to the nearest neighbours", x_title="mean cosine distance to k nearest"
    )
    st.plotly_chart(figure, width="stretch")
    st.caption(review.outliers_line(len(d.outliers), cfg.outlier_quantile))
    outlier_review(r, d)


@st.fragment(key=OUTLIERS)
def outlier_review(r: Review, d: Diagnosis) -> None:
    draw_plan_bar(r)
    window = d.outliers[pager(len(d.outliers), "dg_out_page")]
    r.gallery(window, lambda i: review.outlier_caption(r.ds, r.issues, d.outlier_score, i))
