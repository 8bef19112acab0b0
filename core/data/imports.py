"""From an uploaded file to a stored dataset version, with every check on the way.

Order matters: size limit → parse → validate → write. The store is touched only when the dataset
is whole and valid, so a bad upload changes nothing already stored.

What an upload is (``upload_kind``): a .zip is images; .conll, .iob and .bio are token files
(CoNLL-style, ``core.tokens.conll``); a .txt or .tsv that looks like one (``looks_like_conll``) and a
.jsonl whose first object has "tokens" are token files too; everything else is a table.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.data.dataset import LoadResult
from core.data.tables import TableRoles, load_table
from core.errors import DataError
from core.store import Store
from core.tokens.conll import CONLL_TYPES, JSONL_TYPES, load_tokens, looks_like_conll, looks_like_token_jsonl

TABLE_TYPES = ("csv", "tsv", "txt", "parquet", "jsonl", "ndjson", "json")
TOKEN_TYPES = CONLL_TYPES  # always token files; .txt / .tsv / .jsonl may be too (``upload_kind``)
ARCHIVE_TYPES = ("zip",)
UPLOAD_TYPES = TABLE_TYPES + TOKEN_TYPES + ARCHIVE_TYPES


@dataclass
class Imported:
    version_id: int
    result: LoadResult


def check_size(n_bytes: int, filename: str) -> None:
    limit = paths.max_upload_mb()
    if n_bytes > limit * 1024 * 1024:
        raise DataError(
            f"'{filename}' is {n_bytes / 1024**2:,.1f} MiB, over the {limit} MiB upload limit. Upload a smaller "
            "sample, or raise GAPSCOPE_MAX_UPLOAD_MB (and server.maxUploadSize in .streamlit/config.toml)."
        )


def check_archive(data: bytes, filename: str) -> None:
    """An image archive must have bytes and fit the upload limit."""
    check_size(len(data), filename)
    if not data:
        raise DataError(f"'{filename}' is empty (0 bytes). Upload a .zip with one folder of images per class.")


def kind_of(filename: str) -> str:
    """What an upload is by its name alone: "images", "tokens" (.conll, .iob, .bio) or "table"
    (which a .txt, .tsv or .jsonl may not be: ``upload_kind`` reads the bytes)."""
    ext = Path(filename).suffix.lower().lstrip(".")
    if ext in ARCHIVE_TYPES:
        return "images"
    if ext in TOKEN_TYPES:
        return "tokens"
    if ext in TABLE_TYPES:
        return "table"
    raise DataError(
        f"'{filename}': unsupported file type '.{ext}'. Upload a table (.csv, .tsv, .parquet, .jsonl), "
        "a token file for named entities (.conll, .iob, .bio, or JSON Lines with tokens and tags) "
        "or a .zip of images in one folder per class."
    )


def upload_kind(filename: str, data: bytes) -> str:
    """What an upload is: "images", "tokens" or "table" — what the Data page shows and which loader
    ``load_upload`` calls. Reads at most the first 64 KiB."""
    kind = kind_of(filename)
    ext = Path(filename).suffix.lower().lstrip(".")
    if kind == "table" and ext in ("txt", "tsv") and looks_like_conll(data):
        return "tokens"
    if kind == "table" and ext in JSONL_TYPES and looks_like_token_jsonl(data):
        return "tokens"
    return kind


def load_upload(filename: str, data: bytes, *, roles: TableRoles | None = None, image_size: int | None = None) -> LoadResult:
    """Parse and validate an upload into a Dataset without storing anything. A token file
    (``upload_kind``) is read as one whatever ``roles`` say."""
    check_size(len(data), filename)
    name = Path(filename).stem or "upload"
    kind = upload_kind(filename, data)
    if kind == "tokens":
        return load_tokens(data, filename, name=name)
    if kind == "images":
        from core.data.imagefiles import dataset_from_images, read_image_zip

        check_archive(data, filename)
        upload = io.BytesIO(data)
        upload.name = filename  # messages then name the file, not "the upload"
        return dataset_from_images(read_image_zip(upload, image_size=image_size), name=name)
    return load_table(data, filename, roles, name=name)


def import_upload(store: Store, filename: str, data: bytes, *, roles: TableRoles | None = None, image_size: int | None = None) -> Imported:
    """Parse, validate and store an upload as a new dataset; returns the new version id."""
    result = load_upload(filename, data, roles=roles, image_size=image_size)
    params = {"filename": filename, "bytes": len(data)}
    if roles is not None:
        params["roles"] = roles.__dict__
    if image_size is not None:
        params["image_size"] = image_size
    if result.tag_scheme is not None:
        params["tag_scheme"] = result.tag_scheme.as_dict()
    vid = store.save_dataset(
        result.dataset,
        source=f"upload:{filename}",
        params=params,
        note="upload",
        warnings=result.warnings,
        skipped=result.skipped,
    )
    return Imported(vid, result)
