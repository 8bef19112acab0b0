"""The Diagnose page's summary: the headline figures, why the suspects changed after a cleaning, the
coverage tab and the stage times."""

from __future__ import annotations

import streamlit as st

from core.data.dataset import Dataset
from core.diagnose import review
from core.diagnose.cleaning import saved_plan
from core.diagnose.label_issues import LabelIssues
from core.diagnose.pipeline import DiagnoseConfig, Diagnosis, is_cached
from core.embed.embeddings import resolve_backbone
from core.store import Store, VersionInfo
from ui import common, diagnose_run


def headline(d: Diagnosis, issues: LabelIssues, n_items: int, cfg: DiagnoseConfig) -> None:
    figures = review.headline(d, issues, n_items=n_items, outlier_quantile=cfg.outlier_quantile)
    for col, f in zip(st.columns(len(figures)), figures):
        col.metric(f.label, f.value)
        col.caption(f.note)


def coverage_tab(d: Diagnosis, cfg: DiagnoseConfig) -> None:
    has_gaps, words = review.coverage_words(review.coverage_gaps(d.coverage), cfg.min_count)
    if has_gaps:
        st.warning(words)
    else:
        st.success(words)
    st.dataframe(review.coverage_table(d.coverage), hide_index=True, width="stretch")


def stage_times(ds: Dataset, d: Diagnosis) -> None:
    st.caption(review.stage_times(d.seconds, d.backbone, resolve_backbone(ds, d.backbone or "auto")))


@st.cache_resource(show_spinner=False, max_entries=8)
def _suspect_change(home: str, version_id: int, cfg: DiagnoseConfig) -> review.SuspectChange | None:
    """Worked out once per version and settings: a cleaned version and its parent never change."""
    store = common.store()
    info = store.version(version_id)
    if info.kind != "clean" or info.parent_id is None:
        return None
    parent_ds = common.dataset(info.parent_id)
    if not is_cached(parent_ds, cfg):
        return None  # the parent was not diagnosed with these settings: nothing to compare with
    before, after = diagnose_run.load(store, info.parent_id, cfg), diagnose_run.load(store, version_id, cfg)
    plan = saved_plan(store, version_id, parent_ds)
    return review.suspect_change(before.issues, parent_ds.item_ids(), after.issues, common.dataset(version_id).item_ids(), plan)


def suspect_change(store: Store, info: VersionInfo, cfg: DiagnoseConfig) -> None:
    """On a cleaned version whose parent was diagnosed with the same settings: why the number of
    suspects differs from the parent's (what the plan dropped or relabelled, what this version's
    diagnosis no longer flags, what it flags anew)."""
    if info.kind != "clean" or info.parent_id is None:
        return
    change = _suspect_change(str(store.home), info.id, cfg)
    if change is not None:
        st.info(review.suspect_change_words(change, info.parent_id))
