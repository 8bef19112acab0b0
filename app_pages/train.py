"""Train: pick a model, settings and mitigations, see what will happen, start background runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from core.data.dataset import SPLITS
from core.data.splits import scoring_problem
from core.mitigate.checks import check
from core.mitigate.settings import Mitigations
from core.models import registry
from core.models.registry import FINETUNE_TITLES
from core.train.config import STOPPING_METRICS, RunConfig
from core.train.speed import planned_batch, scaled_lr
from ui import common, mitigations
from ui.state import default, follow_default
from ui.widgets import lr_step

store = common.store()
st.title("🏋️ Train")
st.caption("Fine-tune a pretrained model in the background; metrics stream into the Runs page while you keep working.")

vid, info, ds = common.require_dataset()
prof = common.dataset_profile(vid)

image_px = int(min(ds.items.shape[1:3])) if ds.modality == "image" else None
models = [registry.AUTO] + [s.name for s in registry.choices(ds.modality)]
auto_model = registry.resolve_auto(ds.modality, image_px=image_px)
MODEL_TITLES = {registry.AUTO: f"auto ({auto_model})", **{s.name: s.title for s in registry.MODELS.values() if s.selectable}}

# starting values; a value the user chose is kept while it still fits this dataset (ui.state)
default("tr_model", registry.AUTO, allowed=models)
default("tr_path", "")
default("tr_lastn", 2)
default("tr_device", "auto")
default("tr_epochs", 3)
follow_default("tr_batch", 0 if common.run_gpus() else (32 if ds.modality == "text" else 64))  # 0 = auto (core.train.speed)
default("tr_seed", 0)
default("tr_tau", 0.9)
default("tr_eval", 0)
default("tr_max", 0)
default("tr_metric", "macro_f1", allowed=list(STOPPING_METRICS))
default("tr_patience", 0)
default("tr_ts", True)

st.markdown(f"**Dataset:** {info.label} — {len(ds):,} {ds.modality} items, {ds.n_classes} classes")
c1, c2, c3 = st.columns(3)
model = c1.selectbox("Model", models, format_func=lambda m: MODEL_TITLES.get(m, m), key="tr_model")
custom = c1.text_input("…or a local model path", key="tr_path", help="A transformers folder (text) or a .pth state dict (image).")
resolved_model = custom.strip() or (auto_model if model == "auto" else model)
modes = list(registry.spec(resolved_model).finetune_modes) if not custom.strip() else list(registry.FINETUNE)
default("tr_mode", "full", allowed=modes)
finetune = c2.selectbox(
    "Fine-tune mode", modes, format_func=FINETUNE_TITLES.get, key="tr_mode",
    help="Linear probe trains only a head on cached features: fastest on a CPU.",
)  # fmt: skip
last_n = c2.number_input("Trainable blocks (last N)", 1, 20, key="tr_lastn", disabled=finetune != "last_n")
device = c3.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key="tr_device", help=f"auto picks {common.device_label()}.")
c4, c5, c6, c7 = st.columns(4)
epochs = c4.number_input("Epochs", 1, 200, key="tr_epochs")
batch = c5.number_input(
    "Batch size", 0, 4096, key="tr_batch",
    help="0 = auto: 32 on a CPU; on a GPU a larger batch (up to 1,024 small images) with the learning rate scaled by √(batch / 32).",
)  # fmt: skip
# the learning rate follows the model and fine-tune mode (a linear probe wants ~200× MiniLM's) until
# the user types their own
auto_lr = RunConfig(version_id=vid, model=resolved_model, finetune=finetune).learning_rate(ds.modality)
follow_default("tr_lr", float(auto_lr))
lr = c6.number_input(
    "Learning rate", 1e-6, 1.0, format="%g", key="tr_lr", step=lr_step(float(st.session_state["tr_lr"])),
    help=f"The default for this model and mode is {auto_lr:g}; it follows the mode until you change it. "
    "− and + move by one unit of the current value's leading digit (3e-3 → 2e-3 or 4e-3).",
)  # fmt: skip
seed = c7.number_input("Seed", 0, 2**31 - 1, key="tr_seed")
tau = st.slider("τ — confidence above which a wrong answer counts as a hallucination", 0.5, 0.99, step=0.01, key="tr_tau")
with st.expander("More settings"):
    a1, a2, a3, a4 = st.columns(4)
    eval_every = a1.number_input("Evaluate every N steps (0 = each epoch)", 0, 100_000, key="tr_eval")
    max_items = a2.number_input("Use at most N train items (0 = all)", 0, 10_000_000, key="tr_max")
    stop_metric = a3.selectbox("Best checkpoint / early stopping on (val)", STOPPING_METRICS, key="tr_metric")
    patience = a4.number_input("Patience (0 = never stop early)", 0, 100, key="tr_patience")
    temperature = st.toggle("Temperature scaling on val after training", key="tr_ts")
    gpus = common.run_gpus()
    processes = 1
    if gpus > 1:  # one process per GPU: torchrun here (core.train.distributed), child ranks on a Ray node (core.runners.ranks)
        default("tr_gpus", 1)
        processes = int(st.number_input(f"GPUs for this run (of {gpus}; one process each)", 1, gpus, key="tr_gpus"))

present = [int(c) for c in np.flatnonzero(prof.train.counts > 0)]
train_counts = {str(ds.class_names[c]): int(prof.train.counts[c]) for c in present}
tail = [str(ds.class_names[c]) for c in present if prof.train.groups[c] == "tail"]
with st.expander("Mitigations — resampling, loss, augmentation", expanded=True):
    mitigation = mitigations.knobs(
        ds,
        model=resolved_model,
        finetune=finetune,
        train_counts=train_counts,
        tail=tail,
        seed=int(seed),
        plan=st.session_state.get(f"plan_{vid}"),
    )

cfg = RunConfig(
    version_id=vid, model=resolved_model, finetune=finetune, last_n_blocks=int(last_n), epochs=int(epochs), lr=float(lr),
    batch_size=int(batch), tau=float(tau), seed=int(seed), device=device, eval_every_steps=int(eval_every),
    max_train_items=int(max_items), early_stopping_metric=stop_metric, patience=int(patience), temperature_scaling=temperature,
    mitigations=mitigation, processes=processes,
)  # fmt: skip
problems: list[str] = [p for p in [scoring_problem(ds.split)] if p]
try:
    cfg.validate(modality=ds.modality)
except ValueError as err:
    problems.append(str(err))
else:
    problems += check(
        mitigation, modality=ds.modality, finetune=finetune, train_counts=train_counts, n_unlabelled=ds.n_unlabelled, epochs=int(epochs)
    )

n_train = int((ds.split == 0).sum())
n_used = min(n_train, cfg.max_train_items) if cfg.max_train_items else n_train
gpu_run = common.run_gpus() > 0 and device in ("auto", "cuda")
batch_used = planned_batch(cfg.batch_size, modality=ds.modality, finetune=finetune, gpu=gpu_run, n_train=n_used, image_side=image_px)
lr_used = cfg.lr if cfg.batch_size or cfg.lr is None else scaled_lr(cfg.lr, batch_used)
steps = int(np.ceil(n_used / batch_used)) * cfg.epochs
absent = [ds.class_names[c] for c in prof.train.missing]
with st.container(border=True):
    st.markdown("**What will happen**")
    lines = [
        f"- **{FINETUNE_TITLES[finetune]}** of **{MODEL_TITLES.get(resolved_model, resolved_model)}** on {n_used:,} training items "
        f"({', '.join(f'{int((ds.split == i).sum()):,} {s}' for i, s in enumerate(SPLITS))}).",
        f"- {cfg.epochs} epoch(s) × {int(np.ceil(n_used / batch_used)):,} steps of {batch_used:,}{' (auto)' if not cfg.batch_size else ''} "
        f"= **{steps:,} steps**, AdamW at peak lr {lr_used:g} "
        f"with warm-up and cosine decay; evaluated on val and test {'each epoch' if not cfg.eval_every_steps else f'every {cfg.eval_every_steps} steps'}.",
        f"- Mitigations: **{', '.join(mitigation.active) or 'none (baseline)'}**.",
        f"- Hallucination rate counts wrong answers with confidence ≥ {cfg.tau:.2f}"
        + (f"; {len(absent)} class(es) absent from train ({', '.join(map(str, absent[:5]))}) are scored as unknown (forced-known rate)." if absent else "."),
    ]  # fmt: skip
    estimate = common.estimate_run_seconds(cfg, ds)
    if estimate is not None:
        lines.append(
            f"- Estimated time on {common.device_label()}: **about {estimate / 60:,.1f} min** (from measured throughput; the first run also loads the model)."
        )
    st.markdown("\n".join(lines))

for problem in problems:
    st.error(problem, icon="🚫")
b1, b2 = st.columns([1, 2])
runner = common.runner()
if b1.button("Start training", type="primary", disabled=bool(problems), key="start_run"):
    with common.saving():
        run_id = runner.submit(cfg)
    st.session_state["selected_run"] = run_id
    st.session_state["train_notice"] = [run_id]
    st.rerun()
pair_help = "Two runs with the same seed: one without mitigations, one with these. Compare them on the Runs page."
if b2.button("Run baseline and mitigated side by side", disabled=bool(problems) or not mitigation.active, key="start_pair", help=pair_help):
    baseline = dataclasses.replace(cfg, mitigations=Mitigations())
    with common.saving():
        base = runner.submit(dataclasses.replace(baseline, name=f"{baseline.display_name()} · baseline"))
        mitigated = runner.submit(cfg)
    st.session_state["selected_run"] = mitigated
    st.session_state["cmp_runs"] = [base, mitigated]  # the Compare page opens on this pair
    st.session_state["train_notice"] = [base, mitigated]
    st.rerun()

if (run_ids := st.session_state.pop("train_notice", None)) is not None:
    states = ", ".join(f"#{r} is {store.run(r).status}" for r in run_ids)
    st.success(
        f"Run {states}. Follow {'it' if len(run_ids) == 1 else 'them'} live on the Runs page — runs keep going while you use other pages."
    )
    st.page_link("app_pages/runs.py", label=f"Open run #{run_ids[-1]}", icon="📈")
