"""The Diagnose page for a token (NER) dataset: the token diagnosis (in the background, with its
progress), the summary, and the review queue — each suspect sentence with its given and suggested
tags, the suspect tokens marked; keep, relabel (the suggestion, or a span edited by hand), drop;
bulk decisions by suspected kind and score; the cleaning plan saved as a new version, with undo.

As on the classification review, the queue is a fragment: a decision reruns the queue, never the
page; callbacks only record. The decisions live in the session's ``TokenCleaningPlan`` and reach
the store in one write when the plan is saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import streamlit as st

from core import paths
from core.data.dataset import SPLITS, Dataset
from core.diagnose import token_review as tr
from core.diagnose.review import queue_position
from core.diagnose.tokens import TokenDiagnoseConfig, TokenDiagnosis, not_diagnosed
from core.errors import DataError
from core.store import Store, VersionInfo
from core.tokens.marks import changed_positions, marked_segments, retag_span, tags_words
from core.tokens.spans import OUTSIDE, entity_types
from ui import common
from ui import diagnosis as diagnosis_ui
from ui.diagnose_run import NOTICE, plan_key
from ui.simulate_tokens import marked_html
from ui.state import default, default_choices

QUEUE = "token_review_queue"  # fragment key
SHORTCUTS = {"keep": "K", "relabel": "L", "drop": "D", "next": "J", "previous": "P"}
BULK_PENDING = "token_bulk_pending"  # session key: the bulk decision waiting for its confirmation
BULK_OPEN = "token_bulk_panel_open"  # the bulk expander: drawn only when open
NO_ENTITY = "O — no entity"


def undo_banner(store: Store, vid: int, info: VersionInfo) -> None:
    """On a cleaned token version: where it comes from, and a button that goes back to its parent
    with the plan's reviews as they were."""
    if info.kind != "clean" or info.parent_id is None or not tr.is_token_cleaning(info.params):
        return
    c1, c2 = st.columns([4, 1])
    c1.info(f"You are looking at a cleaned version ({info.note}) of v{info.parent_id}.")
    if c2.button("Undo this cleaning", key="undo_clean", width="stretch"):
        with common.saving():
            parent, plan = tr.undo_token_cleaning(store, vid)
        st.session_state[plan_key(parent)] = plan
        common.set_current_version(parent)
        st.session_state[NOTICE] = (
            f"Undone: v{vid} is archived; back to v{parent}, with its plan ({plan.summary()}, {len(plan.keep):,} kept) to change and save again."
        )
        st.rerun()


def settings() -> TokenDiagnoseConfig:
    """The settings expander (``dg_tok_`` keys, kept across pages)."""
    default("dg_tok_folds", TokenDiagnoseConfig().n_folds)
    with st.expander("Settings"):
        st.number_input(
            "Folds",
            2,
            10,
            key="dg_tok_folds",
            persist_state="session",
            help="Of the out-of-fold probe that tags each sentence without having seen any of its words.",
        )
    return diagnosis_ui.token_config()


def diagnosis(store: Store, vid: int, info: VersionInfo, ds: Dataset, cfg: TokenDiagnoseConfig) -> TokenDiagnosis | None:
    """The version's token diagnosis; until it is on disk (None), its progress while it runs in the
    background, else a button that starts it."""
    found = diagnosis_ui.token_result(vid, cfg)
    if found is not None:
        return found
    running = diagnosis_ui.token_job(vid, cfg)
    if running is not None and running.is_alive():
        diagnosis_ui.token_progress_line(vid, cfg)
        st.caption("The review queue opens here when every sentence is diagnosed.")
    elif store.read_only is not None:
        st.warning(
            f"**{info.label}** has not been diagnosed with these settings, and this home is read-only ({store.read_only}): "
            "a diagnosis could not be kept. Make GAPSCOPE_HOME writable to diagnose."
        )
    else:
        if running is not None and running.error:
            st.error(f"The diagnosis failed: {running.error}")
        st.info(not_diagnosed(info.label, ds, cfg))
        if st.button("Run diagnosis", type="primary", key="run_diagnosis"):
            diagnosis_ui.start_tokens(vid, cfg)
            st.rerun()
    return None


@st.cache_resource(show_spinner=False, max_entries=8)
def _findings(home: str, vid: int, cfg: TokenDiagnoseConfig) -> tr.TokenFindings:
    d = diagnosis_ui.token_result(vid, cfg)
    assert d is not None  # asked only once the diagnosis is on disk
    return tr.token_findings(d, common.dataset(vid))


@dataclass
class TokenReview:
    """One token version under review: its sentences, what was found per sentence, the plan."""

    store: Store
    vid: int
    ds: Dataset
    d: TokenDiagnosis
    found: tr.TokenFindings
    types: list[str]
    inherited: int
    bar: Any = None

    @classmethod
    def open(cls, store: Store, info: VersionInfo, ds: Dataset, d: TokenDiagnosis, cfg: TokenDiagnoseConfig) -> TokenReview:
        start = tr.starting_token_plan(store, info.id, ds)
        st.session_state.setdefault(plan_key(info.id), start.copy())
        inherited = len(start.keep) if info.parent_id is not None else 0
        found = _findings(str(paths.home()), info.id, cfg)
        return cls(store, info.id, ds, d, found, entity_types(ds.tags if ds.tags is not None else []), inherited)

    @property
    def plan(self) -> tr.TokenCleaningPlan:
        plan = st.session_state.get(plan_key(self.vid))
        if not isinstance(plan, tr.TokenCleaningPlan):  # none yet, or another kind left by an older page
            plan = st.session_state[plan_key(self.vid)] = tr.TokenCleaningPlan()
        return plan

    def given(self, i: int) -> tuple[str, ...]:
        assert self.ds.tags is not None
        return tuple(self.ds.tags[i])


def summary(r: TokenReview) -> None:
    figures = tr.headline(r.found)
    for col, f in zip(st.columns(len(figures)), figures):
        col.metric(f.label, f.value, help=f.note or None)
    st.caption(tr.headline_words(r.found))


def stage_times(r: TokenReview) -> None:
    st.caption(tr.stage_words(r.d.seconds))


# ---------------------------------------------------------------------- the plan bar


def plan_bar(r: TokenReview) -> None:
    """Keep the plan bar's slot here; the review panel draws it on each of its reruns."""
    r.bar = st.container()


def _plan_bar_body(r: TokenReview) -> None:
    plan = r.plan
    with r.bar if r.bar is not None else st.container(), st.container(border=True):
        p1, p2, p3 = st.columns([3, 1, 1])
        p1.markdown(tr.plan_line(r.vid, plan, r.inherited))
        if p2.button("Save as new version", type="primary", disabled=plan.n_changes == 0, key="save_plan", width="stretch"):
            with common.saving():
                new_vid = tr.save_token_cleaning(r.store, r.vid, plan, dataset=r.ds)
            st.session_state.pop(plan_key(r.vid), None)
            common.set_current_version(new_vid)
            st.session_state[NOTICE] = f"Saved v{new_vid} ({plan.summary()}). Its parent v{r.vid} is unchanged; Undo goes back to it."
            st.rerun()
        if p3.button("Clear plan", disabled=tr.plan_is_fresh(plan, r.inherited), key="clear_plan", width="stretch"):
            st.session_state[plan_key(r.vid)] = tr.starting_token_plan(r.store, r.vid, r.ds)
            st.rerun()


# ---------------------------------------------------------------------- decisions


def _cursor_key(vid: int) -> str:
    return f"token_cursor_{vid}"


def _decide(vid: int, item: int, action: str, tags: tuple[str, ...] | None) -> None:
    """A decision's callback: record it and move the cursor past the sentence."""
    st.session_state[plan_key(vid)].decide(item, action, tags)
    cursor = st.session_state.get(_cursor_key(vid))
    if cursor is not None and cursor[0] == item:
        st.session_state[_cursor_key(vid)] = (None, cursor[1] + (0 if st.session_state.get("dg_tok_hide", True) else 1))


def _edit(vid: int, item: int, given: tuple[str, ...]) -> None:
    """The span edit's callback: the run of tokens chosen gets the type chosen, on the sentence's
    tags as the plan has them; back to its given tags, the sentence is kept."""
    plan: tr.TokenCleaningPlan = st.session_state[plan_key(vid)]
    base = plan.relabel.get(item, given)
    n = len(given)
    chosen = st.session_state.get(f"tok_edit_run_{vid}_{item}", (0, 0)) if n > 1 else (0, 0)
    start, end = (int(chosen[0]), int(chosen[1])) if isinstance(chosen, tuple) else (int(chosen), int(chosen))
    kind = st.session_state.get(f"tok_edit_type_{vid}_{item}", NO_ENTITY)
    try:
        new = tuple(retag_span(base, start, end + 1, None if kind == NO_ENTITY else str(kind)))
    except DataError as err:
        st.toast(str(err))
        return
    if new == tuple(given):
        plan.decide(item, "keep")
    else:
        plan.decide(item, "relabel", new)


def _move(vid: int, queue: list[int], pos: int, step: int) -> None:
    new = min(max(pos + step, 0), max(len(queue) - 1, 0))
    st.session_state[_cursor_key(vid)] = (queue[new] if queue else None, new)


# ---------------------------------------------------------------------- the queue


@st.fragment(key=QUEUE)
def review_panel(r: TokenReview) -> None:
    """The sentences to review, filtered: the current one with its tags, keyboard shortcuts and a
    span edit; bulk decisions; the plan bar above."""
    _plan_bar_body(r)
    kinds = list(tr.SUSPECTED)
    default_choices("dg_tok_kinds", kinds)
    default("dg_tok_order", tr.ORDERS[0], allowed=tr.ORDERS)
    default_choices("dg_tok_splits", list(range(len(SPLITS))))
    default("dg_tok_hide", True)
    f1, f2, f3, f4 = st.columns([2, 2, 2, 1])
    chosen = f1.multiselect(
        "Suspected",
        kinds,
        format_func=lambda k: tr.SUSPECTED[k],
        key="dg_tok_kinds",
        persist_state="session",
        help="Every kind when empty.",
    )
    splits = f2.multiselect(
        "Splits",
        list(range(len(SPLITS))),
        format_func=lambda c: SPLITS[c],
        key="dg_tok_splits",
        persist_state="session",
        help="Every split when empty.",
    )
    order = f3.radio("Show", tr.ORDERS, key="dg_tok_order", persist_state="session")
    hide = f4.toggle("Hide reviewed", key="dg_tok_hide", persist_state="session")
    queue = tr.review_queue(r.found, r.plan, order=str(order), kinds=list(chosen), splits=[int(s) for s in splits], hide_reviewed=hide)
    st.caption(f"{len(queue):,} sentences to review")
    current_sentence(r, queue)
    bulk = st.expander("Bulk decisions by kind and score", key=BULK_OPEN, on_change="rerun")
    with bulk:
        if bulk.open:
            bulk_panel(r)


def _tags_block(r: TokenReview, title: str, tokens: list[str], tags: tuple[str, ...], marked: list[int] | tuple[int, ...]) -> None:
    st.html(f"<p style='line-height:2;margin:0'><b>{title}</b> · {marked_html(marked_segments(tokens, tags, marked), r.types)}</p>")


def current_sentence(r: TokenReview, queue: np.ndarray) -> None:
    """The queue's current sentence: given tags (suspect tokens underlined), the suggestion (changed
    tokens underlined), the plan's tags if edited; keep / relabel / drop, previous / next."""
    if len(queue) == 0:
        st.success("Nothing left to review with these filters.")
        return
    item, fallback = st.session_state.get(_cursor_key(r.vid), (None, 0))
    pos = queue_position(queue, item, fallback)
    i = int(queue[pos])
    st.session_state[_cursor_key(r.vid)] = (i, pos)
    assert r.ds.tags is not None
    tokens, given = list(r.ds.items[i]), r.given(i)
    suggestion = r.found.suggestion(i, r.ds)
    decided = r.plan.decision(i)
    with st.container(border=True):
        st.markdown(f"**{pos + 1:,} of {len(queue):,}** · {tr.sentence_caption(r.ds, r.found, i)}")
        _tags_block(r, "Given", tokens, given, r.found.suspects.get(i, ()))
        if suggestion != given:
            _tags_block(r, "Suggested", tokens, suggestion, changed_positions(given, suggestion))
        else:
            st.caption("The detector suggests no change to this sentence's tags.")
        if decided == "relabel":
            planned = r.plan.relabel[i]
            _tags_block(r, "In the plan", tokens, planned, changed_positions(given, planned))
        st.caption(f"Decision: **{decided}**" if decided else "No decision yet.")
        buttons = (
            ("keep", "Keep", None, "Keep the sentence and its tags"),
            ("relabel", "Relabel → suggestion", suggestion, "Take the tags the detector suggests"),
            ("drop", "Drop", None, "Drop the sentence from the cleaned version"),
        )
        cols = st.columns(5)
        for col, (action, title, tags, words) in zip(cols, buttons):
            col.button(
                title,
                key=f"tq_{action}",
                on_click=_decide,
                args=(r.vid, i, action, tags),
                type="primary" if decided == action and (action != "relabel" or r.plan.relabel.get(i) == suggestion) else "secondary",
                disabled=action == "relabel" and suggestion == given,
                shortcut=SHORTCUTS[action],
                help=f"{words} (shortcut: {SHORTCUTS[action]}).",
                width="stretch",
            )
        items = queue.tolist()
        cols[3].button("Previous", key="tq_previous", on_click=_move, args=(r.vid, items, pos, -1), disabled=pos == 0,
                       shortcut=SHORTCUTS["previous"], width="stretch")  # fmt: skip
        cols[4].button("Next", key="tq_next", on_click=_move, args=(r.vid, items, pos, 1), disabled=pos >= len(queue) - 1,
                       shortcut=SHORTCUTS["next"], width="stretch")  # fmt: skip
        edit_span(r, i, tokens, given)


def edit_span(r: TokenReview, i: int, tokens: list[str], given: tuple[str, ...]) -> None:
    """Relabel by hand: pick a run of tokens and its type (or no entity); applied to the sentence's
    tags as the plan has them, so edits add up."""
    with st.expander("Edit a span by hand"):
        st.caption(f"Now: {tags_words(tokens, r.plan.tags(i, r.ds))}")
        e1, e2, e3 = st.columns([4, 2, 1])
        if len(tokens) > 1:
            start = (r.found.suspects.get(i) or (0,))[0]
            e1.select_slider(
                "Tokens",
                list(range(len(tokens))),
                value=(start, start),
                format_func=lambda j: f"{j}: {tokens[j]}",
                key=f"tok_edit_run_{r.vid}_{i}",
            )
        else:
            e1.caption(f"Token: {tokens[0]}")
        current = r.plan.tags(i, r.ds)
        first = (r.found.suspects.get(i) or (0,))[0]
        kind = current[first][2:] if current[first] != OUTSIDE else ""
        options = [*r.types, NO_ENTITY]
        e2.selectbox("Type", options, index=options.index(kind) if kind in r.types else len(options) - 1, key=f"tok_edit_type_{r.vid}_{i}")
        e3.button("Apply", key=f"tok_edit_apply_{r.vid}_{i}", on_click=_edit, args=(r.vid, i, given), width="stretch")


# ---------------------------------------------------------------------- bulk


def bulk_panel(r: TokenReview) -> None:
    """Pick flagged sentences by suspected kind and score; see how many an action touches; apply it
    after a confirmation."""
    kinds = list(tr.SUSPECTED)
    default_choices("dg_tok_bulk_kinds", kinds)
    default("dg_tok_bulk_score", (0.0, 1.0))
    default("dg_tok_bulk_open", True)
    default("dg_tok_bulk_action", tr.ACTIONS[0], allowed=list(tr.ACTIONS))
    b1, b2 = st.columns(2)
    chosen = b1.multiselect(
        "Suspected",
        kinds,
        format_func=lambda k: tr.SUSPECTED[k],
        key="dg_tok_bulk_kinds",
        persist_state="session",
        help="Every kind when empty.",
    )
    low, high = cast("tuple[float, float]", b2.slider("Score", 0.0, 1.0, step=0.01, key="dg_tok_bulk_score", persist_state="session"))
    b3, b4 = st.columns(2)
    open_only = b3.toggle("Only sentences without a decision", key="dg_tok_bulk_open", persist_state="session")
    action = str(b4.radio("Action", tr.ACTIONS, horizontal=True, key="dg_tok_bulk_action", persist_state="session"))
    flt = tr.TokenBulkFilter(kinds=tuple(chosen), score=(float(low), float(high)), open_only=open_only)
    items = tr.bulk_items(r.found, flt, r.plan)
    n = len(tr.bulk_targets(r.found, items, action, r.ds))
    st.markdown(tr.bulk_words(r.found, items, action, r.plan, r.ds))
    if st.session_state.get(BULK_PENDING) != (r.vid, flt, action):
        st.button(
            f"{action.capitalize()} these {n:,} sentences…",
            key="tok_bulk_apply",
            disabled=n == 0,
            on_click=_ask,
            args=((r.vid, flt, action),),
        )
        return
    st.warning(f"Apply this to {n:,} sentences? The plan changes; nothing is saved until you save it as a new version.")
    c1, c2 = st.columns(2)
    c1.button(f"Confirm: {action} {n:,} sentences", key="tok_bulk_confirm", type="primary", on_click=_bulk, args=(r, flt, action))
    c2.button("Cancel", key="tok_bulk_cancel", on_click=_ask, args=(None,))


def _ask(pending: tuple | None) -> None:
    st.session_state[BULK_PENDING] = pending


def _bulk(r: TokenReview, flt: tr.TokenBulkFilter, action: str) -> None:
    plan = r.plan
    n = tr.apply_bulk(plan, r.found, tr.bulk_items(r.found, flt, plan), action, r.ds)
    st.session_state[BULK_PENDING] = None
    st.toast(f"{action.capitalize()}: {n:,} sentences added to the plan.")
