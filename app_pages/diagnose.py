"""Diagnose: suspected label errors, duplicates, outliers and coverage gaps — and a cleaning plan; for a
token dataset, sentences whose tags look wrong, reviewed span by span."""

from __future__ import annotations

import streamlit as st

from core.diagnose.pipeline import is_cached
from ui import common, diagnose_run, diagnose_summary, diagnose_tokens
from ui.diagnose_map import map_tab
from ui.diagnose_review import Review, duplicates_tab, label_issues_tab, outliers_tab, plan_bar, plan_bar_if_undrawn

store = common.store()
st.title("🩺 Diagnose")
st.caption(
    "Where is this dataset incomplete or wrong? Suspected label errors (out-of-fold probe + confident learning + "
    "nearest-neighbour agreement), duplicates and train/test leaks, outliers and coverage gaps. Decisions go into a "
    "cleaning plan that is saved as a new version — never in place."
)

vid, info, ds = common.require_dataset()
if notice := st.session_state.pop(diagnose_run.NOTICE, None):
    st.success(notice)
if ds.modality == "tokens":  # named entities: sentences whose tags look wrong, reviewed span by span
    st.caption(
        "For this token dataset: sentences whose tags look wrong (MiniLM word vectors, an out-of-fold probe by sentence, word-form votes and span rules)."
    )
    diagnose_tokens.undo_banner(store, vid, info)
    token_cfg = diagnose_tokens.settings()
    token_diagnosis = diagnose_tokens.diagnosis(store, vid, info, ds, token_cfg)  # None until done: its progress, or a button
    if token_diagnosis is not None:
        token_review = diagnose_tokens.TokenReview.open(store, info, ds, token_diagnosis, token_cfg)
        diagnose_tokens.summary(token_review)
        diagnose_tokens.plan_bar(token_review)
        diagnose_tokens.review_panel(token_review)
        diagnose_tokens.stage_times(token_review)
else:
    diagnose_run.undo_banner(store, vid, info)
    cfg = diagnose_run.settings()
    if not is_cached(ds, cfg):
        diagnose_run.offer(store, vid, info, ds, cfg)  # stops here

    d = diagnose_run.load(store, vid, cfg)
    issues = diagnose_run.label_issues(store, vid, ds, d, cfg)  # the probe's, or a finished run's
    review = Review.open(store, info, ds, issues, d)

    diagnose_summary.headline(d, issues, len(ds), cfg)
    if issues is d.issues:  # the probe's suspects: compared with the parent's probe
        diagnose_summary.suspect_change(store, info, cfg)
    plan_bar(review)  # its slot: the open tab's review panel draws it, so it follows each click
    # only the open tab runs (a switch reruns the page): the map and the charts cost a review click nothing
    tabs = st.tabs(["Label issues", "Duplicates & leaks", "Outliers", "Embedding map", "Coverage"], key="dg_tab", on_change="rerun")
    t_labels, t_dups, t_out, t_map, t_cov = tabs
    with t_labels:
        if t_labels.open:
            label_issues_tab(review)
    with t_dups:
        if t_dups.open:
            duplicates_tab(review, d, cfg)
    with t_out:
        if t_out.open:
            outliers_tab(review, d, cfg)
    with t_map:
        if t_map.open:
            map_tab(review, d, cfg)
    with t_cov:
        if t_cov.open:
            diagnose_summary.coverage_tab(d, cfg)
    plan_bar_if_undrawn(review)  # the map and coverage tabs have no review panel of their own
    diagnose_summary.stage_times(ds, d)
