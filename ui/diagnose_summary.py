"""The Diagnose page's summary: the headline figures, the coverage tab and the stage times."""

from __future__ import annotations

import streamlit as st

from core.data.dataset import Dataset
from core.diagnose import review
from core.diagnose.label_issues import LabelIssues
from core.diagnose.pipeline import DiagnoseConfig, Diagnosis
from core.embed.embeddings import resolve_backbone


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
