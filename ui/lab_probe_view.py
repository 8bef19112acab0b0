"""The Lab page's real-model section: probe SmolLM2 on the shipped facts and show what it knows.

Every number comes from ``core.lab.facts`` / ``core.lab.llm``; this module lays them out. Widget
keys start with ``lb_pr_`` so the settings survive leaving the page.
"""

from __future__ import annotations

import streamlit as st

from core import charts, paths
from core.data import assets
from core.errors import DataError
from core.lab import facts as F
from ui import common
from ui.state import default


@st.cache_resource(show_spinner=False)
def _jobs() -> dict[str, object]:
    return {}  # one probe at a time per home, shared by every session of this app process


def _knobs() -> F.ProbeSettings | None:
    for key, value in (("lb_pr_families", list(F.QUESTIONS)), ("lb_pr_n", 30), ("lb_pr_greedy", 3), ("lb_pr_samples", 6),
                       ("lb_pr_temp", 0.5), ("lb_pr_seed", 0)):  # fmt: skip
        default(key, value)
    c1, c2, c3, c4, c5 = st.columns([3, 1, 1, 1, 1])
    families = c1.multiselect(
        "Facts", list(F.QUESTIONS), format_func=F.FAMILY_WORDS.__getitem__, key="lb_pr_families", persist_state="session"
    )
    n = c2.number_input("Facts asked", 3, 300, step=3, key="lb_pr_n", persist_state="session")
    greedy = c3.number_input("Greedy prompts", 1, 8, key="lb_pr_greedy", persist_state="session", help="Each with other worked examples.")
    samples = c4.number_input(
        "Samples", 1, 32, key="lb_pr_samples", persist_state="session", help="Sampled answers; their agreement is the confidence."
    )
    temp = c5.number_input("Temperature", 0.1, 2.0, step=0.1, key="lb_pr_temp", persist_state="session")
    try:
        return F.ProbeSettings(n_facts=int(n), families=tuple(families), greedy_prompts=int(greedy), samples=int(samples), temperature=float(temp),
                               seed=int(st.session_state["lb_pr_seed"]))  # fmt: skip
    except DataError as err:
        st.error(str(err))
        return None


def probe_section() -> None:
    """Start a probe in the background, follow it, and show the stored probes."""
    st.caption(
        "SmolLM2-135M-Instruct, shipped as a quantised file and run on this machine, answers facts it may or may not have learned "
        "(capitals, element symbols, atomic numbers). Each fact is asked with a few worked examples, greedily and by sampling; "
        "as Gekhman et al. (2024) did, a fact is **known** when every greedy answer is right, **maybe** known when some answer is, "
        "and **unknown** when none is. On a CPU the lab only probes this model; fine-tuning it needs a GPU."
    )
    if not assets.is_ready("smollm2"):
        st.info(f"The model is not fetched yet: {assets.how_to_get(assets.ASSETS['smollm2'])} (`python -m core.data.assets fetch`).")
        return
    home = str(paths.home())
    jobs = _jobs()
    job = jobs.get(home)
    running = job is not None and job.is_alive()  # type: ignore[attr-defined]
    settings = _knobs()
    if st.button("Probe SmolLM2 in the background", key="lb_pr_go", disabled=running or settings is None, type="primary"):
        from core.lab.llm import ProbeJob

        job = jobs[home] = ProbeJob(home, settings)  # type: ignore[arg-type]
        job.start()
        running = True
    if job is not None:
        common.follow_job(job, running, seen_key="lb_pr_seen", doing="Probing", stopped="The probe stopped")
    _results(home)


def _results(home: str) -> None:
    kept = F.probes(home)
    if not kept:
        st.caption("No probe yet. A probe of 30 facts takes a few minutes on a CPU (the first also converts the model, once).")
        return
    names = {r["id"]: f"probe {r['id']} · {r['created']} · {len(r['rows'])} facts" for r in kept}
    pick = st.selectbox("Probe", list(names), format_func=names.__getitem__, key="lb_pr_pick")
    record = next(r for r in kept if r["id"] == pick)
    tau = float(record["settings"].get("tau", 0.9))
    for line in F.findings(record["summary"], tau):
        st.markdown(f"- {line}")
    rows = F.rows_table(record["rows"])
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(charts.probe_confidence(rows, tau=tau), width="stretch")
    c2.dataframe(F.summary_table(record["summary"]).round(3), hide_index=True, width="stretch")
    c2.caption(f"{record['model']} on {record['device']} · {record['seconds']:.0f} s (loading {record['load_seconds']:.0f} s)")
    st.dataframe(rows.round(3), hide_index=True, width="stretch")
    st.caption(" · ".join(f"{F.FAMILY_WORDS[k]}: {v}" for k, v in F.sources().items()))
