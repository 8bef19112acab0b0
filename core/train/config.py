"""What a training run does: one dataclass, stored as JSON with its run.

Pages import this module, so it must stay light: no torch, no transformers.

    cfg = RunConfig(version_id=3, model="auto", epochs=5)
    cfg.validate()                       # ValueError that says what to change
    store.create_run(cfg.version_id, cfg.to_dict(), name=cfg.display_name())
    RunConfig.from_dict(store.run(run_id).config)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.hardware import DEVICES
from core.mitigate.settings import Mitigations
from core.models import registry
from core.models.registry import AUTO, FINETUNE

#: Which evaluation is a run's result (its kept checkpoint, where temperature scaling is fitted):
#: "best" by ``early_stopping_metric`` on the val split, or "last" (the final evaluation).
CHECKPOINT_RULES = ("best", "last")

#: A token-classification run's default peak learning rate (any encoder, full or last-N fine-tune):
#: the rate benchmarks/bench_ner.py trains CoNLL-2003 at (the text default, 5e-5, is for a new head
#: on one pooled vector per text; a tagger's head reads every word).
TOKEN_LR = 1e-4

#: Keys usable for early stopping / choosing the best checkpoint (evaluated on the val split).
STOPPING_METRICS = (
    "macro_f1",
    "accuracy",
    "balanced_accuracy",
    "worst_class_recall",
    "nll",
    "brier",
    "ece",
    "hallucination_rate",
    "aurc",
)

#: A token run's selection metric for each classifier selection metric a config may name.
TOKEN_SELECTION = {
    "macro_f1": "entity_f1_macro",
    "balanced_accuracy": "entity_f1_macro",
    "worst_class_recall": "entity_f1_macro",
    "accuracy": "entity_f1_micro",
    "aurc": "entity_f1_micro",
    "ece": "token_ece",
    "nll": "token_nll",
    "brier": "token_nll",
    "hallucination_rate": "confident_spurious_rate",
}
#: The config keys a token run is offered to select by, one per distinct metric of ``TOKEN_SELECTION``.
TOKEN_STOPPING = ("macro_f1", "accuracy", "hallucination_rate", "ece", "nll")


@dataclass
class RunConfig:
    """One training run. Defaults give a sensible run on a CPU; units are in the comments."""

    version_id: int = 0  # dataset version to train on (store id)
    model: str = AUTO  # a core.models.registry name or "auto", or a local transformers folder / .pth state dict
    finetune: str = "full"  # linear_probe (frozen backbone, cached features) | last_n | full
    last_n_blocks: int = 2  # with finetune="last_n": trainable blocks at the top of the backbone
    epochs: int = 3  # passes over the train split
    lr: float | None = None  # peak learning rate; None = the model's default (registry.default_lr)
    batch_size: int = 0  # items per step; 0 = auto: 32 on a CPU, larger on a GPU with the lr scaled (core.train.speed)
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not applied to biases and norms)
    warmup_ratio: float = 0.06  # share of all steps with a linear warm-up; cosine decay after it
    tau: float = 0.9  # confidence threshold of the hallucination / forced-known rates, in [0, 1]
    seed: int = 0  # seeds init, shuffling and dropout: same config + seed → same metrics on a CPU
    device: str = "auto"  # auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps
    eval_every_steps: int = 0  # evaluate on val + test every N optimiser steps; 0 = after each epoch
    log_every_steps: int = 10  # write train loss / throughput / ETA every N steps (and at step 1)
    early_stopping_metric: str = "macro_f1"  # the selection metric: a STOPPING_METRICS key on val; picks best.pt with checkpoint="best"
    checkpoint: str = "best"  # the run's result: "best" (by early_stopping_metric on val) | "last" (the final evaluation)
    patience: int = 0  # evaluations without improvement before stopping; 0 = never stop early
    selection_window: int = 1  # "best": each evaluation judged by the mean of its val selection metric and the N − 1 before it
    max_length: int = 128  # text: tokens per item (longer texts are truncated)
    image_size: int = 0  # image: side in pixels the model sees; 0 = native (small_cnn) or ≥ 64 (pretrained)
    temperature_scaling: bool = True  # after training: fit T on val (LBFGS on NLL), report before/after
    max_train_items: int = 0  # cap on train items (seeded random subset) for quick demos; 0 = all
    fast_path: str = "auto"  # auto (on a GPU) | on | off: fixed batch shapes, tokens padded to 16, grouped augmentation
    compile: str = "auto"  # torch.compile the net: auto (a GPU and a long image run) | on | off
    processes: int = 1  # processes of this run under torchrun (one per GPU, or gloo on the CPU); 1 = one process
    name: str = ""  # shown in the run list; empty = "<model> · <finetune>"
    mitigations: Mitigations = field(default_factory=Mitigations)  # sampler, loss, augmentations
    lab: dict[str, Any] = field(default_factory=dict)  # a lab run (model "lab_gpt2"): core.lab.settings.lab_block
    extra: dict[str, Any] = field(default_factory=dict)  # keys a newer Gapscope wrote that this one does not know

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a stored dict. Configs stored before ``mitigations`` existed get the defaults;
        unknown keys (from a newer Gapscope) are kept in ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names and k not in ("mitigations", "extra")}
        rest = {k: v for k, v in data.items() if k not in names}
        mitigations, unknown = Mitigations.from_dict(data.get("mitigations"))
        if unknown:
            rest["mitigations"] = unknown
        return cls(**known, mitigations=mitigations, extra={**rest, **(data.get("extra") or {})})

    # ------------------------------------------------------------------ derived values
    def model_kind(self) -> str:
        """The registry key: a built-in name, "auto", ``"hf_dir"`` or ``"pth"``."""
        return registry.model_kind(self.model)

    def model_modality(self) -> str | None:
        """The modality a model reads (None for "auto")."""
        return None if self.model == AUTO else registry.spec(self.model).modality

    def is_pretrained(self) -> bool:
        return self.model != AUTO and registry.spec(self.model).pretrained

    def resolve_model(self, modality: str, *, image_px: int | None = None) -> str:
        """The model to use for ``modality``: ``self.model`` unless it is "auto"
        (``registry.resolve_auto``)."""
        return self.model if self.model != AUTO else registry.resolve_auto(modality, image_px=image_px)

    def resolved(self, modality: str, *, image_px: int | None = None) -> RunConfig:
        """A copy with ``model`` resolved for ``modality``, checked against it (ValueError if not)."""
        cfg = dataclasses.replace(self, model=self.resolve_model(modality, image_px=image_px))
        cfg.validate(modality=modality)
        return cfg

    def learning_rate(self, modality: str, *, image_px: int | None = None) -> float:
        """The peak learning rate: ``lr``, or the model's default for this fine-tune mode."""
        if self.lr is not None:
            return float(self.lr)
        if modality == "tokens":
            return TOKEN_LR
        return registry.default_lr(self.resolve_model(modality, image_px=image_px), self.finetune)

    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.model == "lab_gpt2":
            from core.lab.settings import lab_words, read_lab

            return " · ".join(["lab GPT-2", *lab_words(read_lab(self.lab)[0])])
        from core.compare.setting_words import mitigation_words  # here: core.compare reads RunConfig

        words = [
            f"{registry.display_name(self.model)} · {registry.FINETUNE_TITLES[self.finetune].split(' (')[0]}",
            *mitigation_words(self.mitigations),
        ]
        return " · ".join(words)

    # ------------------------------------------------------------------ validation
    def validate(self, *, modality: str | None = None) -> RunConfig:
        """Raise ``ValueError`` (saying what to change) when a value cannot work; return self.

        With ``modality`` the model is also checked against the dataset ("minilm" cannot read
        images) — pass the dataset's modality once it is known.
        """
        self._validate_model()
        self._validate_training()
        self._validate_running()
        if modality is not None:
            self._validate_for(modality)
        return self

    def _validate_model(self) -> None:
        """The version, the model and the fine-tune mode."""
        builtins = ", ".join([AUTO, *(s.name for s in registry.MODELS.values() if s.selectable)])
        if isinstance(self.version_id, bool) or not isinstance(self.version_id, int) or self.version_id < 1:
            raise ValueError(f"version_id must be the id of a stored dataset version (≥ 1); got {self.version_id!r}. Pick a dataset first.")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be one of {builtins} or a local path; got {self.model!r}.")
        if self.model != AUTO and self.model not in registry.MODELS:
            _check_model_path(Path(self.model).expanduser(), self.model, builtins)
        if self.finetune not in FINETUNE:
            raise ValueError(f"finetune must be one of {', '.join(FINETUNE)}; got {self.finetune!r}.")
        if self.model == "lab_gpt2":
            from core.lab.settings import read_lab  # torch-free

            try:
                read_lab(self.lab)
            except Exception as err:
                raise ValueError(str(err)) from err
        elif self.lab:
            raise ValueError("'lab' settings belong to a lab run (model 'lab_gpt2'); remove them or start the run from the Lab page.")
        if self.finetune != "full" and self.model != AUTO and not self.is_pretrained():
            pretrained = ", ".join(s.name for s in registry.MODELS.values() if s.pretrained and s.selectable)
            raise ValueError(
                f"finetune={self.finetune!r} freezes a pretrained backbone, but {self.model} starts from random "
                f"weights. Use finetune='full', or a pretrained model ({pretrained}, a .pth or a transformers folder)."
            )

    def _validate_training(self) -> None:
        """The numbers of the loop: blocks, epochs, optimiser, cadence, stopping, input sizes."""
        _need_int(self, "last_n_blocks", 1, 1000)
        _need_int(self, "epochs", 1, 10_000)
        if self.lr is not None:
            _need_float(self, "lr", 0.0, 10.0, lo_open=True)
        _need_int(self, "batch_size", 0, 65_536)
        _need_float(self, "weight_decay", 0.0, 10.0)
        _need_float(self, "warmup_ratio", 0.0, 1.0)
        _need_float(self, "tau", 0.0, 1.0)
        _need_int(self, "seed", 0)
        if not isinstance(self.device, str) or not (
            self.device in DEVICES or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps; got {self.device!r}.")
        _need_int(self, "eval_every_steps", 0)
        _need_int(self, "log_every_steps", 1)
        if self.early_stopping_metric not in STOPPING_METRICS:
            raise ValueError(f"early_stopping_metric must be one of {', '.join(STOPPING_METRICS)}; got {self.early_stopping_metric!r}.")
        _need_int(self, "patience", 0)
        _need_int(self, "selection_window", 1, 5)
        if self.checkpoint not in CHECKPOINT_RULES:
            raise ValueError(f"checkpoint must be best or last; got {self.checkpoint!r}.")
        if self.checkpoint == "last" and self.patience:
            raise ValueError(
                f"patience={self.patience} stops early when val {self.early_stopping_metric} stops improving, but checkpoint='last' "
                "keeps the final evaluation, not the best one. Set patience to 0, or checkpoint to 'best'."
            )
        _need_int(self, "max_length", 8, 8192)
        _need_int(self, "image_size", 0, 1024)
        if 0 < self.image_size < 8:
            raise ValueError(f"image_size must be 0 (automatic) or at least 8 pixels; got {self.image_size}.")
        if not isinstance(self.temperature_scaling, bool):
            raise ValueError(f"temperature_scaling must be true or false; got {self.temperature_scaling!r}.")
        _need_int(self, "max_train_items", 0)

    def _validate_running(self) -> None:
        """How the run executes (fast path, compile, processes), its name and its mitigations."""
        for name in ("fast_path", "compile"):
            if getattr(self, name) not in ("auto", "on", "off"):
                raise ValueError(f"{name} must be auto, on or off; got {getattr(self, name)!r}.")
        _need_int(self, "processes", 1, 64)
        if self.processes > 1 and self.mitigations.semi.method == "pseudo_label":
            raise ValueError("pseudo-labelling runs in one process; set processes to 1 or choose another unlabelled-pool method.")
        if self.processes > 1 and self.device == "mps":
            raise ValueError("several processes need CUDA GPUs or the CPU; set device to auto, cuda or cpu, or processes to 1.")
        if not isinstance(self.name, str):
            raise ValueError(f"name must be text; got {self.name!r}.")
        if not isinstance(self.mitigations, Mitigations):
            raise ValueError("mitigations must be a Mitigations; build configs with RunConfig.from_dict.")
        self.mitigations.validate()

    def _validate_for(self, modality: str) -> None:
        """The model against the dataset's modality."""
        want = self.model_modality()
        if want == "lab":  # the lab's model reads a lab corpus, whatever a version's rows are
            return
        if want is not None and want != modality:
            names = [s.name for s in registry.choices(modality)]
            suggestion = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
            if modality == "text":
                suggestion += " (or a transformers folder)"
            raise ValueError(f"model {self.model!r} reads {want}, but this dataset is {modality}. Choose {suggestion}, or 'auto'.")
        if modality == "tabular" and self.finetune != "full":
            raise ValueError("tabular data trains an MLP from scratch; set finetune='full'.")


def _check_model_path(p: Path, given: str, builtins: str) -> None:
    """A model that is not a built-in must be a transformers folder or a .pth / .pt file."""
    if not p.exists():
        raise ValueError(
            f"model {given!r} is neither a built-in ({builtins}) nor an existing path. "
            "Pick a built-in model, or give the path of a local transformers folder or a .pth file."
        )
    if p.is_dir() and not (p / "config.json").exists():
        raise ValueError(
            f"{p} has no config.json, so it is not a transformers model folder. Point model at the folder that holds config.json."
        )
    if p.is_file() and p.suffix.lower() not in (".pth", ".pt"):
        raise ValueError(f"{p} is a file but not a .pth/.pt state dict. Give a .pth file, or a transformers folder.")


def _need_int(cfg: RunConfig, name: str, lo: int, hi: int | None = None) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        rng = f"≥ {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name} must be a whole number {rng}; got {v!r}. Set {name} to e.g. {max(lo, 1)}.")


def _need_float(cfg: RunConfig, name: str, lo: float, hi: float, *, lo_open: bool = False) -> None:
    v = getattr(cfg, name)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise ValueError(f"{name} must be a number in {bracket}{lo}, {hi}]; got {v!r}.")
