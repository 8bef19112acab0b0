"""Runs: every run with its status; one run's metrics streaming in live, its calibration, its
confusion, and the hallucination gallery (the most confident wrong answers)."""

from __future__ import annotations

import streamlit as st

from ui import common, run_detail
from ui.run_table import pick_run, run_table

store = common.store()
st.title("📈 Runs")
runner = common.runner_or_none()  # None: the cluster is unreachable (said above); stored runs still show

runs = store.runs()
if not runs:
    st.info("No runs yet. Start one on the Train page.")
    st.page_link("app_pages/train.py", label="Go to Train", icon="🏋️")
    st.stop()

run_table()
run_detail.show(pick_run(runs), runner)
