"""The Lab page's fine-tuning section: teach SmolLM2 facts it knew and facts it did not, from a
stored probe, and see what that does to the facts it was not taught (Gekhman et al. 2024).

Every number comes from ``core.lab.finetune`` / ``core.lab.llm``; this module lays them out. Widget
keys start with ``lb_tu_`` so the settings survive leaving the page.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core import charts, paths
from core.errors import DataError
from core.lab import facts as F
from core.lab import finetune as T
from ui import common
from ui.state import default

LRS = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4)


@st.cache_resource(show_spinner=False)
def _jobs() -> dict[str, object]:
    return {}  # one fine-tuning at a time per home, shared by every session of this app process


def _knobs(probes: list[dict[str, Any]]) -> T.TuneSettings | None:
    names = {r["id"]: f"probe {r['id']} · {len(r['rows'])} facts · " + _shares(r) for r in probes}
    for key, value in (("lb_tu_share", 0.5), ("lb_tu_held", 0.4), ("lb_tu_idk", False), ("lb_tu_epochs", 8), ("lb_tu_lr", 5e-5),
                       ("lb_tu_seed", 0)):  # fmt: skip
        default(key, value)
    default("lb_tu_probe", probes[0]["id"], allowed=list(names))
    c1, c2, c3 = st.columns([3, 2, 2])
    probe = c1.selectbox("From the probe", list(names), format_func=names.__getitem__, key="lb_tu_probe", persist_state="session")
    share = c2.slider("Share of unknown facts", 0.0, 1.0, step=0.25, key="lb_tu_share", persist_state="session",
                      help="Of the facts fine-tuned on, the share the probe found unknown; known and maybe facts make up the rest.")  # fmt: skip
    held = c3.slider("Held out of each category", 0.0, 0.8, step=0.1, key="lb_tu_held", persist_state="session",
                     help="Never fine-tuned on: asked again after fine-tuning, to see what it did to them.")  # fmt: skip
    c4, c5, c6 = st.columns([3, 2, 2])
    idk = c4.toggle("Teach the unknown facts “I don't know”", key="lb_tu_idk", persist_state="session",
                    help="Abstention training (as R-Tuning): the unknown facts are taught to be declined instead of answered.")  # fmt: skip
    epochs = c5.number_input("Epochs", 1, 100, key="lb_tu_epochs", persist_state="session")
    lr = c6.select_slider("Learning rate", LRS, key="lb_tu_lr", format_func=lambda v: f"{v:g}", persist_state="session")
    try:
        settings = T.TuneSettings(probe_id=int(probe), unknown_share=float(share), held_out=float(held), idk=bool(idk), epochs=int(epochs),
                                  lr=float(lr), eval_every=max(1, int(epochs) // 4), seed=int(st.session_state["lb_tu_seed"]))  # fmt: skip
        record = next(r for r in probes if r["id"] == probe)
        roles = T.plan([r["category"] for r in record["rows"]], settings).tolist()
    except DataError as err:
        st.error(str(err))
        return None
    cats = [r["category"] for r in record["rows"]]
    n_tuned, n_unknown = roles.count("tuned"), sum(1 for r, c in zip(roles, cats) if r == "tuned" and c == "unknown")
    st.caption(f"Fine-tunes on {n_tuned} facts ({n_unknown} unknown, {n_tuned - n_unknown} known or maybe); {roles.count('held')} are held out "
               f"and {roles.count('unused')} not chosen — all asked again afterwards.")  # fmt: skip
    return settings


def _shares(record: dict[str, Any]) -> str:
    s = record["summary"]
    return " · ".join(f"{c} {s[c]['share']:.0%}" for c in F.CATEGORIES if c in s)


def tune_section() -> None:
    """Start a fine-tuning in the background (on a GPU), follow it, and show the stored ones."""
    st.caption(
        "Gekhman et al. (2024) fine-tuned a model on questions it knew and questions it did not, and found the unknown ones "
        "learned late — and, once learned, followed by more confident wrong answers on other facts. Fine-tune SmolLM2 on a "
        "probe's facts with the share of unknown ones you choose, and ask the probe again: on the facts it was taught, and on "
        "those held out."
    )
    home = str(paths.home())
    probes = F.probes(home)
    if not probes:
        st.info("Probe the model above first: fine-tuning starts from a probe's facts and what it found the model knows.")
        return
    jobs = _jobs()
    job = jobs.get(home)
    running = job is not None and job.is_alive()  # type: ignore[attr-defined]
    settings = _knobs(probes)
    gpu = common.gpu_count() > 0
    if not gpu:
        st.info(
            "Fine-tuning SmolLM2 needs a GPU, and this machine has none: on a CPU the lab only probes. "
            "`benchmarks/bench_lab_tune.py --cpu` fine-tunes on a CPU all the same (minutes per run)."
        )
    if st.button("Fine-tune SmolLM2 in the background", key="lb_tu_go", disabled=running or settings is None or not gpu, type="primary"):
        from core.lab.llm import TuneJob

        job = jobs[home] = TuneJob(home, settings)  # type: ignore[arg-type]
        job.start()
        running = True
    if job is not None:
        common.follow_job(job, running, seen_key="lb_tu_seen", doing="Fine-tuning", stopped="The fine-tuning stopped")
    _results(home)


def _results(home: str) -> None:
    kept = F.records(home, folder=F.TUNES_DIR, prefix="tune")
    if not kept:
        return
    names = {r["id"]: f"fine-tuning {r['id']} · {r['created']} · from probe {r['probe']}" for r in kept}
    pick = st.selectbox("Fine-tuning", list(names), format_func=names.__getitem__, key="lb_tu_pick")
    record = next(r for r in kept if r["id"] == pick)
    for line in T.tune_findings(record):
        st.markdown(f"- {line}")
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(charts.tune_lines(T.history_frame(record["history"])), width="stretch")
    table = pd.DataFrame(record["table"])
    c2.dataframe(table.round(3), hide_index=True, width="stretch")
    c2.caption(f"{record['model']} on {record['device']} · fine-tuning {record['train_seconds']:.0f} s, all {record['seconds']:.0f} s")
    facts = pd.DataFrame({
        "question": [r["question"] for r in record["before"]], "truth": [r["truth"] for r in record["before"]],
        "category": record["categories"], "role": [T.ROLE_WORDS[r] for r in record["roles"]], "taught": record["targets"],
        "before": [r["answer"] for r in record["before"]], "after": [r["answer"] for r in record["after"]],
        "confidence after": [r["confidence"] for r in record["after"]], "right after": [r["right"] for r in record["after"]],
    })  # fmt: skip
    st.dataframe(facts.round(3), hide_index=True, width="stretch")
