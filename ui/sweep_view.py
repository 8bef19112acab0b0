"""The Simulate page's severity sweeps: the form that starts one (a knob, its severities, epochs, a
mitigation overlaid) and, for a sweep chosen among this dataset's, its progress and metric lines."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import charts
from core.errors import DataError
from core.mitigate.presets import PRESETS
from core.simulate import sweep
from core.simulate.recipe import Recipe
from core.store import Store, VersionInfo
from ui import common
from ui.state import default

NONE = "(none)"
OVERLAYS = [NONE, *[p for p in PRESETS if p != "baseline"]]


def sweep_form(store: Store, info: VersionInfo, source: int, base: Recipe) -> None:
    """Knob, severities, epochs and a mitigation; the button queues a version and runs per severity."""
    st.subheader("Severity sweep")
    st.caption(
        "One simulated version per severity of one knob (on top of the recipe above), a short run on each, and the metrics against "
        "severity. With a preset, each severity also gets a mitigated run with the same seed."
    )
    default("sm_knob", "long_tail", allowed=list(sweep.KNOBS))
    k1, k2, k3, k4 = st.columns([2, 2, 1, 2])
    knob = str(
        k1.selectbox(
            "Knob",
            list(sweep.KNOBS),
            key="sm_knob",
            persist_state="session",
            format_func=lambda k: f"{sweep.KNOBS[k][0]} — {sweep.KNOBS[k][2]}",
        )
    )
    default(f"sm_sev_{knob}", sweep.default_severities(knob))
    raw = k2.text_input("Severities (2–6, comma-separated)", key=f"sm_sev_{knob}", persist_state="session")
    default("sm_epochs", 3)
    k3.number_input("Epochs", 1, 50, key="sm_epochs", persist_state="session")
    default("sm_preset", NONE, allowed=OVERLAYS)
    overlay = k4.selectbox(
        "Mitigation overlaid", OVERLAYS, key="sm_preset", persist_state="session", format_func=lambda p: p if p == NONE else PRESETS[p]
    )
    severities, problem = sweep.parse_severities(raw)
    if problem:
        st.warning(problem, icon="⚠️")
    n_runs = sweep.n_runs(severities, mitigated=overlay != NONE)
    if not st.button(f"Run the sweep ({n_runs} runs)", disabled=bool(problem), key="simulate_sweep"):
        return
    bar = st.progress(0.0, text="Simulating…")
    seed, epochs = int(st.session_state["sm_seed"]), int(st.session_state["sm_epochs"])
    preset = None if overlay == NONE else str(overlay)

    def report(done: int, total: int, text: str) -> None:
        bar.progress(done / total, text=text)

    try:
        config = sweep.fast_config(info.modality, epochs=epochs, seed=seed)
        sweep.start_sweep(
            store, common.runner(), source, knob=knob, severities=severities, base=base, config=config, preset=preset, progress=report
        )
    except DataError as err:
        st.error(f"The sweep stopped: {err}")
    bar.empty()


def sweep_picker(store: Store, info: VersionInfo) -> None:
    """This dataset's sweeps (any of its versions); the chosen one drawn live."""
    sweeps = sweep.sweeps_of(store, info.dataset_id)
    if not sweeps:
        st.caption("No sweep of this dataset yet.")
        return
    by_id = {sw["id"]: sw for sw in sweeps}
    chosen = st.selectbox(
        "Sweep", list(by_id), key="sm_sweep_pick", persist_state="session", format_func=lambda i: f"#{i} · {by_id[i]['name']}"
    )
    sweep_live(store, by_id[chosen if chosen is not None else sweeps[0]["id"]])


@st.fragment(run_every=3.0)
def sweep_live(store: Store, chosen: dict[str, Any]) -> None:
    """Runs finished, a line per metric against severity (or why it has none), failures, and the runs."""
    table = sweep.sweep_results(store, chosen)
    done, share, text = sweep.progress(table)
    st.progress(share, text=text)
    cols = st.columns(2)
    x_title = sweep.KNOBS[chosen["params"]["knob"]][0]
    for i, metric in enumerate(sweep.METRICS):
        note = sweep.metric_note(table, metric, done)
        if note is None:
            figure = charts.sweep_lines(table, metric, x_title=x_title, title=sweep.title(metric))
            cols[i % 2].plotly_chart(figure, width="stretch", key=f"sweep_{chosen['id']}_{metric}")
        else:
            cols[i % 2].info(note)
    for line in sweep.failures(table):
        st.error(line)
    with st.expander("Runs of this sweep"):
        titles = {m: charts.metric_title(m) for m in sweep.METRICS}
        st.dataframe(sweep.runs_table(table, titles), hide_index=True, width="stretch")
