"""Data: open a demo or upload a dataset; see its balance, splits, slices, duplicates and gaps."""

from __future__ import annotations

import streamlit as st

from ui import common, data_import, data_profile, data_tokens

store = common.store()
st.title("📊 Data")

demo_tab, upload_tab = st.tabs(["Demo datasets", "Upload"])
with demo_tab:
    data_import.demo_cards(store)
with upload_tab:
    data_import.upload_box(store)
if notice := st.session_state.pop(data_import.NOTICE, None):
    st.success(notice)

vid = common.current_version()
if vid is None:
    st.info("No dataset yet. Open a demo above or upload your own.")
    st.stop()
info, ds = store.version(vid), common.dataset(vid)

st.divider()
data_profile.header(info, ds)
if ds.modality == "tokens":  # named entities: types, mentions and spans rather than classes
    data_tokens.profile(ds, info.params)
else:
    prof = common.dataset_profile(vid)
    data_profile.kpis(prof)
    data_profile.class_distribution(ds, prof)
    data_profile.label_noise(store, vid, ds)
    data_profile.details(ds, prof)
