"""The embedding cache: ``GAPSCOPE_HOME/cache/features/<key>.npy``, one file per (data, backbone,
preprocessing), written atomically and read back as a read-only memory map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core import paths
from core.atomic import atomic_write
from core.data import assets


def cache_dir() -> Path:
    return paths.home() / "cache" / "features"


def load(path: Path, n: int) -> np.ndarray | None:
    """The cached (n, d) float32 matrix at ``path``, memory-mapped; None if absent or damaged."""
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None  # absent or damaged: recompute (and overwrite)
    if X.ndim != 2 or X.shape[0] != n or X.dtype != np.float32:
        return None
    return X.view(np.ndarray)  # a plain, read-only ndarray backed by the file


def save(path: Path, X: np.ndarray) -> None:
    atomic_write(path, lambda fh: np.save(fh, np.ascontiguousarray(X, dtype=np.float32), allow_pickle=False))


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so big weights are hashed once."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = assets.sha256_file(path)
    return _SHA_MEMO[key]
