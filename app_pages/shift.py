"""Shift: is new data outside what the model knows, and how wrong will the model be there.

Pick a reference (the current dataset's train split) and a target (other values of a column,
another version, changed test images, another class mix); test for shift on the cached embeddings;
estimate a finished run's accuracy and hallucination rate on the target without its labels.
"""

from __future__ import annotations

import streamlit as st

from core.errors import DataError
from core.shift import scenario
from ui import common, shift_view

store = common.store()
st.title("🌊 Shift")
st.caption(
    "A model hallucinates most where new data leaves what it was trained on. Test whether a target is shifted from the "
    "training data, then estimate how a finished run will do there — without the target's labels."
)
vid, info, ds = common.require_dataset()
if ds.modality == "tokens":
    st.info("Shift tests are for classification datasets (text, images, tables); token data comes later.")
    st.stop()

spec = shift_view.target_form(store, vid, ds)
try:
    scen = scenario.build(store, vid, spec)
except DataError as err:
    st.warning(str(err))
    st.stop()
st.markdown(f"**{len(scen.reference):,} reference** and **{len(scen.target):,} target** items: {scen.words}.")
for note in scen.notes:
    st.caption(note)
shift_view.save_target_button(store, vid, scen, spec)

st.subheader("Is the target shifted?")
shift_view.drift_section(vid, scen, spec)

st.subheader("How will a run do there?")
shift_view.estimate_section(store, vid, scen, spec)

shift_view.keep_button(store, vid, scen, spec)

st.subheader("Train for the target")
shift_view.act_section(store, vid, scen, spec)
