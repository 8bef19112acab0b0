"""Gapscope: find the gaps in your training data before your model fills them with confident nonsense.

streamlit run app.py      (./gapscope.sh run sets everything up first)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# torch's OpenMP threads spin while waiting by default; beside Streamlit and a training worker on a
# small machine that makes embeddings 2–3× slower (measured: benchmarks/bench_features.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `core` and `ui` import from any cwd

from ui import access, common, sidebar, state

st.set_page_config(page_title="Gapscope", page_icon="🔭", layout="wide")

HERE = Path(__file__).resolve().parent
pages = [
    st.Page(str(HERE / "app_pages" / "home.py"), title="Home", icon="🏠", default=True),
    st.Page(str(HERE / "app_pages" / "data.py"), title="Data", icon="📊"),
    st.Page(str(HERE / "app_pages" / "diagnose.py"), title="Diagnose", icon="🩺"),
    st.Page(str(HERE / "app_pages" / "simulate.py"), title="Simulate", icon="🧪"),
    st.Page(str(HERE / "app_pages" / "train.py"), title="Train", icon="🏋️"),
    st.Page(str(HERE / "app_pages" / "runs.py"), title="Runs", icon="📈"),
    st.Page(str(HERE / "app_pages" / "compare.py"), title="Compare", icon="⚖️"),
    st.Page(str(HERE / "app_pages" / "shift.py"), title="Shift", icon="🌊"),
    st.Page(str(HERE / "app_pages" / "select.py"), title="Selection", icon="🎯"),
    st.Page(str(HERE / "app_pages" / "lab.py"), title="Lab", icon="🧠"),
]


# the page is chosen from the URL before the login, so signing in on /runs lands on Runs; the
# page list stays hidden until then
page = st.navigation(pages, position="sidebar" if access.allowed() else "hidden")
access.gate()  # a login when one is configured; a loud warning when exposed without one
state.keep_settings()  # page settings survive a visit to another page
sidebar.render()
common.show_save_error()  # a write a button asked for and the store refused (read-only home, full disk)
page.run()
