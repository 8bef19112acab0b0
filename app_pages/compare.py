"""Compare: two to six runs side by side, each at its result (or every run at its last evaluation) —
which evaluation each is read at, metrics with changes and their 95 % intervals, curves, per-class
recall and ECE, reliability, the change in confusion, which test items got fixed or broken, each
run's hallucination gallery, the settings that differ — and the report to hand over. Token-classification runs get their
entity panels (``ui.compare_tokens``)."""

from __future__ import annotations

import streamlit as st

from core.compare.runs import MAX_RUNS, compatibility, label
from ui import common, compare_panels, compare_tokens, fairness_view, lab_view, robust_view
from ui.export import export_block
from ui.state import default

store = common.store()
st.title("⚖️ Compare")
runs = store.runs()
if len(runs) < 2:
    st.info("Compare needs two runs. Start a baseline and a mitigated run on the Train page (one button does both).")
    st.page_link("app_pages/train.py", label="Go to Train", icon="🏋️")
    st.stop()
by_id = {r.id: r for r in runs}
versions = {v.id: v.label for v in store.versions()}
ids = list(by_id)
# the newest two by default, oldest first (the Train page's pair button puts its pair here itself).
default("cmp_runs", sorted(ids[:2]), allowed=None)
st.session_state["cmp_runs"] = [r for r in st.session_state["cmp_runs"] if r in by_id]
chosen = st.multiselect(
    f"Runs (2–{MAX_RUNS}; the first is the reference)", ids, key="cmp_runs", max_selections=MAX_RUNS, persist_state="session",
    format_func=lambda i: f"#{i} · {by_id[i].name} · {versions.get(by_id[i].version_id, f'v{by_id[i].version_id}')}",
)  # fmt: skip
if len(chosen) < 2:
    st.info("Pick at least two runs.")
    st.stop()

results = compare_panels.results_for(list(chosen), bool(st.session_state.get("cmp_last", False)))
active = any(r.status.active for r in results)
if active:
    compare_panels.watch(list(chosen))
for note in compatibility(store, results):
    st.warning(note, icon="⚠️")

compare_panels.checkpoint_panel(results)
kinds = {r.is_tokens for r in results}
if len(kinds) > 1:
    st.warning(
        "These runs mix token-classification (entity) runs with classification runs: their metrics are not the same, "
        "so only the settings are compared. Pick runs of one kind.",
        icon="⚠️",
    )
elif True in kinds:  # token classification: entity metrics, per-type F1, entities fixed and introduced
    compare_tokens.show(results)
else:
    compare_panels.metrics_panel(results)
    lab_view.compare_panel(results)
    compare_panels.curves_panel(results)
    compare_panels.item_diff_panel(results)
    compare_panels.galleries_panel(results)
    robust_view.robustness_panel(results)
    fairness_view.fairness_panel(results)
compare_panels.shift_panel(store, results)
compare_panels.selection_panel(store, results)
compare_panels.settings_panel(results)

st.subheader("Report")
export_block(
    store,
    list(chosen),
    key="compare",
    title="Gapscope: " + " vs ".join(label(r) for r in results),
    checkpoint="last" if st.session_state.get("cmp_last", False) else None,
)
if active:
    st.caption("Some runs are still training; the numbers above are their best so far. The page redraws when they end.")
