"""Data: open a demo or upload a dataset; see its balance, splits, slices, duplicates and gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import charts
from core.data import demos
from core.data.dataset import SPLITS, describe, filter_indices
from core.data.imagefiles import preview_image_zip
from core.data.imports import UPLOAD_TYPES, check_archive, check_size, import_upload, kind_of
from core.data.tables import TableRoles, guess_roles, read_table
from core.errors import DataError
from ui import common
from ui import diagnosis as diagnosis_ui

store = common.store()
st.title("📊 Data")

# --------------------------------------------------------------------------- open a dataset
demo_tab, upload_tab = st.tabs(["Demo datasets", "Upload"])

with demo_tab:
    cols = st.columns(len(demos.DEMOS))
    for col, demo in zip(cols, demos.DEMOS.values()):
        with col.container(border=True):
            st.markdown(f"**{demo.title}**")
            st.caption(demo.blurb)
            if demos.available(demo.key):
                if st.button("Open", key=f"demo_{demo.key}", width="stretch"):
                    with st.spinner(f"Importing {demo.title}…"), common.saving():
                        common.set_current_version(demos.import_demo(store, demo.key))
                    st.rerun()
            else:
                st.caption(f"Not on this machine — {demos.assets.how_to_get(demos.assets.ASSETS[demo.asset])}.")

with upload_tab:
    st.caption(
        "Tables: .csv .tsv .parquet .jsonl with a label column (text or tabular features). "
        "Images: a .zip with one folder per class (optionally inside train/ val/ test/ folders)."
    )
    # a new key after each import empties the box, so a second click cannot import the same file twice
    n_imports = st.session_state.get("uploads_done", 0)
    up = st.file_uploader("Upload a dataset", type=list(UPLOAD_TYPES), key="upload" if n_imports == 0 else f"upload_{n_imports}")
    if up is not None:
        data = up.getvalue()
        try:
            check_size(len(data), up.name)  # the app's own limit, whatever server.maxUploadSize says
            kind = kind_of(up.name)
            if kind == "table":
                df, read_warnings = read_table(data, up.name)
                guess = guess_roles(df)
                st.dataframe(df.head(5), width="stretch")
                if not guess.label_candidates:  # nothing to choose from: say so, offer no import
                    raise DataError(guess.question or "No column can serve as the label.")
                if guess.question:
                    st.info(guess.question)
                columns = list(df.columns)
                label_options = guess.label_candidates or columns
                default_label = guess.roles.label if guess.roles else label_options[0]
                c1, c2, c3 = st.columns(3)
                label = c1.selectbox("Label column", label_options, index=label_options.index(default_label))
                no_text = "(none: tabular features)"
                text_options = [no_text] + [c for c in columns if c != label]
                default_text = (
                    guess.roles.text
                    if guess.roles and guess.roles.text
                    else (guess.text_candidates[0] if guess.text_candidates else no_text)
                )
                text = c2.selectbox(
                    "Text column", text_options, index=text_options.index(default_text) if default_text in text_options else 0
                )
                no_split = "(make a stratified split)"
                split_options = [no_split] + [c for c in columns if c not in (label, text)]
                default_split = guess.roles.split if guess.roles and guess.roles.split in split_options else no_split
                split = c3.selectbox("Split column", split_options, index=split_options.index(default_split))
                others = [c for c in columns if c not in (label, text, split)]
                text_col = None if text == no_text else text
                if text_col:
                    meta = st.multiselect("Slice columns (metadata)", others, default=[c for c in others if df[c].nunique() <= 50])
                    roles = TableRoles(label=label, text=text_col, split=None if split == no_split else split, meta=meta)
                else:
                    roles = TableRoles(label=label, split=None if split == no_split else split, features=others)
                options = {"roles": roles}
            else:
                check_archive(data, up.name)
                preview = preview_image_zip(up)  # names only, no pixels: instant, and refuses unsafe archives
                counts = preview.counts.assign(split=preview.counts["split"].fillna("—"))
                n_classes = counts["class"].nunique()
                st.bar_chart(
                    counts,
                    x="class",
                    y="images",
                    color="split" if preview.has_splits else None,
                    horizontal=True,
                    sort="-images",
                    height=min(800, max(220, 120 + 28 * n_classes)),
                )
                st.caption(
                    f"{preview.n_images:,} image{'s' if preview.n_images != 1 else ''} in {n_classes:,} "
                    f"class{'es' if n_classes != 1 else ''} ("
                    + (
                        f"split folders found: {', '.join(sorted({str(x) for x in preview.counts['split'].dropna()}))}"
                        if preview.has_splits
                        else "no split folders: a stratified split will be made, 10% val and 10% test per class; "
                        "a class of fewer than 10 images stays wholly in train"
                    )
                    + "). Images that turn out corrupt or too large are skipped at import."
                )
                if preview.skipped:
                    with st.expander(f"{len(preview.skipped):,} file(s) will be skipped"):
                        st.dataframe(pd.DataFrame(preview.skipped, columns=["file", "reason"]), width="stretch", hide_index=True)
                size = st.selectbox(
                    "Image size",
                    ["auto", 28, 32, 64, 96, 128, 224],
                    help="auto keeps a size all images share (scaled down to 512 px on the long side when larger), else resizes to the median side (at most 128).",
                )
                options = {"image_size": None if size == "auto" else int(size)}
            if st.button("Import", type="primary", key="import_upload"):
                with st.spinner(f"Importing {up.name}…"):
                    imported = import_upload(store, up.name, data, **options)
                common.set_current_version(imported.version_id)
                st.session_state["uploads_done"] = n_imports + 1
                st.session_state["import_notice"] = f"Imported '{up.name}' as version {imported.version_id}."
                st.rerun()
        except DataError as err:
            st.error(str(err), icon="🚫")

if notice := st.session_state.pop("import_notice", None):
    st.success(notice)

# --------------------------------------------------------------------------- the current dataset
vid = common.current_version()
if vid is None:
    st.info("No dataset yet. Open a demo above or upload your own.")
    st.stop()

info = store.version(vid)
ds = common.dataset(vid)
prof = common.dataset_profile(vid)

st.divider()
st.header(info.label)
st.caption(f"{describe(ds)} · source `{info.source}`")
for w in info.warnings:
    st.warning(w)
if info.skipped:
    with st.expander(f"{len(info.skipped):,} file(s) skipped at import"):
        st.dataframe(pd.DataFrame(info.skipped, columns=["file", "reason"]), width="stretch", hide_index=True)

b = prof.train
kpis = [
    (
        "Items",
        f"{prof.n_items:,}" + (f" ({prof.n_unlabelled:,} unlabelled)" if prof.n_unlabelled else ""),
        "Rows in all splits."
        + (" Unlabelled rows form a pool in train that pseudo-labelling and label spreading can use." if prof.n_unlabelled else ""),
    ),
    (
        "Classes",
        f"{ds.n_classes}" + (f" ({len(b.missing)} missing in train)" if b.missing else ""),
        "Classes with no training items cannot be learned.",
    ),
    (
        "Imbalance ratio",
        "∞" if not np.isfinite(b.imbalance_ratio) else f"{b.imbalance_ratio:,.1f}×",
        "Largest ÷ smallest training class; above ~10× the tail starts to suffer.",
    ),
    ("Normalised entropy", f"{b.normalised_entropy:.3f}", "1 = perfectly balanced classes, 0 = everything in one class."),
    ("Gini", f"{b.gini:.3f}", "Inequality of class sizes: 0 = equal, towards 1 = concentrated in few classes."),
    (
        "Effective samples",
        f"{b.effective_number:,.0f}",
        "Σ (1−βⁿ)/(1−β), β = 0.999: what the training items are worth once overlap within a class is discounted.",
    ),
]
for col, (label, value, explain) in zip(st.columns(len(kpis)), kpis):
    col.metric(label, value)
    col.caption(explain)

# --------------------------------------------------------------------------- class distribution
c1, c2, c3 = st.columns([2, 1, 1])
which = c1.radio("Counts of", ["train", "all splits"], horizontal=True, key="dist_split")
sort = c2.toggle("Sort by size", value=True, key="dist_sort")
log = c3.toggle("Log scale", value=False, key="dist_log")
bal = prof.train if which == "train" else prof.overall
st.plotly_chart(charts.class_distribution(ds.class_names, bal, sort=sort, log=log), width="stretch")
head, tail = bal.thresholds
groups = pd.Series(bal.groups).value_counts()
st.caption(
    f"Head > {head} items, medium {tail}–{head}, tail < {tail} "
    f"({'the long-tail literature’s 100 / 20' if (head, tail) == (100, 20) else 'scaled from 100 / 20 because the largest class is small'}). "
    f"{groups.get('head', 0)} head · {groups.get('medium', 0)} medium · {groups.get('tail', 0)} tail classes."
)

# --------------------------------------------------------------------------- label noise (the latest diagnosis)
st.subheader("Label noise")
dg_cfg = diagnosis_ui.config()
noise = diagnosis_ui.latest(vid, dg_cfg)
running = diagnosis_ui.job(vid, dg_cfg)
if running is not None and running.is_alive():
    diagnosis_ui.progress_line(vid, dg_cfg)
if noise is not None:
    diagnosis_ui.noise_summary(ds, noise, matrix_open=False)
elif running is None or not running.is_alive():
    n1, n2 = st.columns([3, 1])
    n1.caption(
        "Not diagnosed yet. The diagnosis estimates how many labels are wrong and where (noise per class, which classes "
        "get confused); on a large version the first estimate, from a sample, comes within seconds."
    )
    read_only = store.read_only is not None
    if n2.button(
        "Diagnose in the background", key="data_diagnose", width="stretch", disabled=read_only,
        help="The home is read-only: a diagnosis could not be kept." if read_only else None,
    ):  # fmt: skip
        diagnosis_ui.start(vid, dg_cfg)
        st.rerun()
st.page_link("app_pages/diagnose.py", label="Review suspects on the Diagnose page", icon="🩺")

# --------------------------------------------------------------------------- details
tab_names = ["Preview", "Splits", "Slices", "Duplicates & leaks", "Missing values", "Text lengths" if ds.modality == "text" else "Sizes"]
t_preview, t_splits, t_slices, t_dups, t_missing, t_sizes = st.tabs(tab_names)

with t_preview:
    f1, f2, f3 = st.columns([3, 2, 1])
    chosen_classes = f1.multiselect("Classes", range(ds.n_classes), format_func=lambda i: ds.class_names[i], key="pv_classes")
    chosen_splits = f2.multiselect("Splits", range(len(SPLITS)), format_func=lambda i: SPLITS[i], key="pv_splits")
    idx = filter_indices(ds, classes=chosen_classes or None, splits=chosen_splits or None)
    per_page = 40 if ds.modality == "image" else 25
    n_pages = max(1, -(-len(idx) // per_page))
    page = f3.number_input("Page", 1, n_pages, 1, key="pv_page")
    rows = idx[(page - 1) * per_page : page * per_page]
    st.caption(f"{len(idx):,} items match · page {page} of {n_pages:,}")
    if ds.modality == "image":
        images = [np.asarray(ds.items[i]) for i in rows]
        captions = [f"#{i} · {ds.label_name(i)} · {SPLITS[ds.split[i]]}" for i in rows]
        st.image(images, caption=captions, width=96, clamp=True)
    else:
        table = pd.DataFrame({"item": rows, "label": ds.label_names(rows), "split": ds.split_names[rows]})
        if ds.modality == "text":
            table.insert(1, "text", ds.items[rows])
        else:
            table = pd.concat([table, ds.items.iloc[rows].reset_index(drop=True)], axis=1)
        table = pd.concat([table, ds.meta.iloc[rows].reset_index(drop=True)], axis=1)
        st.dataframe(table, width="stretch", hide_index=True)

with t_splits:
    st.plotly_chart(charts.split_counts(prof.counts), width="stretch")
    st.dataframe(prof.counts, width="stretch")

with t_slices:
    if prof.slices:
        s1, s2 = st.columns([2, 1])
        column = s1.selectbox("Slice column", list(prof.slices), key="slice_col")
        by = s2.radio("Break down by", ["class", "split"], horizontal=True, key="slice_by")
        st.plotly_chart(charts.slice_bars(prof.slices[column], column, by=by), width="stretch")
        st.dataframe(prof.slices[column], width="stretch")
    else:
        st.info("No metadata columns to slice by. Upload a table with columns such as domain or source to see per-slice counts.")

with t_dups:
    d = prof.duplicates
    m = st.columns(4)
    m[0].metric("Repeated items", f"{d.n_duplicate_items:,}", help="Items whose exact content appears earlier in the dataset.")
    m[1].metric(
        "Train–test leaks", f"{d.leaks['train–test']:,}", help="Test items whose content is also in train: they inflate test scores."
    )
    m[2].metric("Train–val leaks", f"{d.leaks['train–val']:,}")
    m[3].metric(
        "Conflicting labels", f"{d.n_conflicting_groups:,}", help="Identical items with different labels: label noise by definition."
    )
    if len(d.groups):
        groups_table = d.groups.head(200).assign(
            labels=lambda t: t["labels"].map(lambda ls: ", ".join(ds.class_names[i] for i in ls)),
            splits=lambda t: t["splits"].map(", ".join),
            items=lambda t: t["items"].map(lambda ls: ", ".join(map(str, ls[:10])) + (" …" if len(ls) > 10 else "")),
        )
        if ds.modality == "text":
            groups_table.insert(0, "text", [ds.items[int(str(s).split(",")[0])] for s in groups_table["items"]])
        st.dataframe(groups_table, width="stretch", hide_index=True)
    else:
        st.success("No exact duplicates.")

with t_missing:
    if len(prof.missing_values):
        st.dataframe(prof.missing_values.style.format({"share": "{:.1%}"}), width="stretch", hide_index=True)
    else:
        st.success("No missing values in feature or metadata columns.")
    if ds.modality == "text":
        if len(prof.empty_texts):
            st.warning(
                f"{len(prof.empty_texts):,} empty texts (items {', '.join(map(str, prof.empty_texts[:20]))}{' …' if len(prof.empty_texts) > 20 else ''})."
            )
        else:
            st.success("No empty texts.")

with t_sizes:
    if ds.modality == "text":
        st.dataframe(prof.text_lengths.style.format("{:,.1f}"), width="stretch")
        st.plotly_chart(charts.length_histogram(prof.word_counts), width="stretch")
    elif ds.modality == "image":
        s = prof.image_stats
        st.markdown(
            f"Stored at **{s['width']}×{s['height']}**, {'RGB' if s['channels'] == 3 else 'grayscale'}; mean intensity {s['mean_intensity']:.1f} / 255."
        )
        if "orig_width" in s:
            st.markdown(
                f"Original widths {s['orig_width']['min']}–{s['orig_width']['max']} (median {s['orig_width']['median']:.0f}), "
                f"heights {s['orig_height']['min']}–{s['orig_height']['max']} (median {s['orig_height']['median']:.0f})"
                + (" — resized on import." if s.get("resized") else ".")
            )
    else:
        st.dataframe(ds.items.describe().T, width="stretch")
