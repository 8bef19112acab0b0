"""Lab: watch a language model learn the facts it saw, and hallucinate the ones it did not.

Set the corpus's knobs (how often each person appears, paraphrases, held-out people, noise), see
its exposure histogram and monofact rate, save it, train a small GPT-2 on it from scratch in the
background, and watch accuracy and hallucination arrive per exposure count. Each mitigation is a
run to compare on the Compare page. Then probe a real model, SmolLM2, on facts it may have learned, and
(on a GPU) fine-tune it on the facts it did not know.
"""

from __future__ import annotations

import streamlit as st

from ui import common, lab_probe_view, lab_tune_view, lab_view

store = common.store()
st.title("🧠 Knowledge-gap lab")
st.caption(
    "A model answers questions about facts it saw often, once, or never — and answers the unseen ones too, fluently and wrong. "
    "Turn the corpus's knobs and watch how often each fact was seen decide what it knows and what it invents."
)

st.subheader("1 · The corpus")
spec = lab_view.corpus_knobs()
if spec is not None:
    lab_view.corpus_preview(spec)
    lab_view.save_section(store, spec)

st.subheader("2 · A run")
vid = lab_view.pick_version(store)
if vid is not None:
    lab_view.corpus_words(store, vid)
    settings = lab_view.run_knobs()
    if settings is not None:
        lab_view.start_section(store, vid, settings)
    st.subheader("3 · What it learned, by how often it saw each fact")
    lab_view.results_section(store, vid)

st.subheader("4 · A real model, probed")
lab_probe_view.probe_section()

st.subheader("5 · A real model, fine-tuned on what it did not know")
lab_tune_view.tune_section()
