"""Selection: which train items to keep, and which unlabelled items to label next.

A finished run's training dynamics give each train item a place on the data map and a score; keep
x % by a score as a new version, or sweep the share kept and compare each score with random. Label
next: propose pool items by margin, entropy or coverage, label them in a queue, and see on known
labels what each strategy buys over random picks.
"""

from __future__ import annotations

import streamlit as st

from ui import common, select_view

store = common.store()
st.title("🎯 Selection")
st.caption(
    "The fix is often not more data but the right data. Keep the items that teach the model, drop the ones that mislead it, "
    "and label next the items it is least sure of."
)
vid, info, ds = common.require_dataset()
if ds.modality == "tokens":
    st.info("Selection is for classification datasets (text, images, tables); token data comes later.")
    st.stop()

st.subheader("What each train item taught a run")
run_id = select_view.dynamics_section(store, vid, ds)

st.subheader("Keep x %")
select_view.keep_section(store, vid, ds, run_id)
with st.expander("Sweep the share kept", expanded=True):
    select_view.sweep_form(store, vid, run_id)
    select_view.sweep_results(store, vid, run_id)

st.subheader("Label next")
select_view.queue_section(store, vid, ds)
with st.expander("What would labelling buy? The loop on known labels", expanded=False):
    select_view.loop_section(vid, ds)
