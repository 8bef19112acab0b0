"""Who a run fails: the Runs page's table by group of a sensitive column (``core.fairness``), its
gaps with intervals, thresholds per group, and a re-weighted run to compare; Compare's panel."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from core import charts, paths
from core.compare.runs import label
from core.data.dataset import Dataset
from core.errors import DataError
from core.fairness.evaluate import GAP_WORDS, change_rows, fairness_rows, load, paired_change, records_by_column, run_fairness, table_of
from core.fairness.groups import sensitive_columns
from core.fairness.mitigate import CONSTRAINTS, reweighed_config, reweighed_version
from core.metrics.results import RunResults
from ui import common, state


def fairness_block(res: RunResults, ds: Dataset) -> None:
    """Measure the run by a sensitive column; fit thresholds per group; re-weigh and train again."""
    if ds.modality == "tokens" or res.status.active or res.result_step is None:
        return
    columns = sensitive_columns(ds)
    st.markdown("**Fairness by group** — is it worse for some people, sites or sources?")
    if not columns:
        st.caption("This version has no column to group by (sex, race, age, site, source, …): import one as a meta column.")
        return
    c1, c2, c3 = st.columns([2, 2, 3])
    state.default("rn_fa_column", columns[0], allowed=columns)
    column = str(c1.selectbox("Group by", columns, key="rn_fa_column", persist_state="session"))
    binary = ds.n_classes == 2
    constraint = None
    if binary:
        state.default("rn_fa_constraint", "none", allowed=["none", *CONSTRAINTS])
        picked = c2.selectbox("Thresholds per group", ["none", *CONSTRAINTS], key="rn_fa_constraint", persist_state="session",
                              format_func=lambda c: "no (the run's own answers)" if c == "none" else f"fit on val for {CONSTRAINTS[c]}",
                              help="A decision threshold per group fitted on val (fairlearn's ThresholdOptimizer), applied to test.")  # fmt: skip
        constraint = None if picked == "none" else str(picked)
    kept = load(res.files).get(column)
    if c3.button("Measure by this column", key=f"rn_fa_go_{res.run_id}", type="primary" if kept is None else "secondary"):
        try:
            with st.spinner("Measuring by group (a bootstrap over the test items)…"):
                kept = run_fairness(common.store(), res.run_id, column, constraint=constraint)
        except DataError as err:
            st.error(str(err))
    if kept is None or kept.get("step") != res.result_step:
        st.caption("Not measured by this column yet. The record is kept with the run and shows in Compare and the report.")
        return
    _show(res, ds, kept)
    _reweigh(res, column)


def _show(res: RunResults, ds: Dataset, rec: dict) -> None:
    table = table_of(rec)
    groups = [g for g in table.index if g not in ("difference", "ratio")]
    shown = table.astype(object)
    for c in table.columns:  # text, so the rows without a value read "—" (the grid ignores a style's na_rep)
        shown[c] = ["—" if pd.isna(v) else f"{v:,.0f}" if c == "items" else f"{v:.3f}" for v in table[c]]
    st.dataframe(shown, width="stretch")
    bars = [
        c for c in table.columns if c == "accuracy" or c.startswith("recall: ")
    ]  # shares near 1; ECE and hallucination are in the table
    per = {g: {c: float(table.loc[g, c]) for c in bars} for g in groups}
    title = f"Accuracy and recall per class by {rec['column']} (test)"
    st.plotly_chart(charts.grouped_bars(per, title=title, y_title="share"), width="stretch", key=f"rn_fa_bars_{res.run_id}")
    gaps = rec.get("gaps")
    if gaps:
        pos = ds.class_names[rec["positive"]]
        eod, dp = gaps["equalized_odds_difference"], gaps["demographic_parity_difference"]
        st.markdown(
            f"Positive class **{pos}**: equalized odds difference **{eod['a']:.3f}** [{eod['a_low']:.3f}, {eod['a_high']:.3f}], "
            f"demographic parity difference {dp['a']:.3f} [{dp['a_low']:.3f}, {dp['a_high']:.3f}] (95 % bootstrap intervals over "
            f"{rec['n']:,} test items)."
        )
    th = rec.get("thresholds")
    if th:
        ch = th["change"]
        st.markdown(
            f"With a threshold per group fitted on val for {CONSTRAINTS[th['constraint']]}: "
            + "; ".join(
                f"{GAP_WORDS[k]} {ch[k]['a']:.3f} → **{ch[k]['b']:.3f}** (change {ch[k]['delta']:+.3f} [{ch[k]['low']:+.3f}, {ch[k]['high']:+.3f}])"
                for k in GAP_WORDS
                if k in ch
            )
            + "."
        )
        before, after = th.get("before_by_group", {}), th.get("after_by_group", {})
        if before and after:
            rows = {g: {f"{what} {when}": src[g][key] for key, what in (("selection_rate", "positive rate"), ("tpr", "TPR"), ("fpr", "FPR"))
                        for when, src in (("before", before), ("after", after))} for g in after}  # fmt: skip
            st.dataframe(pd.DataFrame(rows).T.round(3), width="stretch")


def _reweigh(res: RunResults, column: str) -> None:
    runner = common.runner_or_none()
    if runner is None:
        return
    if st.button(f"Re-weigh by {column} and label, and train again", key=f"rn_fa_rw_{res.run_id}",
                 help="A new version whose train items weigh P(group)·P(label)/P(group, label) (Kamiran & Calders), and a run on it "
                 "with this run's settings drawing items by their weights. Compare the two on the Compare page."):  # fmt: skip
        store = common.store()
        try:
            vid = reweighed_version(store, res.row.version_id, column)
            run_id = runner.submit(reweighed_config(store, res.run_id, vid, column))
        except (DataError, ValueError) as err:
            st.error(str(err))
            return
        st.success(f"Version {vid} re-weighted by {column}; run #{run_id} queued on it. Measure it by {column} once it has finished.")


@st.cache_data(show_spinner="Comparing by group (a paired bootstrap over the test items)…", max_entries=32)
def _paired(home: str, reference: int, ref_step: int | None, other: int, other_step: int | None, column: str) -> dict | None:
    """``paired_change``, once per pair of evaluations (the steps are in the key)."""
    try:
        return paired_change(common.store(), reference, other, column)
    except DataError:
        return None


def _changes(results: Sequence[RunResults], column: str, compared: set[str]) -> None:
    """Each run against the reference (the first) on the same test items: paired changes."""
    ref = results[0]
    pairs = []
    for r in results[1:]:
        change = _paired(str(paths.home()), ref.run_id, ref.result_step, r.run_id, r.result_step, column)
        if change is not None:
            pairs.append((label(r), change))
    if pairs:
        compared.update([label(ref), *(name for name, _ in pairs)])
        st.markdown(f"Against the reference, **{label(results[0])}**, on the same test items (paired bootstrap, 95 %):")
        st.dataframe(change_rows(pairs), hide_index=True, width="stretch")


def fairness_panel(results: Sequence[RunResults]) -> None:
    """Compare: the runs measured by a shared column, their gaps with intervals (and with thresholds)."""
    by_column = records_by_column(results)
    if not by_column:
        return
    st.subheader("Fairness by group")
    compared: set[str] = set()  # runs whose figures show in a paired comparison
    for column, pairs in by_column.items():
        rows = fairness_rows(pairs)
        if rows.empty:
            continue
        st.markdown(f"**By {column}** — 95 % bootstrap intervals over the test items")
        st.dataframe(rows, hide_index=True, width="stretch")
        _changes(results, column, compared)
    measured = {name for pairs in by_column.values() for name, _ in pairs} | compared
    missing = [label(r) for r in results if label(r) not in measured]
    if missing:
        st.caption(f"Not measured by group yet: {', '.join(missing)} (Runs page → Fairness by group).")
