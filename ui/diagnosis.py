"""Diagnoses running in the app's background (of items, and of a token dataset's sentences), and the
label-noise summary the Data and Diagnose pages share."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import charts, paths
from core.data.dataset import Dataset
from core.diagnose.pipeline import DiagnoseConfig, Diagnosis, diagnose
from core.diagnose.progressive import DiagnosisJob, Locations, Result, load, locations, progress_words
from core.diagnose.review import noise_rate, scope_words
from core.diagnose.tokens import TokenDiagnoseConfig, TokenDiagnosis, TokenDiagnosisJob
from core.diagnose.tokens import cache_path as token_cache_path
from core.diagnose.tokens import load as load_tokens
from core.diagnose.tokens import progress_words as token_progress_words
from ui import common


@st.cache_resource(show_spinner=False)
def _jobs() -> dict[tuple[str, int, DiagnoseConfig], DiagnosisJob]:
    return {}  # one per (home, version, settings), shared by every session of this app process


def config() -> DiagnoseConfig:
    """The settings chosen in the Diagnose page's expander (defaults before it was opened)."""
    ss = st.session_state
    default = DiagnoseConfig()
    return DiagnoseConfig(
        k=int(ss.get("dg_k", default.k)),
        n_folds=int(ss.get("dg_folds", default.n_folds)),
        duplicate_threshold=float(ss.get("dg_dup", default.duplicate_threshold)),
        outlier_quantile=1 - float(ss.get("dg_out", 1 - default.outlier_quantile)),
    )


@st.cache_resource(show_spinner=False, max_entries=16)
def _locations(home: str, version_id: int, cfg: DiagnoseConfig) -> Locations:
    return locations(common.dataset(version_id), cfg)  # hashes the items once per version


@st.cache_resource(show_spinner="Loading the diagnosis…", max_entries=8)
def _load(home: str, version_id: int, cfg: DiagnoseConfig, scope: str) -> Result:
    return load(common.dataset(version_id), cfg, _locations(home, version_id, cfg), scope)


def latest(version_id: int, cfg: DiagnoseConfig) -> Result | None:
    """The best diagnosis of the version on disk (full, else the sample's), or None."""
    home = str(paths.home())
    scope = _locations(home, version_id, cfg).available()
    return None if scope is None else _load(home, version_id, cfg, scope)


def job(version_id: int, cfg: DiagnoseConfig) -> DiagnosisJob | None:
    return _jobs().get((str(paths.home()), version_id, cfg))


def start(version_id: int, cfg: DiagnoseConfig) -> DiagnosisJob:
    """Start (or return the running) background diagnosis of ``version_id``."""
    key = (str(paths.home()), version_id, cfg)
    jobs = _jobs()
    running = jobs.get(key)
    if running is not None and running.is_alive():
        return running
    jobs[key] = DiagnosisJob(common.dataset(version_id), cfg)
    jobs[key].start()
    return jobs[key]


def progress_line(version_id: int, cfg: DiagnoseConfig) -> None:
    """A live progress bar of the background diagnosis; reruns the whole page when a pass ends."""

    @st.fragment(run_every=1.5)
    def live() -> None:
        running = job(version_id, cfg)
        if running is None:
            return
        stage, frac, scope = running.status()
        seen = st.session_state.setdefault("diag_seen_scope", {})
        if seen.get(version_id) not in (None, scope):
            seen[version_id] = scope
            st.rerun(scope="app")
        seen[version_id] = scope
        if scope in ("done", "failed"):
            return
        st.progress(min(max(frac, 0.0), 1.0), text=progress_words(scope, stage, running.seconds_left()))

    live()


def diagnose_here(ds: Dataset, cfg: DiagnoseConfig) -> Diagnosis:
    """Diagnose ``ds`` in this run, behind a progress bar that goes when it is done."""
    bar = st.progress(0.0, text="Starting…")

    def show(stage: str, frac: float) -> None:
        bar.progress(min(max(frac, 0.0), 1.0), text=stage.capitalize() + "…")

    result = diagnose(ds, cfg, progress=show)
    bar.empty()
    return result


def noise_summary(ds: Dataset, result: Result, *, matrix_open: bool = True) -> None:
    """Estimated noise rate, per-class noise rates and (in an expander) the noise matrix of ``result``."""
    iss = result.diagnosis.issues
    c0, c1 = st.columns([1, 3])
    c0.metric("Estimated label noise", f"{noise_rate(iss):.1%}", help="1 − trace of the estimated joint of given and true labels.")
    c0.metric("Suspected label errors", f"{iss.n_issues:,}", help=f"Among {result.n_items:,} items judged.")
    c0.caption(f"From {scope_words(result.scope, result.n_items, len(ds))}.")
    c1.plotly_chart(charts.noise_rates(iss.noise_rate_per_class, ds.class_names), width="stretch")
    with st.expander("Which classes are confused for which (estimated noise matrix)", expanded=matrix_open):
        st.plotly_chart(charts.noise_matrix(iss.noise_matrix, ds.class_names), width="stretch")


# ---------------------------------------------------------------------- token datasets (sentences)


@st.cache_resource(show_spinner=False)
def _token_jobs() -> dict[tuple[str, int, TokenDiagnoseConfig], TokenDiagnosisJob]:
    return {}  # one per (home, version, settings), shared by every session of this app process


def token_config() -> TokenDiagnoseConfig:
    """The token diagnosis's settings chosen on the Diagnose page (defaults before it was opened)."""
    return TokenDiagnoseConfig(n_folds=int(st.session_state.get("dg_tok_folds", TokenDiagnoseConfig().n_folds)))


@st.cache_resource(show_spinner=False, max_entries=16)
def _token_path(home: str, version_id: int, cfg: TokenDiagnoseConfig) -> Path:
    return token_cache_path(common.dataset(version_id), cfg)  # hashes every sentence once per version


@st.cache_resource(show_spinner="Loading the diagnosis…", max_entries=4)
def _token_load(home: str, version_id: int, cfg: TokenDiagnoseConfig) -> TokenDiagnosis:
    return load_tokens(_token_path(home, version_id, cfg))


def token_result(version_id: int, cfg: TokenDiagnoseConfig) -> TokenDiagnosis | None:
    """The token diagnosis of the version on disk, or None (nothing is computed)."""
    home = str(paths.home())
    return _token_load(home, version_id, cfg) if _token_path(home, version_id, cfg).exists() else None


def token_job(version_id: int, cfg: TokenDiagnoseConfig) -> TokenDiagnosisJob | None:
    return _token_jobs().get((str(paths.home()), version_id, cfg))


def start_tokens(version_id: int, cfg: TokenDiagnoseConfig) -> TokenDiagnosisJob:
    """Start (or return the running) background token diagnosis of ``version_id``."""
    key = (str(paths.home()), version_id, cfg)
    jobs = _token_jobs()
    running = jobs.get(key)
    if running is not None and running.is_alive():
        return running
    jobs[key] = TokenDiagnosisJob(common.dataset(version_id), cfg)
    jobs[key].start()
    return jobs[key]


def token_progress_line(version_id: int, cfg: TokenDiagnoseConfig) -> None:
    """A live progress bar of the running token diagnosis (embedding words, out-of-fold probe,
    scoring); reruns the whole page when it ends. Draw it only while the job runs."""

    @st.fragment(run_every=1.5)
    def live() -> None:
        running = token_job(version_id, cfg)
        if running is None:
            return
        stage, frac, scope = running.status()
        if scope in ("done", "failed"):
            st.rerun(scope="app")
        st.progress(min(max(frac, 0.0), 1.0), text=token_progress_words(stage, running.seconds_left()))

    live()
