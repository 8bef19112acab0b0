"""The Selection page's parts: a run's data map, keep x % (one version or a sweep), and label next
(a labelling queue over the unlabelled pool, and the simulated loop on known labels)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import charts
from core.data.dataset import Dataset
from core.errors import DataError
from core.select import active as A
from core.select import keep as K
from core.select import sweep as W
from core.select.scores import data_map
from core.store import RunFiles, RunStatus, Store
from ui import common
from ui.items import show_item
from ui.state import default, default_choices, default_within

FRACTIONS = [0.1, 0.2, 0.3, 0.5, 0.7]
QUEUE = "se_queue_state"  # session key: {"key": …, "rows": [...], "pos": int, "given": {row: class}}
CURVES = "se_curves"  # session key: (choices, the simulated loop's curves)
DYNAMICS_SOURCE = "dynamics:"  # Diagnose's label-issue source for a run's dynamics (ui.diagnose_run.DYNAMICS)


def dynamics_runs(store: Store, vid: int) -> list[Any]:
    """Finished runs on this version that kept training dynamics, newest first."""
    runs = store.runs(status=(RunStatus.FINISHED, RunStatus.STOPPED))
    return [r for r in runs if r.version_id == vid and RunFiles(r.id, home=store.home).has_dynamics()]


def dynamics_section(store: Store, vid: int, ds: Dataset) -> int | None:
    """Pick a run with dynamics; its data map, region counts and a link to review the hard-to-learn
    items on Diagnose. Returns the run picked (None when there is none)."""
    runs = dynamics_runs(store, vid)
    if not runs:
        st.info(
            "No finished run on this version kept its training dynamics yet. Every classification run keeps them: train one on "
            "**Train** (a few epochs are enough), then come back. Random keeps and label-next work without one."
        )
        return None
    ids = [r.id for r in runs]
    default("se_run", ids[0], allowed=ids)
    names = {r.id: f"run {r.id} · {r.name or 'unnamed'}" for r in runs}
    run_id = int(st.selectbox("Run", ids, format_func=names.__getitem__, key="se_run", persist_state="session"))
    try:
        m = data_map(RunFiles(run_id, home=store.home).dynamics())
    except DataError as err:
        st.warning(str(err))
        return None
    counts = m["region"].value_counts()
    c1, c2, c3 = st.columns(3)
    c1.metric("Easy", f"{int(counts.get('easy', 0)):,}")
    c2.metric("Ambiguous", f"{int(counts.get('ambiguous', 0)):,}")
    c3.metric("Hard to learn", f"{int(counts.get('hard to learn', 0)):,}")
    st.plotly_chart(charts.data_map(m), width="stretch", key="se_map")
    st.caption(
        "Each point is a train item, from the run's own training passes (no extra cost): its given label's mean probability "
        "over epochs (confidence) and how much that moved (variability). Hard-to-learn items are often label errors; "
        "ambiguous ones teach the most."
    )
    if counts.get("hard to learn", 0) and st.button("Review the hard-to-learn items on Diagnose", key="se_review"):
        st.session_state["dg_source"] = f"{DYNAMICS_SOURCE}{run_id}"
        st.switch_page("app_pages/diagnose.py")
    return run_id


def _score_choices(run_id: int | None) -> list[str]:
    return list(K.KEEP_SCORES) if run_id is not None else ["random"]


def keep_section(store: Store, vid: int, ds: Dataset, run_id: int | None) -> None:
    """Keep x % by a score as one new version."""
    scores = _score_choices(run_id)
    default("se_score", "ccs" if "ccs" in scores else "random", allowed=scores)
    default_within("se_fraction", 0.3, 0.05, 0.95)
    default("se_balance", "proportional", allowed=list(K.BALANCE))
    default_within("se_hard_cut", K.HARD_CUT, 0.0, 0.5)
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    score = c1.selectbox("Score", scores, format_func=K.KEEP_SCORES.__getitem__, key="se_score", persist_state="session")
    fraction = c2.slider("Share kept", 0.05, 0.95, step=0.05, key="se_fraction", persist_state="session", format="%.2f")
    balance = c3.radio(
        "Per class", list(K.BALANCE), key="se_balance", persist_state="session", horizontal=True,
        format_func={"proportional": "each class's share", "equal": "equal counts"}.__getitem__,
    )  # fmt: skip
    hard_cut = c4.slider(
        "Hardest share set aside", 0.0, 0.5, step=0.05, key="se_hard_cut", persist_state="session", format="%.2f",
        disabled=score not in K.CUT_SCORES,
        help="Coverage-centric and data-map selection first set aside each class's hardest items (often label errors). "
        "Keeping 30 %, setting 20–30 % aside did best on val (Fashion-MNIST, VADER), but on VADER it raised the hallucination "
        "rate @0.9 by 0.06–0.14 (benchmarks/RESULTS.md).",
    )  # fmt: skip
    n_train = int(((ds.split == 0) & ds.labelled).sum())
    st.caption(
        f"Keeps about {round(fraction * n_train):,} of {n_train:,} labelled train items; val, test and the unlabelled pool stay whole."
    )
    if done := st.session_state.pop("se_kept", None):
        st.success(f"Saved version {done}. Pick it on **Data** or **Train** to use it.")
    if st.button("Save the kept version", key="se_keep"):
        common.set_current_version(vid)  # stay on this version: the new one is only its kept part
        recipe = K.KeepRecipe(
            str(score), float(fraction), str(balance), hard_cut=float(hard_cut), run_id=None if score == "random" else run_id
        )
        try:
            with st.spinner("Choosing…"), common.saving():
                st.session_state["se_kept"] = K.kept_version(store, vid, recipe)
        except DataError as err:
            st.error(str(err))
            return
        st.rerun()


def sweep_form(store: Store, vid: int, run_id: int | None) -> None:
    """Scores × shares × seeds → kept versions and one run each, with the scoring run's settings."""
    if run_id is None:
        st.caption("A sweep takes its settings from a run with training dynamics: train one first.")
        return
    others = [s for s in K.KEEP_SCORES if s != "random"]
    default_choices("se_sweep_scores", others, ["el2n", "ccs"])
    default_choices("se_sweep_fractions", FRACTIONS, [0.3, 0.5])
    default("se_sweep_seeds", 1)
    run_epochs = int(store.run(run_id).config.get("epochs", 3))
    default("se_sweep_epochs", min(run_epochs, 3))
    c1, c2, c3, c4 = st.columns([3, 3, 1, 1])
    picked = c1.multiselect("Scores (random is always run)", others, key="se_sweep_scores", persist_state="session")
    fractions = c2.multiselect(
        "Shares kept", FRACTIONS, key="se_sweep_fractions", persist_state="session", format_func=lambda f: f"{f:.0%}"
    )
    seeds = int(c3.number_input("Seeds", 1, 5, key="se_sweep_seeds", persist_state="session"))
    epochs = int(c4.number_input("Epochs", 1, 50, key="se_sweep_epochs", persist_state="session"))
    n_runs = (len(picked) + 1) * len(fractions) * seeds
    if not st.button(f"Run the sweep ({n_runs} runs)", key="se_sweep", disabled=n_runs == 0):
        return
    common.set_current_version(vid)  # the sweep's versions are saved after this one; stay here
    try:
        with st.spinner("Saving the kept versions…"), common.saving():
            ids = W.make_sweep(store, vid, run_id, picked, sorted(fractions), seeds=range(seeds))
            configs = W.sweep_configs(store, run_id, ids, epochs=epochs)
        runner = common.runner()
        for cfg in configs:
            runner.submit(cfg)
    except DataError as err:
        st.error(f"The sweep stopped: {err}")
        return
    st.success(f"Queued {len(configs)} runs; their results arrive below as they finish.")


@st.fragment(run_every=3.0)
def sweep_results(store: Store, vid: int, run_id: int | None) -> None:
    """The sweep's runs so far: a chart per metric against the share kept, beside random."""
    table = W.sweep_table(store, vid)
    if table.empty:
        st.caption("No keep-x % run on this version yet.")
        return
    finished = int(table["macro_f1"].notna().sum())
    st.progress(finished / len(table), text=f"{finished} of {len(table)} runs finished")
    summary = W.sweep_summary(table)
    if summary.empty:
        return
    full = None
    if run_id is not None:
        from core.metrics.results import RunResults

        res = RunResults(store, run_id)
        full = res.values("test", res.result_step) if res.result_step is not None else None
    cols = st.columns(len(W.SWEEP_METRICS))
    for col, (metric, words) in zip(cols, W.SWEEP_METRICS.items()):
        base = None if not full else full.get(metric)
        col.plotly_chart(
            charts.keep_sweep(summary, metric, title=f"{words} against the share kept", full=base),
            width="stretch",
            key=f"se_sweep_{metric}",
        )
    shown = summary[
        ["score", "fraction", "runs", "macro_f1", "macro_f1_low", "macro_f1_high", "macro_f1_vs_random", "hallucination_rate", "ece"]
    ]
    st.dataframe(
        shown.rename(
            columns={
                "fraction": "share kept",
                "macro_f1": "macro-F1",
                "macro_f1_low": "95 % low",
                "macro_f1_high": "95 % high",
                "macro_f1_vs_random": "vs random",
                "hallucination_rate": "hallucination",
            }
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Mean over seeds; the interval is the mean's normal 95 % interval (one seed: no interval). Dashed line: the run on every item."
    )


# ------------------------------------------------------------------ label next


def _vectors(ds: Dataset, *others: Dataset) -> list[np.ndarray]:
    from core.shift.target import vectors

    with st.spinner("Embedding the items (once; cached afterwards)…"):
        return vectors(ds, *others)


OWN = "own"  # the pool source: this version's unlabelled items


def _pool_source(store: Store, vid: int, ds: Dataset) -> tuple[Any, Dataset | None, np.ndarray]:
    """(source: OWN or a version id, the dataset the pool items live in, their rows) as picked."""
    own = np.flatnonzero((ds.split == 0) & ~ds.labelled)
    mine = store.version(vid).dataset_id
    targets = [
        v
        for v in store.versions()
        if v.id != vid
        and v.modality == ds.modality
        and list(v.class_names) == list(ds.class_names)
        and (v.dataset_id != mine or v.kind == "shift")
    ]  # fmt: skip — another dataset's items, or a made shift target of this one
    sources: list[Any] = ([OWN] if len(own) else []) + [v.id for v in targets]
    if not sources:
        return None, None, own
    names = {v.id: f"the items of {v.label}" for v in targets}
    default("se_pool", sources[0], allowed=sources)
    source = st.selectbox(
        "Items to label", sources, key="se_pool", persist_state="session",
        format_func=lambda s: f"this version's {len(own):,} unlabelled items" if s == OWN else names[s],
    )  # fmt: skip
    if source == OWN:
        return OWN, ds, own
    other = common.dataset(int(source))
    rows = np.arange(len(other))
    if store.version(int(source)).dataset_id == mine:  # a target of this dataset: only items this version does not hold
        rows = rows[~np.isin(other.item_ids(), ds.item_ids())]
    return int(source), other, rows


def queue_section(store: Store, vid: int, ds: Dataset) -> None:
    """Propose k pool items by a strategy, label them one by one, save the labels as a version."""
    source, where, pool = _pool_source(store, vid, ds)
    if where is None:
        st.caption(
            "Nothing to label yet: upload items with an empty label (they join the train split as the pool), or save a shift "
            "target of new items as a version; the loop below shows what labelling would buy, on the labels you have."
        )
        return
    strategies = list(A.STRATEGIES)
    default("se_strategy", "diverse_margin", allowed=strategies)
    default("se_k", 20)
    c1, c2 = st.columns([3, 1])
    strategy = str(c1.selectbox("Pick by", strategies, format_func=A.STRATEGIES.__getitem__, key="se_strategy", persist_state="session"))
    k = int(c2.number_input("Items", 1, 500, key="se_k", persist_state="session"))
    st.caption(f"{len(pool):,} items to choose from.")
    if st.button("Propose items to label", key="se_propose"):
        x, x_where = (_vectors(ds)[0],) * 2 if source == OWN else _vectors(ds, where)
        lab = np.flatnonzero(ds.labelled & (ds.split == 0))
        try:
            pick = A.propose(strategy, x_where[pool], k, x_labelled=x[lab], y_labelled=ds.labels[lab])
        except DataError as err:
            st.error(str(err))
            return
        st.session_state[QUEUE] = {"vid": vid, "source": source, "rows": pool[pick].tolist(), "pos": 0, "given": {}}
    q = st.session_state.get(QUEUE)
    if not q or q["vid"] != vid or q.get("source", OWN) != source:
        return
    _queue(store, vid, where, q)


def _queue(store: Store, vid: int, where: Dataset, q: dict) -> None:
    rows, pos, given = q["rows"], q["pos"], q["given"]
    st.progress(len(given) / max(len(rows), 1), text=f"{len(given)} of {len(rows)} labelled")
    if pos < len(rows):
        row = int(rows[pos])
        show_item(where, row, width=160)
        with st.form("se_label_form", clear_on_submit=True, border=False):
            choice = st.radio(
                "Label", list(range(where.n_classes)), format_func=lambda c: where.class_names[c], horizontal=True, index=None
            )
            a, b = st.columns(2)
            save = a.form_submit_button("Label and next", type="primary")
            skip = b.form_submit_button("Skip")
        if save and choice is not None:
            given[row] = int(choice)
            q["pos"] = pos + 1
            st.rerun()
        if skip:
            q["pos"] = pos + 1
            st.rerun()
    if given and st.button(f"Save {len(given)} labels as a new version", key="se_save_labels"):
        try:
            with common.saving():
                if q.get("source", OWN) == OWN:
                    new = A.labelled_version(store, vid, given)
                else:
                    new = A.labelled_from_target(store, vid, int(q["source"]), given)
        except DataError as err:
            st.error(str(err))
            return
        st.session_state.pop(QUEUE, None)
        common.set_current_version(new)
        st.success(f"Saved version {new} with {len(given)} new labels; it is now the current dataset.")


def loop_section(vid: int, ds: Dataset) -> None:
    """The labelling loop on known labels: accuracy against labels spent, a strategy beside random."""
    train = np.flatnonzero((ds.split == 0) & ds.labelled)
    held = np.flatnonzero(ds.split == 2) if (ds.split == 2).any() else np.flatnonzero(ds.split == 1)
    strategies = [s for s in A.STRATEGIES if s != "random"]
    default("se_loop_strategy", "diverse_margin", allowed=strategies)
    default("se_loop_k", max(10, min(200, len(train) // 40)))
    default("se_loop_rounds", 10)
    c1, c2, c3 = st.columns([3, 1, 1])
    strategy = str(
        c1.selectbox("Strategy", strategies, format_func=A.STRATEGIES.__getitem__, key="se_loop_strategy", persist_state="session")
    )
    k = int(c2.number_input("Labels per round", 5, 2000, key="se_loop_k", persist_state="session"))
    n_rounds = int(c3.number_input("Rounds", 1, 30, key="se_loop_rounds", persist_state="session"))
    choices = (vid, strategy, k, n_rounds)
    if st.button("Run the loop on known labels", key="se_loop"):
        x = _vectors(ds)[0]
        bar = st.progress(0.0, text="Fitting…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Fit {done} of {total}")

        try:
            new = A.rounds(
                x[train], ds.labels[train], x[held], ds.labels[held], strategy=strategy, start=k, k=k, n_rounds=n_rounds,
                progress=progress,
            )  # fmt: skip
        except DataError as err:
            bar.empty()
            st.error(str(err))
            return
        bar.empty()
        st.session_state[CURVES] = (choices, new)
    got = st.session_state.get(CURVES)
    if got is None or got[0] != choices:
        st.caption(
            "Hides the train labels, buys them round by round by the strategy (and at random from the same start), refits a "
            "linear model on the embeddings each round and scores it on the test split."
        )
        return
    curves: pd.DataFrame = got[1]
    st.plotly_chart(charts.label_curves(curves), width="stretch", key="se_curves_chart")
    rnd = curves[curves["picker"] == "random"]
    final = float(rnd["accuracy"].iloc[-1])
    reached = A.labels_to_reach(curves[curves["picker"] == strategy], final)
    spent = int(rnd["labels"].iloc[-1])
    if reached is None:
        st.markdown(f"**{strategy}** did not reach random's final accuracy ({final:.3f} at {spent:,} labels) within these rounds.")
    else:
        st.markdown(
            f"**{strategy}** reached random's final accuracy ({final:.3f} at {spent:,} labels) with **{reached:,} labels** ({reached / spent:.0%})."
        )
