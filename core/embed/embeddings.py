"""Embeddings from pretrained backbones, cached on disk by content hash.

One embedding matrix per dataset feeds the diagnosis (label noise, near-duplicates, outliers,
2-D maps) and the linear probes. ``embed(ds)`` picks the backbone from the modality:

============  =================  =====  ====================================================
modality      backbone           d      what a row is
============  =================  =====  ====================================================
text          ``"minilm"``       384    all-MiniLM-L6-v2; tokens truncated to 128; **mean
                                        pooling over the attention mask**, then L2-normalised
                                        (unit rows: dot product = cosine similarity). Any
                                        local transformers encoder directory works the same.
image         ``"mobilenet_v2"`` 1280   torchvision MobileNetV2 (ImageNet weights), classifier
                                        removed, global average pool of the last feature map
                                        (non-negative, *not* normalised). Grayscale → 3
                                        channels; bilinear resize to ``image_size``; ImageNet
                                        mean/std. ``"efficientnet_lite0"`` (1280) and a
                                        ResNet-18 / MobileNetV2 ``.pth`` (512 / 1280) work the
                                        same way, each with its own normalisation: the trunk
                                        a fine-tuning run would train, built by
                                        ``core.models.build.image_backbone``.
tabular       ``"tabular"``      varies standardised numeric columns + one-hot categoricals
                                        (≤ 50 values); see ``tabular_features``. No torch.
============  =================  =====  ====================================================

Items are turned into inputs by ``core.models.preprocess`` — the same path training uses. Each
distinct text is embedded once, in batches sorted by token length (each pads to its own longest
text), and put back in the given order; images stay ``uint8`` until the batch that uses them, so
70k Fashion-MNIST images never become one 70k × 3 × S × S float tensor. Text runs in fp32 by default;
``method="int8"`` (dynamically quantised Linear layers) is faster on a CPU but moves the vectors
(``TEXT_METHODS``; ``benchmarks/RESULTS.md``, *Text embedding speed*).

    X = embed(ds)                     # (n, d) float32, rows aligned with ds; cached
    is_cached(ds), estimate_seconds(ds)   # "instant" or "about N s", before starting

Every pass through the backbone measures its throughput and keeps it (``core.embed.throughput``),
so the next ``estimate_seconds`` for that backbone and method is calibrated to this machine.

Cache
-----
``GAPSCOPE_HOME/cache/features/<key>.npy``, written atomically, read back as a read-only memory
map (``core.embed.cache``). The key is a sha256 over ``FEATURES_VERSION``, the backbone's identity
(the pinned sha256 of the packaged weights, or of a user's own weights and config), the
preprocessing (max tokens, pooling, image size, mean/std, interpolation; a text method other than
fp32) and the dataset's content
(``core.data.dataset.content_hashes``, in item order, plus the item shape). Items embedded for
another version are reused by content hash (``cache.ItemStore``). Tabular features take
milliseconds and are not cached.

Image size
----------
Small images must be upscaled: MobileNetV2 downsamples 32×, so 28 px would leave less than one
cell of its last feature map. ``DEFAULT_IMAGE_SIZE`` is 64, the first size whose embeddings beat
raw pixels in kNN accuracy on Fashion-MNIST; 96 and 128 gain a little for several times the time,
so ask for them where time is cheap (a GPU). Images larger than 64 px keep their side, up to
``MAX_AUTO_IMAGE_SIZE`` (128). The measurements behind these choices, and the throughputs that
``estimate_seconds`` uses, are in ``benchmarks/RESULTS.md`` (section *Embeddings*).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from core.data import assets
from core.data.dataset import Dataset, content_hashes
from core.embed import cache as feature_cache
from core.embed import throughput
from core.hardware import autocast, detect, limit_torch_threads, torch_device, usable_cores
from core.models.preprocess import DEFAULT_IMAGE_SIZE as DEFAULT_IMAGE_SIZE  # re-exported: the embedding sizes
from core.models.preprocess import MAX_AUTO_IMAGE_SIZE as MAX_AUTO_IMAGE_SIZE
from core.models.preprocess import MAX_TOKENS, auto_image_size
from core.models.registry import NORMALISATION, spec
from core.models.tabular import tabular_features

FEATURES_VERSION = 1  # bump when anything that changes the numbers changes (pooling, resize, …)

TEXT_BACKBONES = ("minilm",)
# How a text encoder runs: "fp32" (the reference), "int8" (torch's dynamic quantisation of every
# Linear layer, per-channel weights; CPU only) or "onnx-int8" (ONNX Runtime's dynamic quantisation of
# the matrix products, per-channel weights; CPU only). A method is part of the cache key: other vectors.
TEXT_METHODS = ("fp32", "int8", "onnx-int8")
TEXT_METHOD = "fp32"  # the default; benchmarks/RESULTS.md (Text embedding speed) says why
IMAGE_BACKBONES = ("mobilenet_v2", "efficientnet_lite0")
TABULAR = "tabular"
MAX_LENGTH = MAX_TOKENS  # tokens per text, after which it is truncated
MOBILENET_FILE = "mobilenet-v2/mobilenet_v2-b0353104.pth"
EFFICIENTNET_FILE = "efficientnet-lite0/efficientnet-lite0-57934424.pth"

# CPU throughput with 2 free cores (CPU time; benchmarks/RESULTS.md, Embeddings): used by estimate_seconds.
CPU_CORES_MEASURED = 2
CPU_TEXT_TOKENS_PER_S = 5_000  # MiniLM, length-sorted batches of 64, 2 cores to itself
CPU_IMAGES_PER_S_AT_64 = 800  # MobileNetV2 at 64×64, batch 128, 2 cores to itself
IMAGE_COST_EXPONENT = 2.3  # image cost ∝ side ** this (measured: a little steeper than pixels)
CHARS_PER_TOKEN = 4.3  # English text in MiniLM's word pieces (VADER: 4.37)
CUDA_SPEEDUP = 40  # not yet measured on a GPU: a conservative guess for text and images
MODEL_LOAD_S = {"text": 1.5, "image": 0.5}  # reading weights + building the module
TEXT_METHOD_SPEEDUP = {
    "fp32": 1.0,
    "int8": 1.5,
    "fp32+onnx": 1.7,
    "onnx-int8": 2.1,
}  # against fp32 on torch (benchmarks/RESULTS.md, Text embedding speed)

Progress = Callable[[int, int], None]
Timing = dict[str, Any]  # filled by embed_texts / embed_images when asked: where the time went


# --------------------------------------------------------------------------- public API


def embed(
    ds: Dataset,
    *,
    backbone: str = "auto",
    device: str = "auto",
    batch_size: int | None = None,
    image_size: int | None = None,
    progress: Progress | None = None,
    cache: bool = True,
    method: str | None = None,
) -> np.ndarray:
    """Embed every item of ``ds``; rows are aligned with the dataset.

    Parameters
    ----------
    ds : Dataset
    backbone : str
        ``"auto"`` (by modality: text → ``"minilm"``, image → ``"mobilenet_v2"``, tabular →
        ``"tabular"``), one of those names, ``"efficientnet_lite0"``, a local transformers encoder
        directory (text) or a ``.pth`` MobileNetV2 or ResNet-18 state dict (image).
    device : str
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        On CUDA the model runs under bf16 (or fp16) autocast, images in channels_last.
    batch_size : int, optional
        Items per forward pass; default 64 texts / 128 images on the CPU, 512 on a GPU.
    image_size : int, optional
        Side in px that images are resized to; default ``default_image_size(ds.items.shape)``.
    progress : callable, optional
        ``progress(done, total)`` after every batch (and once on a cache hit).
    cache : bool
        Read and write ``GAPSCOPE_HOME/cache/features``. Cached results come back as a
        read-only memory map: copy before modifying in place.
    method : str, optional
        Text only: ``"fp32"``, ``"int8"`` or ``"onnx-int8"`` (``TEXT_METHODS``); default ``TEXT_METHOD``. Each
        model pass measures its throughput and keeps it (``core.embed.throughput``) for the next
        estimate.

    Returns
    -------
    np.ndarray
        float32, shape (n, d).
    """
    name = resolve_backbone(ds, backbone)
    if ds.modality == "tabular":
        X, _ = tabular_features(ds.items)
        if progress is not None:
            progress(len(ds), len(ds))
        return X
    size = _image_size(ds, image_size)
    how = text_method(method) if ds.modality == "text" else None
    if not cache:
        return _embed_items(ds.items, ds.modality, name, device, batch_size, size, progress, how)
    hashes = content_hashes(ds)
    path = feature_cache.cache_dir() / f"{_key(ds, name, size, hashes, how)}.npy"
    hit = feature_cache.load(path, len(ds))
    if hit is not None:
        if progress is not None:
            progress(len(ds), len(ds))
        return hit
    # items embedded before (in another version: a cleaning, a simulation, a re-import) are reused
    items = feature_cache.ItemStore(_item_store_dir(ds, name, size, how))
    found, known = items.lookup(hashes)
    missing = np.flatnonzero(~found)
    fresh = None
    if len(missing):
        subset = ds.items[missing] if isinstance(ds.items, np.ndarray) else np.asarray(ds.items, dtype=object)[missing]
        fresh = _embed_items(subset, ds.modality, name, device, batch_size, size, progress, how)
    elif progress is not None:
        progress(len(ds), len(ds))
    dim = (fresh if fresh is not None else known).shape[1]  # type: ignore[union-attr]
    X = np.empty((len(ds), dim), np.float32)
    if known is not None:
        X[found] = known
    if fresh is not None:
        X[missing] = fresh
    try:  # a cache: a full disk costs the next look its speed, never this result
        if fresh is not None:
            items.add(hashes[missing], fresh)
        feature_cache.save(path, X)
    except OSError as err:
        print(f"gapscope: embeddings not cached ({err})", file=sys.stderr)
        return X
    mapped = feature_cache.load(path, len(ds))  # hand back the file, as a cache hit would: same type both times
    return mapped if mapped is not None else X


def _embed_items(
    items: Any,
    modality: str,
    name: str,
    device: str,
    batch_size: int | None,
    size: int | None,
    progress: Progress | None,
    method: str | None,
) -> np.ndarray:
    """The backbone's vectors for ``items``; the pass's measured throughput is kept for estimates."""
    timing: Timing = {}
    if modality == "text":
        X = embed_texts(items, backbone=name, device=device, batch_size=batch_size, progress=progress, method=method, timing=timing)
        units = float(text_units(items).sum())
    else:
        X = embed_images(items, backbone=name, device=device, batch_size=batch_size, image_size=size, progress=progress, timing=timing)
        units = len(items) * _image_cost(size or DEFAULT_IMAGE_SIZE)
    key = rate_key(modality, name, timing.get("device", "cpu"), method, timing.get("engine"))
    throughput.record(key, units, timing.get("model_s", 0.0))
    return X


def rate_key(modality: str, name: str, device_kind: str, method: str | None = None, engine: str | None = None) -> str:
    """The name a measured throughput is kept under: modality, backbone, device kind, method (and
    "+onnx" when ONNX Runtime ran it)."""
    return f"{modality}:{name}:{device_kind}:{method or '-'}" + ("+onnx" if engine == "onnx" else "")


def text_units(texts: Any) -> np.ndarray:
    """Word pieces each text will cost, estimated from its length in characters (plus [CLS] and
    [SEP]; at most ``MAX_LENGTH``): the unit estimates and measured text throughputs count in."""
    chars = pd.Series(np.asarray(texts, dtype=object)).astype(str).str.len().to_numpy(dtype=np.float64)
    return np.minimum(chars / CHARS_PER_TOKEN + 2, MAX_LENGTH)


def _image_cost(size: int) -> float:
    """One image at ``size`` px in 64 px images (the cost grows a little faster than the pixels)."""
    return float((size / 64.0) ** IMAGE_COST_EXPONENT)


def _model_key(ds: Dataset, name: str, size: int | None, method: str | None = None) -> hashlib._Hash:
    """The hash state of everything but the items: version, backbone weights, preprocessing, shape."""
    h = hashlib.sha256()
    h.update(f"gapscope-features-v{FEATURES_VERSION}\n".encode())
    h.update(_backbone_id(name).encode() + b"\n")
    h.update(json.dumps(_preprocessing(ds, name, size, method), sort_keys=True).encode() + b"\n")
    shape = tuple(np.shape(ds.items)[1:]) if ds.modality == "image" else ()
    h.update(f"{ds.modality} shape={shape}\n".encode())
    return h


def _key(ds: Dataset, name: str, size: int | None, hashes: np.ndarray, method: str | None = None) -> str:
    h = _model_key(ds, name, size, method)
    h.update(f"n={len(ds)}\n".encode())
    h.update(np.ascontiguousarray(hashes, dtype="<i8").tobytes())
    return h.hexdigest()


def _item_store_dir(ds: Dataset, name: str, size: int | None, method: str | None = None) -> Path:
    return feature_cache.cache_dir() / f"items-{_model_key(ds, name, size, method).hexdigest()[:32]}"


def _method_of(ds: Dataset, method: str | None) -> str | None:
    return text_method(method) if ds.modality == "text" else None


def text_method(method: str | None = None) -> str:
    """``method`` checked (None: the default ``TEXT_METHOD``)."""
    how = TEXT_METHOD if method is None else str(method)
    if how not in TEXT_METHODS:
        raise ValueError(f"text embedding method {method!r} is not one of {', '.join(map(repr, TEXT_METHODS))}.")
    return how


def cache_key(ds: Dataset, *, backbone: str = "auto", image_size: int | None = None, method: str | None = None) -> str:
    """The sha256 (hex) that names ``ds``'s embedding file; changes with data, backbone, size and
    (text) the embedding method."""
    name = resolve_backbone(ds, backbone)
    if ds.modality == "tabular":
        raise ValueError("tabular features are not cached (they take milliseconds); there is no cache key")
    size = _image_size(ds, image_size)
    return _key(ds, name, size, content_hashes(ds), _method_of(ds, method))


def uncached_items(ds: Dataset, *, backbone: str = "auto", image_size: int | None = None, method: str | None = None) -> int:
    """How many items of ``ds`` ``embed`` would have to run through the backbone (0: instant)."""
    if ds.modality == "tabular":
        return 0
    name, size, how = resolve_backbone(ds, backbone), _image_size(ds, image_size), _method_of(ds, method)
    hashes = content_hashes(ds)
    if (feature_cache.cache_dir() / f"{_key(ds, name, size, hashes, how)}.npy").exists():
        return 0
    return len(ds) - feature_cache.ItemStore(_item_store_dir(ds, name, size, how)).count(hashes)


def cached_embedding_path(ds: Dataset, *, backbone: str = "auto", image_size: int | None = None, method: str | None = None) -> Path | None:
    """Where ``embed`` keeps (or would keep) this embedding; None for tabular data (never cached)."""
    if ds.modality == "tabular":
        return None
    return feature_cache.cache_dir() / f"{cache_key(ds, backbone=backbone, image_size=image_size, method=method)}.npy"


def is_cached(ds: Dataset, *, backbone: str = "auto", image_size: int | None = None, method: str | None = None) -> bool:
    """True when ``embed`` would return without running the backbone: every item was embedded
    before (in this version or another), or the data is tabular."""
    return uncached_items(ds, backbone=backbone, image_size=image_size, method=method) == 0


def estimate_seconds(
    ds: Dataset,
    backbone: str = "auto",
    device: str = "auto",
    *,
    image_size: int | None = None,
    busy: bool = True,
    method: str | None = None,
) -> float:
    """Rough seconds that ``embed`` needs without the cache (model loading included).

    Calibrated when this machine has embedded with the same backbone and method before: the rate
    it measured then (``core.embed.throughput``), scaled by the load now against the load then.
    Otherwise from the throughput constants measured on a 2-core CPU (``benchmarks/RESULTS.md``,
    *Embeddings*), scaled linearly by the usable CPU cores, or by ``CUDA_SPEEDUP`` on a GPU. With
    ``busy``, a CPU estimate also counts the machine's load: when other processes keep ``L`` threads
    runnable on ``C`` cores, ours get about ``C / (L + C)`` of the speed (``os.getloadavg``; at load
    12 on 2 cores this predicted the measured 8× slow-down).
    """
    name = resolve_backbone(ds, backbone)  # validates
    n = len(ds)
    if ds.modality == "tabular" or n == 0:
        return 0.0
    kind = detect(None if device == "auto" else device).kind
    how = _method_of(ds, method)
    if ds.modality == "text":
        units = float(text_units(ds.items).sum())
    else:
        units = n * _image_cost(_image_size(ds, image_size) or DEFAULT_IMAGE_SIZE)
    load_s = MODEL_LOAD_S["text" if ds.modality == "text" else "image"]
    engine = text_engine(how, kind) if ds.modality == "text" else None
    measured = throughput.rate(rate_key(ds.modality, name, kind, how, engine))
    if measured is not None:
        per_s = measured.now() if busy else measured.per_s / throughput.load_factor(measured.load, measured.cores)
        return load_s + units / per_s
    if kind != "cpu":
        speed = float(CUDA_SPEEDUP)
    else:
        cores = max(1, usable_cores())
        speed = cores / CPU_CORES_MEASURED
        if busy:
            speed *= throughput.load_factor(throughput.current_load(), cores)
    if ds.modality == "text":
        per_s = CPU_TEXT_TOKENS_PER_S * (
            TEXT_METHOD_SPEEDUP.get(f"{how}+{engine}" if engine == "onnx" else how or "fp32", 1.0) if kind == "cpu" else 1.0
        )
        return load_s + units / (per_s * speed)
    return load_s + units / (CPU_IMAGES_PER_S_AT_64 * speed)


def default_image_size(shape: Sequence[int]) -> int:
    """The side images of ``shape`` (n, H, W[, 3]) are resized to when ``image_size`` is None: what
    a fine-tuning run of a pretrained net uses (``core.models.preprocess.auto_image_size``)."""
    if len(shape) < 3:
        return auto_image_size(0, 0, pretrained=True)[0]
    return auto_image_size(int(shape[1]), int(shape[2]), pretrained=True)[0]


def resolve_backbone(ds: Dataset, backbone: str = "auto") -> str:
    """The backbone ``embed`` uses for ``ds``: a name, or an absolute path to local weights."""
    b = str(backbone)
    if ds.modality == "tabular":
        if b not in ("auto", TABULAR):
            raise ValueError(f"tabular data uses backbone 'tabular' (standardised columns), not {backbone!r}; pass backbone='auto'.")
        return TABULAR
    if b == "auto":
        return TEXT_BACKBONES[0] if ds.modality == "text" else IMAGE_BACKBONES[0]
    if ds.modality == "text":
        if b in TEXT_BACKBONES:
            return b
        path = Path(b).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ValueError(f"{path} has no config.json; point backbone at a transformers model directory.")
            return str(path.resolve())
        raise ValueError(
            f"text backbone {backbone!r} is neither {', '.join(map(repr, TEXT_BACKBONES))} nor an existing local "
            "transformers model directory (with config.json)."
        )
    if b in IMAGE_BACKBONES:
        return b
    path = Path(b).expanduser()
    if path.is_file() and path.suffix in (".pth", ".pt"):
        return str(path.resolve())
    raise ValueError(
        f"image backbone {backbone!r} is neither {', '.join(map(repr, IMAGE_BACKBONES))} nor an existing "
        "MobileNetV2 or ResNet-18 state dict (.pth)."
    )


# --------------------------------------------------------------------------- text


def embed_texts(
    texts: Sequence[str],
    *,
    backbone: str = "minilm",
    device: str = "auto",
    batch_size: int | None = None,
    progress: Progress | None = None,
    sort_by_length: bool = True,
    method: str | None = None,
    timing: Timing | None = None,
    engine: str = "auto",
) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings, float32 (n, d); no cache.

    What makes it fast on a CPU, none of which changes a vector (``method="fp32"``):

    - each distinct text is embedded once (a repeated tweet costs nothing);
    - texts are tokenised once, truncated at ``max_length`` = ``MAX_LENGTH`` or the model's own
      limit if smaller; a batch is cut to its own longest text, so short texts never pay for
      128 tokens;
    - with ``sort_by_length`` batches are formed longest first, so a batch's texts are about as
      long as each other and little of it is padding; rows come back in the given order;
    - ``torch.inference_mode`` and 32 texts a batch on the CPU (the ``sentence-transformers``
      default; larger batches were no faster on 2 cores).

    - on the CPU, ``method="fp32"`` runs the encoder exported to ONNX Runtime
      (``core.embed.onnx_encoder``; ``engine="auto"``) when it is installed and the export agrees
      with torch on every probe text; ``engine="torch"`` always uses torch, ``engine="onnx"``
      refuses to fall back.

    ``method="onnx-int8"`` runs the ONNX graph with its matrix products quantised (int8 weights per
    output channel; ``core.embed.onnx_encoder``), CPU only. ``method="int8"`` runs a copy of the
    encoder whose Linear layers are dynamically quantised
    (``torch.ao.quantization.quantize_dynamic``, int8 per-channel weights, activations quantised per
    batch): faster on a CPU, but other vectors (``TEXT_METHOD`` says which is the default and
    ``benchmarks/RESULTS.md`` why). ``timing``, when given, receives ``load_s`` (model),
    ``tokenise_s``, ``model_s`` (the batches, wall clock), ``texts`` (distinct), ``device`` and
    ``engine`` ("onnx" or "torch").
    """
    import time

    import torch

    from core.models.preprocess import tokenise
    from core.models.text import load_encoder, load_tokenizer, quantised_encoder, text_source

    how = text_method(method)
    started = time.perf_counter()
    source = text_source(backbone)
    dev = torch_device(device)
    if how == "int8" and dev.type != "cpu":
        raise ValueError("int8 text embeddings run on the CPU only (torch's dynamic quantisation); use method='fp32' on a GPU.")
    onnx = _onnx_encoder(source, how, dev.type, engine)
    if onnx is not None:  # the same fp32 vectors, by ONNX Runtime; torch's model is never loaded
        tokenizer, model = load_tokenizer(source), cast(Any, None)
        dim, limit = onnx.dim, onnx.max_positions or MAX_LENGTH
    else:
        tokenizer, model = load_encoder(source)
        model = _on_device(quantised_encoder(source) if how == "int8" else model, dev)
        dim = int(model.config.hidden_size)
        limit = int(getattr(model.config, "max_position_embeddings", MAX_LENGTH) or MAX_LENGTH)
    n = len(texts)
    if n == 0:
        return np.zeros((0, dim), np.float32)
    batch_size = _batch_size(batch_size, 32 if dev.type == "cpu" else 512)
    t = time.perf_counter()
    strings = np.asarray(["" if x is None else str(x) for x in texts], dtype=object)
    distinct, back = np.unique(strings, return_inverse=True)
    tokens = tokenise(list(distinct), tokenizer, min(MAX_LENGTH, limit))
    m = len(distinct)
    order = np.argsort(-tokens.lengths, kind="stable") if sort_by_length else np.arange(m)
    out = np.empty((m, dim), np.float32)
    t_model = time.perf_counter()
    done = 0
    with torch.inference_mode(), autocast(dev):
        for start in range(0, m, batch_size):
            rows = order[start : start + batch_size]
            inputs = tokens.batch(rows, dev)
            hidden = torch.from_numpy(onnx.hidden(inputs)) if onnx is not None else model(**inputs).last_hidden_state.float()
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out[rows] = torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().numpy()
            done += len(rows)
            if progress is not None:  # in given texts: a repeated text is done with its first copy
                progress(n if done == m else min(n, round(done * n / m)), n)
    if timing is not None:
        end = time.perf_counter()
        timing.update(load_s=t - started, tokenise_s=t_model - t, model_s=end - t_model, texts=m, device=dev.type,
                      engine="onnx" if onnx is not None else "torch")  # fmt: skip
    return out[back.reshape(-1)]


ENGINES = ("auto", "torch", "onnx")


def text_engine(method: str | None, device_kind: str) -> str:
    """The engine ``embed_texts`` will use for ``method`` on ``device_kind`` with ``engine="auto"``:
    "onnx" for fp32 on the CPU when ONNX Runtime is installed, else "torch" (a model that does not
    export faithfully still falls back to torch when it runs)."""
    from core.embed import onnx_encoder

    how = text_method(method)
    return "onnx" if device_kind == "cpu" and how in ("fp32", "onnx-int8") and onnx_encoder.available() else "torch"


def _onnx_encoder(source: str, how: str, device_kind: str, engine: str) -> Any:
    from core.embed import onnx_encoder

    if engine not in ENGINES:
        raise ValueError(f"text embedding engine {engine!r} is not one of {', '.join(map(repr, ENGINES))}.")
    if how == "onnx-int8":
        if device_kind != "cpu" or engine == "torch":
            raise ValueError("onnx-int8 text embeddings run on ONNX Runtime on the CPU only; use method='fp32'.")
        encoder = onnx_encoder.session(source, int8=True)
        if encoder is None:
            raise ValueError(f"onnx-int8 needs ONNX Runtime and a faithful ONNX export of {source} (see {onnx_encoder.cache_dir()}).")
        return encoder
    if engine == "torch" or how != "fp32" or device_kind != "cpu":
        if engine == "onnx":
            raise ValueError("the ONNX engine runs fp32 text embeddings on the CPU only.")
        return None
    encoder = onnx_encoder.session(source)
    if encoder is None and engine == "onnx":
        raise ValueError(f"the text encoder at {source} has no faithful ONNX export here (see {onnx_encoder.cache_dir()}).")
    return encoder


# --------------------------------------------------------------------------- images


def embed_images(
    images: np.ndarray,
    *,
    backbone: str = "mobilenet_v2",
    device: str = "auto",
    batch_size: int | None = None,
    image_size: int | None = None,
    progress: Progress | None = None,
    timing: Timing | None = None,
) -> np.ndarray:
    """Globally average-pooled features of a pretrained image net, float32 (n, d); no cache.

    ``images``: uint8 (n, H, W) grayscale or (n, H, W, 3) RGB. Each batch is converted to float,
    resized to ``image_size`` (bilinear, antialiased when shrinking) and normalised on the device
    (``core.models.preprocess.ImageSpec``), exactly as a fine-tuning run of the same net feeds it.
    ``timing``, when given, receives ``model_s`` (the batches, wall clock) and ``device``.
    """
    import time

    import torch

    from core.models.preprocess import to_nchw

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise ValueError(f"images must be uint8 (n, H, W) or (n, H, W, 3); got {images.dtype} {images.shape}")
    n = len(images)
    size = int(image_size or default_image_size(images.shape))
    if not 16 <= size <= 1024:
        raise ValueError(f"image_size must be between 16 and 1024 px, got {size}")
    net, image, d = _image_backbone(backbone, tuple(images.shape[1:]), size)
    dev = torch_device(device)
    net = _on_device(net, dev, channels_last=True)
    if n == 0:
        return np.zeros((0, d), np.float32)
    batch_size = _batch_size(batch_size, 128 if dev.type == "cpu" else 512)
    out = np.empty((n, d), np.float32)
    t_model = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            x = image.prepare(to_nchw(images[start : start + batch_size]).to(dev, non_blocking=True))
            with autocast(dev):
                y = net(x)
            out[start : start + len(x)] = y.float().cpu().numpy()
            if progress is not None:
                progress(start + len(x), n)
    if timing is not None:
        timing.update(model_s=time.perf_counter() - t_model, device=dev.type)
    return out


_IMAGE_NETS: dict[tuple[str, tuple[int, ...], int], Any] = {}


def _image_backbone(backbone: str, item_shape: tuple[int, ...], size: int) -> Any:
    """(trunk, ImageSpec in channels_last, d) for ``backbone`` at ``size``; the last two kept."""
    from core.models.build import image_backbone

    model = "mobilenet_v2" if backbone == "auto" else backbone
    packaged = {"mobilenet_v2": "mobilenet-v2", "efficientnet_lite0": "efficientnet-lite0"}.get(model)
    if packaged is not None:
        assets.asset_path(packaged)  # AssetError with the fetch hint when the weights are gone, cached net or not
    key = (model, tuple(item_shape), size)
    if key not in _IMAGE_NETS:
        limit_torch_threads()
        import torch

        net, image, d = image_backbone(model, item_shape, image_size=size)
        image.channels_last = True  # ~2× faster on the CPU too (oneDNN), and on CUDA
        _IMAGE_NETS.clear()  # one net at a time: they are tens of MB each
        _IMAGE_NETS[key] = (net.to(memory_format=torch.channels_last), image, d)
    return _IMAGE_NETS[key]


# --------------------------------------------------------------------------- cache key


def _image_size(ds: Dataset, image_size: int | None) -> int | None:
    if ds.modality != "image":
        return None
    return int(image_size) if image_size is not None else default_image_size(np.shape(ds.items))


def _preprocessing(ds: Dataset, name: str, size: int | None, method: str | None = None) -> dict[str, Any]:
    if ds.modality == "text":
        prep: dict[str, Any] = {"max_length": MAX_LENGTH, "pooling": "mean-attention-mask", "normalize": "l2"}
        if method not in (None, "fp32"):
            prep["method"] = method  # fp32's key stays what it always was: its cached files stay valid
        return prep
    # a .pth (ResNet-18 or MobileNetV2) is fed with ImageNet statistics like MobileNetV2; its file's
    # sha256 names its weights, so the key need not open it to learn the architecture
    norm = spec(name).normalisation if name in IMAGE_BACKBONES else "imagenet"
    mean, std = NORMALISATION[norm]
    prep = {
        "image_size": size,
        "resize": "bilinear-antialias-on-shrink",
        "mean": mean,
        "std": std,
        "gray": "repeat-3",
        "pool": "global-avg",
        "layer": "features",
    }
    if name == "efficientnet_lite0":
        prep["arch"] = name  # MobileNetV2's key stays what it always was: its cached files stay valid
    return prep


def _backbone_id(name: str) -> str:
    """A string that changes whenever the weights (or a user model's config) change."""
    if name == "minilm":
        files = assets.ASSETS["minilm"].files
        return "minilm:" + ",".join(sha for _, sha in sorted(files.values()))
    if name == "mobilenet_v2":
        return "mobilenet_v2:" + assets.ASSETS["mobilenet-v2"].files[MOBILENET_FILE][1]
    if name == "efficientnet_lite0":
        return "efficientnet_lite0:" + assets.ASSETS["efficientnet-lite0"].files[EFFICIENTNET_FILE][1]
    path = Path(name)
    if path.is_file():  # "mobilenet_v2-file" for any .pth: the name keys written before ResNet-18 files counted
        return "mobilenet_v2-file:" + feature_cache.file_sha(path)
    parts = []
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in (".json", ".txt", ".model", ".safetensors", ".bin", ".pt", ".pth"):
            parts.append(f"{f.relative_to(path)}={feature_cache.file_sha(f)}")
    return "transformers-dir:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- device


def _on_device(model: Any, dev: Any, *, channels_last: bool = False) -> Any:
    """The model on ``dev``; the CPU copy that the loader cached is left alone for other devices."""
    import copy

    import torch

    if dev.type == "cpu":
        return model
    key = (id(model), str(dev), channels_last)
    moved = _DEVICE_COPIES.get(key)
    if moved is None:
        moved = copy.deepcopy(model).to(dev)
        if channels_last:
            moved = moved.to(memory_format=torch.channels_last)
        _DEVICE_COPIES.clear()  # keep at most one accelerator copy alive
        _DEVICE_COPIES[key] = moved
    return moved


_DEVICE_COPIES: dict[tuple[int, str, bool], Any] = {}


def _batch_size(asked: int | None, default: int) -> int:
    batch_size = int(asked or default)
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of items, got {batch_size}")
    return batch_size
