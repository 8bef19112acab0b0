"""The Data page's picture of the current dataset: headline figures, the class distribution, label
noise from the latest diagnosis, and the detail tabs (preview, splits, slices, duplicates, missing
values, sizes)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import charts
from core.data import browse, overview
from core.data.dataset import SPLITS, Dataset, describe, filter_indices
from core.data.profile import Profile
from core.store import Store, VersionInfo
from ui import diagnosis as diagnosis_ui
from ui.state import default, default_choices, default_within


def header(info: VersionInfo, ds: Dataset) -> None:
    st.header(info.label)
    st.caption(f"{describe(ds)} · source `{info.source}`")
    for w in info.warnings:
        st.warning(w)
    if info.skipped:
        with st.expander(f"{len(info.skipped):,} file(s) skipped at import"):
            st.dataframe(overview.skipped_table(info.skipped), width="stretch", hide_index=True)


def kpis(prof: Profile) -> None:
    figures = overview.kpis(prof)
    for col, f in zip(st.columns(len(figures)), figures):
        col.metric(f.label, f.value)
        col.caption(f.note)


def class_distribution(ds: Dataset, prof: Profile) -> None:
    default("dt_dist_split", "train", allowed=["train", "all splits"])
    default("dt_dist_sort", True)
    default("dt_dist_log", False)
    c1, c2, c3 = st.columns([2, 1, 1])
    which = c1.radio("Counts of", ["train", "all splits"], horizontal=True, key="dt_dist_split", persist_state="session")
    sort = c2.toggle("Sort by size", key="dt_dist_sort", persist_state="session")
    log = c3.toggle("Log scale", key="dt_dist_log", persist_state="session")
    bal = prof.train if which == "train" else prof.overall
    st.plotly_chart(charts.class_distribution(ds.class_names, bal, sort=sort, log=log), width="stretch")
    st.caption(overview.groups_line(bal))


def label_noise(store: Store, vid: int, ds: Dataset) -> None:
    """The latest diagnosis's label-noise estimate, its progress, or a button that starts one."""
    st.subheader("Label noise")
    cfg = diagnosis_ui.config()
    noise = diagnosis_ui.latest(vid, cfg)
    running = diagnosis_ui.job(vid, cfg)
    alive = running is not None and running.is_alive()
    if alive:
        diagnosis_ui.progress_line(vid, cfg)
    if noise is not None:
        diagnosis_ui.noise_summary(ds, noise, matrix_open=False)
    elif not alive:
        n1, n2 = st.columns([3, 1])
        n1.caption(
            "Not diagnosed yet. The diagnosis estimates how many labels are wrong and where (noise per class, which classes "
            "get confused); on a large version a first estimate comes from a sample, before every item is read."
        )
        read_only = store.read_only is not None
        why = "The home is read-only: a diagnosis could not be kept." if read_only else None
        if n2.button("Diagnose in the background", key="data_diagnose", width="stretch", disabled=read_only, help=why):
            diagnosis_ui.start(vid, cfg)
            st.rerun()
    st.page_link("app_pages/diagnose.py", label="Review suspects on the Diagnose page", icon="🩺")


def details(ds: Dataset, prof: Profile) -> None:
    names = ["Preview", "Splits", "Slices", "Duplicates & leaks", "Missing values", "Text lengths" if ds.modality == "text" else "Sizes"]
    t_preview, t_splits, t_slices, t_dups, t_missing, t_sizes = st.tabs(names)
    with t_preview:
        preview(ds)
    with t_splits:
        st.plotly_chart(charts.split_counts(prof.counts), width="stretch")
        st.dataframe(prof.counts, width="stretch")
    with t_slices:
        slices(prof)
    with t_dups:
        duplicates(ds, prof)
    with t_missing:
        missing(ds, prof)
    with t_sizes:
        sizes(ds, prof)


def preview(ds: Dataset) -> None:
    """Items filtered by class and split, a page at a time: images in a grid, other rows in a table."""
    default_choices("dt_pv_classes", range(ds.n_classes))
    default_choices("dt_pv_splits", range(len(SPLITS)))
    f1, f2, f3 = st.columns([3, 2, 1])
    classes = f1.multiselect(
        "Classes", range(ds.n_classes), format_func=lambda i: ds.class_names[i], key="dt_pv_classes", persist_state="session"
    )
    splits = f2.multiselect("Splits", range(len(SPLITS)), format_func=lambda i: SPLITS[i], key="dt_pv_splits", persist_state="session")
    index = filter_indices(ds, classes=classes or None, splits=splits or None)
    per_page = browse.preview_per_page(ds.modality)
    pages = browse.n_pages(len(index), per_page)
    default_within("dt_pv_page", 1, 1, pages)
    page = int(f3.number_input("Page", 1, pages, key="dt_pv_page", persist_state="session"))
    rows = index[browse.page_slice(page, per_page)]
    st.caption(browse.matches_line(len(index), page, pages))
    if ds.modality == "image":
        st.image([np.asarray(ds.items[i]) for i in rows], caption=browse.image_captions(ds, rows), width=96, clamp=True)
    else:
        st.dataframe(browse.preview_table(ds, rows), width="stretch", hide_index=True)


def slices(prof: Profile) -> None:
    if not prof.slices:
        st.info("No metadata columns to slice by. Upload a table with columns such as domain or source to see per-slice counts.")
        return
    default("dt_slice_col", next(iter(prof.slices)), allowed=list(prof.slices))
    default("dt_slice_by", "class", allowed=["class", "split"])
    s1, s2 = st.columns([2, 1])
    column = str(s1.selectbox("Slice column", list(prof.slices), key="dt_slice_col", persist_state="session"))
    by = str(s2.radio("Break down by", ["class", "split"], horizontal=True, key="dt_slice_by", persist_state="session"))
    st.plotly_chart(charts.slice_bars(prof.slices[column], column, by=by), width="stretch")
    st.dataframe(prof.slices[column], width="stretch")


def duplicates(ds: Dataset, prof: Profile) -> None:
    for col, f in zip(st.columns(4), overview.duplicate_figures(prof.duplicates)):
        col.metric(f.label, f.value, help=f.note or None)
    if len(prof.duplicates.groups):
        st.dataframe(overview.duplicate_groups(prof.duplicates, ds), width="stretch", hide_index=True)
    else:
        st.success("No exact duplicates.")


def missing(ds: Dataset, prof: Profile) -> None:
    if len(prof.missing_values):
        st.dataframe(prof.missing_values.style.format({"share": "{:.1%}"}), width="stretch", hide_index=True)
    else:
        st.success("No missing values in feature or metadata columns.")
    if ds.modality != "text":
        return
    if len(prof.empty_texts):
        st.warning(overview.empty_texts_line(prof.empty_texts))
    else:
        st.success("No empty texts.")


def sizes(ds: Dataset, prof: Profile) -> None:
    if prof.text_lengths is not None and prof.word_counts is not None:
        st.dataframe(prof.text_lengths.style.format("{:,.1f}"), width="stretch")
        st.plotly_chart(charts.length_histogram(prof.word_counts), width="stretch")
    elif prof.image_stats is not None:
        for line in overview.image_lines(prof.image_stats):
            st.markdown(line)
    else:
        st.dataframe(ds.items.describe().T, width="stretch")
