"""One run on the Runs page, every number read at its result (``core.compare.one_run``; the line
``checkpoint_line`` says which evaluation that is): the heading and stop button, the metric cards,
curves (the result's step marked), per-class recall, reliability, confusion, slices, temperature
scaling, decisions (for a run that abstains or moves thresholds), the hallucination gallery,
exports, logs and config; a token-classification run's panels and gallery are ``ui.run_tokens``'.
A run that trains redraws every 2 s."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core import charts
from core.compare.one_run import (
    checkpoint_line,
    class_recall,
    confident_errors,
    decisions,
    error_count,
    readings,
    result_epoch,
    result_predictions,
    slice_columns,
    slice_table,
    temperature_table,
    threshold_table,
    uses_decisions,
)
from core.data.dataset import Dataset
from core.metrics.results import RunResults
from core.store import RunStatus
from ui import common, run_tokens
from ui.explain_view import explain_block
from ui.export import export_block
from ui.fairness_view import fairness_block
from ui.items import gallery, where
from ui.robust_view import robustness_block
from ui.state import default
from ui.words import temperature_words

if TYPE_CHECKING:
    from core.runners.base import Runner

KPIS = [
    ("accuracy", "Accuracy", False), ("macro_f1", "Macro-F1", False), ("hallucination_rate", "Hallucination rate @τ", True),
    ("ece", "ECE", True), ("forced_known_rate", "Forced-known rate @τ", True),
]  # fmt: skip


def show(run_id: int, runner: Runner | None) -> None:
    """The run's detail: live (redrawn every 2 s) while it trains, still once it has ended.

    While it trains, the hallucination gallery is drawn by the page run, between the two live
    fragments, not by them: Streamlit fades every element a fragment is redrawing, so images
    redrawn every 2 s would flicker grey. The top fragment reruns the page when the evaluation the
    gallery shows has changed."""
    if common.store().run(run_id).status.active:
        top, middle = st.container(), st.container()
        with middle:  # drawn first, so the top fragment compares against what it shows now
            _live_gallery(run_id)
        with top:
            _live(run_id, runner)
        _live_tail(run_id)
    else:
        _still(run_id, runner)


@st.fragment(run_every=2.0)
def _live(run_id: int, runner: Runner | None) -> None:
    detail(run_id, runner, live=True)


@st.fragment(run_every=2.0)
def _live_tail(run_id: int) -> None:
    _tail(RunResults(common.store(), run_id))


@st.fragment
def _still(run_id: int, runner: Runner | None) -> None:
    detail(run_id, runner)


def detail(run_id: int, runner: Runner | None, *, live: bool = False) -> None:
    """Every panel; ``live`` leaves out the gallery and the tail (``show`` draws them) and reruns the
    page when the gallery's evaluation is out of date."""
    store = common.store()
    res = RunResults(store, run_id)
    ds = common.dataset(res.row.version_id)
    _heading(res, runner)
    when = _evaluation(res)
    if ds.modality == "tokens":  # entity metrics, per-type scores, type confusion (ui.run_tokens)
        run_tokens.panels(res, ds)
    else:
        _cards(res)
        _charts(res, ds)
        _slices(res)
        _temperature(res)
        _decisions(res)
    if live:
        if _gallery_key(res) != st.session_state.get(_GALLERY_SHOWN.format(run_id)):
            st.rerun()  # a new evaluation: the page run redraws the gallery once
    else:
        _gallery(res, ds, when)
        _tail(res)
    if res.status.active != store.run(run_id).status.active:  # it just ended: redraw once without the timer
        st.rerun()


def _tail(res: RunResults) -> None:
    """Exports (once the run has ended), logs and config."""
    if not res.status.active:
        with st.expander("Report and exports"):
            export_block(common.store(), [res.run_id], key=f"run_{res.run_id}", title=f"Gapscope: run #{res.run_id} · {res.row.name}")
    with st.expander("Logs"):
        st.code(res.log(tail=80) or "(no output yet)", language=None)
    with st.expander("Config"):
        st.json(res.row.config)


_GALLERY_SHOWN = "gallery_shown_{}"  # session key: the evaluation (step, has predictions) a live run's gallery shows


def _gallery_key(res: RunResults) -> tuple[int | None, bool]:
    return res.result_step, not result_predictions(res).empty


def _live_gallery(run_id: int) -> None:
    res = RunResults(common.store(), run_id)
    _gallery(res, common.dataset(res.row.version_id), _when(res))
    st.session_state[_GALLERY_SHOWN.format(run_id)] = _gallery_key(res)


def _heading(res: RunResults, runner: Runner | None) -> None:
    row, status = res.row, res.status
    h1, h2 = st.columns([4, 1])
    h1.subheader(f"Run #{res.run_id} · {row.name} — {row.label}")
    if row.lost:
        st.warning(
            "No heartbeat from this run's worker for over a minute: it died or hangs, and no Gapscope app was watching. "
            "Every row it stored is kept; the app's runner marks it failed on its next check."
        )
    if status.active and runner is not None and h2.button("Stop", key=f"stop_{res.run_id}", type="primary", width="stretch"):
        runner.stop(res.run_id)
        st.rerun()
    st.progress(min(max(float(row.progress or 0.0), 0.0), 1.0), text=row.message or str(status))
    if status == RunStatus.FAILED:
        st.error(f"The run failed:\n\n```\n{row.message[-3000:]}\n```")
    used = res.resolved_config()  # the automatic batch and the lr scaled with it, once the worker has begun
    batch, lr_used = used.get("batch_size"), used.get("lr")
    st.caption(
        f"**{row.name or used.get('model')}** · seed {used.get('seed', 0)} · τ {res.tau:g} · batch {f'{batch:,}' if batch else 'auto'}"
        f"{' (auto)' if batch and not res.config.get('batch_size') else ''}{f' · lr {lr_used:.2g}' if lr_used else ''} · "
        f"mitigations: {', '.join(res.mitigations.active) or 'none (baseline)'}"
    )


def _evaluation(res: RunResults) -> str:
    """Say which evaluation every number below is read at (``one_run.checkpoint_line``); return it
    in words for the gallery ("step 40 (epoch 2.00)")."""
    line = checkpoint_line(res)
    if res.result_step is None:
        st.markdown(f"**{line[0].upper() + line[1:]}.**")
        return _when(res)
    panels = (
        "per-type scores, type confusion, reliability and the gallery"
        if res.is_tokens
        else "per-class recall, reliability, confusion, decisions and the gallery"
    )
    st.markdown(
        f"**{line[0].upper() + line[1:]}** — the checkpoint the run keeps; the cards, {panels} all read this one (★ on the curves)."
    )
    return _when(res)


def _when(res: RunResults) -> str:
    """The evaluation every number is read at, in words ("step 40 (epoch 2.00)")."""
    step = res.result_step
    if step is None:
        return "the latest evaluation"
    epoch = result_epoch(res)
    return f"step {step}" + (f" (epoch {epoch:.2f})" if epoch is not None else "")


def _cards(res: RunResults) -> None:
    values = readings(res, [name for name, _, _ in KPIS])
    for col, (name, title, lower_better) in zip(st.columns(len(KPIS)), KPIS):
        r = values[name]
        unchanged = r.change is not None and round(r.change, 3) == 0  # as shown: "+0.000" is no change, so no arrow, no colour
        delta = None if r.change is None else "unchanged after TS" if unchanged else f"{r.change:+.3f} after TS"
        col.metric(
            title, "—" if r.value is None else f"{r.value:.3f}", delta, delta_color="off" if unchanged else "inverse" if lower_better else "normal",
            delta_arrow="off" if unchanged else "auto",
            help="The change after temperature scaling (TS, fitted on val) is under the value." if delta else None,
        )  # fmt: skip


def _charts(res: RunResults, ds: Dataset) -> None:
    """Loss, accuracy and macro-F1, hallucination rate and ECE; recall per class, reliability, confusion."""
    metrics, key = res.metrics, res.run_id
    c1, c2 = st.columns(2)
    step = res.result_step
    mark = None if step is None else (step, "★ result")
    c1.plotly_chart(charts.metric_curves(metrics, ["loss"], splits=("train",), title="Training loss"), width="stretch", key=f"loss_{key}")
    c3, c4 = st.columns(2)
    if not res.eval_steps("val") and not res.eval_steps("test"):  # no axes without points
        c2.info("Accuracy and macro-F1 (val and test) appear after the first evaluation.")
        c3.info("The hallucination rate and the calibration error (ECE) appear after the first evaluation.")
    else:
        c2.plotly_chart(
            charts.metric_curves(metrics, ["accuracy", "macro_f1"], title="Accuracy and macro-F1", mark=mark),
            width="stretch",
            key=f"acc_{key}",
        )
        c3.plotly_chart(charts.metric_curves(metrics, ["hallucination_rate", "ece"], title="Hallucination rate and calibration error", mark=mark),
                        width="stretch", key=f"hal_{key}")  # fmt: skip
    art = res.artifacts(step) if step is not None else {}
    if not art:
        c4.info("Per-class recall, the reliability diagram and the confusion matrix appear after the first evaluation.")
        return
    classes = [int(c) for c in art["classes"]]
    if recall := class_recall(res, classes):
        absent = [int(c) for c in art.get("absent_classes", [])]
        c4.plotly_chart(charts.per_class_bars(recall, ds.class_names, title=f"Recall per class (test, step {step})", absent=absent),
                        width="stretch", key=f"rec_{key}")  # fmt: skip
    else:
        c4.info("No class of the test split has items the model can name: recall per class is undefined.")
    c5, c6 = st.columns(2)
    bins = {"test": art["test"]["reliability"]}
    if "test_ts" in art:
        bins["test, temperature-scaled"] = art["test_ts"]["reliability"]
    c5.plotly_chart(charts.reliability_diagram(bins), width="stretch", key=f"rel_{key}")
    c6.plotly_chart(
        charts.confusion_matrix(art["test"]["confusion"], [ds.class_names[c] for c in classes]), width="stretch", key=f"cm_{key}"
    )


def _slices(res: RunResults) -> None:
    if columns := slice_columns(res):
        default(f"rn_slice_{res.run_id}", columns[0], allowed=columns)
        column = st.selectbox("Slice", columns, key=f"rn_slice_{res.run_id}", persist_state="session")
        st.plotly_chart(charts.slice_metric_bars(slice_table(res, column), column), width="stretch", key=f"slices_{res.run_id}")


def _temperature(res: RunResults) -> None:
    table = temperature_table(res)
    if table is None:
        return
    temperature = res.at("temperature", res.result_step, "test_ts")
    st.markdown(f"**Temperature scaling** (T = {temperature or float('nan'):.2f}, fitted on val), test split:")
    # as text: st.dataframe shows a missing number as "None", whatever a Styler's na_rep says
    st.dataframe(table.map(lambda v: "—" if pd.isna(v) else f"{v:.4f}").rename(index=charts.metric_title), width="stretch")
    if words := temperature_words(temperature, table):
        st.info(words)


def _decisions(res: RunResults) -> None:
    """Threshold moving's before/after, and the risk–coverage curve with the abstention point."""
    if not uses_decisions(res):  # a run that neither abstains nor moves thresholds has no decisions to show
        return
    preds = result_predictions(res)
    classes = res.artifacts(res.result_step).get("classes", []) if not preds.empty else []
    if not classes or res.status.active:  # no evaluation yet, or its files not yet arrived
        return
    st.markdown("**Decisions** — answering only when confident enough, and per-class thresholds")
    chosen = res.mitigations.decision.abstain_below
    default(f"rn_abstain_{res.run_id}", float(chosen or 0.5))
    threshold = st.slider(
        "Abstain below confidence", 0.0, 0.99, step=0.01, key=f"rn_abstain_{res.run_id}", persist_state="session",
        help="Answers with a lower top-label confidence are withheld: fewer answers, fewer errors. The run's own setting is the starting point.",
    )  # fmt: skip
    d = decisions(preds, classes, threshold)
    d1, d2 = st.columns([3, 2])
    d1.plotly_chart(charts.risk_coverage(d.coverage, d.risk, point=(d.answered, d.error), label=f"≥ {threshold:.2f}"),
                    width="stretch", key=f"rc_{res.run_id}")  # fmt: skip
    d2.metric("Answered", f"{d.answered:.1%}", help="Share of the known test items answered at this threshold.")
    d2.metric("Error among the answered", "—" if d.change is None else f"{d.error:.1%}",
              delta=None if d.change is None else f"{d.change:+.1%} vs answering all",
              delta_color="off" if d.change is not None and round(d.change, 3) == 0 else "inverse")  # fmt: skip
    if (table := threshold_table(res)) is not None:
        la = (res.summary() or {}).get("logit_adjustment_tau")
        done = []
        if "after threshold moving" in table.columns:
            done.append("threshold moving (per-class offsets)")
        if "after post-hoc logit adjustment" in table.columns:
            done.append("post-hoc logit adjustment" + (f" (τ = {la:g})" if la is not None else ""))
        d2.markdown(f"**Decisions fitted on val**, test split: {', '.join(done)}.")
        d2.dataframe(table.style.format("{:.4f}", na_rep="—"), width="stretch")


def _gallery(res: RunResults, ds: Dataset, when: str) -> None:
    if ds.modality == "tokens":
        run_tokens.gallery(res, ds, when)
        return
    st.markdown("**Hallucination gallery** — the most confident wrong answers on the test split")
    preds = result_predictions(res)
    if preds.empty:
        st.caption("Appears after the first evaluation.")
        return
    n = error_count(preds, res.tau)
    st.caption(f"At {when}: {n.wrong:,} wrong of {n.total:,}; {n.confident:,} of them with confidence ≥ τ = {res.tau:.2f}.")
    wrong = confident_errors(preds)
    by_item = wrong.set_index("item")
    gallery(
        ds, wrong["item"].to_numpy(), per_row=6,
        caption=lambda i: f"{where(ds, i)} · given **{ds.class_names[int(by_item.loc[i, 'label'])]}** → predicted "
        f"**{ds.class_names[int(by_item.loc[i, 'pred'])]}** · {by_item.loc[i, 'conf']:.1%}",
    )  # fmt: skip
    if res.is_lab:
        st.caption("A lab run's answers are read per exposure on the Lab page; explanations, attacks and fairness are for classifier runs.")
        return
    explain_block(res, ds, wrong)
    robustness_block(res, ds)
    fairness_block(res, ds)
