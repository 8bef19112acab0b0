"""The Train page's "What will happen" panel — the step plan (``core.train.estimates.step_plan``),
the mitigations, how hallucinations are counted, the time estimate — and the problems that keep a
run from starting. ``train_figures`` reads the train split the knobs and the plan need: classes for
a classifier, sentences, entity types and tags for token (NER) data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st

from core import paths
from core.compare.setting_words import mitigation_words
from core.data.dataset import Dataset
from core.data.splits import scoring_problem
from core.mitigate.checks import check
from core.mitigate.preview import TokenTrain, token_epoch, token_train, train_classes
from core.models.registry import FINETUNE_TITLES
from core.shift.weights import WEIGHT_COLUMN
from core.train.config import RunConfig
from core.train.estimates import StepPlan, estimate_seconds, model_modality, runs_on_gpu, step_plan
from ui import common
from ui.train_settings import model_title


@dataclass(frozen=True)
class TrainFigures:
    """The train split as the Train page reads it."""

    counts: dict[str, int]  # class → train items (token data: sentences by their rarest entity type)
    tail: list[str]  # tail classes (token data: the rare entity types the preset and the shortcut target)
    absent: list[str]  # classes (entity types) with no train item (mention)
    header: str  # "1,797 image items, 10 classes" / "2,394 sentences, 10 entity types"
    tokens: TokenTrain | None = None  # token data's sentences, mentions and tags


@st.cache_resource(show_spinner=False, max_entries=4)
def _token_train(home: str, vid: int) -> TokenTrain:
    return token_train(common.dataset(vid))


def train_figures(vid: int, ds: Dataset) -> TrainFigures:
    if ds.modality == "tokens":
        t = _token_train(str(paths.home()), vid)
        types = len(t.mentions) + len(t.absent)
        return TrainFigures(t.sentences, t.rare, t.absent, f"{t.n_sentences:,} sentences, {types} entity types", t)
    classes = train_classes(common.dataset_profile(vid).train, ds.class_names)
    return TrainFigures(classes.counts, classes.tail, classes.absent, f"{len(ds):,} {ds.modality} items, {ds.n_classes} classes")


def plan_of(cfg: RunConfig, ds: Dataset, figures: TrainFigures) -> StepPlan:
    """The step plan of ``cfg`` on this machine (a token run's epoch from the figures already read)."""
    gpu = runs_on_gpu(cfg.device, common.run_gpus())
    return step_plan(cfg, ds, gpu=gpu, epoch_items=_epoch_items(cfg, ds, figures))


def _epoch_items(cfg: RunConfig, ds: Dataset, figures: TrainFigures) -> int | None:
    if figures.tokens is None:
        return None
    n_train = max(1, len(figures.tokens.labels))
    n_used = min(n_train, cfg.max_train_items) if cfg.max_train_items else n_train
    return round(token_epoch(cfg.mitigations, figures.tokens).sentences * n_used / n_train)


def problems(cfg: RunConfig, ds: Dataset, train_counts: Mapping[str, int], *, tokens: TokenTrain | None = None) -> list[str]:
    """Why ``cfg`` cannot start on ``ds``: the splits, the config, then the mitigations (empty: it can)."""
    found = [p for p in [scoring_problem(ds.split)] if p]
    try:
        cfg.validate(modality=model_modality(ds))
    except ValueError as err:
        return [*found, str(err)]
    return found + check(
        cfg.mitigations, modality=ds.modality, finetune=cfg.finetune, train_counts=dict(train_counts), n_unlabelled=ds.n_unlabelled,
        epochs=cfg.epochs, entity_types=tokens.types if tokens is not None else None, item_weights=WEIGHT_COLUMN in ds.meta.columns,
    )  # fmt: skip


def what_will_happen(cfg: RunConfig, ds: Dataset, plan: StepPlan, *, absent: list[str], tokens: bool = False) -> None:
    every = "each epoch" if not cfg.eval_every_steps else f"every {cfg.eval_every_steps} steps"
    unit = "sentences" if tokens else "items"
    drawn = ""
    if tokens and plan.epoch_items and plan.epoch_items != plan.n_used:
        drawn = f"; each epoch draws about {plan.epoch_items:,} sentences (resampling and augmented copies)"
    lines = [
        f"- **{FINETUNE_TITLES[cfg.finetune]}** of **{model_title(cfg.model, ds)}** on {plan.n_used:,} training {unit} "
        f"({', '.join(f'{n:,} {s}' for s, n in plan.splits.items())}){drawn}.",
        f"- {cfg.epochs} epoch(s) × {plan.steps_per_epoch:,} steps of {plan.batch:,}{' (auto)' if plan.auto_batch else ''} "
        f"= **{plan.steps:,} steps**, AdamW at peak lr {plan.lr:g} with warm-up and cosine decay; evaluated on val and test "
        f"{every} ({plan.evaluations:,} evaluation{'s' if plan.evaluations != 1 else ''}).",
        f"- Mitigations: **{', '.join(mitigation_words(cfg.mitigations)) or 'none (baseline)'}**.",
        _counting(cfg, absent, tokens=tokens),
    ]
    estimate = _seconds(cfg, ds, plan)
    if estimate is not None:
        lines.append(
            f"- Estimated time on {common.device_label()}: **about {estimate / 60:,.1f} min** (from measured throughput; the first run also loads the model)."
        )
    with st.container(border=True):
        st.markdown("**What will happen**")
        st.markdown("\n".join(lines))


def _counting(cfg: RunConfig, absent: list[str], *, tokens: bool) -> str:
    """How hallucinations are counted, in one line."""
    if tokens:
        unknown = (
            f"; {len(absent)} entity type(s) absent from train ({', '.join(absent[:5])}) cannot be predicted: their mentions "
            "tagged as a known type count in the forced-known rate." if absent else "."
        )  # fmt: skip
        return (
            "- Each word gets a tag (O, B-type, I-type); predicted entities are scored against the true ones. The confident "
            f"spurious rate counts predicted entities that overlap no true one with confidence ≥ {cfg.tau:.2f}{unknown}"
        )
    unknown = (
        f"; {len(absent)} class(es) absent from train ({', '.join(absent[:5])}) are scored as unknown (forced-known rate)."
        if absent else "."
    )  # fmt: skip
    return f"- Hallucination rate counts wrong answers with confidence ≥ {cfg.tau:.2f}{unknown}"


def _seconds(cfg: RunConfig, ds: Dataset, plan: StepPlan) -> float | None:
    if ds.modality != "tokens":
        return common.estimate_run_seconds(cfg, ds)
    try:
        return estimate_seconds(cfg, ds, gpu=common.run_gpus() > 0, epoch_items=plan.epoch_items)
    except ValueError:
        return None
