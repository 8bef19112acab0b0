"""The Simulate page for a token (NER) dataset: the token recipe's widgets (drop a type, thin types,
flip span types, delete spans, shift boundaries, seed), the live preview (mentions per type before
and after, the counts in words, example sentences before and after with the changed tokens marked),
saving it as a version, and the token detector graded against the truth on a simulated version."""

from __future__ import annotations

import html

import streamlit as st

from core import charts
from core.data.dataset import Dataset
from core.diagnose.tokens import eta
from core.errors import DataError
from core.simulate import token_preview
from core.simulate.tokens import TokenPlan, grade_token_detector, has_token_truth, plan_tokens, save_simulated_tokens
from core.store import Store, VersionInfo
from core.tokens.corrupt import DROP_MODES, TokenRecipe
from core.tokens.marks import MarkedSegment
from core.tokens.spans import entity_types
from ui import common
from ui import diagnosis as diagnosis_ui
from ui.state import default, default_choices

ANY = "(any type)"
NOTICE = "simulate_notice"  # session key: the version just saved, said on the next run (not a setting: no sm_)
RATE_STEP = 0.05


def marked_html(segments: list[MarkedSegment], types: list[str]) -> str:
    """One sentence as HTML: each entity a coloured mark with its type, marked tokens (changed or
    suspect) underlined in red and bold; all text escaped."""
    parts = []
    for tokens, kind in segments:
        words = " ".join(
            f"<u style='text-decoration:underline 2px #d62728;font-weight:700'>{html.escape(t)}</u>" if marked else html.escape(t)
            for t, marked in tokens
        )
        if kind is None:
            parts.append(words)
        else:
            colour = charts.entity_colour(kind, types)
            parts.append(
                f'<mark style="background:{colour}33;border:1px solid {colour};border-radius:4px;padding:0 3px">'
                f"{words} <sub style='color:{colour};font-weight:600'>{html.escape(kind)}</sub></mark>"
            )
    return " ".join(parts)


def _defaults(types: list[str]) -> None:
    default_choices("sm_tok_drop", types)
    default("sm_tok_drop_mode", "annotations", allowed=list(DROP_MODES))
    default_choices("sm_tok_thin", types)
    default("sm_tok_thin_keep", 0.2)
    default("sm_tok_flip", 0.0)
    default("sm_tok_flip_from", ANY, allowed=[ANY, *types])
    default("sm_tok_delete", 0.0)
    default("sm_tok_shift", 0.0)
    default("sm_seed", 0)
    default("sm_tok_draw", 0)


def _types_column(types: list[str]) -> None:
    st.markdown("**Entity types**")
    st.multiselect(
        "Drop these types from train", types, key="sm_tok_drop", persist_state="session", help="Val and test keep them: a type never seen."
    )
    st.radio(
        "Drop how",
        list(DROP_MODES),
        key="sm_tok_drop_mode",
        persist_state="session",
        format_func=lambda m: DROP_MODES[m],
        horizontal=True,
        disabled=not st.session_state["sm_tok_drop"],
    )
    st.multiselect("Thin these types (a long tail)", types, key="sm_tok_thin", persist_state="session")
    st.slider(
        "Share of their train sentences kept",
        0.0,
        1.0,
        step=RATE_STEP,
        key="sm_tok_thin_keep",
        persist_state="session",
        disabled=not st.session_state["sm_tok_thin"],
    )


def _noise_column(types: list[str]) -> tuple[str, str]:
    st.markdown("**Annotation noise**")
    st.slider("Share of spans whose type is flipped", 0.0, 0.5, step=RATE_STEP, key="sm_tok_flip", persist_state="session")
    source = str(st.selectbox("Flip spans of", [ANY, *types], key="sm_tok_flip_from", persist_state="session"))
    target = ""
    if source != ANY:
        targets = [t for t in types if t != source]
        default("sm_tok_flip_to", targets[0] if targets else "", allowed=targets)
        target = str(st.selectbox("to", targets, key="sm_tok_flip_to", persist_state="session") or "")
    st.slider("Share of spans deleted (missing annotations)", 0.0, 0.5, step=RATE_STEP, key="sm_tok_delete", persist_state="session")
    st.slider("Share of span boundaries shifted by a token", 0.0, 0.5, step=RATE_STEP, key="sm_tok_shift", persist_state="session")
    st.number_input("Seed", 0, 10_000, key="sm_seed", persist_state="session")
    return source, target


def recipe_form(ds: Dataset) -> tuple[TokenRecipe | None, TokenPlan | None, str | None]:
    """The token recipe the widgets describe and what it does to ``ds`` — or why it cannot work."""
    types = entity_types(ds.tags if ds.tags is not None else [])
    _defaults(types)
    c1, c2 = st.columns(2)
    with c1:
        _types_column(types)
    with c2:
        source, target = _noise_column(types)
    s = st.session_state
    flip = float(s["sm_tok_flip"])
    try:
        recipe = TokenRecipe(
            thin=tuple((str(t), float(s["sm_tok_thin_keep"])) for t in s["sm_tok_thin"]),
            drop_types=tuple(str(t) for t in s["sm_tok_drop"]),
            drop_mode=str(s["sm_tok_drop_mode"]),
            flip_rate=flip,
            flip_mapping=((source, target),) if flip > 0 and source != ANY and target else (),
            delete_rate=float(s["sm_tok_delete"]),
            shift_rate=float(s["sm_tok_shift"]),
            seed=int(s["sm_seed"]),
        )
        return recipe, plan_tokens(ds, recipe), None
    except DataError as err:
        return None, None, str(err)


def _examples(ds: Dataset, plan: TokenPlan) -> None:
    types = entity_types(ds.tags if ds.tags is not None else [])
    e1, e2 = st.columns([4, 1])
    e1.markdown("**Example sentences**, before → after; the changed tokens underlined")
    seed = int(e2.number_input("Draw", 0, 10_000, key="sm_tok_draw", persist_state="session", help="Another draw of examples"))
    found = token_preview.examples(ds, plan, k=4, seed=seed)
    if not found:
        st.caption("No sentence's tags change: the recipe only leaves sentences out, or changes nothing yet.")
        return
    st.html(
        "".join(
            f"<p style='line-height:2;margin-bottom:0'><b>#{e.item}</b> · {html.escape(token_preview.kind_words(e.kinds))}</p>"
            f"<p style='line-height:2;margin:0 0 0 1em'>before: {marked_html(e.before, types)}</p>"
            f"<p style='line-height:2;margin:0 0 0.8em 1em'>after: {marked_html(e.after, types)}</p>"
            for e in found
        )
    )


def preview(store: Store, source: int, ds: Dataset, recipe: TokenRecipe | None, plan: TokenPlan | None, problem: str | None) -> None:
    """Mentions per type now and after the recipe, its figures and words, examples, and a button
    that saves it as a version."""
    st.subheader("Preview")
    if problem:
        st.warning(problem, icon="⚠️")
    elif plan is not None and recipe is not None:
        p1, p2 = st.columns([3, 2])
        p1.plotly_chart(token_preview.mention_chart(plan), width="stretch", key="sm_tok_counts")
        for f in token_preview.plan_figures(plan):
            p2.metric(f.label, f.value, delta=f.delta, help=f.note or None)
        st.caption(recipe.summary() + ". Val and test are unchanged.")
        st.info(token_preview.plan_words(recipe, plan), icon="🏷️")
        with st.expander("Mentions and sentences per type"):
            st.dataframe(token_preview.counts_table(plan), hide_index=True, width="stretch")
        _examples(ds, plan)
        if st.button("Create this version", type="primary", disabled=not recipe.active, key="simulate_create"):
            with st.spinner("Writing the version…"), common.saving():
                new = save_simulated_tokens(store, source, recipe, dataset=ds)
            common.set_current_version(new)
            st.session_state[NOTICE] = new
            st.rerun()
    if (new := st.session_state.pop(NOTICE, None)) is not None:
        st.success(f"Saved {store.version(new).label} and made it the current dataset. Diagnose it, or train on it.")


def detector_check(current: VersionInfo, simulated: Dataset) -> None:
    """On a token version simulated with changed tags: the token detector's flags against the truth,
    sentence level, per kind of change. The diagnosis runs in the background (the Diagnose page
    shows the same one)."""
    if not has_token_truth(simulated):
        return
    st.subheader("Detector self-check")
    st.caption(f"{current.label} was simulated, so we know which sentences have wrong tags: how many does the Diagnose detector find?")
    cfg = diagnosis_ui.token_config()
    result = diagnosis_ui.token_result(current.id, cfg)
    if result is None:
        running = diagnosis_ui.token_job(current.id, cfg)
        if running is not None and running.is_alive():
            diagnosis_ui.token_progress_line(current.id, cfg)
            return
        if running is not None and running.error:
            st.error(f"The diagnosis failed: {running.error}")
        if st.button(f"Check the detector ({eta(simulated, cfg)}, once)", key="simulate_check"):
            diagnosis_ui.start_tokens(current.id, cfg)
            st.rerun()
        return
    grade = grade_token_detector(simulated, result.issues.is_issue, result.suspected_kinds())
    figures = token_preview.grade_figures(grade)
    for col, f in zip(st.columns(len(figures)), figures):
        col.metric(f.label, f.value, help=f.note or None)
    table = token_preview.grade_table(grade)
    shares = {c: "{:.1%}" for c in ("recall", "precision (this kind alone)", "F1", "named right")}
    st.dataframe(table.style.format(shares, na_rep="—"), hide_index=True, width="stretch")
    st.caption(token_preview.grade_words(grade))
