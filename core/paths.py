"""Where Gapscope keeps its files.

``GAPSCOPE_HOME`` (default ``~/.gapscope``) holds the store: ``gapscope.db`` plus payload files.
``GAPSCOPE_ASSETS`` (default ``~/.cache/gapscope/assets``) holds the verified demo data and
pretrained weights fetched by ``python -m core.data.assets fetch``; it is shared between homes so that
tests with a temporary home reuse one fetch.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("GAPSCOPE_HOME", Path.home() / ".gapscope")).expanduser()


def assets_dir() -> Path:
    return Path(os.environ.get("GAPSCOPE_ASSETS", Path.home() / ".cache" / "gapscope" / "assets")).expanduser()


def max_upload_mb() -> int:
    """Largest upload accepted, in MiB (``GAPSCOPE_MAX_UPLOAD_MB``, default 200)."""
    return int(os.environ.get("GAPSCOPE_MAX_UPLOAD_MB", "200"))
