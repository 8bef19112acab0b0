"""Diagnose: suspected label errors, duplicates, outliers and coverage gaps — and a cleaning plan."""

from __future__ import annotations

import streamlit as st

from core.diagnose.pipeline import is_cached
from ui import common, diagnose_run, diagnose_summary
from ui.diagnose_map import map_tab
from ui.diagnose_review import Review, duplicates_tab, label_issues_tab, outliers_tab, plan_bar

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
diagnose_run.undo_banner(store, vid, info)
cfg = diagnose_run.settings()
if not is_cached(ds, cfg):
    diagnose_run.offer(store, vid, info, ds, cfg)  # stops here

d = diagnose_run.load(store, vid, cfg)
issues = diagnose_run.label_issues(store, vid, ds, d, cfg)  # the probe's, or a finished run's
review = Review.open(store, info, ds, issues)

diagnose_summary.headline(d, issues, len(ds), cfg)
plan_bar(review)
t_labels, t_dups, t_out, t_map, t_cov = st.tabs(["Label issues", "Duplicates & leaks", "Outliers", "Embedding map", "Coverage"])
with t_labels:
    label_issues_tab(review)
with t_dups:
    duplicates_tab(review, d, cfg)
with t_out:
    outliers_tab(review, d, cfg)
with t_map:
    map_tab(review, d, cfg)
with t_cov:
    diagnose_summary.coverage_tab(d, cfg)
diagnose_summary.stage_times(ds, d)
