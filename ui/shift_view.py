"""The Shift page's parts: the target picker, the drift tests and a run's estimates on the target."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import charts
from core.data.dataset import Dataset
from core.errors import DataError
from core.shift import scenario as S
from core.shift.made import IMAGE_SHIFTS
from core.shift.target import Drift, drift, run_on_target
from core.store import Store
from ui import common, state

RESULT = "shift_result"  # session key: the last drift / estimate, with the choices that made it


def target_form(store: Store, vid: int, ds: Dataset) -> S.TargetSpec:
    """The reference and target choices; returns the spec they describe."""
    columns = S.split_columns(ds)
    kinds = [k for k in S.KINDS if (k != "image" or ds.modality == "image") and (k != "column" or columns)]
    state.default("sh_kind", kinds[0], allowed=kinds)
    kind = st.radio("Target", kinds, format_func=S.KINDS.__getitem__, key="sh_kind", horizontal=True, persist_state="session")
    if kind == "column":
        state.default("sh_column", columns[0], allowed=columns)
        column = st.selectbox("Split by column", columns, key="sh_column", persist_state="session")
        values = S.column_values(ds, column)
        c1, c2 = st.columns(2)
        state.default_choices("sh_ref_values", values, values[:1])
        state.default_choices("sh_tgt_values", values, values[1:2])
        ref = c1.multiselect("Reference: train rows with", values, key="sh_ref_values", persist_state="session")
        tgt = c2.multiselect("Target: test rows with", values, key="sh_tgt_values", persist_state="session")
        return S.TargetSpec("column", column=column, reference_values=tuple(ref), target_values=tuple(tgt))
    if kind == "version":
        others = [v for v in store.versions() if v.id != vid and v.modality == ds.modality]
        if not others:
            st.info("No other version of this kind of data yet: upload one on the Data page, or pick another target.")
            return S.TargetSpec("version")
        ids = [v.id for v in others]
        state.default("sh_version", ids[0], allowed=ids)
        labels = {v.id: v.label for v in others}
        chosen = st.selectbox("Target version", ids, format_func=labels.__getitem__, key="sh_version", persist_state="session")
        return S.TargetSpec("version", version_id=int(chosen))
    if kind == "image":
        shifts = list(IMAGE_SHIFTS)
        state.default("sh_image_shift", "rotate", allowed=shifts)
        c1, c2 = st.columns(2)
        shift = c1.selectbox("Change", shifts, key="sh_image_shift", persist_state="session")
        lo, hi, step, start = {
            "rotate": (0.0, 180.0, 5.0, 15.0),
            "blur": (0.0, 5.0, 0.5, 1.0),
            "brightness": (0.1, 3.0, 0.1, 0.5),
            "scale": (0.3, 2.0, 0.1, 0.8),
        }[shift]
        state.default_within(f"sh_sev_{shift}", start, lo, hi)
        sev = c2.slider(f"Severity: {IMAGE_SHIFTS[shift]}", lo, hi, step=step, key=f"sh_sev_{shift}", persist_state="session")
        return S.TargetSpec("image", image_shift=shift, severity=float(sev))
    shares = []
    cols = st.columns(min(len(ds.class_names), 6))
    for i, name in enumerate(ds.class_names):
        state.default_within(f"sh_prior_{i}", 1.0 / len(ds.class_names), 0.0, 1.0)
        shares.append(cols[i % len(cols)].number_input(name, 0.0, 1.0, step=0.05, key=f"sh_prior_{i}", persist_state="session"))
    return S.TargetSpec("prior", prior=tuple(float(s) for s in shares), n=1000)


def _key(vid: int, spec: S.TargetSpec, extra: Any = None) -> str:
    return repr((vid, spec, extra))


def drift_section(vid: int, scen: S.Scenario, spec: S.TargetSpec) -> Drift | None:
    """The Test button and, once run, the tests' table, the column tests and the target-like items."""
    kept = st.session_state.get(RESULT, {})
    key = _key(vid, spec)
    if st.button("Test for shift", type="primary", key="sh_test"):
        bar = st.progress(0.0, text="Embedding the reference and the target…")

        def progress(done: int, total: int) -> None:
            bar.progress(min(1.0, done / max(total, 1)), text=f"Embedding {done:,} / {total:,} items…")

        try:
            with st.spinner("Testing…"):
                result = drift(scen.reference, scen.target, progress=progress)
        except DataError as err:
            bar.empty()
            st.error(str(err))
            return None
        bar.empty()
        kept = {**kept, "drift": (key, result)}
        st.session_state[RESULT] = kept
    got = kept.get("drift")
    if got is None or got[0] != key:
        st.caption("Both tests run on the embeddings the project caches; embedding new items takes a moment once.")
        return None
    result = got[1]
    for line in S.headline(result, None):
        st.markdown(line)
    st.dataframe(S.drift_table(result), hide_index=True, width="stretch")
    st.caption(
        f"On {result.embedding}. MMD: unbiased MMD² with a Gaussian kernel, p-value from 500 permutations. Domain classifier: "
        "a linear classifier told to separate target from reference, scored out of fold, its p-value from relabelled "
        "copies of the same cross-validation; AUC 0.5 = no difference."
    )
    columns = S.column_table(result)
    if columns is not None:
        st.markdown("**Per column** (Kolmogorov–Smirnov for numbers, χ² for categories, Benjamini–Hochberg adjusted)")
        st.dataframe(columns, hide_index=True, width="stretch")
    _target_like(scen.target, result)
    return result


def _target_like(target: Dataset, result: Drift) -> None:
    picks = result.tests["domain_classifier"].detail.get("target_like", [])[:12]
    scores = result.tests["domain_classifier"].detail.get("target_like_score", [])[:12]
    if not picks:
        return
    st.markdown("**The target items least like the reference** (the domain classifier's highest scores)")
    if target.modality == "image":
        cols = st.columns(6)
        for j, (i, s) in enumerate(zip(picks, scores)):
            cols[j % 6].image(
                np.asarray(target.items[i]),
                caption=f"{target.class_names[target.labels[i]] if target.labels[i] >= 0 else '—'} · {s:.2f}",
                width=96,
            )
    elif target.modality == "text":
        st.dataframe(pd.DataFrame({"text": [str(target.items[i]) for i in picks], "target-like": scores}), hide_index=True, width="stretch")
    else:
        st.dataframe(target.items.iloc[picks].assign(**{"target-like": scores}), hide_index=True, width="stretch")


def estimate_section(store: Store, vid: int, scen: S.Scenario, spec: S.TargetSpec) -> None:
    """Pick a finished run; estimate its accuracy and hallucination rate on the target."""
    runs = S.runs_for(store, vid)
    if not runs:
        st.info("No finished run can answer these items yet: train one on the Train page, then come back.")
        return
    ids = [r.id for r in runs]
    state.default("sh_run", ids[0], allowed=ids)
    names = {r.id: f"run {r.id} · {r.name or 'unnamed'} · version {r.version_id}" for r in runs}
    run_id = st.selectbox("Run", ids, format_func=names.__getitem__, key="sh_run", persist_state="session")
    kept = st.session_state.get(RESULT, {})
    key = _key(vid, spec, run_id)
    if st.button("Estimate on the target", key="sh_estimate"):
        try:
            with st.spinner(f"Run {run_id} answers {len(scen.target):,} target items…"):
                on = run_on_target(store, int(run_id), scen.target, labelled=scen.labelled)
        except DataError as err:
            st.error(str(err))
            return
        kept = {**kept, "estimate": (key, on)}
        st.session_state[RESULT] = kept
    got = kept.get("estimate")
    if got is None or got[0] != key:
        st.caption("The run's val answers and its answers on the target, without the target's labels.")
        return
    on = got[1]
    for line in S.headline(None, on.estimate):
        st.markdown(line)
    st.dataframe(S.estimate_table(on.estimate), hide_index=True, width="stretch")
    st.caption(
        "ATC: the confidence threshold above which as many val items lie as val answers are right; the target's share above it. "
        "BBSE: the class mix of the target solved from the run's val confusion matrix — right only when the classes' look did not change."
    )
    st.plotly_chart(charts.class_mix(S.prior_table(on, list(scen.target.class_names))), width="stretch")


def act_section(store: Store, vid: int, scen: S.Scenario, spec: S.TargetSpec) -> None:
    """Importance weights for the next run: a new version whose train rows carry them."""
    from core.shift.target import covariate_version, label_shift_version

    done = st.session_state.pop("sh_weighted", None)
    if done is not None:
        st.success(
            f"Saved version {done} with an importance weight on every train item; it is now the current dataset. On **Train**, "
            "pick the resampling **importance** to draw train items as the target would."
        )
        st.page_link("app_pages/train.py", label="Go to Train", icon="🏋️")
    kept = st.session_state.get(RESULT, {})
    estimate = kept.get("estimate")
    c1, c2 = st.columns(2)
    c1.caption("Covariate shift: each train item weighted by how target-like it looks (a classifier's odds, clipped to 0.1–10).")
    if c1.button("Weigh train items by how target-like they are", key="sh_weigh_covariate"):
        with st.spinner("Fitting the weighting classifier…"), common.saving():
            new = covariate_version(store, vid, scen.reference, scen.target, words=scen.words)
        _weighted(new)
    c2.caption("Label shift: each train item weighted by its class's BBSE weight q/p (needs an estimate above).")
    ready = estimate is not None and estimate[0] == _key(vid, spec, st.session_state.get("sh_run"))
    if c2.button("Weigh classes by the estimated target mix", key="sh_weigh_label", disabled=not ready):
        with common.saving():
            new = label_shift_version(store, vid, estimate[1], words=scen.words)
        _weighted(new)


def _weighted(new: int) -> None:
    common.set_current_version(new)
    st.session_state["sh_weighted"] = new
    st.rerun()


def keep_button(store: Store, vid: int, scen: S.Scenario, spec: S.TargetSpec) -> None:
    """Keep the tests and the estimate shown for Compare and the report."""
    from core.shift.records import keep

    kept = st.session_state.get(RESULT, {})
    drift_got, est_got = kept.get("drift"), kept.get("estimate")
    d = drift_got[1] if drift_got is not None and drift_got[0] == _key(vid, spec) else None
    run_id = st.session_state.get("sh_run")
    on = est_got[1] if est_got is not None and est_got[0] == _key(vid, spec, run_id) else None
    if d is None and on is None:
        return
    if st.button("Keep these results for Compare and the report", key="sh_keep"):
        with common.saving():
            keep(
                store.home,
                version_id=vid,
                words=scen.words,
                drift=d,
                run_id=run_id if on is not None else None,
                estimate=on.estimate if on else None,
            )
        st.success("Kept: Compare shows them beside the runs, and the report gets a Shift section.")


def save_target_button(store: Store, vid: int, scen: S.Scenario, spec: S.TargetSpec) -> None:
    """Save a made target (not another version) as a version of the dataset, its recipe kept."""
    if spec.kind == "version":
        return
    if done := st.session_state.pop("sh_target_saved", None):
        st.success(f"Saved the target as version {done}: pick it as *another version* here, or evaluate runs on it.")
    if st.button("Save the target as a version", key="sh_save_target"):
        common.set_current_version(vid)  # stay on the reference's version
        try:
            with common.saving():
                st.session_state["sh_target_saved"] = S.save_target(store, vid, spec, scen)
        except DataError as err:
            st.error(str(err))
            return
        st.rerun()
