"""The Train page's "What will happen" panel — the step plan (``core.train.estimates.step_plan``),
the mitigations, how hallucinations are counted, the time estimate — and the problems that keep a
run from starting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

from core.compare.setting_words import mitigation_words
from core.data.dataset import Dataset
from core.data.splits import scoring_problem
from core.mitigate.checks import check
from core.models.registry import FINETUNE_TITLES
from core.train.config import RunConfig
from core.train.estimates import StepPlan
from ui import common
from ui.train_settings import model_title


def problems(cfg: RunConfig, ds: Dataset, train_counts: Mapping[str, int]) -> list[str]:
    """Why ``cfg`` cannot start on ``ds``: the splits, the config, then the mitigations (empty: it can)."""
    found = [p for p in [scoring_problem(ds.split)] if p]
    try:
        cfg.validate(modality=ds.modality)
    except ValueError as err:
        return [*found, str(err)]
    return found + check(
        cfg.mitigations, modality=ds.modality, finetune=cfg.finetune, train_counts=dict(train_counts), n_unlabelled=ds.n_unlabelled,
        epochs=cfg.epochs,
    )  # fmt: skip


def what_will_happen(cfg: RunConfig, ds: Dataset, plan: StepPlan, *, absent: Sequence[str]) -> None:
    every = "each epoch" if not cfg.eval_every_steps else f"every {cfg.eval_every_steps} steps"
    unknown = (
        f"; {len(absent)} class(es) absent from train ({', '.join(absent[:5])}) are scored as unknown (forced-known rate)."
        if absent else "."
    )  # fmt: skip
    lines = [
        f"- **{FINETUNE_TITLES[cfg.finetune]}** of **{model_title(cfg.model, ds)}** on {plan.n_used:,} training items "
        f"({', '.join(f'{n:,} {s}' for s, n in plan.splits.items())}).",
        f"- {cfg.epochs} epoch(s) × {plan.steps_per_epoch:,} steps of {plan.batch:,}{' (auto)' if plan.auto_batch else ''} "
        f"= **{plan.steps:,} steps**, AdamW at peak lr {plan.lr:g} with warm-up and cosine decay; evaluated on val and test "
        f"{every} ({plan.evaluations:,} evaluation{'s' if plan.evaluations != 1 else ''}).",
        f"- Mitigations: **{', '.join(mitigation_words(cfg.mitigations)) or 'none (baseline)'}**.",
        f"- Hallucination rate counts wrong answers with confidence ≥ {cfg.tau:.2f}{unknown}",
    ]
    estimate = common.estimate_run_seconds(cfg, ds)
    if estimate is not None:
        lines.append(
            f"- Estimated time on {common.device_label()}: **about {estimate / 60:,.1f} min** (from measured throughput; the first run also loads the model)."
        )
    with st.container(border=True):
        st.markdown("**What will happen**")
        st.markdown("\n".join(lines))
