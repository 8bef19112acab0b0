"""Home: what Gapscope does, and the way through it."""

import streamlit as st

st.title("Gapscope")
st.markdown(
    "**Find the gaps in your training data before your model fills them with confident nonsense.**\n\n"
    "Gapscope shows how incomplete training data — missing classes, class imbalance, label noise, "
    "duplicates — makes a fine-tuned classifier *hallucinate*: answer wrongly with high confidence. "
    "You diagnose the data, switch mitigations on by hand, fine-tune a pretrained model in the background "
    "and watch hallucination and error metrics change as the fix takes hold."
)

st.subheader("The flow")
steps = [
    ("📊 Data", "Open a demo or upload your own: class balance, duplicates, leaks, slices.", "app_pages/data.py"),
    ("🩺 Diagnose", "Find suspected label errors, near-duplicates, outliers and coverage gaps.", "app_pages/diagnose.py"),
    ("🧪 Simulate", "Make clean data incomplete on purpose and sweep the severity: watch hallucination grow.", "app_pages/simulate.py"),
    ("🏋️ Train", "Pick a pretrained model and mitigations; training runs in the background.", "app_pages/train.py"),
    ("📈 Runs", "Watch loss, hallucination rate and calibration stream in live.", "app_pages/runs.py"),
    ("⚖️ Compare", "Put runs side by side and export a report for stakeholders.", "app_pages/compare.py"),
]
cols = st.columns(len(steps))
for col, (title, text, page) in zip(cols, steps):
    with col.container(border=True):
        st.markdown(f"**{title}**")
        st.caption(text)
        if page:
            st.page_link(page, label="Open", icon="➡️")
        else:
            st.caption("_coming next_")

st.subheader("What we call hallucination")
st.markdown(
    "- **Hallucination rate @τ** — share of test inputs answered *wrongly* with confidence ≥ τ (default 0.9).\n"
    "- **Forced-known rate @τ** — share of inputs from classes absent from training that still get a known label with confidence ≥ τ.\n"
    "- **Calibration (ECE)** — how far confidence is from accuracy, overall and per head/medium/tail class group."
)
