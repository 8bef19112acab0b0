"""Made shifts: a target drawn from a dataset by a known change, for demos, tests and benchmarks.

- ``corrupt_images``: covariate shift on images — ``rotate`` (degrees), ``blur`` (Gaussian sigma
  in px), ``brightness`` (factor), ``scale`` (zoom factor, centre kept) — by torchvision's v2
  functional transforms on uint8 arrays (N, H, W) or (N, H, W, C). torch is imported when called.
- ``prior_shift``: rows drawn so that the class shares follow a given prior (label shift: each
  class's items unchanged, their mix moved).
- ``by_column``: reference and target rows split by a meta column (a domain, a source, a year).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError

__all__ = ["IMAGE_SHIFTS", "by_column", "corrupt_images", "prior_shift"]

IMAGE_SHIFTS = {"rotate": "degrees", "blur": "sigma (px)", "brightness": "factor", "scale": "zoom factor"}


def corrupt_images(images: np.ndarray, kind: str, severity: float) -> np.ndarray:
    """``images`` changed by ``kind`` at ``severity``; uint8, the same shape."""
    import torch
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    if kind not in IMAGE_SHIFTS:
        raise DataError(f"unknown image shift {kind!r}; pick one of {sorted(IMAGE_SHIFTS)}.")
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim not in (3, 4):
        raise DataError(f"images must be uint8 (N, H, W) or (N, H, W, C); got {a.dtype} {a.shape}.")
    t = torch.from_numpy(np.ascontiguousarray(a))
    t = t[:, None] if a.ndim == 3 else t.permute(0, 3, 1, 2)  # (N, C, H, W)
    if kind == "rotate":
        out = F.rotate(t, float(severity), interpolation=v2.InterpolationMode.BILINEAR)
    elif kind == "blur":
        if severity <= 0:
            return a.copy()
        k = 2 * int(np.ceil(3 * severity)) + 1
        out = F.gaussian_blur(t, [k, k], [float(severity), float(severity)])
    elif kind == "brightness":
        if severity < 0:
            raise DataError(f"brightness factor must be ≥ 0; got {severity}.")
        out = F.adjust_brightness(t, float(severity))
    else:
        if severity <= 0:
            raise DataError(f"zoom factor must be > 0; got {severity}.")
        out = F.affine(t, angle=0.0, translate=[0, 0], scale=float(severity), shear=[0.0, 0.0])
    out = out[:, 0] if a.ndim == 3 else out.permute(0, 2, 3, 1)
    return out.contiguous().numpy()


def prior_shift(labels: Any, prior: dict[int, float] | np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """Positions of ``n`` rows drawn without replacement whose classes follow ``prior`` (class →
    share; the shares are normalised). A class asked for more rows than it has gets all of them."""
    y = np.asarray(labels, dtype=np.int64)
    k = int(y.max()) + 1 if len(y) else 0
    w = np.zeros(k)
    items = prior.items() if isinstance(prior, dict) else enumerate(np.asarray(prior, dtype=float))
    for c, share in items:
        if not 0 <= int(c) < k:
            raise DataError(f"class {c} is not among the labels 0..{k - 1}.")
        if share < 0:
            raise DataError(f"class shares must be ≥ 0; class {c} has {share}.")
        w[int(c)] = share
    if w.sum() <= 0:
        raise DataError("the prior gives every class a zero share; give at least one class a positive share.")
    rng = np.random.default_rng(seed)
    want = np.floor(w / w.sum() * n).astype(int)
    want[np.argmax(w)] += n - want.sum()
    picked = [rng.choice(np.flatnonzero(y == c), min(int(want[c]), int((y == c).sum())), replace=False) for c in range(k) if want[c]]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def by_column(meta: pd.DataFrame, column: str, reference: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """Positions of rows whose ``column`` is ``reference`` (a value or a list of values), and of
    rows whose ``column`` is ``target``."""
    if column not in meta.columns:
        raise DataError(f"no column {column!r}; pick one of {list(meta.columns)}.")
    col = meta[column]
    as_list = lambda v: list(v) if isinstance(v, list | tuple | set) else [v]
    ref = np.flatnonzero(col.isin(as_list(reference)).to_numpy())
    tgt = np.flatnonzero(col.isin(as_list(target)).to_numpy())
    for side, rows, value in (("reference", ref, reference), ("target", tgt, target)):
        if len(rows) == 0:
            raise DataError(f"no row has {column} = {value!r} for the {side}; pick values the column holds.")
    return ref, tgt
