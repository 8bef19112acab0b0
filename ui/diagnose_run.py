"""The Diagnose page's diagnosis: its settings, running it (here for a small version, in the background
for a large one), loading it once done, and which probabilities judge the labels."""

from __future__ import annotations

import streamlit as st

from core.data.dataset import Dataset
from core.diagnose.cleaning import undo_with_reviews
from core.diagnose.label_issues import LabelIssues
from core.diagnose.pipeline import DiagnoseConfig, Diagnosis, diagnose, estimate_seconds, label_issues_from_dynamics, label_issues_from_run
from core.diagnose.progressive import SAMPLE_FROM, first_estimate
from core.diagnose.review import judged_by_run, not_diagnosed
from core.store import RunFiles, RunStatus, Store, VersionInfo
from ui import common
from ui import diagnosis as diagnosis_ui
from ui.state import default

SETTINGS = (("dg_k", 10), ("dg_folds", 5), ("dg_dup", 0.98), ("dg_out", 0.01))  # widget key, starting value
NOTICE = "diagnose_notice"  # session key: what the last save or undo did, said on the next run
PROBE = "probe"
DYNAMICS = "dynamics:"  # a label-issue source: "dynamics:<run id>"


def plan_key(vid: int) -> str:
    """The session key of the cleaning plan under review on version ``vid``."""
    return f"plan_{vid}"


def undo_banner(store: Store, vid: int, info: VersionInfo) -> None:
    """On a cleaned version: where it comes from, and a button that goes back to its parent."""
    if info.kind != "clean" or info.parent_id is None:
        return
    c1, c2 = st.columns([4, 1])
    c1.info(f"You are looking at a cleaned version ({info.note}) of v{info.parent_id}.")
    if c2.button("Undo this cleaning", key="undo_clean", width="stretch"):
        with common.saving():
            parent, plan = undo_with_reviews(store, vid, common.dataset(info.parent_id))
        st.session_state[plan_key(parent)] = plan  # its reviews come back as they were, not as open suspects
        common.set_current_version(parent)
        st.session_state[NOTICE] = (
            f"Undone: v{vid} is archived; back to v{parent}, with its plan ({plan.summary()}, {len(plan.keep):,} kept) to change and save again."
        )
        st.rerun()


def settings() -> DiagnoseConfig:
    """The settings expander; its values are kept across pages (``dg_`` keys)."""
    for key, start in SETTINGS:
        default(key, start)  # the widgets below take their value from here
    with st.expander("Settings"):
        s1, s2, s3, s4 = st.columns(4)
        s1.number_input("Neighbours (k)", 2, 50, key="dg_k", persist_state="session", help="For kNN label agreement and outlier distance.")
        s2.number_input(
            "Folds",
            2,
            10,
            key="dg_folds",
            persist_state="session",
            help="Of the out-of-fold probe that predicts each item without having seen it.",
        )
        s3.slider("Near-duplicate cosine ≥", 0.90, 1.0, step=0.005, key="dg_dup", persist_state="session")
        s4.slider("Outliers: top share", 0.001, 0.05, step=0.001, format="%.3f", key="dg_out", persist_state="session")
    return diagnosis_ui.config()  # from the widgets above, as the Data page reads them


def offer(store: Store, vid: int, info: VersionInfo, ds: Dataset, cfg: DiagnoseConfig) -> None:
    """For a version not yet diagnosed with ``cfg``: a button that diagnoses it (here and now when
    small, in the background when large) and what is known so far; then ``st.stop()``."""
    if store.read_only is not None:
        st.warning(
            f"**{info.label}** has not been diagnosed with these settings, and this home is read-only "
            f"({store.read_only}): a diagnosis could not be kept. Make GAPSCOPE_HOME writable (or point it at a "
            "writable copy) to diagnose."
        )
    elif len(ds) < SAMPLE_FROM:
        _offer_here(info, ds, cfg)
    else:
        _offer_background(vid, info, ds, cfg)
    st.stop()


def _offer_here(info: VersionInfo, ds: Dataset, cfg: DiagnoseConfig) -> None:
    st.info(not_diagnosed(info.label, estimate_seconds(ds, cfg)))
    if st.button("Run diagnosis", type="primary", key="run_diagnosis"):
        diagnosis_ui.diagnose_here(ds, cfg)
        st.rerun()


def _offer_background(vid: int, info: VersionInfo, ds: Dataset, cfg: DiagnoseConfig) -> None:
    """A stratified sample first, so the label-noise picture comes in seconds, then every item."""
    running = diagnosis_ui.job(vid, cfg)
    early = diagnosis_ui.latest(vid, cfg)
    if running is None or not running.is_alive():
        if running is not None and running.error:
            st.error(f"The diagnosis failed: {running.error}")
        size, first_s = first_estimate(ds, cfg)
        st.info(not_diagnosed(info.label, estimate_seconds(ds, cfg), sample_size=size, first_seconds=first_s))
        if st.button("Run diagnosis", type="primary", key="run_diagnosis"):
            diagnosis_ui.start(vid, cfg)
            st.rerun()
        if early is not None:
            diagnosis_ui.noise_summary(ds, early)
        return
    diagnosis_ui.progress_line(vid, cfg)
    if early is None:
        st.caption("The first estimate, from a sample, appears here in a moment.")
    else:
        diagnosis_ui.noise_summary(ds, early)
        st.caption("Reviewing items, duplicates, outliers and the map open when every item is diagnosed.")


@st.cache_resource(show_spinner="Loading the diagnosis…", max_entries=4)
def _load(home: str, version_id: int, cfg: DiagnoseConfig) -> Diagnosis:  # keyed by home: version ids repeat across homes
    return diagnose(common.dataset(version_id), cfg)


def load(store: Store, vid: int, cfg: DiagnoseConfig) -> Diagnosis:
    return _load(str(store.home), vid, cfg)


def label_issues(store: Store, vid: int, ds: Dataset, d: Diagnosis, cfg: DiagnoseConfig) -> LabelIssues:
    """The label issues to review: the probe's, those of a finished run on this version (whose
    held-out predictions are sharper), or the hard-to-learn train items of a run's training dynamics
    (the Selection page links here with that source picked)."""
    finished = [r for r in store.runs(status=(RunStatus.FINISHED, RunStatus.STOPPED)) if r.version_id == vid]
    if not finished:
        return d.issues
    with_dynamics = [f"{DYNAMICS}{r.id}" for r in finished if RunFiles(r.id, home=store.home).has_dynamics()]
    sources: list[str | int] = [PROBE, *(r.id for r in finished), *with_dynamics]
    default("dg_source", PROBE, allowed=sources)
    source = st.radio(
        "Probabilities for label issues from",
        sources,
        horizontal=True,
        key="dg_source",
        persist_state="session",
        format_func=_source_words,
    )
    if source == PROBE or source is None:
        return d.issues
    if isinstance(source, str) and source.startswith(DYNAMICS):
        run_id = int(source.removeprefix(DYNAMICS))
        got = label_issues_from_dynamics(ds, run_id, d.issues, home=store.home)
        if got is None:
            st.warning(f"Run #{run_id} kept no training dynamics; showing the probe's.")
            return d.issues
        st.caption(
            f"{got[1]:,} train items judged by run #{run_id}'s training dynamics: the flagged ones were hard to learn "
            "(the given label's probability stayed low across epochs) — often label errors. Suggested labels are the probe's."
        )
        return got[0]
    from_run = label_issues_from_run(ds, int(source), cfg)
    if from_run is None:
        st.warning(f"Run #{source} kept no held-out probabilities (it predates them); showing the probe's.")
        return d.issues
    issues, n_judged = from_run
    st.caption(judged_by_run(int(source), n_judged))
    return issues


def _source_words(source: str | int) -> str:
    if source == PROBE:
        return "K-fold probe on embeddings (every item)"
    if isinstance(source, str) and source.startswith(DYNAMICS):
        return f"run #{source.removeprefix(DYNAMICS)}'s training dynamics (hard to learn)"
    return f"run #{source} (its held-out test split)"
