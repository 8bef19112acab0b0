"""IDX files (the MNIST format, gzip or plain) → an image ``Dataset``."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.data.dataset import Dataset, LoadResult
from core.data.splits import stratified_split
from core.errors import DataError

MAX_IDX_RANK = 4  # items × rows × columns (× channels)
_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(source: str | Path | bytes | BinaryIO) -> np.ndarray:
    """Read an IDX array (MNIST format), gzip or plain. Raises DataError on a malformed file."""
    if isinstance(source, (str, Path)):
        raw = Path(source).read_bytes()
    elif isinstance(source, bytes):
        raw = source
    else:
        raw = source.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"The IDX file is a damaged gzip ({err}). Download or copy it again.") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError("Not an IDX file (bad magic number). IDX files start with two zero bytes, a type code and the rank.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError("The IDX header is truncated. Download or copy the file again.")
    if ndim > MAX_IDX_RANK:
        raise DataError(f"The IDX header claims {ndim} dimensions; image and label files have 1 to {MAX_IDX_RANK}. The file is damaged.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    if 0 in shape:
        raise DataError(f"The IDX file is empty (shape {shape}). Upload a file with at least one item.")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = math.prod(shape)  # Python ints: a damaged header cannot overflow
    need = count * dtype.itemsize
    if len(raw) - header < need:
        raise DataError(f"The IDX file is truncated: it needs {need:,} data bytes, has {len(raw) - header:,}. Copy it again.")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)


def dataset_from_idx(
    train_images: Any,
    train_labels: Any,
    test_images: Any = None,
    test_labels: Any = None,
    *,
    name: str,
    class_names: list[str] | None = None,
    seed: int = 0,
) -> LoadResult:
    """Build an image Dataset from IDX files; val is carved (stratified, 1/12 of train) from train."""
    xs, ys, splits = [], [], []
    for images, labels, code in ((train_images, train_labels, 0), (test_images, test_labels, 2)):
        if images is None:
            continue
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"IDX images must be (n, height, width) and labels (n,) of the same n; got {x.shape} and {y.shape}.")
        xs.append(x)
        ys.append(y.astype(np.int64))
        splits.append(np.full(len(y), code, np.int8))
    x, y, split = np.concatenate(xs), np.concatenate(ys), np.concatenate(splits)
    if x.dtype != np.uint8:
        raise DataError(f"IDX images must be unsigned bytes; this file holds {x.dtype}.")
    names = class_names or [str(i) for i in range(int(y.max()) + 1)]
    if y.min() < 0 or y.max() >= len(names):
        raise DataError(f"IDX labels run from {y.min()} to {y.max()}, outside the {len(names)} class names.")
    # Fashion-MNIST and MNIST ship train/test only: hold out 1/12 of train (5k of 60k) as val.
    split = np.where(split == 0, stratified_split(y, val=1 / 12, test=0.0, seed=seed, holdout_from=split == 0), split)
    if test_images is None:
        split = stratified_split(y, seed=seed)
    ds = Dataset(name=name, modality="image", items=np.ascontiguousarray(x), labels=y, class_names=names, split=split)
    return LoadResult(ds)
