"""The Lab page's sections: the corpus's knobs and preview, a lab run's settings, and its results.

Every number comes from ``core.lab`` (the corpus, its figures, the run's rows); this module lays
them out. Widget keys start with ``lb_`` so the settings survive leaving the page.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core import charts
from core.errors import DataError
from core.lab import view as V
from core.lab.corpus import ATTRIBUTE_WORDS, ATTRIBUTES, LAWS, MAX_PARAPHRASES, CorpusSpec, make_corpus
from core.lab.settings import LAB_MODEL, LabSettings, lab_block, lab_words
from core.lab.stored import corpus_of, lab_versions, save_corpus
from core.metrics.results import RunResults
from core.store import Store
from core.store.status import RunStatus
from core.train.config import RunConfig
from ui import common
from ui.state import default

CURVES = {"accuracy": "accuracy", "hallucination_rate": "hallucination @τ", "ece": "ECE"}
LAW_WORDS = {"buckets": "buckets (equal shares)", "zipf": "Zipf", "pareto": "Pareto"}


@st.cache_data(show_spinner=False, max_entries=8)
def _corpus(spec_json: str) -> dict:
    return V.corpus_preview(make_corpus(CorpusSpec.from_dict(json.loads(spec_json))))


def _buckets(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(x) for x in text.replace(";", ",").split(",") if x.strip())
    except ValueError as err:
        raise DataError(f"exposure buckets are whole numbers separated by commas, like 1, 2, 4, 8 (got {text!r})") from err
    return out


def corpus_knobs() -> CorpusSpec | None:
    """The corpus's settings from the widgets; ``None`` (with the reason shown) when they do not work."""
    for key, value in (("lb_people", 300), ("lb_law", "buckets"), ("lb_buckets", "1, 2, 4, 8"), ("lb_exponent", 2.0),
                       ("lb_max", 16), ("lb_held", 0.2), ("lb_para", 5), ("lb_shuffle", True), ("lb_noise", 0.0), ("lb_seed", 0)):  # fmt: skip
        default(key, value)
    c1, c2, c3, c4 = st.columns(4)
    people = c1.number_input("People", 2, 100_000, step=50, key="lb_people", persist_state="session")
    law = c2.selectbox("Exposure law", list(LAWS), key="lb_law", persist_state="session", format_func=lambda x: LAW_WORDS[x])
    if law == "buckets":
        buckets = c3.text_input(
            "Appearances per bucket", key="lb_buckets", persist_state="session", help="Each bucket gets an equal share of the people."
        )
        exponent, max_count = 2.0, 16
    else:
        exponent = c3.number_input(
            "Exponent" if law == "zipf" else "Shape", 0.1, 10.0, step=0.1, key="lb_exponent", persist_state="session"
        )
        max_count = int(c4.number_input("Most appearances", 1, 1000, key="lb_max", persist_state="session"))
        buckets = "1"
    d1, d2, d3, d4, d5 = st.columns(5)
    held = d1.slider("Held-out share (never seen)", 0.0, 0.9, step=0.05, key="lb_held", persist_state="session")
    para = d2.slider("Paraphrases per fact", 1, MAX_PARAPHRASES, key="lb_para", persist_state="session")
    shuffle = d3.toggle("Shuffle sentence order", key="lb_shuffle", persist_state="session")
    noise = d4.slider("Noise: biographies with a wrong fact", 0.0, 0.5, step=0.01, key="lb_noise", persist_state="session")
    seed = d5.number_input("Seed", 0, 10_000, key="lb_seed", persist_state="session")
    try:
        return CorpusSpec(
            n_people=int(people), law=law, buckets=_buckets(buckets), exponent=float(exponent), max_count=max_count,
            held_out=float(held), paraphrases=int(para), shuffle=bool(shuffle), noise=float(noise), seed=int(seed),
        )  # fmt: skip
    except DataError as err:
        st.error(str(err))
        return None


def corpus_preview(spec: CorpusSpec) -> dict:
    p = _corpus(json.dumps(spec.to_dict(), sort_keys=True))
    k1, k2, k3, k4 = st.columns(4)
    k1.metric("Monofact rate", f"{p['monofact_rate']:.1%}", help="Share of the facts the corpus states that it states exactly once.")
    k2.metric("Good–Turing missing mass", f"{p['good_turing']:.1%}", help="Facts stated once over all fact statements.")
    k3.metric("Biographies", f"{p['biographies']:,}", help=f"{p['words']:,} words in all")
    k4.metric("Held-out people", f"{p['held_out']:,}", help=f"{p['wrong']:,} biographies state a wrong fact")
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.exposure_bars(p["exposure"]), key="lb_hist")
    with right:
        st.markdown("**Sample biographies**")
        for name, bio in p["samples"]:
            st.caption(f"**{name}** — {bio}")
    return p


def save_section(store: Store, spec: CorpusSpec) -> None:
    if st.button("Save this corpus", key="lb_save", type="primary"):
        with st.spinner("Writing the corpus…"), common.saving():
            vid = save_corpus(store, spec)
        st.session_state["lb_version"] = vid
        st.success(f"Saved as version {vid}: its questions show on the Data page, sliced by exposure.")


def pick_version(store: Store) -> int | None:
    versions = lab_versions(store)
    if not versions:
        st.info("Save a corpus above first: a lab run trains on a saved corpus.")
        return None
    ids = [v.id for v in versions]
    default("lb_version", ids[0], allowed=ids)
    labels = {v.id: f"v{v.id} · {v.note} · monofact {v.params.get('monofact_rate', 0):.0%}" for v in versions}
    return int(st.selectbox("Corpus", ids, key="lb_version", persist_state="session", format_func=lambda i: labels[i]))


def run_knobs() -> LabSettings | None:
    for key, value in (("lb_epochs", 80), ("lb_every", 10), ("lb_width", 128), ("lb_layers", 4), ("lb_run_seed", 0), ("lb_aug", False),
                       ("lb_rare", 0), ("lb_qa", 0.0), ("lb_idk", 0.0), ("lb_teach", 0.0), ("lb_abstain", 0.0), ("lb_retrieval", False), ("lb_early", False), ("lb_names", False)):  # fmt: skip
        default(key, value)
    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.number_input("Epochs", 1, 1000, key="lb_epochs", persist_state="session")
    every = c2.number_input("Evaluate every (epochs)", 1, 100, key="lb_every", persist_state="session")
    width = c3.selectbox("Width", [32, 64, 128, 256], key="lb_width", persist_state="session")
    layers = c4.number_input("Layers", 1, 12, key="lb_layers", persist_state="session")
    seed = c5.number_input("Seed", 0, 10_000, key="lb_run_seed", persist_state="session")
    st.markdown("**Mitigations** — each a run to compare")
    m1, m2, m3, m4, m5 = st.columns(5)
    aug = m1.toggle(
        "Paraphrase augmentation",
        key="lb_aug",
        persist_state="session",
        help="Every epoch, each biography re-written in new templates and order.",
    )
    rare = m2.number_input("Extra copies of once-seen biographies", 0, 20, key="lb_rare", persist_state="session")
    retrieval = m3.toggle(
        "Retrieval (the ceiling)", key="lb_retrieval", persist_state="session", help="Answer from the corpus when it names the person."
    )
    early = m4.toggle("Stop when invented answers rise", key="lb_early", persist_state="session")
    names = m5.toggle("Abstain on unfamiliar names", key="lb_names", persist_state="session",
                      help="Answer 'unknown' when the model finds the person's name less familiar than 95 % of the corpus's names.")  # fmt: skip
    n1, n2, n3, n4 = st.columns(4)
    qa = n1.slider("Questions of this share of people in training", 0.0, 0.9, step=0.1, key="lb_qa", persist_state="session",
                   help="The others are asked after training; 0 asks every person by completing a sentence.")  # fmt: skip
    idk = n2.slider("'unknown' taught for this share of held-out people", 0.0, 1.0, step=0.1, key="lb_idk", persist_state="session")
    teach = n3.slider("True answers taught for this share of held-out people", 0.0, 1.0, step=0.1, key="lb_teach", persist_state="session",
                      help="Facts no biography states, learned only from questions and answers (Gekhman et al. 2024).")  # fmt: skip
    abstain = n4.slider("Abstain below confidence", 0.0, 0.95, step=0.05, key="lb_abstain", persist_state="session")
    try:
        return LabSettings(
            epochs=int(epochs), eval_every=int(every), n_embd=int(width), n_layer=int(layers), seed=int(seed), paraphrase_aug=bool(aug),
            repeat_rare=int(rare), qa_share=float(qa), idk_share=float(idk), teach_unknown=float(teach), abstain_below=float(abstain), abstain_unfamiliar=0.05 if names else 0.0, retrieval=bool(retrieval),
            early_stop=bool(early),
        )  # fmt: skip
    except DataError as err:
        st.error(str(err))
        return None


def start_section(store: Store, vid: int, settings: LabSettings) -> None:
    words = lab_words(settings)
    if st.button(f"Start a lab run{' · ' + ' · '.join(words) if words else ''}", key="lb_start", type="primary"):
        corpus = store.version(vid).params["lab_corpus"]
        cfg = RunConfig(
            version_id=vid, model=LAB_MODEL, epochs=settings.epochs, checkpoint="last", device="auto", lab=lab_block(settings, corpus)
        )
        try:
            run_id = common.runner().submit(cfg.validate())
        except (ValueError, DataError) as err:
            st.error(str(err))
            return
        st.session_state["lb_run"] = run_id
        st.success(f"Run {run_id} queued: its curves arrive below.")


@st.fragment(run_every=3.0)
def results_section(store: Store, vid: int) -> None:
    runs = V.lab_runs(store, vid)
    if not runs:
        st.caption("No lab run on this corpus yet.")
        return
    ids = [r.id for r in runs]
    default("lb_run", ids[0], allowed=ids)
    by_id = {r.id: r for r in runs}
    run_id = int(st.selectbox("Run", ids, key="lb_run", persist_state="session", format_func=lambda i: f"run {i} · {by_id[i].name}"))
    row = by_id[run_id]
    if row.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        st.progress(float(row.progress or 0.0), text=f"{row.status}: {row.message or 'waiting for the runner'}")
    elif row.message:
        (st.error if row.status == RunStatus.FAILED else st.caption)(f"{row.status}: {row.message}")
    res = RunResults(store, run_id)
    table = V.exposure_table(res)
    if table.empty:
        st.caption("The first evaluation has not arrived yet.")
        return
    tau = float(res.tau)
    kv = V.kv_line(res, float(store.version(vid).params.get("monofact_rate", 0.0)))
    left, right = st.columns(2)
    left.plotly_chart(charts.exposure_lines({f"run {run_id}": table}, tau=tau, kv=kv["bound"]), key=f"lb_lines_{run_id}")
    default("lb_curve", "accuracy")
    curve = right.radio(
        "Over training", list(CURVES), key="lb_curve", horizontal=True, persist_state="session", format_func=lambda c: CURVES[c]
    )
    right.plotly_chart(charts.exposure_curves(V.exposure_curves(res), curve), key=f"lb_curves_{run_id}")
    st.dataframe(_words(table), hide_index=True)
    taught = V.taught_curve(res)
    if len(taught):
        st.plotly_chart(charts.taught_lines(taught, tau=tau), key=f"lb_taught_{run_id}")
    for sentence in V.findings(table, kv, tau, taught):
        st.markdown(sentence)


def _words(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its columns in words, numbers as text ("—" where a figure does not apply)."""
    table = table.copy()
    for col in table.columns:
        if col in ("exposure", "n"):
            table[col] = table[col].map(lambda v: "—" if pd.isna(v) else f"{int(v):,}")
        else:
            table[col] = table[col].map(lambda v: "—" if pd.isna(v) else f"{float(v):.3f}")
    names = {"exposure": "seen (×)", "n": "questions", "accuracy": "accuracy", "hallucination_rate": "hallucination @τ", "ece": "ECE",
             "invented": "invented", "invented_confident": "confidently invented", "abstained": "abstained"}  # fmt: skip
    return table.rename(columns=names)


def corpus_words(store: Store, vid: int) -> None:
    corpus = corpus_of(store, vid)
    st.caption(
        f"{len(corpus.people):,} people · attributes: {', '.join(ATTRIBUTE_WORDS[a] for a in ATTRIBUTES)} · "
        f"{len(corpus.bios):,} biographies"
    )


def compare_panel(results: list[RunResults]) -> None:
    """Compare: lab runs against the first, per exposure count, with paired intervals."""
    from core.compare.runs import label
    from core.lab.compare import delta_words, exposure_deltas

    labs = [r for r in results if r.is_lab]
    if len(labs) < 2:
        return
    st.subheader("By how often each fact was seen")
    table = exposure_deltas(labs, [common.dataset(int(r.row.version_id)) for r in labs])
    if table.empty:
        st.caption("The lab runs have no shared questions at their results yet.")
        return
    st.caption(
        f"Against {label(labs[0])}: the change on the questions both runs were asked, per exposure count, "
        "with a paired 95 % bootstrap interval; better or worse only where the interval excludes zero."
    )
    st.dataframe(delta_words(table, {r.run_id: label(r) for r in labs}), hide_index=True)
