"""The Simulate page's recipe: its widgets (imbalance, label noise, duplicates, a thinned slice), the
preview of what it does to the train split, saving it as a version, and the detector's self-check
on a simulated version."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import charts
from core.data.dataset import Dataset
from core.diagnose.pipeline import DiagnoseConfig, is_cached
from core.diagnose.pipeline import estimate_seconds as diagnosis_seconds
from core.errors import DataError
from core.simulate.corrupt import Plan, plan_recipe
from core.simulate.grade import grade_detector, has_noise_truth
from core.simulate.recipe import IMBALANCES, NOISE_KINDS, Recipe
from core.simulate.recipe_preview import (
    grade_figures,
    identity_matrix,
    matrix_rows,
    per_class,
    plan_figures,
    ratio_steps,
    ratio_words,
    slice_values,
)
from core.simulate.versions import save_simulated
from core.store import Store, VersionInfo
from ui import common
from ui import diagnosis as diagnosis_ui
from ui.state import default

RATIOS = [1, 2, 5, 10, 20, 50, 100, 200]
NONE = "(none)"
NOTICE = "simulate_notice"  # session key: the version just saved, said on the next run (not a setting: no sm_)
RATIO_HELP = (
    "Long tail: class k of K keeps ratio^(−k/(K−1)) of its train items. Step: the rare classes keep 1/ratio. "
    "On a balanced dataset the result's largest ÷ smallest class is this ratio; on an imbalanced one it "
    "multiplies the imbalance already there. The preview shows the result."
)
DROP_HELP = "They stay in val and test: classes the model never saw, scored by the forced-known rate."
THIN_HELP = "Keep only part of the train items of one slice value, e.g. one VADER domain."


def _defaults(names: list[str], slices: dict[str, list[str]]) -> None:
    default("sm_imbalance", "long_tail", allowed=list(IMBALANCES))
    default("sm_ratio", 10, allowed=RATIOS)
    default("sm_minority", 0.5)
    default("sm_drop", [], allowed=None)
    st.session_state["sm_drop"] = [c for c in st.session_state["sm_drop"] if c in names]  # another dataset's classes go
    default("sm_noise_kind", "symmetric", allowed=list(NOISE_KINDS))
    default("sm_noise", 0.0)
    default("sm_dup", 0.0)
    default("sm_seed", 0)
    default("sm_thin_col", NONE, allowed=[NONE, *slices])
    default("sm_thin_keep", 0.2)


def _imbalance(names: list[str]) -> str:
    st.markdown("**Imbalance**")
    imbalance = str(
        st.radio(
            "Profile", list(IMBALANCES), key="sm_imbalance", persist_state="session", format_func=lambda k: IMBALANCES[k], horizontal=True
        )
    )
    ratio = "Imbalance ratio to add (most kept ÷ least kept)"
    st.select_slider(ratio, RATIOS, key="sm_ratio", persist_state="session", disabled=imbalance == "none", help=RATIO_HELP)
    if imbalance == "step":
        st.slider("Share of classes that become rare", 0.1, 0.9, step=0.1, key="sm_minority", persist_state="session")
    st.multiselect("Drop these classes from train", names, key="sm_drop", persist_state="session", help=DROP_HELP)
    return imbalance


def _noise(names: list[str]) -> tuple[str, tuple[tuple[float, ...], ...]]:
    st.markdown("**Label noise**")
    kind = str(
        st.selectbox(
            "Kind", list(NOISE_KINDS), key="sm_noise_kind", persist_state="session", format_func=lambda k: f"{k} — {NOISE_KINDS[k]}"
        )
    )
    if kind != "matrix":
        st.slider("Share of each class's train labels made wrong", 0.0, 0.6, step=0.05, key="sm_noise", persist_state="session")
        return kind, ()
    st.caption("Column j: where the train items of true class j go (P(given | true)); each column sums to 1.")
    default("sm_matrix", identity_matrix(names), allowed=None)
    if list(st.session_state["sm_matrix"].columns) != names:
        st.session_state["sm_matrix"] = identity_matrix(names)
    edited: pd.DataFrame = st.data_editor(st.session_state["sm_matrix"], key="simulate_matrix_editor", width="stretch")
    st.session_state["sm_matrix"] = edited
    return kind, matrix_rows(edited)


def _copies_and_slices(slices: dict[str, list[str]]) -> tuple[str, str]:
    st.markdown("**Duplicates and slices**")
    st.slider("Share of train items duplicated", 0.0, 1.0, step=0.05, key="sm_dup", persist_state="session")
    column = str(st.selectbox("Thin a slice", [NONE, *slices], key="sm_thin_col", persist_state="session", help=THIN_HELP))
    value = ""
    if column != NONE:
        value = str(st.selectbox("Value", slices[column], key=f"sm_thin_val_{column}", persist_state="session"))
        st.slider("Share of that slice kept", 0.0, 1.0, step=0.05, key="sm_thin_keep", persist_state="session")
    st.number_input("Seed", 0, 10_000, key="sm_seed", persist_state="session")
    return ("" if column == NONE else column), value


def recipe_form(ds: Dataset) -> tuple[Recipe | None, Plan | None, str | None]:
    """The recipe the widgets describe and what it does to ``ds`` — or why it cannot work."""
    names = [str(c) for c in ds.class_names]
    slices = slice_values(ds.meta)
    _defaults(names, slices)
    c1, c2, c3 = st.columns(3)
    with c1:
        imbalance = _imbalance(names)
    with c2:
        kind, matrix = _noise(names)
    with c3:
        column, value = _copies_and_slices(slices)
    s = st.session_state
    try:
        recipe = Recipe(
            imbalance=imbalance,
            ratio=float(s["sm_ratio"]),
            minority_share=float(s["sm_minority"]),
            drop_classes=tuple(s["sm_drop"]),
            noise_kind=kind,
            noise_rate=0.0 if kind == "matrix" else float(s["sm_noise"]),
            noise_matrix=matrix,
            duplicate_share=float(s["sm_dup"]),
            thin_column=column,
            thin_value=value,
            thin_keep=float(s["sm_thin_keep"]) if column else 1.0,
            seed=int(s["sm_seed"]),
        )
        return recipe, plan_recipe(ds, recipe), None
    except DataError as err:
        return None, None, str(err)


def preview(store: Store, source: int, ds: Dataset, recipe: Recipe | None, plan: Plan | None, problem: str | None) -> None:
    """Train items per class now and after the recipe, its figures, and a button that saves it."""
    st.subheader("Preview")
    if problem:
        st.warning(problem, icon="⚠️")
    elif plan is not None and recipe is not None:
        names = [str(c) for c in ds.class_names]
        before, after = per_class(names, plan.counts_before), per_class(names, plan.counts_after)
        p1, p2 = st.columns([3, 2])
        figure = charts.counts_before_after(before, after, title="Train items per class", names=("now", "after the recipe"))
        p1.plotly_chart(figure, width="stretch", key="sm_counts")
        for f in plan_figures(ds, plan):
            p2.metric(f.label, f.value, delta=f.delta)
        st.caption(recipe.summary() + ". Val and test are unchanged.")
        if words := ratio_words(recipe, ratio_steps(ds, plan), names):
            st.info(words, icon="⚖️")
        if st.button("Create this version", type="primary", disabled=not recipe.active, key="simulate_create"):
            with st.spinner("Writing the version…"), common.saving():
                new = save_simulated(store, source, recipe, dataset=ds)
            common.set_current_version(new)
            st.session_state[NOTICE] = new
            st.rerun()
    if (new := st.session_state.pop(NOTICE, None)) is not None:
        st.success(f"Saved {store.version(new).label} and made it the current dataset. Train on it, or sweep a severity below.")


def detector_check(current: VersionInfo, simulated: Dataset) -> None:
    """On a version simulated with label noise: the Diagnose detector's flags against the truth."""
    if not has_noise_truth(simulated):
        return
    st.subheader("Detector self-check")
    st.caption(f"{current.label} was simulated, so we know which labels are wrong: how many does the Diagnose detector find?")
    cfg = DiagnoseConfig()
    if is_cached(simulated, cfg) or st.button(
        f"Check the detector (about {diagnosis_seconds(simulated):,.0f} s, once)", key="simulate_check"
    ):
        result = diagnosis_ui.diagnose_here(simulated, cfg)
        for col, f in zip(st.columns(4), grade_figures(grade_detector(simulated, result.issues.is_issue))):
            col.metric(f.label, f.value, help=f.note or None)
