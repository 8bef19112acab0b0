"""The one way items become model inputs, shared by training and embeddings.

- Images stay ``uint8`` until the batch that uses them; ``ImageSpec.prepare`` turns a uint8
  (B, C, H, W) batch into the float tensor a net expects, on the batch's device: /255, bilinear
  resize (antialiased when shrinking), grayscale → 3 channels for pretrained nets, the net's
  normalisation (``core.models.registry.NORMALISATION``), channels_last where it is faster.
- Texts are tokenised once (``tokenise``) into a padded id matrix plus lengths; ``Tokens.batch``
  cuts a batch to its own longest text, so length-sorted batches pad little.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from core.models.registry import NORMALISATION

if TYPE_CHECKING:  # torch is imported where it is used: core.embed's cache checks must not load it
    import torch

DEFAULT_IMAGE_SIZE = 64  # px a pretrained net sees at least (core.embed's measurements chose it)
MAX_AUTO_IMAGE_SIZE = 128  # px; larger images are downscaled to this unless a size is asked for
MAX_TOKENS = 128  # tokens per text for embeddings (training uses RunConfig.max_length)


def auto_image_size(height: int, width: int, *, pretrained: bool) -> tuple[int, int]:
    """The (H, W) an image net sees when no size is asked for.

    From scratch: the native size. Pretrained: square, the longer side but at least
    ``DEFAULT_IMAGE_SIZE`` and at most ``MAX_AUTO_IMAGE_SIZE`` px — MobileNetV2 downsamples 32×: a
    28 px image would leave less than one cell of its last feature map.
    """
    if not pretrained:
        return int(height), int(width)
    side = int(min(max(height, width, DEFAULT_IMAGE_SIZE), MAX_AUTO_IMAGE_SIZE))
    return side, side


@dataclass
class ImageSpec:
    """How a uint8 batch becomes the float tensor an image net expects."""

    size: tuple[int, int]  # (H, W) the net sees, px
    channels: int  # 3 for the pretrained nets (grayscale is repeated), else the data's own
    mean: tuple[float, ...]  # per channel, as fractions of 255
    std: tuple[float, ...]
    channels_last: bool = False  # set on CUDA (and for CPU inference): faster convolutions
    _norm: dict[Any, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def for_model(cls, normalisation: str, size: tuple[int, int], channels: int = 3) -> ImageSpec:
        mean, std = NORMALISATION[normalisation]
        if len(mean) == 1:
            mean, std = mean * channels, std * channels
        return cls(size, channels, tuple(mean), tuple(std))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) → normalised float (B, channels, *size) on x's device."""
        return self.prepare_float(x.float().div_(255.0))

    def prepare_float(self, x: torch.Tensor) -> torch.Tensor:
        """Float pixels in [0, 1] (B, C, H, W) → what ``prepare`` makes of their uint8 form;
        differentiable, so attributions (``core.explain``) are read in the image's own pixels."""
        import torch
        import torch.nn.functional as F

        if tuple(x.shape[-2:]) != self.size:
            shrink = x.shape[-2] > self.size[0] or x.shape[-1] > self.size[1]
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=shrink)
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and self.channels == 1:
            x = x.mean(dim=1, keepdim=True)
        key = (x.device, x.dtype)
        if key not in self._norm:  # made on the device once, not copied there for every batch
            self._norm[key] = (
                torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1),
                torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1),
            )
        mean, std = self._norm[key]
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W) or (n, H, W, 3) → uint8 tensor (n, C, H, W). Read-only input (a memory-mapped
    store payload) is copied first; a writable contiguous array is used as it is."""
    import torch

    arr = np.asarray(images, dtype=np.uint8)
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = np.array(arr)
    x = torch.from_numpy(arr)
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


@dataclass
class Tokens:
    """Texts tokenised once: ids padded to the longest text, and each text's length."""

    ids: torch.Tensor  # int64 (n, longest), padded with pad_id
    lengths: np.ndarray  # int64 (n,)
    pad_id: int
    token_types: bool  # the model takes token_type_ids (all zeros: one segment)
    lengths_t: torch.Tensor | None = None  # the lengths on the ids' device (``to``)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(
        self, rows: np.ndarray, device: torch.device, *, on_device: torch.Tensor | None = None, multiple: int = 1
    ) -> dict[str, torch.Tensor]:
        """The model inputs of ``rows``, cut to the batch's own longest text (rounded up to a
        ``multiple`` of tokens), on ``device``. ``on_device``: the same rows as a tensor on the
        device the ids live on, so no index is copied for this batch."""
        import torch

        width = int(self.lengths[rows].max())
        if multiple > 1:
            width = min(-(-width // multiple) * multiple, int(self.ids.shape[1]))
        if on_device is not None and on_device.device == self.ids.device:
            take = on_device
        else:
            take = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.ids.device)
        ids = self.ids.index_select(0, take)[:, :width].to(device, non_blocking=True)
        if self.lengths_t is not None and self.lengths_t.device == self.ids.device:
            lens = self.lengths_t.index_select(0, take).to(device, non_blocking=True)
        else:
            lens = torch.from_numpy(self.lengths[rows]).to(device, non_blocking=True)
        mask = (torch.arange(width, device=device)[None, :] < lens[:, None]).long()
        out = {"input_ids": ids, "attention_mask": mask}
        if self.token_types:
            out["token_type_ids"] = torch.zeros_like(ids)
        return out

    def padded(self, multiple: int) -> Tokens:
        """The same tokens with the id matrix widened to a multiple of ``multiple`` columns."""
        import torch.nn.functional as F

        extra = -int(self.ids.shape[1]) % multiple if multiple > 1 else 0
        if not extra:
            return self
        return dataclasses.replace(self, ids=F.pad(self.ids, (0, extra), value=self.pad_id))

    def to(self, device: torch.device) -> Tokens:
        """The same tokens with ids and lengths on ``device`` (batches are then gathered there)."""
        import torch

        return dataclasses.replace(self, ids=self.ids.to(device), lengths_t=torch.from_numpy(self.lengths).to(device))


def tokenise(texts: Sequence[Any], tokenizer: Any, max_length: int) -> Tokens:
    """All texts (None → "") tokenised and truncated to ``max_length`` tokens."""
    import torch

    enc = tokenizer(
        ["" if t is None else str(t) for t in texts],
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )["input_ids"]
    lengths = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    mat = np.full((len(enc), max(1, int(lengths.max(initial=1)))), pad, dtype=np.int64)
    for i, e in enumerate(enc):
        mat[i, : len(e)] = e
    token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    return Tokens(torch.from_numpy(mat), lengths, int(pad), token_types)
