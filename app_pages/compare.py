"""Compare: two to six runs side by side — metrics with deltas, curves, per-class recall and ECE,
reliability, the change in confusion, which test items got fixed or broken, each run's
hallucination gallery, the settings that differ — and the report to hand over."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import charts
from core.compare.examples import OUTCOMES, example_diff, keyed_predictions, outcome_counts
from core.compare.runs import MAX_RUNS, compatibility, config_differences, deltas, label, metric_table, verdict
from core.metrics.results import RunResults
from ui import common
from ui.export import export_block
from ui.items import gallery, where
from ui.state import default

CURVES = {
    "val macro-F1": ("val", "macro_f1"), "test hallucination rate @τ": ("test", "hallucination_rate"),
    "test ECE": ("test", "ece"), "train loss": ("train", "loss"),
}  # fmt: skip
COLOURS = {"better": "background-color: #d4f5dd", "worse": "background-color: #fbd9d9", "same": ""}

store = common.store()
st.title("⚖️ Compare")
runs = store.runs()
if len(runs) < 2:
    st.info("Compare needs two runs. Start a baseline and a mitigated run on the Train page (one button does both).")
    st.page_link("app_pages/train.py", label="Go to Train", icon="🏋️")
    st.stop()
by_id = {r.id: r for r in runs}
ids = list(by_id)
# the newest two by default, oldest first (the Train page's pair button puts its pair here itself)
default("cmp_runs", sorted(ids[:2]), allowed=None)
st.session_state["cmp_runs"] = [r for r in st.session_state["cmp_runs"] if r in by_id]
chosen = st.multiselect(
    f"Runs (2–{MAX_RUNS}; the first is the reference)", ids, key="cmp_runs", max_selections=MAX_RUNS,
    format_func=lambda i: f"#{i} · {by_id[i].name} · {common.store().version(by_id[i].version_id).label}",
)  # fmt: skip
if len(chosen) < 2:
    st.info("Pick at least two runs.")
    st.stop()

results = [RunResults(store, r) for r in chosen]
labels = [label(r) for r in results]


@st.fragment(run_every=3.0)
def watch(run_ids: list[int]) -> None:
    """Redraw the page when a compared run moves on (starts, ends); the page itself stays still."""
    now = [str(store.run(i).status) for i in run_ids]
    if st.session_state.get("compare_seen", now) != now:
        st.session_state["compare_seen"] = now
        st.rerun(scope="app")
    st.session_state["compare_seen"] = now


if any(r.status.active for r in results):
    watch(list(chosen))
for note in compatibility(store, results):
    st.warning(note, icon="⚠️")

# ---------------------------------------------------------------------- metrics
st.subheader("Metrics (test split, each run at its best evaluation)")
table = metric_table(results)
if table.empty:
    st.info("No run has been evaluated yet.")
else:
    d = deltas(table)
    shown = table.copy()
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    for col in table.columns[1:]:
        shown[f"Δ {col}"] = d[col]
        styles[f"Δ {col}"] = [COLOURS[verdict(m, d.loc[m, col])] for m in table.index]
    shown.index = styles.index = [charts.metric_title(m) for m in table.index]
    # numbers as text: st.dataframe shows a missing one as "None", whatever a Styler's na_rep says
    text = shown.map(lambda v: "—" if pd.isna(v) else f"{v:.4f}")
    st.dataframe(text.style.apply(lambda _: styles[shown.columns], axis=None), width="stretch")
    st.caption("Δ against the first run: green is better, red is worse (lower is better for hallucination, forced-known, ECE, NLL, Brier).")

# ---------------------------------------------------------------------- curves and bars
default("cmp_curve", "val macro-F1", allowed=list(CURVES))
curve = st.selectbox("Curve", list(CURVES), key="cmp_curve")
split, metric = CURVES[curve]
curves = {}
for res, name in zip(results, labels):
    part = res.metrics[(res.metrics["split"] == split) & (res.metrics["name"] == metric)].sort_values("step")
    if len(part):
        curves[name] = part.assign(epoch=part["epoch"].fillna(part["step"]))
st.plotly_chart(charts.runs_curves(curves, title=curve), width="stretch", key="cmp_curves")

c1, c2 = st.columns(2)
recall, ece = {}, {}
for res, name in zip(results, labels):
    names = store.version(int(res.row.version_id)).class_names
    recall[name] = {str(names[c]): v for c, v in res.per_class("recall", step=res.best_step).items()}
    ece[name] = {g: v for g in ("head", "medium", "tail") if (v := res.at(f"ece_{g}", res.best_step)) is not None}
c1.plotly_chart(charts.grouped_bars(recall, title="Recall per class (test)", y_title="recall"), width="stretch", key="cmp_recall")
c2.plotly_chart(charts.grouped_bars(ece, title="ECE per class group (test)", y_title="ECE"), width="stretch", key="cmp_ece")

st.markdown("**Reliability** — points below the diagonal are over-confidence; a point's size is its bin's item count")
cols = st.columns(min(len(results), 3))
for i, (res, name) in enumerate(zip(results, labels)):
    art = res.artifacts(res.best_step) if res.best_step is not None else {}
    with cols[i % len(cols)]:
        if art:
            st.plotly_chart(
                charts.reliability_diagram({"test": art["test"]["reliability"]}, title=name), width="stretch", key=f"cmp_rel_{i}"
            )
        else:
            st.caption(f"{name}: no evaluation yet.")

# ---------------------------------------------------------------------- one run against the reference
st.subheader("What changed, item by item")
default("cmp_other", chosen[1], allowed=chosen[1:])
other = st.selectbox("Against the reference", chosen[1:], key="cmp_other", format_func=lambda i: label(results[chosen.index(i)]))
a, b = results[0], results[chosen.index(other)]
va, vb = store.version(int(a.row.version_id)), store.version(int(b.row.version_id))
art_a = a.artifacts(a.best_step) if a.best_step is not None else {}
art_b = b.artifacts(b.best_step) if b.best_step is not None else {}
if va.dataset_id != vb.dataset_id or va.class_names != vb.class_names:
    st.info("These two runs do not share their test items and classes: there is no item-by-item diff.")
elif not art_a or not art_b:
    st.info("Both runs need an evaluation first.")
else:
    ds_a, ds_b = common.dataset(va.id), common.dataset(vb.id)
    if art_a["classes"] == art_b["classes"]:
        names = [str(va.class_names[c]) for c in art_a["classes"]]
        st.plotly_chart(
            charts.confusion_difference(art_a["test"]["confusion"], art_b["test"]["confusion"], names,
                                        title=f"Confusion: {label(b)} against {label(a)} (red worse, blue better)"),
            width="stretch", key="cmp_confdiff",
        )  # fmt: skip
    diff = example_diff(keyed_predictions(a, ds_a), keyed_predictions(b, ds_b))
    counts = outcome_counts(diff)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Errors fixed", f"{counts['fixed']:,}")
    m2.metric("Errors introduced", f"{counts['introduced']:,}")
    m3.metric("Still wrong", f"{counts['still wrong']:,}")
    m4.metric("Right in both", f"{counts['both right']:,}")
    default("cmp_outcome", "fixed", allowed=list(OUTCOMES[:3]))
    outcome = st.radio("Show", list(OUTCOMES[:3]), key="cmp_outcome", horizontal=True)
    picked = diff[diff["outcome"] == outcome].sort_values("conf_b", ascending=False).head(12)
    if picked.empty:
        st.caption("None.")
    else:
        by_item = picked.set_index("item_b")
        gallery(
            ds_b, picked["item_b"].to_numpy(), per_row=6,
            caption=lambda i: f"{where(ds_b, i)} · **{ds_b.class_names[int(by_item.loc[i, 'label'])]}** · "
            f"{label(a).split(' · ')[0]}: {ds_b.class_names[int(by_item.loc[i, 'pred_a'])]} ({by_item.loc[i, 'conf_a']:.0%}) → "
            f"{label(b).split(' · ')[0]}: {ds_b.class_names[int(by_item.loc[i, 'pred_b'])]} ({by_item.loc[i, 'conf_b']:.0%})",
        )  # fmt: skip

# ---------------------------------------------------------------------- galleries, settings, export
st.subheader("Hallucination galleries — each run's most confident wrong answers")
for tab, res in zip(st.tabs(labels), results):
    with tab:
        preds = res.predictions("test", step=res.best_step) if res.best_step is not None else pd.DataFrame()
        if preds.empty:
            st.caption("No evaluation yet.")
            continue
        ds = common.dataset(int(res.row.version_id))
        wrong = preds[preds["pred"] != preds["label"]].sort_values("conf", ascending=False).head(12)
        st.caption(f"{int((wrong['conf'] >= res.tau).sum()) if len(wrong) else 0} of these are at or above τ = {res.tau:.2f}.")
        by = wrong.set_index("item")
        gallery(ds, wrong["item"].to_numpy(), per_row=6,
                caption=lambda i, ds=ds, by=by: f"{where(ds, i)} · {ds.class_names[int(by.loc[i, 'label'])]} → "
                f"**{ds.class_names[int(by.loc[i, 'pred'])]}** · {by.loc[i, 'conf']:.0%}")  # fmt: skip

st.subheader("Settings that differ")
differ = config_differences(results)
if differ.empty:
    st.caption("None: the runs share every setting (and the dataset version).")
else:
    st.dataframe(differ, width="stretch")

st.subheader("Report")
export_block(store, list(chosen), key="compare", title="Gapscope: " + " vs ".join(labels))
if any(r.status.active for r in results):
    st.caption("Some runs are still training; the numbers above are their best so far. The page redraws when they end.")
