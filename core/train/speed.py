"""How a run uses its device: the batch size and learning rate on a GPU, and the GPU fast path.

On a CPU a run trains as it always has: the batch the config names (32 when it says 0, "auto"),
every batch as long as the draw allows, texts padded to each batch's longest, one augmentation draw
per item. On a GPU the loop is bound by kernel launches and by tuning, not by arithmetic, so the
fast path (``RunConfig.fast_path``: auto = on a GPU) changes four things:

- **a larger batch**: with ``batch_size=0`` the batch grows with the GPU (``auto_batch``) and the
  learning rate is scaled by √(batch / 32), the square-root rule for Adam-type optimisers (the lr a
  config names is the lr at batch 32);
- **a fixed set of shapes**: the last, partial train batch of an epoch is dropped and evaluation
  batches are padded to the train batch, so cuDNN meets one batch shape (images) and texts meet at
  most ``max_length / 16`` widths (``PAD_TOKENS_TO``);
- **tuning only when it pays**: cuDNN autotuning (``cudnn.benchmark``) tunes every convolution of a
  new shape once — seconds per shape for MobileNetV2 — so it is on only for runs long enough to win
  it back (``AUTOTUNE_MIN_STEPS``); ``torch.compile`` likewise (``COMPILE_MIN_STEPS``, images only:
  texts have several widths), with its cache under ``GAPSCOPE_HOME/cache/inductor`` so a second run
  of the same shapes skips the compile;
- **augmentation in groups**: per-item image augmentations draw their parameters once per group of
  ``AUG_GROUP`` items and run as one batched call on the device, instead of one call per item.

Indexing stays on the device everywhere (``core.train.loop``): an epoch's rows are copied once, not
per step. Torch-free, so pages and the estimate can read it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

REFERENCE_BATCH = 32  # the batch a config's learning rate is meant for; "auto" on a CPU
PAD_TOKENS_TO = 16  # token widths on the fast path are multiples of this
AUG_GROUP = 16  # items that share one draw of augmentation parameters on the fast path
AUTOTUNE_MIN_STEPS = 2_000  # cuDNN autotuning pays from about here (seconds of tuning per shape)
COMPILE_MIN_STEPS = 20_000  # torch.compile (about a minute on MobileNetV2) pays from about here
MAX_IMAGE_BATCH = 1024  # at 64 px; fewer at larger sizes (activations grow with the pixels)
VECTOR_BATCH = 512  # tabular columns and frozen-backbone features
TEXT_BATCH = 64  # transformer fine-tuning: larger batches need more epochs on small datasets
MIN_STEPS_PER_EPOCH = 8  # the automatic batch leaves at least this many steps per epoch
MODES = ("auto", "on", "off")


def _pow2_floor(n: float) -> int:
    return 1 << max(0, math.floor(math.log2(max(1.0, n))))


def feed_of(modality: str, finetune: str) -> str:
    """What the net reads: "tokens", "image" or "vector" (tabular columns, frozen-backbone features)."""
    if finetune == "linear_probe" or modality == "tabular":
        return "vector"
    return "tokens" if modality == "text" else "image"


def auto_batch(*, feed: str, device_type: str, n_train: int, image_side: int | None = None) -> int:
    """The batch a run with ``batch_size=0`` trains with.

    A CPU: ``REFERENCE_BATCH``. A GPU: images ``MAX_IMAGE_BATCH`` at 64 px, scaled by the pixels
    (a power of two, 64 at least), vectors ``VECTOR_BATCH``, texts ``TEXT_BATCH``; never so large
    that an epoch has fewer than ``MIN_STEPS_PER_EPOCH`` steps (and never below 32 for that).
    """
    if device_type != "cuda":
        return REFERENCE_BATCH
    if feed == "image":
        side = max(8, int(image_side or 64))
        want = min(MAX_IMAGE_BATCH, max(64, _pow2_floor(MAX_IMAGE_BATCH * (64 / side) ** 2)))
    elif feed == "tokens":
        want = TEXT_BATCH
    else:
        want = VECTOR_BATCH
    return max(REFERENCE_BATCH, min(want, _pow2_floor(n_train / MIN_STEPS_PER_EPOCH)))


def planned_batch(batch_size: int, *, modality: str, finetune: str, gpu: bool, n_train: int, image_side: int | None = None) -> int:
    """The batch a run of ``batch_size`` (0: auto) will train with, said before it starts (the
    Train page, the time estimate)."""
    device_type = "cuda" if gpu else "cpu"
    return batch_size or auto_batch(feed=feed_of(modality, finetune), device_type=device_type, n_train=n_train, image_side=image_side)


def scaled_lr(lr: float, batch: int) -> float:
    """``lr`` (meant for batch ``REFERENCE_BATCH``) for ``batch``: the square-root rule."""
    return float(lr) * math.sqrt(batch / REFERENCE_BATCH)


@dataclass(frozen=True)
class Speed:
    """What the fast path does for one run (``plan``)."""

    fixed_shapes: bool = False  # drop the last partial train batch; pad evaluation batches to the train batch
    pad_tokens_to: int = 1  # token widths are multiples of this (1: each batch's longest text)
    aug_group: int = 1  # items per draw of augmentation parameters (1: every item its own)
    autotune: bool = False  # torch.backends.cudnn.benchmark
    compile: bool = False  # torch.compile the training forward and backward

    def describe(self) -> str:
        if not self.fixed_shapes and not self.compile:
            return "fast path off"
        parts = ["fixed shapes"]
        if self.pad_tokens_to > 1:
            parts.append(f"tokens padded to ×{self.pad_tokens_to}")
        if self.aug_group > 1:
            parts.append(f"augmentation in groups of {self.aug_group}")
        parts.append("cuDNN autotuning" if self.autotune else "no autotuning (too short a run to pay)")
        if self.compile:
            parts.append("torch.compile")
        return "fast path: " + ", ".join(parts)


OFF = Speed()


def plan(*, fast_path: str, compile_mode: str, device_type: str, feed: str, steps: int) -> Speed:
    """The fast path of a run of about ``steps`` optimiser steps on ``device_type``.

    ``fast_path`` / ``compile_mode``: "auto" (on a GPU; compile only for long image runs), "on"
    (also on a CPU: what the tests use to check the shapes) or "off".
    """
    if fast_path not in MODES or compile_mode not in MODES:
        raise ValueError(f"fast_path and compile must be one of {', '.join(MODES)}")
    gpu = device_type == "cuda"
    fixed = fast_path == "on" or (fast_path == "auto" and gpu)
    if compile_mode == "auto":
        compiled = gpu and fixed and feed == "image" and steps >= COMPILE_MIN_STEPS
    else:
        compiled = compile_mode == "on"
    if not fixed:
        return Speed(compile=compiled)
    return Speed(
        fixed_shapes=True,
        pad_tokens_to=PAD_TOKENS_TO if feed == "tokens" else 1,
        aug_group=AUG_GROUP,
        autotune=gpu and steps >= AUTOTUNE_MIN_STEPS,
        compile=compiled,
    )


def compile_cache(home: Path) -> Path:
    """Where compiled kernels are kept between runs: ``home/cache/inductor``, unless the user set
    ``TORCHINDUCTOR_CACHE_DIR``. Torch itself sets that variable to its default, a folder under the
    temp dir, the first time anything asks for the cache (with torch 2.11 and transformers 5.17,
    importing transformers does); its own default therefore counts as not set."""
    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if given and given == _torch_default_cache():
        given = None
    folder = Path(given or home / "cache" / "inductor")
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return folder


def _torch_default_cache() -> str | None:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # a torch without it: nothing of torch's own to tell apart
        return None
    return str(default_cache_dir())
