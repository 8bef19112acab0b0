"""Train: pick a model, settings and mitigations, see what will happen, start background runs."""

from __future__ import annotations

import dataclasses

import streamlit as st

from core.mitigate.settings import Mitigations
from ui import common, mitigations
from ui.train_preview import plan_of, problems, train_figures, what_will_happen
from ui.train_settings import run_settings

store = common.store()
st.title("🏋️ Train")
st.caption("Fine-tune a pretrained model in the background; metrics stream into the Runs page while you keep working.")

vid, info, ds = common.require_dataset()
figures = train_figures(vid, ds)

st.markdown(f"**Dataset:** {info.label} — {figures.header}")
settings = run_settings(ds, vid)
with st.expander("Mitigations — resampling, loss, augmentation", expanded=True):
    mitigation = mitigations.knobs(
        ds,
        model=settings.model,
        finetune=settings.finetune,
        train_counts=figures.counts,
        tail=figures.tail,
        seed=settings.seed,
        plan=st.session_state.get(f"plan_{vid}"),
        tokens=figures.tokens,
        vid=vid,
    )
cfg = dataclasses.replace(settings, mitigations=mitigation)
found = problems(cfg, ds, figures.counts, tokens=figures.tokens)
what_will_happen(cfg, ds, plan_of(cfg, ds, figures), absent=figures.absent, tokens=figures.tokens is not None)

for problem in found:
    st.error(problem, icon="🚫")
b1, b2 = st.columns([1, 2])
runner = common.runner()
if b1.button("Start training", type="primary", disabled=bool(found), key="start_run"):
    with common.saving():
        run_id = runner.submit(cfg)
    st.session_state["selected_run"] = run_id
    st.session_state["train_notice"] = [run_id]
    st.rerun()
pair_help = "Two runs with the same seed: one without mitigations, one with these. The Compare page opens on the pair, side by side."
if b2.button("Run baseline and mitigated side by side", disabled=bool(found) or not mitigation.active, key="start_pair", help=pair_help):
    baseline = dataclasses.replace(cfg, mitigations=Mitigations())
    with common.saving():
        base = runner.submit(dataclasses.replace(baseline, name=f"{baseline.display_name()} · baseline"))
        mitigated = runner.submit(cfg)
    st.session_state["selected_run"] = mitigated
    st.session_state["cmp_runs"] = [base, mitigated]  # the Compare page opens on this pair
    st.session_state["train_notice"] = [base, mitigated]
    st.rerun()

if (run_ids := st.session_state.pop("train_notice", None)) is not None:
    states = ", ".join(f"#{r} is {store.run(r).status}" for r in run_ids)
    st.success(
        f"Run {states}. Follow {'it' if len(run_ids) == 1 else 'them'} live on the Runs page — runs keep going while you use other pages."
    )
    st.page_link("app_pages/runs.py", label=f"Open run #{run_ids[-1]}", icon="📈")
    if len(run_ids) == 2:
        st.page_link("app_pages/compare.py", label=f"Compare #{run_ids[0]} and #{run_ids[1]}", icon="⚖️")
