"""The Compare page's panels, each run at its result (the evaluation its checkpoint rule picks, or
every run's last evaluation at one click): which evaluation each run is read at, metrics with
changes, their 95 % intervals and verdicts, curves with each result starred, recall per class and
ECE per class group, reliability, the change item by item against the reference, each run's
hallucination gallery and the settings that differ. The numbers come from ``core.compare``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from core import charts
from core.compare.examples import OUTCOMES, example_diff, keyed_predictions, outcome_counts, shares_items, top_outcome
from core.compare.intervals import Comparison, compare_to_reference
from core.compare.one_run import checkpoint_line, confident_errors, error_count, result_predictions
from core.compare.runs import (
    config_differences,
    curves,
    delta_table,
    ece_by_group,
    label,
    metric_table,
    recall_by_class,
    result_marks,
    verdict_words,
)
from core.data.dataset import Dataset
from core.metrics.results import RunResults
from core.store import Store
from ui import common
from ui.explain_view import explain_block
from ui.items import gallery, where
from ui.state import default

CURVES = {
    "val macro-F1": ("val", "macro_f1"), "test hallucination rate @τ": ("test", "hallucination_rate"),
    "test ECE": ("test", "ece"), "train loss": ("train", "loss"),
}  # fmt: skip
COLOURS = {"better": "background-color: #d4f5dd", "worse": "background-color: #fbd9d9"}  # every other verdict: no colour


@st.fragment(run_every=3.0)
def watch(run_ids: list[int]) -> None:
    """Redraw the page when a compared run moves on (starts, ends); the page itself stays still."""
    now = [str(common.store().run(i).status) for i in run_ids]
    if st.session_state.get("compare_seen", now) != now:
        st.session_state["compare_seen"] = now
        st.rerun(scope="app")
    st.session_state["compare_seen"] = now


def results_for(store_runs: list[int], last: bool) -> list[RunResults]:
    """The chosen runs, each read at its own checkpoint rule or (``last``) at its last evaluation."""
    return [RunResults(common.store(), r, checkpoint="last" if last else None) for r in store_runs]


def checkpoint_panel(results: Sequence[RunResults]) -> None:
    """Which evaluation each run's numbers come from, one line per run (``one_run.checkpoint_line``)."""
    default("cmp_last", False)
    st.toggle("Score every run at its last evaluation", key="cmp_last", persist_state="session",
              help="Off: each run at the evaluation its own rule picked (by default its best val macro-F1).")  # fmt: skip
    st.markdown("\n".join(f"- **{label(r)}**: {checkpoint_line(r)}" for r in results))


def comparisons(results: Sequence[RunResults]) -> dict[str, Comparison]:
    """Each run's ``Comparison`` with the reference, by label; cached per run and result step."""
    key = tuple((r.run_id, r.result_step, r.checkpoint, str(r.status)) for r in results)
    got = _comparisons(str(common.store().home), key)
    return {label(r): got[r.run_id] for r in results[1:] if r.run_id in got}


@st.cache_data(show_spinner="Bootstrapping the changes…", max_entries=64)
def _comparisons(home: str, key: tuple[tuple[int, int | None, str, str], ...]) -> dict[int, Comparison]:
    results = [RunResults(common.store(), rid, checkpoint=rule) for rid, _, rule, _ in key]
    return compare_to_reference(results, [common.dataset(r.row.version_id) for r in results])


def metrics_panel(results: Sequence[RunResults]) -> None:
    st.subheader("Metrics (test split, each run at its result)")
    table = metric_table(list(results))
    if table.empty:
        st.info("No run has been evaluated yet.")
        return
    comps = comparisons(results)
    shown = delta_table(table, comps)
    styles = shown.verdicts.map(lambda v: COLOURS.get(v, ""))
    text = shown.text.copy()
    text.index = styles.index = [charts.metric_title(m) for m in table.index]
    st.dataframe(text.style.apply(lambda _: styles, axis=None), width="stretch")
    st.caption(
        "Δ against the first run with its 95 % paired bootstrap interval over the shared test items: green is better, red is worse, "
        "and only where the interval excludes zero (lower is better for hallucination, forced-known, ECE, NLL, Brier). "
        "Classwise ECE and the unknown-class AUROC have no interval."
    )
    for r in results[1:]:
        st.markdown(verdict_words(label(r), label(results[0]), comps.get(label(r)), list(table.index)))


def curves_panel(results: Sequence[RunResults]) -> None:
    """One metric's curve per run, each result starred; recall per class and ECE per class group; each run's reliability."""
    default("cmp_curve", "val macro-F1", allowed=list(CURVES))
    curve = st.selectbox("Curve", list(CURVES), key="cmp_curve", persist_state="session")
    split, metric = CURVES[curve]
    st.plotly_chart(charts.runs_curves(curves(results, split, metric), title=f"{curve} (★ each run's result)",
                                       marks=result_marks(results, split, metric)), width="stretch", key="cmp_curves")  # fmt: skip
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.grouped_bars(recall_by_class(results), title="Recall per class (test)", y_title="recall"), width="stretch",
                    key="cmp_recall")  # fmt: skip
    c2.plotly_chart(
        charts.grouped_bars(ece_by_group(results), title="ECE per class group (test)", y_title="ECE"), width="stretch", key="cmp_ece"
    )
    st.markdown("**Reliability** — points below the diagonal are over-confidence; a point's size is its bin's item count")
    cols = st.columns(min(len(results), 3))
    for i, res in enumerate(results):
        art = res.artifacts(res.result_step) if res.result_step is not None else {}
        with cols[i % len(cols)]:
            if art:
                st.plotly_chart(charts.reliability_diagram({"test": art["test"]["reliability"]}, title=label(res)), width="stretch",
                                key=f"cmp_rel_{i}")  # fmt: skip
            else:
                st.caption(f"{label(res)}: no evaluation yet.")


def item_diff_panel(results: Sequence[RunResults]) -> None:
    """One run against the reference (the first): the change in confusion, the errors fixed and
    introduced, and the items of one outcome."""
    st.subheader("What changed, item by item")
    by_id = {r.run_id: r for r in results}
    others = [r.run_id for r in results[1:]]
    default("cmp_other", others[0], allowed=others)
    other = st.selectbox("Against the reference", others, key="cmp_other", persist_state="session", format_func=lambda i: label(by_id[i]))
    a, b = results[0], by_id[other]
    art_a = a.artifacts(a.result_step) if a.result_step is not None else {}
    art_b = b.artifacts(b.result_step) if b.result_step is not None else {}
    if not shares_items(common.store(), a, b):
        st.info("These two runs do not share their test items and classes: there is no item-by-item diff.")
        return
    if not art_a or not art_b:
        st.info("Both runs need an evaluation first.")
        return
    ds_a, ds_b = common.dataset(a.row.version_id), common.dataset(b.row.version_id)
    if art_a["classes"] == art_b["classes"]:
        names = [str(ds_a.class_names[c]) for c in art_a["classes"]]
        st.plotly_chart(
            charts.confusion_difference(art_a["test"]["confusion"], art_b["test"]["confusion"], names,
                                        title=f"Confusion: {label(b)} against {label(a)} (red worse, blue better)"),
            width="stretch", key="cmp_confdiff",
        )  # fmt: skip
    diff = example_diff(keyed_predictions(a, ds_a), keyed_predictions(b, ds_b))
    counts = outcome_counts(diff)
    for col, (title, outcome) in zip(st.columns(4), [("Errors fixed", "fixed"), ("Errors introduced", "introduced"),
                                                     ("Still wrong", "still wrong"), ("Right in both", "both right")]):  # fmt: skip
        col.metric(title, f"{counts[outcome]:,}")
    default("cmp_outcome", "fixed", allowed=list(OUTCOMES[:3]))
    outcome = st.radio("Show", list(OUTCOMES[:3]), key="cmp_outcome", horizontal=True, persist_state="session")
    picked = top_outcome(diff, str(outcome))
    if picked.empty:
        st.caption("None.")
        return
    by_item = picked.set_index("item_b")
    name_a, name_b = f"#{a.run_id}", f"#{b.run_id}"
    gallery(
        ds_b, picked["item_b"].to_numpy(), per_row=6,
        caption=lambda i: f"{where(ds_b, i)} · **{ds_b.class_names[int(by_item.loc[i, 'label'])]}** · "
        f"{name_a}: {ds_b.class_names[int(by_item.loc[i, 'pred_a'])]} ({by_item.loc[i, 'conf_a']:.0%}) → "
        f"{name_b}: {ds_b.class_names[int(by_item.loc[i, 'pred_b'])]} ({by_item.loc[i, 'conf_b']:.0%})",
    )  # fmt: skip


def galleries_panel(results: Sequence[RunResults]) -> None:
    st.subheader("Hallucination galleries — each run's most confident wrong answers")
    for tab, res in zip(st.tabs([label(r) for r in results]), results):
        with tab:
            preds = result_predictions(res)
            if preds.empty:
                st.caption("No evaluation yet.")
                continue
            ds = common.dataset(res.row.version_id)
            wrong = confident_errors(preds)
            st.caption(f"{error_count(wrong, res.tau).confident} of these are at or above τ = {res.tau:.2f}.")
            gallery(ds, wrong["item"].to_numpy(), per_row=6, caption=_wrong_caption(ds, wrong.set_index("item")))
            if (
                ds.modality != "tokens"
                and not res.is_lab
                and st.toggle("Explain these answers", key=f"cmp_ex_on_{res.run_id}", persist_state="session")
            ):
                explain_block(res, ds, wrong, page="cmp")


def _wrong_caption(ds: Dataset, by_item: pd.DataFrame) -> Callable[[int], str]:
    """'#12 · test · shirt → **coat** · 97%' for a wrong answer of ``by_item`` (indexed by item)."""

    def caption(i: int) -> str:
        given, pred = ds.class_names[int(by_item.loc[i, "label"])], ds.class_names[int(by_item.loc[i, "pred"])]
        return f"{where(ds, i)} · {given} → **{pred}** · {by_item.loc[i, 'conf']:.0%}"

    return caption


def shift_panel(store: Store, results: Sequence[RunResults]) -> None:
    """The runs' estimates on shifted targets kept from the Shift page (nothing when none were kept)."""
    from core.shift.records import run_table

    table = run_table(store.home, [r.run_id for r in results])
    if table.empty:
        return
    st.subheader("On shifted targets")
    st.caption(
        "Kept from the Shift page: each run's accuracy and hallucination rate on a target, estimated without its labels (ATC), and the true values where the target had labels."
    )
    st.dataframe(table, hide_index=True, width="stretch")


def selection_panel(store: Store, results: Sequence[RunResults]) -> None:
    """How the runs' kept versions were chosen, and the keep-x % sweeps they belong to (nothing when
    no run touches one)."""
    from core import charts
    from core.select.sweep import selection_records, summary_words

    kept, sweeps = selection_records(store, [r.run_id for r in results])
    if kept.empty and not sweeps:
        return
    st.subheader("Selection")
    if not kept.empty:
        st.caption("Runs trained on a kept share of their dataset (the Selection page's keep x %).")
        st.dataframe(kept, hide_index=True, width="stretch")
    for vid, summary in sweeps.items():
        st.markdown(f"**Keep-x % sweep of version {vid}**: mean over seeds, normal 95 % interval; *vs random*: at the same share.")
        st.dataframe(summary_words(summary), hide_index=True, width="stretch")
        st.plotly_chart(
            charts.keep_sweep(summary, "macro_f1", title="macro-F1 against the share kept"), width="stretch", key=f"cmp_sweep_{vid}"
        )


def settings_panel(results: Sequence[RunResults]) -> None:
    st.subheader("Settings that differ")
    differ = config_differences(list(results))
    if differ.empty:
        st.caption("None: the runs share every setting (and the dataset version).")
    else:
        st.dataframe(differ, width="stretch")
