"""Files that appear whole or not at all: write a temporary file beside the target, then rename.

Every file Gapscope writes that another process may read while it is written (checkpoints,
evaluation artifacts, cached embeddings and diagnoses, fetched assets) goes through here. A crash
mid-write leaves the old file (or none) and no partial one; the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from core.jsonable import to_jsonable


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as JSON (numpy values converted, NaN and infinities as null; see ``to_jsonable``)."""
    text = json.dumps(to_jsonable(obj), allow_nan=False)
    return atomic_write_bytes(path, text.encode("utf-8"))
