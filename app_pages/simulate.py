"""Simulate: make the current dataset incomplete on purpose (long tail, dropped classes, label
noise, duplicates, a thinned slice), preview it, save it as a version; sweep a severity and watch
hallucination grow; check the detector against the simulator's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import charts
from core.data.slices import slice_columns
from core.diagnose.pipeline import DiagnoseConfig, diagnose, is_cached
from core.diagnose.pipeline import estimate_seconds as diagnosis_seconds
from core.errors import DataError
from core.mitigate.presets import PRESETS
from core.simulate.corrupt import plan_recipe
from core.simulate.grade import grade
from core.simulate.recipe import IMBALANCES, NOISE_KINDS, Recipe
from core.simulate.sweep import KNOBS, METRICS, fast_config, start_sweep, sweep_results
from core.simulate.versions import recipe_of, save_simulated
from ui import common
from ui.state import default

RATIOS = [1, 2, 5, 10, 20, 50, 100, 200]
#: why a finished sweep can leave a metric without a value
EMPTY_BECAUSE = {"forced_known_rate": "It applies only where the test split has classes missing from train (dropped classes)."}
TITLES = {"hallucination_rate": "Hallucination rate @τ", "forced_known_rate": "Forced-known rate @τ", "ece": "ECE", "macro_f1": "Macro-F1"}

store = common.store()
st.title("🧪 Simulate")
st.caption(
    "Make a clean dataset incomplete on purpose and watch what it does to the model. Only the train split changes; "
    "val and test stay clean, so every version is scored on the same items."
)
vid = common.current_version()
if vid is None:
    st.info("No dataset yet. Open a demo on the Data page first.")
    st.page_link("app_pages/data.py", label="Go to Data", icon="📊")
    st.stop()
current = store.version(vid)
truth = recipe_of(store, vid)  # the current version was simulated: recipes start from its clean parent
source = int(current.parent_id) if truth is not None and current.parent_id is not None else vid
info = store.version(source)
ds = common.dataset(source)
names = [str(c) for c in ds.class_names]
st.markdown(f"**From:** {info.label} — {len(ds):,} items, {ds.n_classes} classes")
if source != vid:
    st.caption(f"The current dataset ({current.label}) was simulated from this one; recipes and sweeps start from it.")

# ---------------------------------------------------------------------- the recipe
default("sm_imbalance", "long_tail", allowed=list(IMBALANCES))
default("sm_ratio", 10, allowed=RATIOS)
default("sm_minority", 0.5)
default("sm_drop", [], allowed=None)
st.session_state["sm_drop"] = [c for c in st.session_state["sm_drop"] if c in names]
default("sm_noise_kind", "symmetric", allowed=[k for k in NOISE_KINDS])
default("sm_noise", 0.0)
default("sm_dup", 0.0)
default("sm_seed", 0)
slices = {col: sorted(set(values.tolist())) for col, values in slice_columns(ds.meta).items()}
default("sm_thin_col", "(none)", allowed=["(none)", *slices])
default("sm_thin_keep", 0.2)

c1, c2, c3 = st.columns(3)
with c1:
    st.markdown("**Imbalance**")
    imbalance = st.radio("Profile", list(IMBALANCES), key="sm_imbalance", format_func=IMBALANCES.get, horizontal=True)
    st.select_slider("Imbalance ratio to add (most kept ÷ least kept)", RATIOS, key="sm_ratio", disabled=imbalance == "none",
                     help="Long tail: class k of K keeps ratio^(−k/(K−1)) of its train items. Step: the rare classes keep 1/ratio. "
                          "On a balanced dataset the result's largest ÷ smallest class is this ratio; on an imbalanced one it "
                          "multiplies the imbalance already there. The preview shows the result.")  # fmt: skip
    if imbalance == "step":
        st.slider("Share of classes that become rare", 0.1, 0.9, step=0.1, key="sm_minority")
    st.multiselect("Drop these classes from train", names, key="sm_drop",
                   help="They stay in val and test: classes the model never saw, scored by the forced-known rate.")  # fmt: skip
with c2:
    st.markdown("**Label noise**")
    kind = st.selectbox("Kind", list(NOISE_KINDS), key="sm_noise_kind", format_func=lambda k: f"{k} — {NOISE_KINDS[k]}")
    matrix: tuple[tuple[float, ...], ...] = ()
    if kind == "matrix":
        st.caption("Column j: where the train items of true class j go (P(given | true)); each column sums to 1.")
        default("sm_matrix", pd.DataFrame(np.eye(ds.n_classes), index=names, columns=names), allowed=None)
        if list(st.session_state["sm_matrix"].columns) != names:
            st.session_state["sm_matrix"] = pd.DataFrame(np.eye(ds.n_classes), index=names, columns=names)
        edited = st.data_editor(st.session_state["sm_matrix"], key="simulate_matrix_editor", width="stretch")
        st.session_state["sm_matrix"] = edited
        matrix = tuple(tuple(float(x) for x in row) for row in edited.to_numpy())
    else:
        st.slider("Share of each class's train labels made wrong", 0.0, 0.6, step=0.05, key="sm_noise")
with c3:
    st.markdown("**Duplicates and slices**")
    st.slider("Share of train items duplicated", 0.0, 1.0, step=0.05, key="sm_dup")
    column = st.selectbox("Thin a slice", ["(none)", *slices], key="sm_thin_col",
                          help="Keep only part of the train items of one slice value, e.g. one VADER domain.")  # fmt: skip
    value = ""
    if column != "(none)":
        value = st.selectbox("Value", slices[column], key=f"sm_thin_val_{column}")
        st.slider("Share of that slice kept", 0.0, 1.0, step=0.05, key="sm_thin_keep")
    st.number_input("Seed", 0, 10_000, key="sm_seed")

s = st.session_state
try:
    recipe = Recipe(
        imbalance=imbalance, ratio=float(s["sm_ratio"]), minority_share=float(s["sm_minority"]), drop_classes=tuple(s["sm_drop"]),
        noise_kind=kind, noise_rate=0.0 if kind == "matrix" else float(s["sm_noise"]), noise_matrix=matrix,
        duplicate_share=float(s["sm_dup"]), thin_column="" if column == "(none)" else column, thin_value=str(value),
        thin_keep=float(s["sm_thin_keep"]) if column != "(none)" else 1.0, seed=int(s["sm_seed"]),
    )  # fmt: skip
    plan = plan_recipe(ds, recipe)
    problem = None
except DataError as err:
    recipe, plan, problem = None, None, str(err)

# ---------------------------------------------------------------------- preview
st.subheader("Preview")
if problem:
    st.warning(problem, icon="⚠️")
elif plan is not None and recipe is not None:
    before = {names[c]: float(n) for c, n in enumerate(plan.counts_before)}
    after = {names[c]: float(n) for c, n in enumerate(plan.counts_after)}
    p1, p2 = st.columns([3, 2])
    p1.plotly_chart(charts.counts_before_after(before, after, title="Train items per class", names=("now", "after the recipe")),
                    width="stretch", key="sm_counts")  # fmt: skip
    kept = plan.counts_after[plan.counts_after > 0]
    train_rows = (ds.split[plan.rows] == 0) & (plan.labels >= 0)
    p2.metric("Train items", f"{int(plan.counts_after.sum()):,}", delta=f"{int(plan.counts_after.sum() - plan.counts_before.sum()):+,}")
    p2.metric("Imbalance ratio (given labels)", f"{kept.max() / kept.min():,.1f}" if len(kept) else "—")
    p2.metric("Wrong train labels", f"{int(plan.noisy[train_rows].sum()):,}")
    p2.metric("Duplicated items", f"{int((plan.duplicate_of >= 0).sum()):,}")
    st.caption(recipe.summary() + ". Val and test are unchanged.")
    if st.button("Create this version", type="primary", disabled=not recipe.active, key="simulate_create"):
        with st.spinner("Writing the version…"), common.saving():
            new = save_simulated(store, source, recipe, dataset=ds)
        common.set_current_version(new)
        st.session_state["sm_notice"] = new
        st.rerun()
if (new := st.session_state.pop("sm_notice", None)) is not None:
    st.success(f"Saved {store.version(new).label} and made it the current dataset. Train on it, or sweep a severity below.")

# ---------------------------------------------------------------------- detector self-check
simulated = common.dataset(vid) if truth is not None else None
if simulated is not None and "sim_noisy" in simulated.meta.columns and bool(simulated.meta["sim_noisy"].any()):
    st.subheader("Detector self-check")
    st.caption(f"{current.label} was simulated, so we know which labels are wrong: how many does the Diagnose detector find?")
    cfg = DiagnoseConfig()
    if is_cached(simulated, cfg) or st.button(
        f"Check the detector (about {diagnosis_seconds(simulated):,.0f} s, once)", key="simulate_check"
    ):
        bar = st.progress(0.0, text="Starting…")
        result = diagnose(
            simulated, cfg, progress=lambda stage, frac: bar.progress(min(max(frac, 0.0), 1.0), text=stage.capitalize() + "…")
        )
        bar.empty()
        g = grade(
            result.issues.is_issue, simulated.meta["sim_noisy"].to_numpy(dtype=bool), among=(simulated.split == 0) & simulated.labelled
        )
        g1, g2, g3, g4 = st.columns(4)
        g1.metric("Wrong labels (truth)", f"{g.corrupted:,}")
        g2.metric("Flagged by the detector", f"{g.flagged:,}")
        g3.metric(
            "Precision", f"{g.precision:.1%}" if np.isfinite(g.precision) else "—", help="Share of the flagged items that are really wrong."
        )
        g4.metric("Recall", f"{g.recall:.1%}" if np.isfinite(g.recall) else "—", help="Share of the wrong labels the detector found.")

# ---------------------------------------------------------------------- severity sweep
st.subheader("Severity sweep")
st.caption(
    "One simulated version per severity of one knob (on top of the recipe above), a short run on each, and the metrics against "
    "severity. With a preset, each severity also gets a mitigated run with the same seed."
)
default("sm_knob", "long_tail", allowed=list(KNOBS))
k1, k2, k3, k4 = st.columns([2, 2, 1, 2])
knob = k1.selectbox("Knob", list(KNOBS), key="sm_knob", format_func=lambda k: f"{KNOBS[k][0]} — {KNOBS[k][2]}")
default(f"sm_sev_{knob}", ", ".join(f"{v:g}" for v in KNOBS[knob][1]))
raw = k2.text_input("Severities (2–6, comma-separated)", key=f"sm_sev_{knob}")
default("sm_epochs", 3)
k3.number_input("Epochs", 1, 50, key="sm_epochs")
default("sm_preset", "(none)", allowed=["(none)", *[p for p in PRESETS if p != "baseline"]])
overlay = k4.selectbox("Mitigation overlaid", ["(none)", *[p for p in PRESETS if p != "baseline"]], key="sm_preset",
                       format_func=lambda p: p if p == "(none)" else PRESETS[p])  # fmt: skip
try:
    severities = [float(v) for v in raw.replace(";", ",").split(",") if v.strip()]
    sweep_problem = None if 2 <= len(severities) <= 6 else "Give 2 to 6 severities."
except ValueError:
    severities, sweep_problem = [], "Severities are numbers separated by commas, e.g. 0, 0.1, 0.2, 0.3."
base = recipe or Recipe(seed=int(s["sm_seed"]))
if sweep_problem:
    st.warning(sweep_problem, icon="⚠️")
n_runs = len(severities) * (2 if overlay != "(none)" else 1)
if st.button(f"Run the sweep ({n_runs} runs)", disabled=bool(sweep_problem), key="simulate_sweep"):
    bar = st.progress(0.0, text="Simulating…")
    try:
        config = fast_config(info.modality, epochs=int(s["sm_epochs"]), seed=int(s["sm_seed"]))
        start_sweep(store, common.runner(), source, knob=knob, severities=severities,
                    base=base, config=config, preset=None if overlay == "(none)" else overlay,
                    progress=lambda done, total, text: bar.progress(done / total, text=text))  # fmt: skip
    except DataError as err:
        st.error(f"The sweep stopped: {err}")
    bar.empty()

family = {v.id for v in store.versions(info.dataset_id, include_archived=True)}
sweeps = [sw for sw in store.sweeps() if sw["version_id"] in family]


@st.fragment(run_every=3.0)
def sweep_view(sweep: dict) -> None:
    table = sweep_results(store, sweep)
    done, failed = int((table["ended"] & ~table["failed"]).sum()), table[table["failed"]]
    st.progress(
        done / max(len(table), 1), text=f"{done} of {len(table)} runs finished" + (f", {len(failed)} failed" if len(failed) else "")
    )
    cols = st.columns(2)
    for i, metric in enumerate(METRICS):
        if table[metric].notna().any():
            cols[i % 2].plotly_chart(charts.sweep_lines(table, metric, x_title=KNOBS[sweep["params"]["knob"]][0], title=TITLES[metric]),
                                     width="stretch", key=f"sweep_{sweep['id']}_{metric}")  # fmt: skip
        elif done < len(table):
            cols[i % 2].info(f"**{TITLES[metric]}** appears as the runs are evaluated.")
        else:
            cols[i % 2].info(f"**{TITLES[metric]}**: no run has a value. {EMPTY_BECAUSE.get(metric, '')}")
    for _, row in failed.iterrows():
        st.error(f"Run #{row['run_id']} ({row['arm']}, severity {row['severity']:g}) failed: {str(row['message'])[-400:]}")
    with st.expander("Runs of this sweep"):
        shown = table.drop(columns=["ended", "failed"])
        shown[list(METRICS)] = shown[list(METRICS)].map(lambda v: "—" if pd.isna(v) else f"{v:.4f}")  # st.dataframe would say "None"
        names = {"run_id": "run", "version_id": "version", **{m: charts.metric_title(m) for m in METRICS}}
        st.dataframe(shown.rename(columns=names), hide_index=True, width="stretch")


if sweeps:
    chosen = st.selectbox("Sweep", [sw["id"] for sw in sweeps], key="sm_sweep_pick",
                          format_func=lambda i: next(f"#{sw['id']} · {sw['name']}" for sw in sweeps if sw["id"] == i))  # fmt: skip
    sweep_view(next(sw for sw in sweeps if sw["id"] == chosen))
else:
    st.caption("No sweep of this dataset yet.")
