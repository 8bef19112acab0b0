"""The Runs page's list of every run (``core.compare.runs.run_list``), redrawn while runs move, and
the picker of the run shown below it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from core.compare.runs import default_run, run_list
from core.store import RunRow
from ui import common

SEEN = "runs_seen_status"  # session key: each run's status when the page was last drawn


@st.fragment(run_every=2.0)
def run_table() -> None:
    store = common.store()
    rows = store.runs()
    seen = {r.id: str(r.status) for r in rows}
    if st.session_state.get(SEEN, seen) != seen:  # a run started or ended since the page was drawn:
        st.session_state[SEEN] = seen  # redraw the picker's labels and the sidebar's counts too
        st.rerun(scope="app")
    st.session_state[SEEN] = seen
    st.dataframe(
        run_list(rows, {v.id: v.label for v in store.versions()}), hide_index=True, width="stretch",
        column_order=COLUMNS, column_config=column_config(),
    )  # fmt: skip


#: The list's columns, left to right: what a run is and how far it got first, so a long dataset
#: name never pushes status and progress off the screen.
COLUMNS = ("run", "name", "status", "progress", "message", "dataset", "started")
_CUT = "A long one ends in “…” here: widen the column by dragging its edge, or double-click the cell, to read it whole."


def column_config() -> dict[str, Any]:
    """Fixed widths for the text columns (long text ends in "…"), their help on the header."""
    return {
        "run": st.column_config.NumberColumn("run", width="small", format="%d"),
        "name": st.column_config.TextColumn("name", width="medium", help="The run's name (the run picker below shows it whole). " + _CUT),
        "status": st.column_config.TextColumn("status", width="small"),
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent", width="small"),
        "message": st.column_config.TextColumn("message", width="medium", help="What the run is doing now, or why it ended."),
        "dataset": st.column_config.TextColumn("dataset", width="medium", help="The dataset version the run trained on. " + _CUT),
        "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
    }


def pick_run(runs: Sequence[RunRow]) -> int:
    """The run to show: the one asked for (a Train page link), else one training now, else the newest."""
    ids = [r.id for r in runs]
    names = {r.id: r.name for r in runs}
    chosen = default_run(runs, st.session_state.get("selected_run"))
    picked = st.selectbox(
        "Run", ids, index=ids.index(chosen), key="runs_pick",
        # no status in the label: the browser keeps an option's text while the run moves on (the heading says it)
        format_func=lambda i: f"#{i} · {names[i]}",
    )  # fmt: skip
    st.session_state["selected_run"] = picked
    return int(picked)
