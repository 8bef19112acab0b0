"""How easily a finished run is fooled: the Runs page's robustness evaluation (``core.robust``) in
the background, its curves and its attacked examples; Compare's table of every run's."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from core import charts, paths
from core.compare.runs import label
from core.data.dataset import Dataset
from core.metrics.results import RunResults
from core.robust import records
from core.robust.augment import AugmentJob
from core.robust.evaluate import EPS, RobustnessJob
from ui import common, state
from ui.items import image_strip, where

ATTACKS = {"image": ["pgd", "fgsm"], "tabular": ["pgd", "fgsm"], "text": ["words"]}


@st.cache_resource(show_spinner=False)
def _jobs() -> dict[tuple[str, int], RobustnessJob]:
    return {}  # one per (home, run), shared by every session of this app process


def robustness_block(res: RunResults, ds: Dataset) -> None:
    """Start an attack on the run's result model, follow it, and show what it found."""
    if ds.modality not in ATTACKS or res.status.active:
        return
    st.markdown("**Robustness** — how easily a small change fools it")
    if res.config.get("finetune") == "linear_probe":
        st.caption(
            "A linear probe is attacked through its frozen backbone, which this evaluation does not do: fine-tune the model to attack it."
        )
        return
    if res.result_step is None or not res.files.checkpoint_path("best").exists():
        st.caption("The run kept no model to attack.")
        return
    kept = records.load(res.files)
    _start(res, ds, kept)
    if kept is not None:
        _show(res, ds, kept)


def _start(res: RunResults, ds: Dataset, kept: dict | None) -> None:
    home = str(paths.home())
    jobs = _jobs()
    job = jobs.get((home, res.run_id))
    running = job is not None and job.is_alive()
    with st.expander("Attack settings", expanded=kept is None):
        c1, c2, c3 = st.columns(3)
        attacks = ATTACKS[ds.modality]
        state.default("rn_rb_attack", attacks[0], allowed=attacks)
        attack = c1.selectbox("Attack", attacks, format_func=records.ATTACK_WORDS.__getitem__, key="rn_rb_attack", persist_state="session")
        if attack == "words":
            state.default("rn_rb_words", 3)
            words = c2.number_input("Words changed, at most", 1, 10, key="rn_rb_words", persist_state="session")
            kwargs: dict = {"attack": "words", "max_words": int(words)}
        else:
            state.default(f"rn_rb_eps_{ds.modality}", list(EPS[ds.modality]))
            choices = sorted({0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, *EPS[ds.modality]})
            eps = c2.multiselect("ε", choices, key=f"rn_rb_eps_{ds.modality}", persist_state="session",
                                 help="The L∞ budget: pixels run from 0 to 1; a table's numeric columns are in standard deviations.")  # fmt: skip
            state.default("rn_rb_steps", 10)
            steps = c3.number_input("PGD steps", 1, 50, key="rn_rb_steps", persist_state="session", disabled=attack == "fgsm")
            kwargs = {"attack": attack, "eps": tuple(sorted(float(e) for e in eps)) or EPS[ds.modality], "steps": int(steps)}
        state.default("rn_rb_items", 500 if attack != "words" else 200)
        kwargs["n_items"] = int(c3.number_input("Test items attacked", 10, 10_000, key="rn_rb_items", persist_state="session"))
        if st.button("Attack this run in the background", key=f"rn_rb_go_{res.run_id}", disabled=running, type="primary"):
            job = jobs[(home, res.run_id)] = RobustnessJob(home, res.run_id, **kwargs)
            job.start()
            running = True
    if job is None:
        if kept is None:
            st.caption("Not attacked yet. The result is kept with the run and shows in Compare and the report.")
        return

    common.follow_job(job, running, seen_key=f"robust_seen_{res.run_id}", doing="Attacking", stopped="The attack stopped")


def _show(res: RunResults, ds: Dataset, rec: dict) -> None:
    curve = records.curve(rec)
    worst = rec["budgets"][-1]
    budget = records.budget_words(rec, worst["budget"])
    st.markdown(
        f"{records.ATTACK_WORDS[rec['attack']]} on {rec['n']:,} test items: accuracy {rec['clean']['accuracy']:.1%} clean, "
        f"**{worst['accuracy']:.1%}** at {budget}; it changed {worst['success_rate']:.1%} of the right answers, and "
        f"**{worst['confident_wrong']:.1%}** of the attacked items were answered wrongly with confidence ≥ {rec['tau']:g}."
    )
    c1, c2 = st.columns([1, 1])
    x_title = "words changed, at most" if rec["attack"] == "words" else "ε (L∞)"
    c1.plotly_chart(charts.robustness_curves({f"#{res.run_id}": curve}, x_title=x_title), width="stretch", key=f"rb_curve_{res.run_id}")
    shown = curve.rename(columns={"success_rate": "attack success", "confident_wrong": f"confident-wrong @{rec['tau']:g}"})
    shown["budget"] = ["clean"] + [records.budget_words(rec, b) for b in curve["budget"].tolist()[1:]]
    c2.dataframe(shown.set_index("budget").style.format("{:.1%}"), width="stretch")
    if rec.get("steps"):
        c2.caption(f"PGD with {rec['steps']} steps and a random start; seed {rec['seed']}; {rec['seconds']:.0f} s.")
    _examples(res, ds, rec)
    if ds.modality == "text":
        _augment(res)


@st.cache_resource(show_spinner=False)
def _augment_jobs() -> dict[tuple[str, int], AugmentJob]:
    return {}


def _augment(res: RunResults) -> None:
    """Adversarial augmentation for text: attack train texts, add those that fooled the model, train again."""
    runner = common.runner_or_none()
    if runner is None:
        return
    home = str(paths.home())
    jobs = _augment_jobs()
    job = jobs.get((home, res.run_id))
    running = job is not None and job.is_alive()
    st.markdown("**Adversarial augmentation** — train again with the texts that fool it")
    c1, c2, c3 = st.columns([1, 1, 2])
    state.default("rn_rb_aug_items", 300)
    n = c1.number_input("Train texts attacked", 10, 20_000, key="rn_rb_aug_items", persist_state="session")
    state.default("rn_rb_aug_words", 3)
    k = c2.number_input("Words changed, at most", 1, 10, key="rn_rb_aug_words", persist_state="session")
    if c3.button("Add the attacked texts to a new version and train again", key=f"rn_rb_aug_{res.run_id}", disabled=running,
                 help="Each train text the attack fools the model with joins train with its true label; a run with this run's settings "
                 "trains on the new version. Attack both runs and compare them."):  # fmt: skip
        job = jobs[(home, res.run_id)] = AugmentJob(home, res.run_id, runner.submit, n_items=int(n), max_words=int(k))
        job.start()
        running = True
    if job is None:
        return
    common.follow_job(job, running, seen_key="", doing="Augmenting", stopped="The augmentation stopped",
                      done=lambda: f"Version {job.version_id} holds the attacked texts; run #{job.new_run} is queued on it.")  # fmt: skip


def _examples(res: RunResults, ds: Dataset, rec: dict) -> None:
    ex = rec.get("examples") or []
    if not ex:
        return
    st.markdown("**Attacked examples** — right before the attack, wrong after it")
    names = ds.class_names
    if ds.modality == "image":
        path = res.files.folder / "robust_examples.npz"
        if not path.exists():
            return
        with np.load(path) as z:
            attacked = z["images"]
        for start in range(0, len(ex), 6):
            cols = st.columns(6)
            for col, e, adv in zip(cols, ex[start : start + 6], attacked[start : start + 6]):
                clean = np.asarray(ds.items[e["item"]])
                col.image(image_strip(np.stack([clean, adv.reshape(clean.shape)])), width="stretch")
                col.caption(
                    f"{where(ds, e['item'])} · ε {e['budget']:g}: {names[e['pred_before']]} ({e['conf_before']:.0%}) → "
                    f"**{names[e['pred_after']]}** ({e['conf_after']:.0%})"
                )
        st.caption("Each pair: the item, then the attacked item.")
    elif ds.modality == "text":
        for e in ex[:8]:
            st.markdown(
                f"{where(ds, e['item'])} · {names[e['pred_before']]} ({e['conf_before']:.0%}) → **{names[e['pred_after']]}** "
                f"({e['conf_after']:.0%}) · " + ", ".join(f"*{html.escape(old)}* → *{html.escape(new)}*" for _, old, new in e["changed"])
            )
            st.markdown("> " + html.escape(e["text"][:400]))
    else:
        table = pd.DataFrame(
            {"item": [where(ds, e["item"]) for e in ex], "ε": [e["budget"] for e in ex],
             "before": [f"{names[e['pred_before']]} ({e['conf_before']:.0%})" for e in ex],
             "after": [f"{names[e['pred_after']]} ({e['conf_after']:.0%})" for e in ex]}
        )  # fmt: skip
        st.dataframe(table, hide_index=True, width="stretch")


def robustness_panel(results: Sequence[RunResults]) -> None:
    """Compare: every run's kept robustness evaluation, as one table and one chart per attack."""
    loaded = [(r, records.load(r.files)) for r in results]
    kept = [(r, rec) for r, rec in loaded if rec is not None]
    if not kept:
        return
    st.subheader("Under attack")
    by_attack: dict[str, list] = {}
    for r, rec in kept:
        by_attack.setdefault(rec["attack"], []).append((r, rec))
    for attack, pairs in by_attack.items():
        x_title = "words changed, at most" if attack == "words" else "ε (L∞)"
        st.plotly_chart(
            charts.robustness_curves({label(r): records.curve(rec) for r, rec in pairs}, x_title=x_title,
                                     title=f"{records.ATTACK_WORDS[attack]}: accuracy (solid) and confident-wrong (dashed)"),
            width="stretch", key=f"cmp_rb_{attack}",
        )  # fmt: skip
        table = records.table([(label(r), rec) for r, rec in pairs])
        st.dataframe(
            table.style.format("{:.1%}", subset=[c for c in table.columns if c not in ("run", "attack", "budget")]), hide_index=True
        )
    attacked = {r.run_id for r, _ in kept}
    missing = [label(r) for r in results if r.run_id not in attacked]
    if missing:
        st.caption(f"Not attacked yet: {', '.join(missing)} (Runs page → Robustness).")
