"""Read an image classification dataset from a ZIP archive or a folder, safely.

Layouts understood (names compared case-insensitively where it matters):

- class per folder: ``cats/1.png``, ``dogs/2.jpg``; images in sub-folders of a class folder belong
  to that class (``cats/persian/3.png`` is a cat), as in torchvision's ``ImageFolder``;
- the same wrapped in one (or more) top-level folders: ``pets/cats/1.png``;
- split folders above the class folders: ``train/cats/1.png``, ``test/dogs/2.png`` (split names
  train, val, valid, validation, dev, test), optionally wrapped too: ``pets/train/cats/1.png``.

Junk that zip tools and file browsers add (``__MACOSX/``, dot-files such as ``.DS_Store``,
``Thumbs.db``, ``desktop.ini``, directory entries) is ignored silently. Other files that cannot be
used (a ``.txt``, an image at the root without a class folder, a corrupt image, an image too large)
are *skipped* and listed with a reason, so the user sees what was left out and why.

Safety, because uploads come from strangers:

- nothing is ever extracted to disk; members are read into memory with bounded reads;
- a ZIP with a path that could escape a folder (``..``, absolute, drive letter, UNC) or a symbolic
  link is rejected whole (``DataError``); in a folder, links are skipped and never followed;
- ZIP bombs: too many entries (counted from the central directory *before* ``zipfile`` builds one
  object per entry), too large a declared total, too high a compression ratio, a member that yields
  more than it declares, and bzip2 members (one bzip2 read can expand a few KiB to gigabytes inside
  ``zipfile``, before any size check could run) are refused;
- image decompression bombs: width×height is checked from the header (``Image.open`` is lazy)
  before pixels are decoded; Pillow's own ``DecompressionBombError`` is reported the same way;
- a decoded-pixel budget across the archive: the pixels every image will be decoded at (JPEGs at
  the reduced scale their decoder draws at) may not exceed ``max_pixels_per_byte`` per stored byte
  of the archive (at least ``min_pixel_budget``, at most ``max_decoded_pixels``); a small archive
  that decodes to hundreds of millions of pixels is refused after reading headers only;
- images that all share one size larger than ``KEEP_SIZE_CAP`` on a side are scaled down to it;
- the decoded array must fit a memory budget (``ArchiveLimits.max_array_bytes``, 1 GiB).

Global Pillow state is left alone: ``ImageFile.LOAD_TRUNCATED_IMAGES`` keeps its value (False by
default, so truncated images fail and are skipped) and ``Image.MAX_IMAGE_PIXELS`` is not changed.
Pillow's ``DecompressionBombWarning`` (between 89M and 179M pixels by default) is not silenced,
because ``warnings.catch_warnings`` is not thread-safe and Streamlit runs sessions in threads; the
warning is harmless, since our own, lower pixel limit then skips the image.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import stat
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from PIL import Image

from core.data.dataset import Dataset, LoadResult
from core.data.labels import encode_labels
from core.data.splits import parse_split_column, stratified_split
from core.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".webp"})
# Only these decoders run on uploaded bytes: fewer parsers, smaller attack surface. A file whose
# extension says image but whose content is another format (a GIF named .png) is skipped.
PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
SPLIT_FOLDERS = frozenset({"train", "val", "valid", "validation", "dev", "test"})
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
JUNK_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})
AUTO_SIZE_CAP = 128  # side of the square that mixed-size images are resized to, at most
KEEP_SIZE_CAP = 512  # images of one shared size keep it up to this longest side; larger ones are scaled down
# A member smaller than this is exempt from the ratio check: it cannot hurt on its own (the total
# limit covers many of them), and blank BMPs of a few hundred KiB legitimately deflate ~1000×.
RATIO_CHECK_MIN_BYTES = 1 << 20
# zipfile decompresses bzip2 without an output bound (a 4 KiB read can yield gigabytes), so only
# these methods are read. Deflate is what every common zip tool writes.
READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_LZMA: "LZMA"}
METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", 9: "deflate64", 93: "zstandard", 99: "AES-encrypted"}

_SPLIT_HINT = "Split the archive into smaller ones (e.g. one per split or per class)"
_BOMB_HINT = "Is this really an image dataset? Images are already compressed and barely shrink in a zip."


@dataclass
class ArchiveLimits:
    """Bounds that keep a hostile or mistaken upload from exhausting memory, disk or time.

    Attributes
    ----------
    max_entries : int
        Most entries (files, folders, junk) an archive or folder may hold.
    max_total_bytes : int
        Most uncompressed bytes all members may declare together (files' sizes in a folder).
    max_ratio : float
        Most uncompressed/compressed size ratio of one ZIP member larger than
        ``RATIO_CHECK_MIN_BYTES`` (zip bomb).
    max_image_pixels : int
        Most width×height of one image, read from its header before decoding (decompression bomb).
    max_array_bytes : int
        Most bytes of the decoded ``images`` array (n×H×W×channels); ask for a smaller
        ``image_size`` above it.
    max_pixels_per_byte : float
        Most pixels decoded (all images together; JPEGs at their reduced decoding scale) per byte
        the images take in the archive or folder. Photographs and scans decode to well under 10;
        a solid 6000×6000 PNG of 120 KB decodes to 300.
    min_pixel_budget : int
        Pixels any archive may decode, whatever its size.
    max_decoded_pixels : int
        Pixels no archive may exceed, whatever its size.
    """

    max_entries: int = 200_000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0
    max_image_pixels: int = 40_000_000
    max_array_bytes: int = 1024**3
    max_pixels_per_byte: float = 50.0
    min_pixel_budget: int = 100_000_000
    max_decoded_pixels: int = 2_000_000_000


DEFAULT_LIMITS = ArchiveLimits()


@dataclass
class ImageFolderResult:
    """Images read from class folders, aligned row by row.

    Attributes
    ----------
    images : np.ndarray
        ``uint8``, (n, H, W) when every kept image is grayscale, else (n, H, W, 3) RGB.
    labels : list of str
        Class per image: the name of its class folder.
    splits : list of (str or None), or None
        Lower-cased split folder name ("train", "valid", "test", …) per image when the layout has
        split folders (None for an image outside them); None when it has none.
    paths : list of str
        Entry name inside the archive, or path relative to the folder (with ``/``).
    orig_sizes : np.ndarray
        ``int64`` (n, 2): width, height before resizing.
    skipped : list of (str, str)
        (entry name, reason) for every file that was not used, junk excepted.
    """

    images: np.ndarray
    labels: list[str]
    splits: list[str | None] | None
    paths: list[str]
    orig_sizes: np.ndarray
    skipped: list[tuple[str, str]]


@dataclass
class ZipPreview:
    """What importing an image ZIP would take, from its file names alone (see ``preview_image_zip``).

    Attributes
    ----------
    counts : pd.DataFrame
        One row per class and split, columns ``class`` (folder name), ``split`` (lower-cased split
        folder name, or None for images outside split folders and for layouts without any) and
        ``images`` (how many image files it holds); sorted by class, then split.
    skipped : list of (str, str)
        (entry name, reason) for every file that would be left out for its name or place alone,
        junk excepted.
    n_images : int
        Image files that would be read, all classes and splits together.
    has_splits : bool
        Whether the layout has split folders (train/, val/, test/, …) above the class folders.
    """

    counts: pd.DataFrame
    skipped: list[tuple[str, str]]
    n_images: int
    has_splits: bool


class _Skip(Exception):
    """One file cannot be used; the message is the reason shown to the user."""


@dataclass(frozen=True)
class _Entry:
    name: str  # shown to the user and returned in ``paths``
    parts: tuple[str, ...]  # normalised path components, file name last
    ref: zipfile.ZipInfo | Path  # what the reader needs
    size: int  # declared (zip) or on-disk (folder) size in bytes


@dataclass(frozen=True)
class _Probe:
    entry: _Entry
    label: str
    split: str | None
    width: int
    height: int
    gray: bool
    jpeg: bool


# --------------------------------------------------------------------------- public API


def read_image_zip(
    data: bytes | BinaryIO | str | Path,
    *,
    image_size: int | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> ImageFolderResult:
    """Read a ZIP of class folders into arrays, without extracting anything to disk.

    Parameters
    ----------
    data : bytes, binary file object, str or Path
        The archive: its bytes, a seekable binary file (e.g. a Streamlit upload; it is not
        closed), or a path.
    image_size : int, optional
        Resize every image to ``image_size``×``image_size``. None keeps the size when all images
        share one; otherwise they are resized to a square whose side is the median of
        max(width, height), capped at ``AUTO_SIZE_CAP`` (128). Resizing squashes (the aspect ratio
        is not kept; no crop, no padding) with Lanczos when shrinking, bicubic when enlarging.
    limits : ArchiveLimits
        Safety bounds; see the class.

    Returns
    -------
    ImageFolderResult

    Raises
    ------
    DataError
        The file is not a ZIP, contains unsafe paths or links, exceeds a limit, or holds no
        readable image in a class folder. The message says what to change.

    Notes
    -----
    Sizes and the grayscale/RGB choice are decided from the image headers, so an image that
    passes its header check but then fails to decode still counted towards the automatic size.
    EXIF orientation is not applied (as in torchvision), so pixels are as stored.
    """
    label = _display_name(data)
    with _open_zip(data, label, limits) as zf:
        infos = zf.infolist()
        _check_zip_entries(infos, label, limits)
        entries, skipped = _zip_entries(infos)
        return _build(entries, skipped, lambda e: _read_zip_member(zf, e), label, image_size, limits)


def read_image_folder(
    root: str | Path,
    *,
    image_size: int | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> ImageFolderResult:
    """Read a folder of class folders into arrays; same layouts and result as ``read_image_zip``.

    Symbolic links (to files or folders) and anything whose resolved path leaves ``root`` are
    skipped and listed, never followed; so are sockets, pipes and devices, which could block a read.

    Parameters
    ----------
    root : str or Path
        The dataset folder.
    image_size : int, optional
        As in ``read_image_zip``.
    limits : ArchiveLimits
        ``max_entries`` bounds the files walked, ``max_total_bytes`` their total size.

    Returns
    -------
    ImageFolderResult

    Raises
    ------
    DataError
        ``root`` is not a folder, exceeds a limit, or holds no readable image in a class folder.
    """
    root = Path(root)
    label = f"'{_shown(str(root))}'"
    if not root.is_dir():
        raise DataError(f"{_cap(label)} is not a folder. Choose the folder that holds one sub-folder per class.")
    entries, skipped = _walk_folder(root.resolve(), label, limits)
    total = sum(e.size for e in entries)
    if total > limits.max_total_bytes:
        raise DataError(
            f"The image files in {label} add up to {_gb(total)}, more than the {_gb(limits.max_total_bytes)} "
            f"limit. {_SPLIT_HINT}, or point to a smaller folder."
        )
    return _build(entries, skipped, _read_file, label, image_size, limits)


def preview_image_zip(data: bytes | BinaryIO | str | Path, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> ZipPreview:
    """Classes, splits and image counts of a ZIP of class folders, from its central directory only.

    The archive is opened and checked exactly as ``read_image_zip`` does (same limits, same
    rejection of unsafe paths, links and bomb-like sizes) and its entries are placed in classes by
    the same layout rules, but no member is read or decompressed, so this is instant even for a
    large archive. What only the pixels can tell is found at import: a corrupt or truncated image,
    one with too many pixels, a damaged member, or an archive over the decoded-pixel or memory
    budget; such images are counted here and skipped (or the import refused) later.

    Parameters
    ----------
    data : bytes, binary file object, str or Path
        As in ``read_image_zip``; a file object is not closed.
    limits : ArchiveLimits
        Safety bounds; see the class.

    Returns
    -------
    ZipPreview

    Raises
    ------
    DataError
        As ``read_image_zip`` would before reading any member: the file is not a ZIP, contains
        unsafe paths or links, exceeds an entry or size limit, or holds no image in a class folder.
    """
    label = _display_name(data)
    with _open_zip(data, label, limits) as zf:
        infos = zf.infolist()
        _check_zip_entries(infos, label, limits)
        entries, skipped = _zip_entries(infos)
    placed, has_splits, layout_skipped = _assign_classes(entries) if entries else ([], False, [])
    skipped = sorted(skipped + layout_skipped)
    if not placed:
        raise _no_images(label, skipped)
    return ZipPreview(counts=_count_placed(placed), skipped=skipped, n_images=len(placed), has_splits=has_splits)


# --------------------------------------------------------------------------- ZIP: opening and checks


def _display_name(data: object) -> str:
    """How messages name the archive: its quoted file name when known."""
    if isinstance(data, (str, Path)):
        return f"'{_shown(Path(data).name)}'"
    name = getattr(data, "name", None)  # open files and Streamlit uploads have one
    return f"'{_shown(Path(name).name)}'" if isinstance(name, str) and name else "the upload"


@contextmanager
def _open_zip(data: bytes | BinaryIO | str | Path, label: str, limits: ArchiveLimits) -> Iterator[zipfile.ZipFile]:
    """Open the archive (never extracting), after counting its entries cheaply."""
    with ExitStack() as stack:
        fp: BinaryIO
        if isinstance(data, (str, Path)):
            try:
                fp = stack.enter_context(open(data, "rb"))
            except OSError as err:
                raise DataError(f"Cannot open {label}: {err.strerror or err}. Check the path.") from err
        elif isinstance(data, (bytes, bytearray, memoryview)):
            fp = io.BytesIO(data)
        else:
            fp = data
        _count_central_directory(fp, label, limits.max_entries)
        try:
            zf = stack.enter_context(zipfile.ZipFile(fp))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as err:
            raise DataError(
                f"{_cap(label)} is not a valid ZIP archive ({_first_line(err)}). Upload a .zip made from the "
                "dataset folder (one sub-folder per class); if it is one, it may be damaged: zip it again."
            ) from err
        yield zf


def _count_central_directory(fp: BinaryIO, label: str, max_entries: int) -> None:
    """Raise when the central directory holds more than ``max_entries`` entries.

    ``zipfile`` builds a Python object for every central-directory record, and it walks the
    directory by its byte size, not by the declared count, so a crafted 200 MB archive of tiny
    records would cost gigabytes before ``infolist()`` could be checked. Walking the fixed-size
    headers ourselves bounds that. Anything malformed is left to ``zipfile`` to report.
    """
    located = _locate_central_directory(fp)
    if located is None:
        return
    start, size, declared = located
    if declared > max_entries:
        raise _too_many_entries(label, declared, max_entries)
    fp.seek(start)
    count, pos = 0, 0
    while pos < size:
        head = fp.read(46)
        if len(head) < 46 or head[:4] != b"PK\x01\x02":
            return
        name_len, extra_len, comment_len = struct.unpack_from("<3H", head, 28)
        count += 1
        if count > max_entries:
            raise _too_many_entries(label, None, max_entries)
        skip = name_len + extra_len + comment_len
        fp.seek(skip, os.SEEK_CUR)
        pos += 46 + skip


def _locate_central_directory(fp: BinaryIO) -> tuple[int, int, int] | None:
    """(start offset, byte size, declared entry count) of the central directory, or None."""
    try:
        end = fp.seek(0, os.SEEK_END)
        tail_len = min(end, 22 + 0xFFFF)  # end record plus the longest comment
        fp.seek(end - tail_len)
        tail = fp.read(tail_len)
    except (OSError, ValueError, AttributeError):
        return None
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return None
    count, size = struct.unpack_from("<HI", tail, pos + 10)
    record_at = pos
    if count == 0xFFFF or size == 0xFFFFFFFF:
        # Zip64: its 56-byte end record sits just before the 20-byte locator (where zipfile looks).
        rec = pos - 20 - 56
        if rec < 0 or tail[rec : rec + 4] != b"PK\x06\x06":
            return None
        count, size = struct.unpack_from("<QQ", tail, rec + 32)
        record_at = rec
    start = end - tail_len + record_at - size
    return (start, size, count) if start >= 0 else None


def _too_many_entries(label: str, count: int | None, limit: int) -> DataError:
    holds = f"holds {count:,} entries" if count is not None else "holds more entries than that"
    return DataError(f"{_cap(label)} {holds}; the limit is {limit:,} files per archive. {_SPLIT_HINT}. {_BOMB_HINT}")


def _unsafe_reason(name: str) -> str | None:
    """Why an entry name could escape the extraction folder, or None when it cannot."""
    slashed = name.replace("\\", "/")  # Windows tools accept both separators, so check both
    if slashed.startswith("/"):
        return "network path" if slashed.startswith("//") else "absolute path"
    if re.match(r"[A-Za-z]:", slashed):
        return "drive letter"
    # Windows treats '...' and '.. ' like '..'; no real folder is named that way.
    if any(re.fullmatch(r"\.{2,}[ .]*", part) for part in slashed.split("/")):
        return "goes up with '..'"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_zip_entries(infos: list[zipfile.ZipInfo], label: str, limits: ArchiveLimits) -> None:
    """Reject the whole archive on unsafe names, links or bomb-like sizes."""
    if len(infos) > limits.max_entries:
        raise _too_many_entries(label, len(infos), limits.max_entries)
    bad = []
    for info in infos:
        reason = "symbolic link" if _is_symlink(info) else _unsafe_reason(info.filename)
        if reason:
            bad.append(f"{_shown(info.filename)} ({reason})")
    if bad:
        raise DataError(
            f"{_cap(label)} contains unsafe paths: {_listing(bad)}. Re-create the zip from inside the dataset "
            "folder (so entries look like cats/1.png), with plain files rather than links."
        )
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise DataError(
            f"{_cap(label)} would expand to {_gb(total)}, more than the {_gb(limits.max_total_bytes)} limit. "
            f"{_SPLIT_HINT}, or resize the images first. {_BOMB_HINT}"
        )
    for info in infos:
        if info.file_size <= RATIO_CHECK_MIN_BYTES:
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise DataError(
                f"{_cap(label)}: entry '{_shown(info.filename)}' expands {ratio:,.0f}× (from {info.compress_size:,} to "
                f"{info.file_size:,} bytes); the limit is {limits.max_ratio:,.0f}×, so this looks like a zip bomb. "
                f"{_BOMB_HINT} If the images are uncompressed (e.g. blank BMPs), save them as PNG and zip again."
            )


def _zip_entries(infos: list[zipfile.ZipInfo]) -> tuple[list[_Entry], list[tuple[str, str]]]:
    """Image candidates and the files skipped up front (not images, encrypted, unreadable method)."""
    entries, skipped = [], []
    for info in sorted(infos, key=lambda i: i.filename):
        if info.is_dir():
            continue
        parts = tuple(p for p in info.filename.replace("\\", "/").split("/") if p not in ("", "."))
        if not parts or _is_junk(parts):
            continue
        reason = _extension_problem(parts[-1])
        if reason is None and info.flag_bits & 0x1:
            reason = "encrypted (password-protected); zip the folder again without a password"
        if reason is None and info.compress_type not in READABLE_METHODS:
            method = METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            reason = f"compressed with {method}, which Gapscope does not read; zip again with standard (deflate) compression"
        if reason:
            skipped.append((info.filename, reason))
        else:
            entries.append(_Entry(info.filename, parts, info, info.file_size))
    return entries, skipped


def _read_zip_member(zf: zipfile.ZipFile, entry: _Entry) -> bytes:
    """The member's bytes, reading at most its declared size + 1 so a lying header cannot bloat memory."""
    info = entry.ref
    assert isinstance(info, zipfile.ZipInfo)
    try:
        with zf.open(info) as member:
            data = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError, NotImplementedError) as err:
        # One damaged member (bad CRC, broken stream) should not cost the user the whole archive.
        raise _Skip(f"damaged in the archive ({_first_line(err)}); zip the folder again") from err
    if len(data) > info.file_size:
        raise DataError(
            f"Entry '{_shown(entry.name)}' holds more data than the {info.file_size:,} bytes its header "
            f"declares: the archive is damaged or crafted to hide its size. Zip the folder again. {_BOMB_HINT}"
        )
    return data


# --------------------------------------------------------------------------- folders


def _walk_folder(root: Path, label: str, limits: ArchiveLimits) -> tuple[list[_Entry], list[tuple[str, str]]]:
    """Image candidates under ``root`` and skipped files; never follows links."""
    entries, skipped = [], []
    count = 0
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        folder, rel = stack.pop()
        try:
            children = sorted(os.scandir(folder), key=lambda d: d.name)
        except OSError as err:
            skipped.append(("/".join(rel) or ".", f"folder could not be read ({err.strerror or err})"))
            continue
        for child in children:
            count += 1
            if count > limits.max_entries:
                raise DataError(
                    f"{_cap(label)} holds more than {limits.max_entries:,} files and folders. "
                    "Point to a smaller folder, or split the dataset."
                )
            parts = (*rel, child.name)
            name = "/".join(parts)
            if _is_junk(parts):
                continue
            if child.is_symlink():
                skipped.append((name, "symbolic link; links are not followed, copy the file in instead"))
            elif child.is_dir(follow_symlinks=False):
                stack.append((Path(child.path), parts))
            elif not child.is_file(follow_symlinks=False):
                skipped.append((name, "not a regular file"))
            elif not Path(child.path).resolve().is_relative_to(root):
                # A junction or a link in a parent can still lead outside; never read there.
                skipped.append((name, "resolves outside the dataset folder; not read"))
            elif (reason := _extension_problem(child.name)) is not None:
                skipped.append((name, reason))
            else:
                try:
                    size = child.stat(follow_symlinks=False).st_size
                except OSError as err:
                    skipped.append((name, f"could not be read ({err.strerror or err})"))
                    continue
                entries.append(_Entry(name, parts, Path(child.path), size))
    entries.sort(key=lambda e: e.name)
    return entries, skipped


def _read_file(entry: _Entry) -> bytes:
    """The file's bytes, reading at most its size at listing time + 1."""
    try:
        assert isinstance(entry.ref, Path)
        with open(entry.ref, "rb") as f:
            data = f.read(entry.size + 1)
    except OSError as err:
        raise _Skip(f"could not be read ({err.strerror or err})") from err
    if len(data) > entry.size:
        raise _Skip("changed while the folder was being read; load the folder again")
    return data


# --------------------------------------------------------------------------- layout


def _is_junk(parts: tuple[str, ...]) -> bool:
    """Files that zip tools and file browsers add; ignored without a mention."""
    return any(p.startswith(".") or p.lower() == "__macosx" for p in parts) or parts[-1].lower() in JUNK_FILES


def _extension_problem(filename: str) -> str | None:
    ext = os.path.splitext(filename)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return None
    return f"not an image ({ext})" if ext else "not an image (no file extension)"


def _wrapper(dirs: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The leading folders every image shares that are neither a split nor the class level.

    A level is a wrapper when all images below it share the same folder there, it is not a split
    name, and at least one image sits deeper (else it is the single class folder). Images shallower
    than the wrapper are not counted: they end up outside any class folder and are skipped.
    """
    prefix: tuple[str, ...] = ()
    while True:
        depth = len(prefix)
        below = [d for d in dirs if len(d) > depth]
        firsts = {d[depth] for d in below}
        if len(firsts) != 1 or next(iter(firsts)).lower() in SPLIT_FOLDERS:
            return prefix
        if not any(len(d) > depth + 1 for d in below):
            return prefix
        prefix += (firsts.pop(),)


def _assign_classes(
    entries: list[_Entry],
) -> tuple[list[tuple[_Entry, str, str | None]], bool, list[tuple[str, str]]]:
    """(entry, class, split) per usable image, whether the layout has splits, and skipped files."""
    dirs = [e.parts[:-1] for e in entries]
    prefix = _wrapper(dirs)
    depth = len(prefix)
    rels = [d[depth:] if d[:depth] == prefix else () for d in dirs]
    has_splits = any(len(r) >= 2 and r[0].lower() in SPLIT_FOLDERS for r in rels)
    placed: list[tuple[_Entry, str, str | None]] = []
    skipped: list[tuple[str, str]] = []
    for entry, rel in zip(entries, rels):
        if not rel:
            skipped.append((entry.name, "not inside a class folder; put each image in a folder named after its class"))
        elif has_splits and rel[0].lower() in SPLIT_FOLDERS:
            if len(rel) < 2:
                skipped.append((entry.name, f"in split folder '{rel[0]}' but not in a class folder inside it ({rel[0]}/<class>/)"))
            else:
                placed.append((entry, rel[1], rel[0].lower()))
        else:
            placed.append((entry, rel[0], None))
    return placed, has_splits, skipped


def _count_placed(placed: list[tuple[_Entry, str, str | None]]) -> pd.DataFrame:
    """Images per (class, split) as a frame: classes by name, splits train → validation → test, None last."""
    order = {s: i for i, s in enumerate(("train", "val", "valid", "validation", "dev", "test"))}
    counts = Counter((cls, split) for _, cls, split in placed)
    keys = sorted(counts, key=lambda k: (k[0], order.get(k[1] or "", len(order))))
    return pd.DataFrame(
        {"class": [k[0] for k in keys], "split": [k[1] for k in keys], "images": np.array([counts[k] for k in keys], dtype=np.int64)}
    )


# --------------------------------------------------------------------------- decoding


def _probe(data: bytes, limits: ArchiveLimits) -> tuple[int, int, bool, bool]:
    """Width, height, grayscale-ness and JPEG-ness from the header only; raises ``_Skip``."""
    try:
        with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as img:
            width, height = img.size
            mode, jpeg = img.mode, img.format == "JPEG"
    except Image.DecompressionBombError as err:
        raise _Skip(_pillow_bomb_reason(err, limits)) from err
    except MemoryError:
        raise
    except Exception as err:  # Pillow raises many types on malformed input; each means "unusable"
        raise _Skip(_corrupt_reason(err)) from err
    if width * height > limits.max_image_pixels:
        raise _Skip(f"image too large: {width}×{height} pixels exceeds the {limits.max_image_pixels:,}-pixel limit")
    return width, height, mode in GRAY_MODES, jpeg


def _decoded_pixels(probe: _Probe, size: tuple[int, int]) -> int:
    """Pixels ``_decode`` will decode for ``probe`` at output ``size``: all of them, except for a
    JPEG larger than ``size``, which the decoder draws at 1/2, 1/4 or 1/8 scale (``Image.draft``)."""
    scale = 1
    if probe.jpeg:
        while scale < 8 and probe.width // (2 * scale) >= size[0] and probe.height // (2 * scale) >= size[1]:
            scale *= 2
    return -(-probe.width // scale) * -(-probe.height // scale)


def _check_pixel_budget(probes: list[_Probe], size: tuple[int, int], label: str, limits: ArchiveLimits) -> None:
    stored = sum(p.entry.size for p in probes)
    budget = int(min(limits.max_decoded_pixels, max(limits.min_pixel_budget, limits.max_pixels_per_byte * stored)))
    pixels = sum(_decoded_pixels(p, size) for p in probes)
    if pixels > budget:
        raise DataError(
            f"The {len(probes):,} images in {label} would decode to {pixels / 1e6:,.0f} million pixels from "
            f"{stored / 2**20:,.1f} MiB of files ({pixels / max(stored, 1):,.0f} pixels per stored byte); the limit for "
            f"this upload is {budget / 1e6:,.0f} million. Images that compress that well are usually blank or crafted "
            "to exhaust memory. If they are real, resize them first (e.g. to 1024 px on the long side) and upload again, "
            "or split the archive."
        )


def _decode(data: bytes, *, gray: bool, size: tuple[int, int]) -> np.ndarray:
    """Pixels as uint8 (H, W) or (H, W, 3) at ``size`` (width, height); raises ``_Skip``."""
    try:
        with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as img:
            if img.format == "JPEG" and (img.width > size[0] or img.height > size[1]):
                img.draft(None, size)  # decode big JPEGs at 1/2..1/8 scale: faster, less memory
            img.load()
            out = _resize(_normalise(img, gray=gray), size)
            return np.asarray(out)
    except Image.DecompressionBombError as err:
        raise _Skip(_pillow_bomb_reason(err, None)) from err
    except MemoryError:
        raise
    except Exception as err:  # truncated or corrupt data surfaces here, at load()
        raise _Skip(_corrupt_reason(err)) from err


def _normalise(img: Image.Image, *, gray: bool) -> Image.Image:
    """An 8-bit 'L' (``gray``) or 'RGB' image; alpha is composited on white, 16-bit scaled."""
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        # 16-bit (and 32-bit int / float) gray: map 0..65535 linearly onto 0..255, rounding.
        wide = np.clip(np.asarray(img, dtype=np.float64), 0, 65535)
        img = Image.fromarray(((wide + 128) // 257).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("L" if gray else "RGB")


def _resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Squash to ``size``: Lanczos (with a reducing gap for speed) when shrinking, bicubic otherwise."""
    if img.size == size:
        return img
    if size[0] <= img.width and size[1] <= img.height:
        return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img.resize(size, Image.Resampling.BICUBIC)


def _target_size(probes: list[_Probe], image_size: int | None) -> tuple[int, int]:
    """(width, height) of the output; see ``read_image_zip`` for the rule."""
    if image_size is not None:
        return image_size, image_size
    sizes = {(p.width, p.height) for p in probes}
    if len(sizes) == 1:
        width, height = next(iter(sizes))
        shrink = max(width, height) / KEEP_SIZE_CAP
        if shrink <= 1:
            return width, height
        return max(1, round(width / shrink)), max(1, round(height / shrink))
    side = round(float(np.median([max(p.width, p.height) for p in probes])))
    side = max(1, min(AUTO_SIZE_CAP, side))
    return side, side


def _build(
    entries: list[_Entry],
    skipped: list[tuple[str, str]],
    read: Callable[[_Entry], bytes],
    label: str,
    image_size: int | None,
    limits: ArchiveLimits,
) -> ImageFolderResult:
    """Place, probe and decode the candidates into one preallocated array."""
    if image_size is not None and (not isinstance(image_size, (int, np.integer)) or image_size < 1):
        raise ValueError(f"image_size must be a positive integer or None, got {image_size!r}")
    skipped = list(skipped)
    placed, has_splits, layout_skipped = _assign_classes(entries) if entries else ([], False, [])
    skipped += layout_skipped
    probes = []
    for entry, cls, split in placed:
        try:
            width, height, gray, jpeg = _probe(read(entry), limits)
        except _Skip as why:
            skipped.append((entry.name, str(why)))
            continue
        probes.append(_Probe(entry, cls, split, width, height, gray, jpeg))
    if not probes:
        raise _no_images(label, skipped)

    all_gray = all(p.gray for p in probes)
    width, height = _target_size(probes, image_size)
    _check_pixel_budget(probes, (width, height), label, limits)
    shape = (len(probes), height, width) if all_gray else (len(probes), height, width, 3)
    need = int(np.prod(shape, dtype=np.int64))
    if need > limits.max_array_bytes:
        raise DataError(
            f"The {len(probes):,} images would need {_gb(need)} of memory at {width}×{height} "
            f"{'grayscale' if all_gray else 'RGB'} (limit {_gb(limits.max_array_bytes)}). Choose a smaller "
            "image size (e.g. 64 or 128) or use fewer images."
        )

    # Decode one by one into a preallocated array; row k advances only on success, so failures
    # leave no holes and peak memory stays ~ one array plus one image.
    images = np.empty(shape, dtype=np.uint8)
    kept: list[_Probe] = []
    for probe in probes:
        try:
            images[len(kept)] = _decode(read(probe.entry), gray=all_gray, size=(width, height))
        except _Skip as why:
            skipped.append((probe.entry.name, str(why)))
            continue
        kept.append(probe)
    if not kept:
        raise _no_images(label, skipped)
    if len(kept) < len(probes):
        images = images[: len(kept)].copy()
    if not all_gray and all(p.gray for p in kept):
        # The only colour images failed to decode: the kept ones are gray, replicated in 3 channels.
        images = np.ascontiguousarray(images[..., 0])

    return ImageFolderResult(
        images=images,
        labels=[p.label for p in kept],
        splits=[p.split for p in kept] if has_splits else None,
        paths=[p.entry.name for p in kept],
        orig_sizes=np.array([(p.width, p.height) for p in kept], dtype=np.int64).reshape(-1, 2),
        skipped=sorted(skipped),
    )


# --------------------------------------------------------------------------- messages


def _no_images(label: str, skipped: list[tuple[str, str]]) -> DataError:
    reasons = [f"{_shown(name)}: {why}" for name, why in sorted(skipped)]
    tail = f" Skipped: {_listing(reasons, sep='; ')}." if reasons else ""
    return DataError(
        f"No readable images were found in {label}. Put images (PNG, JPEG, BMP or WebP) in one folder "
        f"per class, e.g. cats/1.png and dogs/2.png.{tail}"
    )


def _pillow_bomb_reason(err: Exception, limits: ArchiveLimits | None) -> str:
    """Pillow refused the header before we could read the size; report it like our own check."""
    match = re.search(r"\((\d+) pixels\)", str(err))
    pixels = f"{int(match.group(1)):,} pixels" if match else "its pixel count"
    limit = f"the {limits.max_image_pixels:,}-pixel limit" if limits else "Pillow's limit"
    return f"image too large: {pixels} exceeds {limit} (a possible decompression bomb)"


def _corrupt_reason(err: Exception) -> str:
    if isinstance(err, Image.UnidentifiedImageError):
        detail = "not a readable PNG, JPEG, BMP or WebP file"
    else:
        detail = _first_line(err) or type(err).__name__
    return f"corrupt or truncated image ({detail})"


def _cap(label: str) -> str:
    """``label`` at the start of a sentence ("the upload" → "The upload"; quoted names unchanged)."""
    return label[:1].upper() + label[1:]


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__


def _shown(name: str, width: int = 120) -> str:
    """A name safe to print: control characters replaced, long names shortened."""
    clean = "".join(c if c.isprintable() else "?" for c in name)
    return clean if len(clean) <= width else clean[: width - 1] + "…"


def _listing(items: list[str], *, sep: str = ", ", most: int = 5) -> str:
    more = f" (+{len(items) - most:,} more)" if len(items) > most else ""
    return sep.join(items[:most]) + more


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n:,} bytes"


# ---------------------------------------------------------------------- → Dataset


def dataset_from_images(result: ImageFolderResult, *, name: str, seed: int = 0) -> LoadResult:
    """Build an image Dataset from what ``read_image_zip`` / ``read_image_folder`` read."""
    if len(result.labels) == 0:
        reasons = "; ".join(f"{n}: {r}" for n, r in result.skipped[:5])
        raise DataError(
            "No readable images were found. Put images (PNG/JPEG/BMP/WebP) in one folder per class, "
            f"e.g. cats/1.png, dogs/2.png. {('Skipped: ' + reasons) if reasons else ''}".strip()
        )
    labels, class_names, warnings = encode_labels(pd.Series(result.labels), column="folder")
    if result.splits is not None and any(s is not None for s in result.splits):
        split = parse_split_column(pd.Series([s or "train" for s in result.splits]))
        if not (split == 1).any():
            split = np.where(split == 0, stratified_split(labels, val=0.1, test=0.0, seed=seed, holdout_from=split == 0), split)
    else:
        split = stratified_split(labels, seed=seed)
    meta = pd.DataFrame(
        {
            "file": list(result.paths),
            "orig_width": np.asarray(result.orig_sizes)[:, 0],
            "orig_height": np.asarray(result.orig_sizes)[:, 1],
        }
    )
    if result.skipped:
        warnings.append(f"{len(result.skipped):,} file(s) were skipped; they are listed below.")
    ds = Dataset(name=name, modality="image", items=result.images, labels=labels, class_names=class_names, split=split, meta=meta)
    return LoadResult(ds, warnings, list(result.skipped))
