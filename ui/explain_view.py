"""Why a run answered as it did: an item of the hallucination gallery explained for the class the
model answered and for its given class (``core.explain``), and its nearest train items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import charts, paths
from core.data.dataset import Dataset
from core.errors import DataError
from core.explain import cache
from core.explain.attribute import Explainer
from core.explain.kinds import METHOD_WORDS, METHODS, Attribution
from core.explain.neighbours import Neighbours, nearest_train, suspect_flags, why_words
from core.metrics.results import RunResults
from core.store import RunFiles
from ui import common, state
from ui.items import image_strip, where

_EXPLAIN = ("image", "text", "tabular")


@st.cache_resource(show_spinner=False, max_entries=2)
def _explainer(home: str, run_id: int, step: int) -> Explainer:
    from core.store import Store
    from core.train.apply import load_run_model

    return Explainer(load_run_model(Store(home), run_id, device="cpu"))


@st.cache_resource(show_spinner=False)
def _jobs() -> dict[tuple[str, int], cache.ExplainJob]:
    return {}  # one per (home, run), shared by every session of this app process


@st.cache_resource(show_spinner=False, max_entries=1)
def _embeddings(home: str, version_id: int) -> np.ndarray:
    from core.embed.embeddings import embed

    return embed(common.dataset(version_id))


def _embedded(ds: Dataset) -> bool:
    from core.embed.embeddings import uncached_items

    return ds.modality == "tabular" or uncached_items(ds) == 0


def _suspects(res: RunResults, ds: Dataset) -> tuple[np.ndarray | None, str]:
    from ui import diagnosis

    found = diagnosis.latest(res.row.version_id, diagnosis.config())
    return suspect_flags(
        len(ds),
        diagnosis=None if found is None else (found.rows, found.diagnosis.issues.is_issue),
        dynamics=None if found is not None else res.files.dynamics(),
    )


def _label(ds: Dataset, row: pd.Series) -> str:
    return (
        f"{where(ds, int(row['item']))} · given {ds.class_names[int(row['label'])]} → "
        f"predicted {ds.class_names[int(row['pred'])]} · {float(row['conf']):.1%}"
    )


def explain_block(res: RunResults, ds: Dataset, wrong: pd.DataFrame, *, page: str = "rn") -> None:
    """The explanation of one gallery item (chosen in a select box), and the background job that
    explains every item of the gallery. ``page``: the key prefix of the page drawing it (``ui.state``)."""
    if ds.modality not in _EXPLAIN or wrong.empty:
        return
    st.markdown("**Why it answered** — attributions and the nearest train items")
    if res.status.active:
        st.caption("Explanations appear once the run has ended.")
        return
    if res.config.get("finetune") == "linear_probe":
        st.caption(
            "This run is a linear probe on frozen backbone features: an attribution would explain its head, not the item. "
            "The nearest train items below still say what the item looks like to the backbone."
        )
    step = res.result_step
    if step is None or not res.files.checkpoint_path("best").exists():
        st.caption("The run kept no model to explain.")
        return
    rows = {int(r["item"]): r for _, r in wrong.iterrows()}
    items = list(rows)
    key = f"{page}_ex_item_{res.run_id}"
    state.default(key, items[0], allowed=items)
    item = int(st.selectbox("Item", items, format_func=lambda i: _label(ds, rows[i]), key=key, persist_state="session"))
    methods = list(METHODS[ds.modality])
    mkey = f"{page}_ex_method_{res.run_id}"
    state.default(mkey, methods[0], allowed=methods)
    method = st.radio("Attribution", methods, format_func=METHOD_WORDS.__getitem__, key=mkey, horizontal=True, persist_state="session")
    _background(res, page, [(i, int(rows[i]["pred"])) for i in items] + [(i, int(rows[i]["label"])) for i in items])
    if res.config.get("finetune") != "linear_probe":
        _attributions(res, ds, item, int(rows[item]["pred"]), int(rows[item]["label"]), method, step)
    _neighbours(res, ds, item, predicted=int(rows[item]["pred"]), given=int(rows[item]["label"]))


def _background(res: RunResults, page: str, pairs: list[tuple[int, int]]) -> None:
    """A button that explains every gallery item (both classes, every method) in the background,
    and its progress bar."""
    home = str(paths.home())
    jobs = _jobs()
    job = jobs.get((home, res.run_id))
    running = job is not None and job.is_alive()
    c1, c2 = st.columns([2, 3])
    if c1.button("Explain the whole gallery in the background", key=f"{page}_ex_all_{res.run_id}", disabled=running):
        job = jobs[(home, res.run_id)] = cache.ExplainJob(home, res.run_id, pairs)
        job.start()
        running = True
    if job is None:
        c2.caption("Every item, both classes and every method, kept with the run; the nearest train items need the version embedded.")
        return

    @st.fragment(run_every=1.0 if running else None)
    def live() -> None:
        done, total, stage = job.status()
        if job.error:
            c2.error(f"The explanations stopped: {job.error}")
        elif stage == "done":
            c2.caption(f"Every gallery item explained in {job.seconds:.0f} s; kept with the run.")
            if st.session_state.get(f"explain_seen_{res.run_id}") is not job:
                st.session_state[f"explain_seen_{res.run_id}"] = job
                st.rerun(scope="app")  # the neighbours read the embeddings the job made: redraw the page once
        else:
            c2.progress(done / max(total, 1), text=f"Explaining {done:,} of {total:,}: {stage}")

    live()


def _one(res: RunResults, explainer: Explainer, item: int, cls: int, method: str, step: int) -> Attribution | str:
    try:
        with st.spinner(f"{METHOD_WORDS[method]} for {explainer.model.ds.class_names[cls]}…"):
            return cache.cached_or_computed(explainer, RunFiles(res.run_id, home=paths.home()), step, item, cls, method)
    except DataError as err:
        return str(err)


def _attributions(res: RunResults, ds: Dataset, item: int, predicted: int, given: int, method: str, step: int) -> None:
    try:
        with st.spinner("Loading the run's model…"):
            explainer = _explainer(str(paths.home()), res.run_id, step)
    except DataError as err:
        st.info(str(err))
        return
    got = {role: _one(res, explainer, item, cls, method, step) for cls, role in ((predicted, "answered"), (given, "given"))}
    tops = [float(np.abs(a.values).max()) for a in got.values() if isinstance(a, Attribution) and a.values.size]
    top = max(tops) if tops else None  # one colour scale for both: the same colour means the same amount
    for col, (role, a), cls in zip(st.columns(2), got.items(), (predicted, given)):
        with col:
            if isinstance(a, str):
                st.info(f"For the given class: {a}")
                continue
            _draw(ds, a, f"{role}: {ds.class_names[cls]} · p = {a.prob:.1%}", top=top)
    st.caption("Red: evidence for the class; blue: against; both pictures on one scale. " + _method_words(method, ds.modality))


BASELINES = {"image": "a black image", "text": "the text with its words replaced by padding", "tabular": "the train split's mean row"}


def _method_words(method: str, modality: str) -> str:
    return {
        "integrated_gradients": f"Integrated Gradients of the class's logit from {BASELINES[modality]}; the attributions add up to the logit's change.",
        "occlusion": "How much the class's probability falls when each patch is blacked out.",
        "feature_ablation": "How much the class's probability falls when each column is set to its train mean.",
        "gradients": "The size of the logit's gradient at each part (plain gradients: the quick, noisier view).",
    }[method]


def _draw(ds: Dataset, a: Attribution, title: str, *, top: float | None) -> None:
    if ds.modality == "image":
        st.plotly_chart(charts.attribution_image(np.asarray(ds.items[a.item]), a.values, title=title, top=top), width="stretch")
    elif ds.modality == "text":
        st.markdown(f"**{title}**")
        text = str(ds.items[a.item])
        st.markdown(charts.attribution_text_html(text, a.spans, a.values, top=top), unsafe_allow_html=True)
    else:
        st.plotly_chart(charts.attribution_bars(a.parts, a.values, title=title), width="stretch")


def _neighbours(res: RunResults, ds: Dataset, item: int, *, predicted: int, given: int) -> None:
    st.markdown("**Nearest train items** (in the embedding space Diagnose uses)")
    if not _embedded(ds):
        st.caption("Appear once the version is embedded: run Diagnose on it, or explain the whole gallery in the background.")
        return
    emb = _embeddings(str(paths.home()), res.row.version_id)
    suspect, source = _suspects(res, ds)
    nb = nearest_train(emb, ds, item, k=5, suspect=suspect)
    st.markdown(why_words(nb, ds, predicted=predicted, given=given))
    _neighbour_items(ds, nb)
    st.caption(f"Cosine similarity of the embeddings; {source}.")


def _flag(nb: Neighbours, ds: Dataset, j: int) -> str:
    lab = int(nb.labels[j])
    marks = []
    if nb.suspect is not None and nb.suspect[j]:
        marks.append("suspect label")
    if nb.thin(lab):
        marks.append("thin class")
    return f"{ds.class_names[lab]} · {nb.similarity[j]:.2f}" + (f" · ⚠ {', '.join(marks)}" if marks else "")


def _neighbour_items(ds: Dataset, nb: Neighbours) -> None:
    if ds.modality == "image":
        for col, j in zip(st.columns(max(len(nb.rows), 1)), range(len(nb.rows))):
            col.image(image_strip(np.asarray(ds.items[nb.rows[j : j + 1]]), side=80), caption=_flag(nb, ds, j))
        return
    table = pd.DataFrame(
        {"item": [where(ds, int(r)) for r in nb.rows], "label · similarity · flags": [_flag(nb, ds, j) for j in range(len(nb.rows))]}
    )
    if ds.modality == "text":
        table.insert(1, "text", [str(ds.items[int(r)])[:200] for r in nb.rows])
        st.dataframe(table, hide_index=True, width="stretch")
    else:
        st.dataframe(pd.concat([table, ds.items.iloc[nb.rows].reset_index(drop=True)], axis=1), hide_index=True, width="stretch")
