"""The Train page's run settings: model, fine-tune mode, device, epochs, batch, learning rate, seed,
τ and the settings under *More settings*, read as a ``RunConfig`` (mitigations left at their
defaults: ``ui.mitigations.knobs`` draws those). A value the user chose is kept while it still fits
the dataset (``ui.state``). Token (NER) data trains a text encoder, fully or its last N blocks (a
linear probe reads one vector per item, not one per word)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.data.dataset import Dataset
from core.metrics.names import metric_name
from core.models import registry
from core.models.registry import FINETUNE_TITLES
from core.train.config import CHECKPOINT_RULES, STOPPING_METRICS, TOKEN_SELECTION, TOKEN_STOPPING, RunConfig
from core.train.estimates import model_modality
from ui import common
from ui.state import default, follow_default
from ui.widgets import lr_step

CHECKPOINT_TITLES = {"best": "the best val evaluation (by the metric above)", "last": "the last evaluation"}
BATCH_HELP = "0 = auto: 32 on a CPU; on a GPU a larger batch (up to 1,024 small images) with the learning rate scaled by √(batch / 32)."
TOKEN_BATCH_HELP = "Sentences per batch. 0 = auto: 32 on a CPU, 64 on a GPU."
MODE_HELP = {
    False: "Linear probe trains only a head on cached features: fastest on a CPU.",
    True: "A token run fine-tunes the encoder, fully or its last N blocks: every word gets a tag, so a linear probe's one vector per item cannot serve.",
}


SMALL_VAL = 1000  # val items below which the Train page judges the best over two evaluations


def stopping_choices(tokens: bool) -> tuple[tuple[str, ...], Callable[[str], str]]:
    """The selection metrics the picker offers and how it names them: for token data the entity
    metrics a token run selects by (``core.train.config.TOKEN_SELECTION``), one choice each."""
    if not tokens:
        return STOPPING_METRICS, metric_name
    return TOKEN_STOPPING, lambda key: metric_name(TOKEN_SELECTION[key])


def image_px(ds: Dataset) -> int | None:
    return int(min(ds.items.shape[1:3])) if ds.modality == "image" else None


def model_title(name: str, ds: Dataset) -> str:
    """How the model picker names ``name`` ("auto: small CNN (random init)", "small CNN (random init)", a path as it is)."""
    if name == registry.AUTO:
        return f"auto: {model_title(registry.resolve_auto(model_modality(ds), image_px=image_px(ds)), ds)}"
    spec = registry.MODELS.get(name)
    return spec.title if spec is not None and spec.selectable else name


def _defaults(ds: Dataset, models: list[str]) -> None:
    default("tr_model", registry.AUTO, allowed=models)
    default("tr_path", "")
    default("tr_lastn", 2)
    default("tr_device", "auto")
    default("tr_epochs", 3)
    follow_default("tr_batch", 0 if common.run_gpus() else (32 if ds.modality in ("text", "tokens") else 64))  # 0 = auto (core.train.speed)
    default("tr_seed", 0)
    default("tr_tau", 0.9)
    default("tr_eval", 0)
    default("tr_max", 0)
    default(
        "tr_metric", "macro_f1", allowed=list(stopping_choices(ds.modality == "tokens")[0])
    )  # a classifier-only choice → macro-F1 on token data
    default("tr_patience", 0)
    # a small val split scores each evaluation noisily: judge the best over two (core.metrics.keys.selection_value)
    follow_default("tr_window", 2 if int((ds.split == 1).sum()) < SMALL_VAL else 1)
    default("tr_checkpoint", "best", allowed=list(CHECKPOINT_RULES))
    default("tr_ts", True)


def run_settings(ds: Dataset, vid: int) -> RunConfig:
    """Draw the run's settings; return them as a ``RunConfig`` with the model resolved ("auto" →
    the registry's choice for this dataset, or the local path typed)."""
    tokens = ds.modality == "tokens"
    modality = model_modality(ds)
    models = [registry.AUTO] + [s.name for s in registry.choices(modality)]
    _defaults(ds, models)
    c1, c2, c3 = st.columns(3)
    model = str(c1.selectbox("Model", models, format_func=lambda m: model_title(m, ds), key="tr_model", persist_state="session"))
    path_help = "A transformers folder with a fast tokenizer." if tokens else "A transformers folder (text) or a .pth state dict (image)."
    custom = c1.text_input("…or a local model path", key="tr_path", persist_state="session", help=path_help).strip()
    resolved = custom or (registry.resolve_auto(modality, image_px=image_px(ds)) if model == registry.AUTO else model)
    modes = list(registry.spec(resolved).finetune_modes) if not custom else list(registry.FINETUNE)
    if tokens:
        modes = [m for m in modes if m != "linear_probe"]
    default("tr_mode", "full", allowed=modes)
    finetune = str(c2.selectbox("Fine-tune mode", modes, format_func=FINETUNE_TITLES.__getitem__, key="tr_mode", persist_state="session",
                                help=MODE_HELP[tokens]))  # fmt: skip
    last_n = c2.number_input("Trainable blocks (last N)", 1, 20, key="tr_lastn", persist_state="session", disabled=finetune != "last_n")
    device = c3.selectbox(
        "Device", ["auto", "cpu", "cuda", "mps"], key="tr_device", persist_state="session", help=f"auto picks {common.device_label()}."
    )
    c4, c5, c6, c7 = st.columns(4)
    epochs = c4.number_input("Epochs", 1, 200, key="tr_epochs", persist_state="session")
    batch = c5.number_input("Batch size", 0, 4096, key="tr_batch", persist_state="session", help=TOKEN_BATCH_HELP if tokens else BATCH_HELP)
    # the learning rate follows the model and fine-tune mode (a linear probe wants ~200× MiniLM's) until the user types their own
    auto_lr = RunConfig(version_id=vid, model=resolved, finetune=finetune).learning_rate(modality)
    follow_default("tr_lr", float(auto_lr))
    lr = c6.number_input(
        "Learning rate", 1e-6, 1.0, format="%g", key="tr_lr", persist_state="session", step=lr_step(float(st.session_state["tr_lr"])),
        help=f"The default for this model and mode is {auto_lr:g}; it follows the mode until you change it. "
        "− and + move by one unit of the current value's leading digit (3e-3 → 2e-3 or 4e-3).",
    )  # fmt: skip
    seed = c7.number_input("Seed", 0, 2**31 - 1, key="tr_seed", persist_state="session")
    tau = st.slider(
        "τ — confidence above which a wrong answer counts as a hallucination", 0.5, 0.99, step=0.01, key="tr_tau", persist_state="session"
    )
    with st.expander("More settings"):
        a1, a2, a3, a4 = st.columns(4)
        eval_every = a1.number_input("Evaluate every N steps (0 = each epoch)", 0, 100_000, key="tr_eval", persist_state="session")
        max_items = a2.number_input(
            f"Use at most N train {'sentences' if tokens else 'items'} (0 = all)", 0, 10_000_000, key="tr_max", persist_state="session"
        )
        choices, title = stopping_choices(tokens)
        stop_metric = a3.selectbox(
            "Best checkpoint / early stopping on (val)", choices, key="tr_metric", persist_state="session", format_func=title
        )
        rule = st.radio(
            "The run's result", list(CHECKPOINT_RULES), key="tr_checkpoint", persist_state="session", horizontal=True, format_func=CHECKPOINT_TITLES.__getitem__,
            help="Which evaluation the run keeps, temperature-scales and is scored at on the Runs and Compare pages and in the report.",
        )  # fmt: skip
        patience = a4.number_input("Patience (0 = never stop early)", 0, 100, key="tr_patience", persist_state="session", disabled=rule == "last",
                                   help="Early stopping needs the best evaluation as the result." if rule == "last" else None)  # fmt: skip
        n_val = int((ds.split == 1).sum())
        window = a4.number_input(
            "Judge the best over N evaluations", 1, 5, key="tr_window", persist_state="session", disabled=rule == "last",
            help=f"Each evaluation is judged by the mean of its val score and the N − 1 before it. On a small val split one "
            f"evaluation's score is noisy; 2 (the default below {SMALL_VAL:,} val {'sentences' if tokens else 'items'}; "
            f"{n_val:,} here) asks the result to have been good twice.",
        )  # fmt: skip
        temperature = st.toggle("Temperature scaling on val after training", key="tr_ts", persist_state="session")
        processes = _processes()
    return RunConfig(
        version_id=vid, model=resolved, finetune=finetune, last_n_blocks=int(last_n), epochs=int(epochs), lr=float(lr),
        batch_size=int(batch), tau=float(tau), seed=int(seed), device=str(device), eval_every_steps=int(eval_every),
        max_train_items=int(max_items), early_stopping_metric=str(stop_metric), patience=0 if rule == "last" else int(patience),
        checkpoint=str(rule), selection_window=int(window),
        temperature_scaling=bool(temperature), processes=processes,
    )  # fmt: skip


def _processes() -> int:
    """GPUs (one process each) for the run, where a run can have more than one: torchrun here
    (``core.train.distributed``), child ranks on a Ray node (``core.runners.ranks``)."""
    gpus = common.run_gpus()
    if gpus <= 1:
        return 1
    default("tr_gpus", 1)
    return int(st.number_input(f"GPUs for this run (of {gpus}; one process each)", 1, gpus, key="tr_gpus", persist_state="session"))
