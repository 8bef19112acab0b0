"""Diagnose: suspected label errors, duplicates, outliers and coverage gaps — and a cleaning plan."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import charts
from core.data.dataset import SPLITS
from core.diagnose.cleaning import CleaningPlan, save_cleaned, starting_plan, undo
from core.diagnose.confident import ISSUE_METHOD_TITLES
from core.diagnose.maps import tsne_2d
from core.diagnose.pipeline import DiagnoseConfig, diagnose, duplicate_table, estimate_seconds, is_cached, label_issues_from_run
from core.diagnose.progressive import SAMPLE_FROM, SAMPLE_SIZE
from core.embed.embeddings import embed, resolve_backbone
from core.store import RunStatus
from ui import common
from ui import diagnosis as diagnosis_ui
from ui.items import gallery, label_of, where

store = common.store()
st.title("🩺 Diagnose")
st.caption(
    "Where is this dataset incomplete or wrong? Suspected label errors (out-of-fold probe + confident learning + "
    "nearest-neighbour agreement), duplicates and train/test leaks, outliers and coverage gaps. Decisions go into a "
    "cleaning plan that is saved as a new version — never in place."
)

vid, info, ds = common.require_dataset()

if notice := st.session_state.pop("diagnose_notice", None):
    st.success(notice)

if info.kind == "clean" and info.parent_id is not None:
    c1, c2 = st.columns([4, 1])
    c1.info(f"You are looking at a cleaned version ({info.note}) of v{info.parent_id}.")
    if c2.button("Undo this cleaning", key="undo_clean", width="stretch"):
        with common.saving():
            parent = undo(store, vid)
        common.set_current_version(parent)
        st.session_state["diagnose_notice"] = f"Undone: v{vid} is archived; back to v{parent}."
        st.rerun()

for key, default in (("dg_k", 10), ("dg_folds", 5), ("dg_dup", 0.98), ("dg_out", 0.01)):
    st.session_state.setdefault(key, default)  # the widgets below take their value from here (kept across pages)
with st.expander("Settings"):
    s1, s2, s3, s4 = st.columns(4)
    s1.number_input("Neighbours (k)", 2, 50, key="dg_k", help="For kNN label agreement and outlier distance.")
    s2.number_input("Folds", 2, 10, key="dg_folds", help="Of the out-of-fold probe that predicts each item without having seen it.")
    s3.slider("Near-duplicate cosine ≥", 0.90, 1.0, step=0.005, key="dg_dup")
    s4.slider("Outliers: top share", 0.001, 0.05, step=0.001, format="%.3f", key="dg_out")
cfg = diagnosis_ui.config()  # from the widgets above, as the Data page reads them

if not is_cached(ds, cfg):
    running = diagnosis_ui.job(vid, cfg)
    if store.read_only is not None:
        st.warning(
            f"**{info.label}** has not been diagnosed with these settings, and this home is read-only "
            f"({store.read_only}): a diagnosis could not be kept. Make GAPSCOPE_HOME writable (or point it at a "
            "writable copy) to diagnose."
        )
        st.stop()
    if len(ds) < SAMPLE_FROM:  # small: diagnose here and now, with a progress bar
        st.info(
            f"**{info.label}** has not been diagnosed with these settings yet. It takes about "
            f"{estimate_seconds(ds, cfg):,.0f} s on this machine (embeddings are cached by item, so the next look is instant)."
        )
        if st.button("Run diagnosis", type="primary", key="run_diagnosis"):
            bar = st.progress(0.0, text="Starting…")
            diagnose(ds, cfg, progress=lambda stage, frac: bar.progress(min(max(frac, 0.0), 1.0), text=stage.capitalize() + "…"))
            st.rerun()
        st.stop()
    # large: in the background, a stratified sample first so the label-noise picture comes in seconds
    if running is None or not running.is_alive():
        if running is not None and running.error:
            st.error(f"The diagnosis failed: {running.error}")
        st.info(
            f"**{info.label}** has not been diagnosed with these settings yet: about {estimate_seconds(ds, cfg):,.0f} s on this "
            f"machine. It runs in the background — first on a stratified sample of {SAMPLE_SIZE:,} items, whose label-noise "
            "estimate appears here (and on the Data page) within seconds, then on every item. You can leave this page meanwhile."
        )
        if st.button("Run diagnosis", type="primary", key="run_diagnosis"):
            diagnosis_ui.start(vid, cfg)
            st.rerun()
        if (early := diagnosis_ui.latest(vid, cfg)) is not None:
            diagnosis_ui.noise_summary(ds, early)
        st.stop()
    diagnosis_ui.progress_line(vid, cfg)
    early = diagnosis_ui.latest(vid, cfg)
    if early is None:
        st.caption("The first estimate, from a sample, appears here in a moment.")
    else:
        diagnosis_ui.noise_summary(ds, early)
        st.caption("Reviewing items, duplicates, outliers and the map open when every item is diagnosed.")
    st.stop()


@st.cache_resource(show_spinner="Loading the diagnosis…", max_entries=4)
def load_diagnosis(home: str, version_id: int, cfg: DiagnoseConfig):  # keyed by home: version ids repeat across homes
    return diagnose(common.dataset(version_id), cfg)


d = load_diagnosis(str(store.home), vid, cfg)
iss = d.issues
# a finished run on this version can stand in for the probe: its held-out predictions are sharper
finished = [r for r in store.runs(status=(RunStatus.FINISHED, RunStatus.STOPPED)) if r.version_id == vid]
source = (
    st.radio(
        "Probabilities for label issues from",
        ["probe"] + [r.id for r in finished],
        horizontal=True,
        key="dg_source",
        format_func=lambda s: "K-fold probe on embeddings (every item)" if s == "probe" else f"run #{s} (its held-out test split)",
    )
    if finished
    else "probe"
)
if source != "probe":
    from_run = label_issues_from_run(ds, int(source), cfg)
    if from_run is None:
        st.warning(f"Run #{source} kept no held-out probabilities (it predates them); showing the probe's.")
    else:
        iss, n_judged = from_run
        st.caption(f"Judging the {n_judged:,} test items run #{source} never trained on; other items are not flagged.")
plan_key = f"plan_{vid}"
if plan_key not in st.session_state:  # items reviewed in the versions this one comes from stay reviewed
    st.session_state[plan_key] = starting_plan(store, vid, ds)
plan: CleaningPlan = st.session_state[plan_key]
inherited = len(starting_plan(store, vid, ds).keep) if info.parent_id is not None else 0
names = np.asarray(ds.class_names, dtype=object)

# --------------------------------------------------------------------------- headline
dup_table = duplicate_table(d.duplicates, ds)
gaps = (
    d.coverage[(d.coverage["missing_in"].map(len) > 0) | d.coverage["unseen_in_train"]]
    if "missing_in" in d.coverage
    else d.coverage.iloc[0:0]
)
headline = [
    ("Suspected label errors", f"{iss.n_issues:,}", f"{iss.n_issues / len(ds):.1%} of items"),
    (
        "Estimated label noise",
        f"{1 - float(np.trace(iss.joint)) if iss.joint.size else float('nan'):.1%}",
        "1 − trace of the estimated joint of given and true labels",
    ),
    ("Duplicate clusters", f"{len(d.duplicates):,}", f"{int(dup_table['leak'].sum()) if len(dup_table) else 0:,} cross-split leaks"),
    ("Outliers", f"{len(d.outliers):,}", f"top {1 - cfg.outlier_quantile:.1%} by kNN distance"),
    ("Coverage gaps", f"{len(gaps):,}", "classes missing from a split or unseen in train"),
]
for col, (label, value, note) in zip(st.columns(len(headline)), headline):
    col.metric(label, value)
    col.caption(note)


# --------------------------------------------------------------------------- the plan (always visible)
def plan_bar() -> None:
    with st.container(border=True):
        p1, p2, p3 = st.columns([3, 1, 1])
        p1.markdown(
            f"**Cleaning plan** for v{vid}: {plan.summary()}, {len(plan.keep):,} reviewed and kept"
            + (f" ({inherited:,} reviewed in the versions v{vid} comes from)." if inherited else ".")
        )
        if p2.button("Save as new version", type="primary", disabled=plan.n_changes == 0, key="save_plan", width="stretch"):
            with common.saving():
                new_vid = save_cleaned(store, vid, plan, dataset=ds)
            st.session_state.pop(plan_key, None)
            common.set_current_version(new_vid)
            st.session_state["diagnose_notice"] = (
                f"Saved v{new_vid} ({plan.summary()}). Its parent v{vid} is unchanged; Undo goes back to it."
            )
            st.rerun()
        if p3.button("Clear plan", disabled=plan.n_changes + len(plan.keep) == inherited, key="clear_plan", width="stretch"):
            st.session_state[plan_key] = starting_plan(store, vid, ds)
            st.rerun()


plan_bar()


def decide(item: int, action: str, new_label: int | None = None) -> None:
    plan.decide(item, action, new_label)


def actions(item: int) -> None:
    """keep / relabel / drop under one item. The relabel target is the detector's suggestion for a
    suspected label error, and the given label otherwise (an outlier or a duplicate has no reason
    to change class: pick one)."""
    current = plan.decision(item)
    flagged = bool(iss.is_issue[item])
    target = st.selectbox(
        "Label",
        range(ds.n_classes),
        index=int(iss.suggested[item] if flagged else max(int(ds.labels[item]), 0)),
        help="Suggested by the label-error detector."
        if flagged
        else "Not a suspected label error: the given label. Pick another to relabel.",
        format_func=lambda c: str(names[c]),
        key=f"target_{vid}_{item}",
        label_visibility="collapsed",
    )
    b1, b2, b3 = st.columns(3)
    b1.button(
        "Keep",
        key=f"keep_{vid}_{item}",
        on_click=decide,
        args=(item, "keep"),
        type="primary" if current == "keep" else "secondary",
        width="stretch",
    )
    b2.button(
        "Relabel",
        key=f"relabel_{vid}_{item}",
        on_click=decide,
        args=(item, "relabel", int(target)),
        type="primary" if current == "relabel" else "secondary",
        width="stretch",
    )
    b3.button(
        "Drop",
        key=f"drop_{vid}_{item}",
        on_click=decide,
        args=(item, "drop"),
        type="primary" if current == "drop" else "secondary",
        width="stretch",
    )


def pager(n: int, per_page: int, key: str) -> slice:
    pages = max(1, -(-n // per_page))
    page = st.number_input(f"Page (of {pages:,})", 1, pages, 1, key=key)
    return slice((page - 1) * per_page, page * per_page)


t_labels, t_dups, t_out, t_map, t_cov = st.tabs(["Label issues", "Duplicates & leaks", "Outliers", "Embedding map", "Coverage"])

# --------------------------------------------------------------------------- label issues
with t_labels:
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.noise_matrix(iss.noise_matrix, ds.class_names), width="stretch")
    c2.plotly_chart(charts.noise_rates(iss.noise_rate_per_class, ds.class_names), width="stretch")
    st.caption(
        f"Flagging rule: {ISSUE_METHOD_TITLES.get(iss.method, iss.method)} (`{iss.method}`)"
        + (f", probe weight {iss.knn_weight:.2f} against kNN votes" if iss.knn_weight is not None else "")
        + ". Label quality is in [0, 1]: low means the data disagrees with the given label."
    )
    f1, f2, f3 = st.columns([2, 2, 1])
    given = f1.multiselect("Given label", range(ds.n_classes), format_func=lambda c: str(names[c]), key="sus_classes")
    order = f2.radio("Show", ["flagged, most suspicious first", "all items, lowest label quality first"], horizontal=True, key="sus_order")
    hide_reviewed = f3.toggle("Hide reviewed", value=True, key="sus_hide")
    # from `iss`, which is the probe's or the chosen run's (NaN quality = not judged, sorted last)
    candidates = iss.rank if order.startswith("flagged") else np.argsort(iss.score, kind="stable")
    if given:
        candidates = candidates[np.isin(ds.labels[candidates], given)]
    if hide_reviewed:
        candidates = np.array([i for i in candidates if plan.decision(int(i)) is None], dtype=np.int64)
    flagged_open = [int(i) for i in iss.rank if plan.decision(int(i)) is None]
    b1, b2, _ = st.columns([1, 1, 2])
    if b1.button(f"Relabel all {len(flagged_open):,} open suspects", disabled=not flagged_open, key="bulk_relabel",
                 help="Each one gets the class the detector suggests for it."):  # fmt: skip
        for i in flagged_open:
            plan.decide(i, "relabel", int(iss.suggested[i]))
        st.rerun()
    if b2.button(f"Drop all {len(flagged_open):,} open suspects", disabled=not flagged_open, key="bulk_drop"):
        for i in flagged_open:
            plan.decide(i, "drop")
        st.rerun()
    st.caption(f"{len(candidates):,} items to review")
    window = candidates[pager(len(candidates), 12, "sus_page")]
    gallery(
        ds,
        window,
        per_row=3,
        footer=actions,
        caption=lambda i: (
            f"{where(ds, i)} · given **{label_of(ds, i)}** → suggested **{names[iss.suggested[i]]}** · quality {iss.score[i]:.2f}"
        ),
    )

# --------------------------------------------------------------------------- duplicates
with t_dups:
    if len(dup_table) == 0:
        st.success(f"No exact or near-duplicates (cosine ≥ {cfg.duplicate_threshold}).")
    else:
        n_leaks = int(dup_table["leak"].sum())
        st.markdown(
            f"**{len(dup_table):,}** clusters holding **{int(dup_table['size'].sum()):,}** items; **{n_leaks:,}** span splits "
            "(a test item also seen in training inflates test scores) and "
            f"**{int(dup_table['conflict'].sum()):,}** carry conflicting labels."
        )
        extra = [j for items in dup_table["items"] for j in items[1:] if plan.decision(j) is None]
        if st.button(f"Drop the {len(extra):,} extra copies (keep the first item of each cluster)", disabled=not extra, key="drop_dups"):
            for j in extra:
                plan.decide(j, "drop")
            st.rerun()
        shown = dup_table.drop(columns=["items"]).head(500)
        st.dataframe(shown, hide_index=True, width="stretch")
        pick = st.selectbox(
            "Look at cluster",
            dup_table["cluster"].tolist(),
            key="dup_pick",
            format_func=lambda c: (
                f"cluster {c}: {dup_table.set_index('cluster').loc[c, 'size']} items, {dup_table.set_index('cluster').loc[c, 'splits']}"
            ),
        )
        members = np.asarray(dup_table.set_index("cluster").loc[pick, "items"][:12])
        gallery(ds, members, per_row=3, footer=actions, caption=lambda i: f"{where(ds, i)} · {label_of(ds, i)}")

# --------------------------------------------------------------------------- outliers
with t_out:
    cut = float(np.quantile(d.outlier_score, cfg.outlier_quantile)) if len(ds) else None
    st.plotly_chart(
        charts.score_histogram(
            d.outlier_score, cut=cut, title="Distance to the nearest neighbours", x_title="mean cosine distance to k nearest"
        ),
        width="stretch",
    )
    st.caption(
        f"{len(d.outliers):,} items above the {cfg.outlier_quantile:.1%} quantile, most unusual first: off-domain, corrupted or rare."
    )
    window = d.outliers[pager(len(d.outliers), 12, "out_page")]
    gallery(
        ds,
        window,
        per_row=3,
        footer=actions,
        caption=lambda i: (
            f"{where(ds, i)} · {label_of(ds, i)} · distance {d.outlier_score[i]:.3f}"
            + (f" · also a suspected label error → **{names[iss.suggested[i]]}**" if iss.is_issue[i] else "")
        ),
    )

# --------------------------------------------------------------------------- embedding map
with t_map:
    m1, m2 = st.columns([2, 1])
    colour_options = ["label", "label quality", "flagged", "split"] + [c for c in ds.meta.columns if ds.meta[c].nunique() <= 20]
    colour_by = m1.radio("Colour by", colour_options, horizontal=True, key="map_colour")
    limits = {"PCA": 20_000, "t-SNE": 2_000}  # items drawn at most (a seeded sample above)
    shown = {m: f"all {len(ds):,} items" if len(ds) <= n else f"{n:,} sampled" for m, n in limits.items()}
    method = m2.radio("Projection", list(limits), horizontal=True, key="map_method", format_func=lambda m: f"{m} ({shown[m]})")
    rng = np.random.default_rng(0)
    n_max = limits[method]
    index = np.arange(len(ds)) if len(ds) <= n_max else np.sort(rng.choice(len(ds), n_max, replace=False))
    if method == "PCA":
        xy = d.map2d[index]
    else:

        @st.cache_data(show_spinner=f"Running t-SNE on {len(index):,} items…", max_entries=4)
        def tsne_cached(version_id: int, key: str, index: np.ndarray) -> np.ndarray:
            return tsne_2d(np.asarray(embed(common.dataset(version_id), backbone=cfg.backbone)), index)

        xy = tsne_cached(vid, cfg.backbone, index)
    if colour_by == "label":
        colour, continuous = ds.label_names(index), False
    elif colour_by == "label quality":
        colour, continuous = iss.score[index], True
    elif colour_by == "flagged":
        colour, continuous = np.where(iss.is_issue[index], "suspect", "ok"), False
    elif colour_by == "split":
        colour, continuous = np.asarray(SPLITS, dtype=object)[ds.split[index]], False
    else:
        colour, continuous = ds.meta[colour_by].astype(str).to_numpy()[index], False
    ids = ds.item_ids()
    if ds.modality == "text":
        hover = [f"#{ids[i]} {label_of(ds, i)}: {str(ds.items[i])[:80]}" for i in index]
    else:
        hover = [f"#{ids[i]} {label_of(ds, i)} (quality {iss.score[i]:.2f})" for i in index]
    event = st.plotly_chart(
        charts.embedding_map(xy, colour, colour_name=colour_by, hover=hover, index=index, continuous=continuous),
        width="stretch",
        on_select="rerun",
        selection_mode=("lasso", "box", "points"),
        key="map_chart",
    )
    picked = [int(p["customdata"]) for p in (event.selection.points if event and event.selection else []) if "customdata" in p]
    if picked:
        st.caption(f"{len(picked):,} items selected; the first 12:")
        gallery(ds, np.asarray(picked[:12]), per_row=3, footer=actions, caption=lambda i: f"{where(ds, i)} · {label_of(ds, i)}")
    else:
        st.caption("Lasso or box-select points to see the items and act on them.")

# --------------------------------------------------------------------------- coverage
with t_cov:
    cov = d.coverage.copy()
    if len(gaps):
        st.warning(
            f"{len(gaps):,} class(es) are missing from a split or never seen in training — the model will either never "
            "learn them or be scored on nothing: " + ", ".join(str(c) for c in gaps["name"].head(10))
        )
    else:
        st.success(f"Every class has items in every split (at least {cfg.min_count} flagged below otherwise).")
    if "missing_in" in cov:
        cov["missing_in"] = cov["missing_in"].map(lambda v: ", ".join(v) if isinstance(v, (list, tuple)) else str(v))
    st.dataframe(cov, hide_index=True, width="stretch")

st.caption(
    "Stage times: "
    + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in d.seconds.items())
    + f" · backbone {resolve_backbone(ds, d.backbone or 'auto')}"
    + (" (chosen automatically)" if d.backbone in ("", "auto") else "")
)
