"""Simulate: make the current dataset incomplete on purpose (long tail, dropped classes, label
noise, duplicates, a thinned slice; for token data dropped or thinned entity types and annotation
noise), preview it, save it as a version; sweep a severity and watch hallucination grow; check the
detector against the simulator's truth."""

from __future__ import annotations

import streamlit as st

from core.simulate import token_preview
from core.simulate.recipe import Recipe
from core.simulate.recipe_preview import source_line
from core.simulate.tokens import token_recipe_source
from core.simulate.versions import recipe_source
from ui import common, simulate_recipe, simulate_tokens, sweep_view

store = common.store()
st.title("🧪 Simulate")
st.caption(
    "Make a clean dataset incomplete on purpose and watch what it does to the model. Only the train split changes; "
    "val and test stay clean, so every version is scored on the same items."
)
vid = common.current_version()
if vid is None:
    st.info("No dataset yet. Open a demo on the Data page first.")
    st.page_link("app_pages/data.py", label="Go to Data", icon="📊")
    st.stop()
current = store.version(vid)

if current.modality == "tokens":  # named entities: types, spans and their tags rather than classes
    token_source, token_truth = token_recipe_source(store, vid)  # a simulated version: recipes start from its clean parent
    token_info, token_ds = store.version(token_source), common.dataset(token_source)
    st.markdown(token_preview.source_line(token_info.label, token_ds))
    if token_source != vid:
        st.caption(f"The current dataset ({current.label}) was simulated from this one; recipes start from it.")
    token_recipe, token_plan, token_problem = simulate_tokens.recipe_form(token_ds)
    simulate_tokens.preview(store, token_source, token_ds, token_recipe, token_plan, token_problem)
    if token_truth is not None:
        simulate_tokens.detector_check(current, common.dataset(vid))
    st.caption("Severity sweeps are for classification datasets.")
else:
    source, truth = recipe_source(store, vid)  # a simulated version: recipes start from its clean parent
    info, ds = store.version(source), common.dataset(source)
    st.markdown(source_line(info.label, ds))
    if source != vid:
        st.caption(f"The current dataset ({current.label}) was simulated from this one; recipes and sweeps start from it.")

    recipe, plan, problem = simulate_recipe.recipe_form(ds)
    simulate_recipe.preview(store, source, ds, recipe, plan, problem)
    if truth is not None:
        simulate_recipe.detector_check(current, common.dataset(vid))
    sweep_view.sweep_form(store, info, source, recipe or Recipe(seed=int(st.session_state["sm_seed"])))
    sweep_view.sweep_picker(store, info)
