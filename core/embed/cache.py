"""The embedding cache, two layers:

- ``GAPSCOPE_HOME/cache/features/<key>.npy``: one file per (data, backbone, preprocessing), written
  atomically and read back as a read-only memory map — a repeat look at the same version;
- ``GAPSCOPE_HOME/cache/features/items-<key>/``: every item ever embedded with one (backbone,
  preprocessing), by its content hash (``ItemStore``) — a cleaned, simulated or re-imported version
  embeds only the items it does not share with one embedded before.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import numpy as np

from core import paths
from core.atomic import atomic_write, atomic_write_json
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


class ItemStore:
    """Vectors by item content hash for one (backbone, preprocessing).

    ``hashes-<gen>.npy`` (sorted int64) and ``vectors-<gen>.npy`` (float32, aligned) with
    ``current.json`` naming the generation: a new generation is written whole, then named, so a
    reader always sees a matching pair. Two processes adding at once may lose one's additions
    (it is a cache: those items are embedded again next time), never mix them.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _current(self) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            gen = json.loads((self.folder / "current.json").read_text())["gen"]
            hashes = np.load(self.folder / f"hashes-{gen}.npy", allow_pickle=False)
            vectors = np.load(self.folder / f"vectors-{gen}.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if hashes.ndim != 1 or vectors.ndim != 2 or len(hashes) != len(vectors) or vectors.dtype != np.float32:
            return None
        return hashes, vectors

    def count(self, hashes: np.ndarray) -> int:
        """How many of ``hashes`` have a vector here."""
        cur = self._current()
        return 0 if cur is None else int(_positions(cur[0], hashes)[1].sum())

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask over ``hashes``, vectors of the found ones in order; None when none is found)."""
        cur = self._current()
        if cur is None:
            return np.zeros(len(hashes), bool), None
        pos, found = _positions(cur[0], hashes)
        if not found.any():
            return found, None
        return found, np.asarray(cur[1][pos[found]], dtype=np.float32)

    def add(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        """Merge ``vectors`` (rows for ``hashes``) into the store."""
        if len(hashes) == 0:
            return
        cur = self._current()
        hashes = np.asarray(hashes, np.int64)
        vectors = np.asarray(vectors, np.float32)
        if cur is not None:
            if cur[1].shape[1] != vectors.shape[1]:
                cur = None  # another model's width under the same key: start over
            else:
                hashes = np.concatenate([cur[0], hashes])
                vectors = np.concatenate([np.asarray(cur[1]), vectors])
        uniq, first = np.unique(hashes, return_index=True)
        vectors = vectors[first]
        gen = uuid.uuid4().hex[:12]
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.folder / f"vectors-{gen}.npy", lambda fh: np.save(fh, np.ascontiguousarray(vectors), allow_pickle=False))
        atomic_write(self.folder / f"hashes-{gen}.npy", lambda fh: np.save(fh, uniq, allow_pickle=False))
        atomic_write_json(self.folder / "current.json", {"gen": gen, "n": len(uniq), "dim": int(vectors.shape[1])})
        for old in self.folder.glob("*.npy"):  # readers that hold an old generation keep their open file
            if gen not in old.name:
                with contextlib.suppress(OSError):
                    old.unlink()


def _positions(sorted_hashes: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.searchsorted(sorted_hashes, hashes)
    pos = np.minimum(pos, max(len(sorted_hashes) - 1, 0))
    found = (sorted_hashes[pos] == hashes) if len(sorted_hashes) else np.zeros(len(hashes), bool)
    return pos, found
