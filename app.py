"""Gapscope: find the gaps in your training data before your model fills them with confident nonsense.

    streamlit run app.py      (./gapscope.sh run sets everything up first)
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `core` and `ui` import from any cwd

from ui import common  # noqa: E402

st.set_page_config(page_title="Gapscope", page_icon="🔭", layout="wide")

HERE = Path(__file__).resolve().parent
pages = [
    st.Page(str(HERE / "pages" / "home.py"), title="Home", icon="🏠", default=True),
    st.Page(str(HERE / "pages" / "data.py"), title="Data", icon="📊"),
]


def sidebar() -> None:
    store = common.store()
    versions = store.versions()
    with st.sidebar:
        st.markdown("### 🔭 Gapscope")
        if versions:
            ids = [v.id for v in versions]
            labels = {v.id: v.label for v in versions}
            current = common.current_version()
            chosen = st.selectbox(
                "Dataset", ids, index=ids.index(current), format_func=labels.get, key="sidebar_dataset",
                help="Every import, cleaning or simulation is a version; nothing is edited in place.",
            )
            if chosen != current:
                common.set_current_version(chosen)
        else:
            st.caption("No dataset yet — open one on the Data page.")
        try:
            device = common.device().label
        except Exception as err:  # torch missing or broken: say so, keep the app usable
            device = f"unavailable ({type(err).__name__})"
        st.caption(f"**Device:** {device}")
        counts = store.run_counts()
        running, queued = counts.get("running", 0), counts.get("queued", 0)
        state = "busy" if running else "idle"
        st.caption(f"**Runner:** {state} · {running} running · {queued} queued · {sum(counts.values())} runs stored")
        st.caption(f"Home: `{store.home}`")


page = st.navigation(pages)
sidebar()
page.run()
