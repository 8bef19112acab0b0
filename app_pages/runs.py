"""Runs: every run with its status; one run's metrics streaming in live, its calibration, its
confusion, and the hallucination gallery (the most confident wrong answers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import charts
from core.metrics.results import RunResults
from core.store import RunStatus
from ui import common
from ui.export import export_block
from ui.items import gallery, where
from ui.words import temperature_words

KPIS = [
    ("accuracy", "Accuracy", False), ("macro_f1", "Macro-F1", False), ("hallucination_rate", "Hallucination rate @τ", True),
    ("ece", "ECE", True), ("forced_known_rate", "Forced-known rate @τ", True),
]  # fmt: skip

store = common.store()
st.title("📈 Runs")
runner = common.runner_or_none()  # None: the cluster is unreachable (said above); stored runs still show

runs = store.runs()
if not runs:
    st.info("No runs yet. Start one on the Train page.")
    st.page_link("app_pages/train.py", label="Go to Train", icon="🏋️")
    st.stop()


def version_label(version_id: int) -> str:
    try:
        return store.version(version_id).label
    except KeyError:
        return f"v{version_id}"


@st.fragment(run_every=2.0)
def run_table() -> None:
    rows = store.runs()
    seen = {r.id: str(r.status) for r in rows}
    if st.session_state.get("runs_seen_status", seen) != seen:  # a run started or ended since the page was drawn:
        st.session_state["runs_seen_status"] = seen  # redraw the picker's labels and the sidebar's counts too
        st.rerun(scope="app")
    st.session_state["runs_seen_status"] = seen
    table = pd.DataFrame([{
        "run": r.id, "name": r.name, "dataset": version_label(r.version_id),
        "status": r.label, "progress": float(r.progress or 0.0),
        "message": r.message, "started": pd.to_datetime(r.started_at, unit="s") if r.started_at else pd.NaT,
    } for r in rows])  # fmt: skip
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
            "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
        },
    )  # fmt: skip


run_table()

ids = [r.id for r in runs]
by_id = {r.id: r for r in runs}
# the run asked for (Train page link), else one that is training now, else the newest
default = st.session_state.get("selected_run")
if default not in ids:
    default = next((r.id for r in runs if r.status == RunStatus.RUNNING), ids[0])
chosen = st.selectbox(
    "Run", ids, index=ids.index(default) if default in ids else 0, key="runs_pick",
    # no status in the label: the browser keeps an option's text while the run moves on (the heading says it)
    format_func=lambda i: f"#{i} · {by_id[i].name}",
)  # fmt: skip
st.session_state["selected_run"] = chosen


def detail(run_id: int) -> None:  # noqa: C901 - being split
    res = RunResults(store, run_id)
    row, metrics = res.row, res.metrics
    ds = common.dataset(row.version_id)
    status = res.status
    h1, h2 = st.columns([4, 1])
    h1.subheader(f"Run #{run_id} · {row.name} — {row.label}")
    if row.lost:
        st.warning(
            "No heartbeat from this run's worker for over a minute: it died or hangs, and no Gapscope app was watching. "
            "Every row it stored is kept; the app's runner marks it failed on its next check."
        )
    if status.active and runner is not None and h2.button("Stop", key=f"stop_{run_id}", type="primary", width="stretch"):
        runner.stop(run_id)
        st.rerun()
    st.progress(min(max(float(row.progress or 0.0), 0.0), 1.0), text=row.message or status)
    if status == RunStatus.FAILED:
        st.error(f"The run failed:\n\n```\n{row.message[-3000:]}\n```")
    used = res.resolved_config()  # the automatic batch and the lr scaled with it, once the worker has begun
    batch, lr_used = used.get("batch_size"), used.get("lr")
    st.caption(
        f"**{row.name or used.get('model')}** · seed {used.get('seed', 0)} · τ {res.tau:g} · batch {f'{batch:,}' if batch else 'auto'}"
        f"{' (auto)' if batch and not res.config.get('batch_size') else ''}{f' · lr {lr_used:.2g}' if lr_used else ''} · "
        f"mitigations: {', '.join(res.mitigations.active) or 'none (baseline)'}"
    )

    step = res.best_step  # the one evaluation every number below is read at
    scaled = res.scaled_step == step and step is not None
    when = "the latest evaluation"
    if step is not None:
        epoch = res.metrics.loc[res.metrics["step"] == step, "epoch"].dropna()
        when = f"step {step}" + (f" (epoch {float(epoch.iloc[0]):.2f})" if len(epoch) else "")
        if res.split_rows("val").empty:
            which = "the latest evaluation (this version has no val split to choose by)"
        else:
            which = f"the best{' so far' if status.active else ''} evaluation by val {res.stopping_metric}, the checkpoint the run keeps"
        st.markdown(
            f"**Test results at {when}** — {which}; the cards, per-class recall, reliability, confusion, decisions and the gallery all read this one."
        )
    cols = st.columns(len(KPIS))
    for col, (name, title, lower_better) in zip(cols, KPIS):
        value = res.at(name, step)
        after = res.at(name, step, "test_ts") if scaled else None
        delta = None if value is None or after is None else f"{after - value:+.3f} after TS"
        unchanged = delta is not None and round(after - value, 3) == 0  # type: ignore[operator]
        col.metric(
            title, "—" if value is None else f"{value:.3f}", delta, delta_color="off" if unchanged else "inverse" if lower_better else "normal",
            help="The change after temperature scaling (TS, fitted on val) is under the value." if delta else None,
        )  # fmt: skip

    evals = metrics[metrics["split"].isin(["val", "test"])]
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        charts.metric_curves(metrics, ["loss"], splits=("train",), title="Training loss"), width="stretch", key=f"loss_{run_id}"
    )
    c3, c4 = st.columns(2)
    if evals.empty:  # no axes without points
        c2.info("Accuracy and macro-F1 (val and test) appear after the first evaluation.")
        c3.info("The hallucination rate and the calibration error (ECE) appear after the first evaluation.")
    else:
        c2.plotly_chart(
            charts.metric_curves(evals, ["accuracy", "macro_f1"], title="Accuracy and macro-F1"), width="stretch", key=f"acc_{run_id}"
        )
        c3.plotly_chart(
            charts.metric_curves(evals, ["hallucination_rate", "ece"], title="Hallucination rate and calibration error"),
            width="stretch", key=f"hal_{run_id}",
        )  # fmt: skip

    art = res.artifacts(step) if step is not None else {}
    if art:
        classes = [int(c) for c in art["classes"]]
        recall = {c: v for c, v in res.per_class("recall", step=step).items() if c in classes}
        absent = [int(c) for c in art.get("absent_classes", [])]
        if recall:
            c4.plotly_chart(
                charts.per_class_bars(recall, ds.class_names, title=f"Recall per class (test, step {step})", absent=absent),
                width="stretch", key=f"rec_{run_id}",
            )  # fmt: skip
        else:
            c4.info("No class of the test split has items the model can name: recall per class is undefined.")
        c5, c6 = st.columns(2)
        bins = {"test": art["test"]["reliability"]}
        if "test_ts" in art:
            bins["test, temperature-scaled"] = art["test_ts"]["reliability"]
        c5.plotly_chart(charts.reliability_diagram(bins), width="stretch", key=f"rel_{run_id}")
        c6.plotly_chart(
            charts.confusion_matrix(art["test"]["confusion"], [ds.class_names[c] for c in classes]), width="stretch", key=f"cm_{run_id}"
        )
    else:
        c4.info("Per-class recall, the reliability diagram and the confusion matrix appear after the first evaluation.")

    slices = res.slices(step=step) if step is not None else res.slices()
    if len(slices):
        column = st.selectbox("Slice", sorted(slices["column"].unique()), key=f"slice_{run_id}")
        table = slices[slices["column"] == column].pivot(index="value", columns="metric", values="score")
        st.plotly_chart(
            charts.slice_metric_bars(table[["accuracy", "hallucination_rate", "ece"]], column), width="stretch", key=f"slices_{run_id}"
        )

    if scaled:
        names = ["accuracy", "hallucination_rate", "ece", "nll", "brier", "forced_known_rate"]
        ts = pd.DataFrame({
            # None (a metric that does not apply, e.g. no unknown classes) shows as "—"
            "before": [res.at(n, step) for n in names],
            "after temperature scaling": [res.at(n, step, "test_ts") for n in names],
        }, index=names).astype(float)  # fmt: skip
        temperature = res.at("temperature", step, "test_ts")
        st.markdown(f"**Temperature scaling** (T = {temperature or float('nan'):.2f}, fitted on val), test split:")
        # as text: st.dataframe shows a missing number as "None", whatever a Styler's na_rep says
        st.dataframe(ts.map(lambda v: "—" if pd.isna(v) else f"{v:.4f}").rename(index=charts.metric_title), width="stretch")
        if words := temperature_words(temperature, ts):
            st.info(words)

    decision_section(res)

    st.markdown("**Hallucination gallery** — the most confident wrong answers on the test split")
    preds = res.predictions("test", step=step) if step is not None else res.predictions("test").iloc[:0]
    if preds.empty:
        st.caption("Appears after the first evaluation.")
    else:
        wrong = preds[preds["pred"] != preds["label"]].sort_values("conf", ascending=False).head(12)
        tau = res.tau
        st.caption(
            f"At {when}: {int((preds['pred'] != preds['label']).sum()):,} wrong of {len(preds):,}; "
            f"{int(((preds['pred'] != preds['label']) & (preds['conf'] >= tau)).sum()):,} of them with confidence ≥ τ = {tau:.2f}."
        )
        by_item = wrong.set_index("item")
        gallery(
            ds, wrong["item"].to_numpy(), per_row=6,
            caption=lambda i: f"{where(ds, i)} · given **{ds.class_names[int(by_item.loc[i, 'label'])]}** → predicted "
            f"**{ds.class_names[int(by_item.loc[i, 'pred'])]}** · {by_item.loc[i, 'conf']:.1%}",
        )  # fmt: skip
    if not status.active:
        with st.expander("Report and exports"):
            export_block(store, [run_id], key=f"run_{run_id}", title=f"Gapscope: run #{run_id} · {row.name}")
    with st.expander("Logs"):
        st.code(res.log(tail=80) or "(no output yet)", language=None)
    with st.expander("Config"):
        st.json(row.config)
    if status.active != RunStatus(store.run(run_id).status).active:  # it just ended: redraw once without the timer
        st.rerun()


def decision_section(res: RunResults) -> None:
    """Threshold moving's before/after, and the risk–coverage curve with the abstention point."""
    step = res.best_step
    preds = res.predictions("test", step=step) if step is not None else None
    if preds is None or preds.empty or res.status.active:
        return
    st.markdown("**Decisions** — answering only when confident enough, and per-class thresholds")
    known = preds[preds["label"].isin(set(int(c) for c in res.artifacts(step).get("classes", [])))]
    order = known["conf"].to_numpy().argsort()[::-1]
    wrong = (known["pred"].to_numpy() != known["label"].to_numpy())[order]
    coverage = np.arange(1, len(order) + 1) / max(len(order), 1)
    risk = np.cumsum(wrong) / np.arange(1, len(order) + 1)
    chosen = res.mitigations.decision.abstain_below
    threshold = st.slider(
        "Abstain below confidence", 0.0, 0.99, float(chosen or 0.5), 0.01, key=f"abstain_{res.run_id}",
        help="Answers with a lower top-label confidence are withheld: fewer answers, fewer errors. The run's own setting is the starting point.",
    )  # fmt: skip
    answered = known["conf"].to_numpy() >= threshold
    point_cov = float(answered.mean()) if len(answered) else float("nan")
    point_risk = float(wrong[: int(answered.sum())].mean()) if answered.any() else float("nan")
    d1, d2 = st.columns([3, 2])
    d1.plotly_chart(charts.risk_coverage(coverage, risk, point=(point_cov, point_risk), label=f"≥ {threshold:.2f}"),
                    width="stretch", key=f"rc_{res.run_id}")  # fmt: skip
    d2.metric("Answered", f"{point_cov:.1%}", help="Share of the known test items answered at this threshold.")
    change = point_risk - float(wrong.mean()) if answered.any() else None
    d2.metric("Error among the answered", f"{point_risk:.1%}" if answered.any() else "—",
              delta=None if change is None else f"{change:+.1%} vs answering all",
              delta_color="off" if change is not None and round(change, 3) == 0 else "inverse")  # fmt: skip
    if res.variant_step("tm") is not None:
        names = ["macro_f1", "balanced_accuracy", "worst_class_recall", "accuracy", "hallucination_rate", "ece"]
        base = "test_ts" if res.variant_step("ts") is not None else "test"
        table = pd.DataFrame(
            {"before": [res.latest(n, base) if base == "test_ts" else res.at(n, step) for n in names],
             "after threshold moving": [res.latest(n, "test_tm") for n in names]}, index=names,
        ).astype(float)  # fmt: skip
        d2.markdown("**Threshold moving** (per-class offsets fitted on val), test split:")
        d2.dataframe(table.style.format("{:.4f}", na_rep="—"), width="stretch")


@st.fragment(run_every=2.0)
def live_detail(run_id: int) -> None:
    detail(run_id)


@st.fragment
def still_detail(run_id: int) -> None:
    detail(run_id)


if store.run(chosen).status.active:
    live_detail(chosen)
else:
    still_detail(chosen)
