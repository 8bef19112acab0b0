"""Opening a dataset on the Data page: the demo cards and the upload box (a table's column roles, an
image ZIP's classes and splits, a token file's first sentences, tag scheme and repairs, then Import)."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from core.data import demos
from core.data import upload_preview as up
from core.data.dataset import SPLITS, LoadResult
from core.data.imagefiles import preview_image_zip
from core.data.imports import UPLOAD_TYPES, check_archive, check_size, import_upload, upload_kind
from core.data.overview import skipped_table
from core.data.tables import TableRoles, guess_roles, read_table_encoded, table_split
from core.errors import DataError
from core.store import Store
from core.tokens.conll import load_tokens
from core.tokens.spans import entity_types
from core.tokens.stats import segments
from ui import common
from ui.data_tokens import highlighted

NOTICE = "import_notice"  # session key: what the last import did, said on the next run
IMAGE_SIZES: list[Any] = ["auto", 28, 32, 64, 96, 128, 224]


def demo_cards(store: Store) -> None:
    """One card per demo: open it, or how to get it onto this machine."""
    cards = list(demos.DEMOS.values())
    per_row = 4
    for start in range(0, len(cards), per_row):
        for col, demo in zip(st.columns(per_row), cards[start : start + per_row]):
            _demo_card(store, col, demo)


def _demo_card(store: Store, col: Any, demo: demos.Demo) -> None:
    with col.container(border=True):
        st.markdown(f"**{demo.title}**")
        st.caption(demo.blurb)
        if not demos.available(demo.key):
            st.caption(f"Not on this machine — {demos.assets.how_to_get(demos.assets.ASSETS[str(demo.asset)])}.")
        elif st.button("Open", key=f"demo_{demo.key}", width="stretch"):
            with st.spinner(f"Importing {demo.title}…"), common.saving():
                common.set_current_version(demos.import_demo(store, demo.key))
            st.rerun()


def upload_box(store: Store) -> None:
    """The upload, what it holds, and Import; a ``DataError`` is shown as it is and stores nothing."""
    st.caption(
        "Tables: .csv .tsv .parquet .jsonl with a label column (text or tabular features). "
        "Images: a .zip with one folder per class (optionally inside train/ val/ test/ folders). "
        "Named entities: a CoNLL-style file (.conll, .iob, .bio, .txt: a token and its tag per line, blank lines between "
        "sentences) or JSON Lines with tokens and tags."
    )
    # a new key after each import empties the box, so a second click cannot import the same file twice
    n_imports = st.session_state.get("uploads_done", 0)
    upload = st.file_uploader("Upload a dataset", type=list(UPLOAD_TYPES), key="upload" if n_imports == 0 else f"upload_{n_imports}")
    if upload is None:
        return
    data = upload.getvalue()
    try:
        check_size(len(data), upload.name)  # the app's own limit, whatever server.maxUploadSize says
        roles, image_size = None, None
        kind = upload_kind(upload.name, data)
        if kind == "tokens":
            _token_preview(data, upload.name)
        elif kind == "table":
            roles = _table_roles(data, upload.name)
        else:
            image_size = _image_options(data, upload.name)
        if st.button("Import", type="primary", key="import_upload"):
            with st.spinner(f"Importing {upload.name}…"):
                imported = import_upload(store, upload.name, data, roles=roles, image_size=image_size)
            common.set_current_version(imported.version_id)
            st.session_state["uploads_done"] = n_imports + 1
            st.session_state[NOTICE] = f"Imported '{upload.name}' as version {imported.version_id}."
            st.rerun()
    except DataError as err:
        st.error(str(err), icon="🚫")


def _table_roles(data: bytes, name: str) -> TableRoles:
    """The table's first rows and a choice of label, text, split and slice columns (the guess first);
    what the import will do that the file does not say (its encoding, a split made or val carved)."""
    df, _, encoding = read_table_encoded(data, name)
    guess = guess_roles(df)
    if note := up.encoding_note(encoding):
        st.info(note, icon="🔤")
    st.dataframe(df.head(5), width="stretch")
    if not guess.label_candidates:  # nothing to choose from: say so, offer no import
        raise DataError(guess.question or "No column can serve as the label.")
    if guess.question:
        st.info(guess.question)
    columns = [str(c) for c in df.columns]
    c1, c2, c3 = st.columns(3)
    label_options, label_default = up.label_choice(guess, columns)
    label = str(c1.selectbox("Label column", label_options, index=label_default))
    text_options, text_default = up.text_choice(guess, columns, label)
    text = str(c2.selectbox("Text column", text_options, index=text_default))
    split_options, split_default = up.split_choice(guess, columns, label, text)
    split = str(c3.selectbox("Split column", split_options, index=split_default))
    others = up.other_columns(columns, label, text, split)
    if text != up.NO_TEXT:
        meta = st.multiselect("Slice columns (metadata)", others, default=up.default_slices(df, others))
    else:
        meta = st.multiselect(
            "Group columns (kept as metadata too)", others, default=[],
            help="Columns such as sex, site or year that results are broken down by — slices on the Runs page, groups on its "
            "fairness panel. They stay features as well.",
        )  # fmt: skip
    roles = up.table_roles(label, text, split, others, meta)
    if note := up.split_note(table_split(df, roles), what="rows"):
        st.info(note, icon="✂️")
    return roles


@st.cache_data(show_spinner="Reading the sentences…", max_entries=2)
def _read_tokens(data: bytes, name: str) -> LoadResult:
    return load_tokens(data, name)


def _token_preview(data: bytes, name: str, *, k: int = 5) -> None:
    """What a token file holds, read as the import will read it: its first sentences with their
    entities highlighted, the tag scheme found and what the import repairs or decides (the split)."""
    result = _read_tokens(data, name)
    ds = result.dataset
    assert ds.tags is not None
    types = entity_types(ds.tags)
    n = np.bincount(ds.split, minlength=3)
    scheme = result.tag_scheme.scheme if result.tag_scheme is not None else "IOB2"
    st.markdown(
        f"**{len(ds):,} sentences**, {len(types)} entity type{'s' if len(types) != 1 else ''}"
        f"{' (' + ', '.join(types) + ')' if types else ''} · tags read as **{scheme}** · "
        + " / ".join(f"{n[i]:,} {s}" for i, s in enumerate(SPLITS))
    )
    st.html(
        "".join(
            f"<p style='line-height:2'><b>{i + 1}</b> · {highlighted(segments(list(ds.items[i]), list(ds.tags[i])), types)}</p>"
            for i in range(min(k, len(ds)))
        )
    )
    for note in result.warnings:
        st.info(note, icon="🏷️")
    if result.tag_scheme is not None and not result.tag_scheme.words():
        st.caption(f"The tags are valid {scheme}: the import changes none of them.")


def _image_options(data: bytes, name: str) -> int | None:
    """The archive's images per class and split (from its names, no pixels), and the image size."""
    check_archive(data, name)
    preview = preview_image_zip(data)  # names only: instant, and refuses unsafe archives
    counts = up.zip_counts(preview)
    n_classes = counts["class"].nunique()
    st.bar_chart(
        counts,
        x="class",
        y="images",
        color="split" if preview.has_splits else None,
        horizontal=True,
        sort="-images",
        height=min(800, max(220, 120 + 28 * n_classes)),  # a bar a class, within bounds
    )
    st.caption(up.zip_words(preview))
    if note := up.split_note(up.zip_split(preview), what="images"):
        st.info(note, icon="✂️")
    if preview.skipped:
        with st.expander(f"{len(preview.skipped):,} file(s) will be skipped"):
            st.dataframe(skipped_table(preview.skipped), width="stretch", hide_index=True)
    size = st.selectbox(
        "Image size",
        IMAGE_SIZES,
        help="auto keeps a size all images share (scaled down to 512 px on the long side when larger), else resizes to the median side (at most 128).",
    )
    return None if size == "auto" else int(size)
