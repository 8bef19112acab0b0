"""Tests for core.data.imagefiles: layouts, decoding, and every safety check (each asserts its message).

Every fixture is built here from scratch with Pillow and zipfile; nothing touches the network.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from core.data import imagefiles
from core.data.imagefiles import ArchiveLimits, dataset_from_images, preview_image_zip, read_image_folder, read_image_zip
from core.errors import DataError

# --------------------------------------------------------------------------- fixture builders


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def gray_png(value: int = 0, size: tuple[int, int] = (8, 6)) -> bytes:
    return encode(Image.new("L", size, value))


def noise_png(size: tuple[int, int] = (32, 32), mode: str = "RGB", seed: int = 0) -> bytes:
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    arr = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return encode(Image.fromarray(arr, mode))


def make_zip(members, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip from (name or ZipInfo, bytes) pairs, written exactly as given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            if isinstance(name, zipfile.ZipInfo):
                zf.writestr(name, data)
            elif name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def patch_png_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width/height (and its CRC) so the header claims another size."""
    ihdr = bytearray(png[12:29])  # b"IHDR" + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    return png[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def patch_headers(zip_bytes: bytes, local_offset: int, central_offset: int, fmt: str, value) -> bytes:
    """Set one field in every local and central file header (fixtures have no stray signatures)."""
    out = bytearray(zip_bytes)
    for sig, off in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        pos = out.find(sig)
        while pos >= 0:
            struct.pack_into(fmt, out, pos + off, value)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def reasons(result) -> dict[str, str]:
    return dict(result.skipped)


@pytest.fixture(autouse=True)
def never_extract(monkeypatch, tmp_path):
    """Fail if anything extracts to disk, and run from an empty folder we can check afterwards."""

    def refuse(*args, **kwargs):
        raise AssertionError("imagefiles must never extract to disk")

    monkeypatch.setattr(zipfile.ZipFile, "extract", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", refuse)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    yield
    assert list(workdir.iterdir()) == []


# --------------------------------------------------------------------------- layouts and decoding


def test_class_folders_gray_same_size_keep_pixels_and_order():
    data = make_zip(
        [
            ("dogs/b.png", gray_png(200)),
            ("cats/a.png", gray_png(10)),
            ("cats/persian/c.png", gray_png(30)),  # sub-folders belong to their top class folder
        ]
    )
    res = read_image_zip(data)
    assert res.images.dtype == np.uint8 and res.images.shape == (3, 6, 8)
    assert res.paths == ["cats/a.png", "cats/persian/c.png", "dogs/b.png"]
    assert res.labels == ["cats", "cats", "dogs"]
    assert res.splits is None
    assert res.orig_sizes.dtype == np.int64 and res.orig_sizes.tolist() == [[8, 6]] * 3
    assert [int(np.unique(im)[0]) for im in res.images] == [10, 30, 200]
    assert res.skipped == []


def test_mixed_formats_and_sizes_become_rgb_squares_of_median_side():
    half = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # left half fully transparent red
    half.paste((0, 0, 255, 255), (4, 0, 8, 8))  # right half opaque blue
    palette = Image.new("RGB", (12, 4), (0, 200, 0)).convert("P")
    data = make_zip(
        [
            ("a/rgb.png", encode(Image.new("RGB", (10, 10), (250, 10, 10)))),
            ("a/photo.JPG", encode(Image.new("RGB", (20, 10), (10, 250, 10)), "JPEG", quality=95)),
            ("b/gray.bmp", encode(Image.new("L", (6, 6), 77), "BMP")),
            ("b/alpha.webp", encode(half, "WEBP", lossless=True)),
            ("b/pal.png", encode(palette)),
        ]
    )
    res = read_image_zip(data)
    # max sides 10, 20, 6, 8, 12 → median 10
    assert res.images.shape == (5, 10, 10, 3) and res.images.dtype == np.uint8
    by_path = dict(zip(res.paths, res.images))
    sizes = dict(zip(res.paths, res.orig_sizes.tolist()))
    assert sizes == {"a/photo.JPG": [20, 10], "a/rgb.png": [10, 10], "b/alpha.webp": [8, 8], "b/gray.bmp": [6, 6], "b/pal.png": [12, 4]}
    assert by_path["a/rgb.png"][0, 0].tolist() == [250, 10, 10]
    assert np.abs(by_path["a/photo.JPG"][5, 5].astype(int) - [10, 250, 10]).max() <= 6
    assert by_path["b/gray.bmp"][3, 3].tolist() == [77, 77, 77]  # gray → RGB replicated
    assert by_path["b/pal.png"][2, 2].tolist() == list(palette.convert("RGB").getpixel((0, 0)))
    # transparency is composited on white, not black
    assert by_path["b/alpha.webp"][5, 0].tolist() == [255, 255, 255]
    assert by_path["b/alpha.webp"][5, 9].tolist() == [0, 0, 255]
    assert res.labels == ["a", "a", "b", "b", "b"]


def test_image_size_resizes_everything_and_keeps_orig_sizes():
    data = make_zip([("x/a.png", gray_png(0, (40, 20))), ("y/b.png", gray_png(255, (3, 9)))])
    res = read_image_zip(data, image_size=16)
    assert res.images.shape == (2, 16, 16)
    assert res.orig_sizes.tolist() == [[40, 20], [3, 9]]
    assert np.all(res.images[0] == 0) and np.all(res.images[1] == 255)
    with pytest.raises(ValueError, match="positive integer"):
        read_image_zip(data, image_size=0)


def test_auto_size_is_capped_at_128():
    data = make_zip([("x/a.png", gray_png(0, (300, 200))), ("y/b.png", gray_png(0, (200, 300))), ("y/c.png", gray_png(0, (10, 10)))])
    assert read_image_zip(data).images.shape == (3, 128, 128)


def test_16bit_and_la_grayscale_stay_gray_and_scale_to_uint8():
    wide = Image.fromarray(np.array([[0, 257 * 100, 65535, 65535]], dtype=np.uint16))
    assert wide.mode == "I;16"
    la = Image.new("LA", (4, 1), (0, 0))  # transparent black → white
    la.putpixel((3, 0), (40, 255))
    data = make_zip([("x/wide.png", encode(wide)), ("y/la.png", encode(la))])
    res = read_image_zip(data)
    assert res.images.shape == (2, 1, 4)
    assert res.images[0].tolist() == [[0, 100, 255, 255]]
    assert res.images[1].tolist() == [[255, 255, 255, 40]]


def test_wrapper_and_split_folders_case_insensitive():
    data = make_zip(
        [
            ("pets/", b""),
            ("pets/Train/", b""),
            ("pets/Train/cats/1.png", gray_png(1)),
            ("pets/Train/dogs/2.png", gray_png(2)),
            ("pets/VALID/cats/3.png", gray_png(3)),
            ("pets/test/dogs/4.png", gray_png(4)),
            ("pets/test/5.png", gray_png(5)),  # in a split but no class folder
            ("pets/dev/birds/6.png", gray_png(6)),
        ]
    )
    res = read_image_zip(data)
    assert res.paths == [
        "pets/Train/cats/1.png",
        "pets/Train/dogs/2.png",
        "pets/VALID/cats/3.png",
        "pets/dev/birds/6.png",
        "pets/test/dogs/4.png",
    ]
    assert res.labels == ["cats", "dogs", "cats", "birds", "dogs"]
    assert res.splits == ["train", "train", "valid", "dev", "test"]
    assert reasons(res) == {"pets/test/5.png": "in split folder 'test' but not in a class folder inside it (test/<class>/)"}


def test_single_wrapper_without_splits():
    data = make_zip([("pets/cats/1.png", gray_png()), ("pets/dogs/2.png", gray_png()), ("pets/x.png", gray_png())])
    res = read_image_zip(data)
    assert res.labels == ["cats", "dogs"] and res.splits is None
    assert reasons(res) == {"pets/x.png": "not inside a class folder; put each image in a folder named after its class"}


def test_junk_is_ignored_and_non_images_and_root_files_are_listed():
    data = make_zip(
        [
            ("cats/1.png", gray_png()),
            ("dogs/2.png", gray_png()),
            ("__MACOSX/cats/._1.png", b"\x00\x05\x16\x07junk"),
            ("cats/.DS_Store", b"junk"),
            (".hidden/cats/9.png", b"junk"),
            ("dogs/Thumbs.db", b"junk"),
            ("empty_dir/", b""),
            ("dogs/notes.txt", b"hello"),
            ("README", b"hello"),
            ("loose.png", gray_png()),
        ]
    )
    res = read_image_zip(data)
    assert res.labels == ["cats", "dogs"]
    assert reasons(res) == {
        "README": "not an image (no file extension)",
        "dogs/notes.txt": "not an image (.txt)",
        "loose.png": "not inside a class folder; put each image in a folder named after its class",
    }


def test_accepts_bytes_file_object_and_paths(tmp_path):
    data = make_zip([("a/1.png", gray_png(1)), ("b/2.png", gray_png(2))])
    path = tmp_path / "set.zip"
    path.write_bytes(data)
    upload = io.BytesIO(data)
    upload.name = "set.zip"
    for source in (data, upload, str(path), path):
        res = read_image_zip(source)
        assert res.labels == ["a", "b"] and res.images.shape == (2, 6, 8)
    assert not upload.closed  # the caller's file is the caller's to close


def test_dataset_from_images_builds_splits_and_classes():
    members = []
    for split, n in (("train", 4), ("Valid", 1), ("test", 2)):
        for cls in ("dogs", "cats"):
            members += [(f"ds/{split}/{cls}/{i}.png", gray_png(i)) for i in range(n)]
    members.append(("ds/train/cats/broken.png", gray_png()[:40]))
    res = read_image_zip(make_zip(members))
    loaded = dataset_from_images(res, name="x")
    ds = loaded.dataset
    assert ds.name == "x" and ds.modality == "image" and ds.class_names == ["cats", "dogs"]
    assert ds.items.shape == (14, 6, 8)
    assert np.bincount(ds.split, minlength=3).tolist() == [8, 2, 4]
    assert np.bincount(ds.labels).tolist() == [7, 7]
    assert ds.meta["orig_width"].tolist() == [8] * 14
    assert loaded.skipped == res.skipped and [n for n, _ in loaded.skipped] == ["ds/train/cats/broken.png"]


# --------------------------------------------------------------------------- archive-level rejection


@pytest.mark.parametrize(
    "bad, why",
    [
        ("../evil.png", "goes up with '..'"),
        ("cats/../../evil.png", "goes up with '..'"),
        ("/abs.png", "absolute path"),
        ("C:\\x.png", "drive letter"),
        ("\\\\server\\share\\x.png", "network path"),
        ("cats\\..\\..\\x.png", "goes up with '..'"),
        ("cats/.../x.png", "goes up with '..'"),
    ],
)
def test_unsafe_paths_reject_whole_archive(bad, why):
    data = make_zip([("cats/1.png", gray_png()), ("dogs/2.png", gray_png()), (zipfile.ZipInfo(bad), gray_png())])
    with pytest.raises(DataError) as err:
        read_image_zip(data)
    msg = str(err.value)
    assert "contains unsafe paths: " in msg and f"{bad} ({why})" in msg
    assert "Re-create the zip from inside the dataset folder" in msg


def test_unsafe_paths_listed_even_in_junk_and_counted():
    names = [f"../e{i}.png" for i in range(7)] + ["__MACOSX/../x"]
    data = make_zip([("cats/1.png", gray_png())] + [(zipfile.ZipInfo(n), b"x") for n in names])
    with pytest.raises(DataError, match=r"unsafe paths: \.\./e0\.png .*\(\+3 more\)"):
        read_image_zip(data)


def test_symlink_entry_rejects_archive():
    link = zipfile.ZipInfo("cats/link.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = make_zip([("cats/1.png", gray_png()), ("dogs/2.png", gray_png()), (link, b"/etc/passwd")])
    with pytest.raises(DataError, match=r"contains unsafe paths: cats/link\.png \(symbolic link\)"):
        read_image_zip(data)


def test_too_many_entries():
    data = make_zip([(f"c{i % 2}/{i}.png", gray_png()) for i in range(5)])
    with pytest.raises(DataError) as err:
        read_image_zip(data, limits=ArchiveLimits(max_entries=3))
    msg = str(err.value)
    assert "holds 5 entries; the limit is 3 files per archive" in msg
    assert "Split the archive" in msg and "really an image dataset" in msg


def test_too_many_entries_even_when_end_record_lies():
    data = bytearray(make_zip([(f"c{i % 2}/{i}.png", gray_png()) for i in range(5)]))
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 1, 1)  # claim one entry; zipfile walks by byte size
    with pytest.raises(DataError, match="holds more entries than that; the limit is 3 files"):
        read_image_zip(bytes(data), limits=ArchiveLimits(max_entries=3))


def test_declared_total_too_large():
    data = make_zip([("a/1.png", noise_png((20, 20))), ("b/2.png", noise_png((20, 20), seed=1))])
    with pytest.raises(DataError) as err:
        read_image_zip(data, limits=ArchiveLimits(max_total_bytes=1000))
    msg = str(err.value)
    assert "would expand to" in msg and "more than the 1,000 bytes limit" in msg
    assert "Split the archive" in msg


def test_high_ratio_member_is_a_zip_bomb_but_small_blank_images_are_fine():
    bomb = make_zip([("a/1.png", gray_png()), ("b/blank.bmp", bytes(2 * 1024 * 1024))])
    with pytest.raises(DataError) as err:
        read_image_zip(bomb)
    msg = str(err.value)
    assert "entry 'b/blank.bmp' expands" in msg and "the limit is 200×" in msg
    assert "looks like a zip bomb" in msg and "really an image dataset" in msg
    # A white 300×300 BMP (270 KB) deflates far beyond 200× yet is a legitimate image.
    blank = encode(Image.new("RGB", (300, 300), "white"), "BMP")
    ok = make_zip([("a/blank.bmp", blank), ("b/blank.bmp", blank)])
    info = zipfile.ZipFile(io.BytesIO(ok)).infolist()[0]
    assert info.file_size / info.compress_size > 200
    assert read_image_zip(ok, image_size=4).images.shape == (2, 4, 4, 3)


def test_bounded_read_refuses_a_member_longer_than_declared():
    class Liar:  # stands in for a zipfile that yields more than the header declares
        def open(self, info):
            return io.BytesIO(b"x" * 50)

    info = zipfile.ZipInfo("cats/a.png")
    info.file_size = 10
    entry = imagefiles._Entry("cats/a.png", ("cats", "a.png"), info, 10)
    with pytest.raises(DataError, match="holds more data than the 10 bytes its header declares"):
        imagefiles._read_zip_member(Liar(), entry)


def test_member_whose_declared_size_is_too_small_is_skipped_as_damaged():
    big = noise_png((40, 40))
    data = make_zip([("a/big.png", big), ("b/ok.png", gray_png())], compression=zipfile.ZIP_STORED)
    # Claim 100 bytes for every member (local at +22, central at +24): zipfile stops at 100, CRC fails.
    data = patch_headers(data, 22, 24, "<I", 100)
    res = read_image_zip(data)
    assert res.paths == ["b/ok.png"]  # its real 70-odd bytes fit the claim, and its CRC matches
    assert reasons(res)["a/big.png"].startswith("damaged in the archive (Bad CRC-32 for file 'a/big.png')")


@pytest.mark.parametrize("payload", [b"definitely not a zip", make_zip([("a/1.png", noise_png())])[:300]])
def test_not_a_zip_or_damaged(payload, tmp_path):
    with pytest.raises(DataError, match=r"^The upload is not a valid ZIP archive \(.+\)\. Upload a \.zip"):
        read_image_zip(payload)
    path = tmp_path / "x.zip"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=r"^'x\.zip' is not a valid ZIP archive"):
        read_image_zip(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=r"Cannot open 'nope\.zip'"):
        read_image_zip(tmp_path / "nope.zip")
    with pytest.raises(DataError, match=r"is not a folder. Choose the folder that holds one sub-folder per class"):
        read_image_folder(tmp_path / "nope")


def test_empty_zip_and_no_images_explain_the_layout():
    with pytest.raises(DataError, match=r"^No readable images were found in the upload\. Put images .* one folder per class"):
        read_image_zip(make_zip([]))
    data = make_zip([("notes.txt", b"x"), ("a.png", gray_png()), ("__MACOSX/._a.png", b"x")])
    with pytest.raises(DataError) as err:
        read_image_zip(data)
    msg = str(err.value)
    assert "e.g. cats/1.png and dogs/2.png" in msg
    assert "Skipped: a.png: not inside a class folder" in msg and "notes.txt: not an image (.txt)" in msg
    assert "__MACOSX" not in msg


def test_encrypted_entries_are_skipped_with_a_reason():
    data = make_zip([("a/1.png", gray_png()), ("b/2.png", gray_png())], compression=zipfile.ZIP_STORED)
    locked = patch_headers(data, 6, 8, "<H", 0x1)  # general-purpose flag bit 0: encrypted
    with pytest.raises(DataError) as err:
        read_image_zip(locked)
    assert "a/1.png: encrypted (password-protected); zip the folder again without a password" in str(err.value)


def test_bzip2_members_are_not_read():
    data = make_zip([("a/1.png", gray_png()), ("b/2.png", gray_png())], compression=zipfile.ZIP_BZIP2)
    with pytest.raises(DataError, match="compressed with bzip2, which Gapscope does not read"):
        read_image_zip(data)


def test_decoded_array_budget():
    data = make_zip([("a/1.png", gray_png()), ("b/2.png", gray_png())])
    with pytest.raises(DataError, match=r"The 2 images would need 2,048 bytes of memory at 32×32 grayscale .*smaller image size"):
        read_image_zip(data, image_size=32, limits=ArchiveLimits(max_array_bytes=1000))


# --------------------------------------------------------------------------- per-image skipping


def test_pixel_bombs_are_skipped_from_the_header():
    small = gray_png(0, (16, 16))
    data = make_zip(
        [
            ("a/ok.png", small),
            ("b/ok.png", small),
            ("a/big.png", patch_png_size(small, 7000, 7000)),  # 49 MP: over our limit, under Pillow's
            ("b/huge.png", patch_png_size(small, 30000, 30000)),  # 900 MP: Pillow's own bomb error
        ]
    )
    res = read_image_zip(data)
    assert res.paths == ["a/ok.png", "b/ok.png"] and res.images.shape == (2, 16, 16)
    assert reasons(res) == {
        "a/big.png": "image too large: 7000×7000 pixels exceeds the 40,000,000-pixel limit",
        "b/huge.png": "image too large: 900,000,000 pixels exceeds the 40,000,000-pixel limit (a possible decompression bomb)",
    }


def test_real_image_over_a_small_pixel_limit():
    data = make_zip([("a/1.png", gray_png(0, (5, 5))), ("b/2.png", gray_png(0, (5, 5))), ("b/3.png", gray_png(0, (20, 20)))])
    res = read_image_zip(data, limits=ArchiveLimits(max_image_pixels=100))
    assert res.paths == ["a/1.png", "b/2.png"] and res.images.shape == (2, 5, 5)
    assert reasons(res) == {"b/3.png": "image too large: 20×20 pixels exceeds the 100-pixel limit"}


def test_corrupt_and_truncated_images_are_skipped_rest_loads():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    good = noise_png((16, 16), mode="L")
    data = make_zip(
        [
            ("a/good.png", good),
            ("b/good.png", noise_png((16, 16), mode="L", seed=1)),
            ("a/half.png", good[: len(good) // 2]),
            ("a/random.jpg", np.random.default_rng(0).bytes(500)),
            ("b/empty.png", b""),
            ("b/gif.png", encode(Image.new("P", (4, 4)), "GIF")),
        ]
    )
    res = read_image_zip(data)
    assert res.paths == ["a/good.png", "b/good.png"] and res.images.shape == (2, 16, 16)
    r = reasons(res)
    assert set(r) == {"a/half.png", "a/random.jpg", "b/empty.png", "b/gif.png"}
    not_image = "corrupt or truncated image (not a readable PNG, JPEG, BMP or WebP file)"
    assert r["a/random.jpg"] == r["b/empty.png"] == r["b/gif.png"] == not_image
    assert r["a/half.png"].startswith("corrupt or truncated image (") and "truncated" in r["a/half.png"]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # global state untouched


def test_only_colour_image_failing_leaves_a_gray_array():
    rgb = noise_png((8, 6), mode="RGB")
    data = make_zip([("a/1.png", gray_png(5)), ("b/2.png", gray_png(9)), ("b/rgb.png", rgb[: len(rgb) // 2])])
    res = read_image_zip(data)
    assert res.images.shape == (2, 6, 8)  # every *kept* image is gray
    assert res.images[:, 0, 0].tolist() == [5, 9]
    assert list(reasons(res)) == ["b/rgb.png"]


# --------------------------------------------------------------------------- folders


def test_folder_layout_links_and_special_files(tmp_path):
    root = tmp_path / "pets"
    outside = tmp_path / "outside"
    for d in (root / "cats", root / "dogs", root / ".git", outside / "birds"):
        d.mkdir(parents=True)
    (root / "cats" / "1.png").write_bytes(gray_png(1))
    (root / "dogs" / "2.bmp").write_bytes(encode(Image.new("L", (8, 6), 2), "BMP"))
    (root / "dogs" / "notes.txt").write_text("x")
    (root / ".git" / "x.png").write_bytes(gray_png())
    (root / "cats" / ".DS_Store").write_bytes(b"x")
    (outside / "secret.png").write_bytes(gray_png(99))
    (outside / "birds" / "3.png").write_bytes(gray_png(99))
    os.symlink(outside / "secret.png", root / "cats" / "link.png")
    os.symlink(outside / "birds", root / "birds")
    os.mkfifo(root / "dogs" / "pipe.png")  # reading it would block forever
    res = read_image_folder(root)
    assert res.paths == ["cats/1.png", "dogs/2.bmp"] and res.labels == ["cats", "dogs"]
    assert res.images.shape == (2, 6, 8) and res.images[:, 0, 0].tolist() == [1, 2]
    assert res.splits is None
    assert reasons(res) == {
        "birds": "symbolic link; links are not followed, copy the file in instead",
        "cats/link.png": "symbolic link; links are not followed, copy the file in instead",
        "dogs/notes.txt": "not an image (.txt)",
        "dogs/pipe.png": "not a regular file",
    }


def test_folder_limits(tmp_path):
    root = tmp_path / "data"
    for i in range(4):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"c{i % 2}" / f"{i}.png").write_bytes(noise_png((20, 20), seed=i))
    with pytest.raises(DataError, match="holds more than 3 files and folders"):
        read_image_folder(root, limits=ArchiveLimits(max_entries=3))
    with pytest.raises(DataError, match=r"add up to .* more than the 1,000 bytes limit\. Split"):
        read_image_folder(root, limits=ArchiveLimits(max_total_bytes=1000))
    assert read_image_folder(str(root), image_size=8).images.shape == (4, 8, 8, 3)


def test_core_module_does_not_import_streamlit():
    assert "streamlit" not in Path(imagefiles.__file__).read_text()


# --------------------------------------------------------------------------- decoded-pixel budget


def test_a_small_zip_of_huge_blank_pngs_is_refused_from_the_headers_before_any_decoding(monkeypatch):
    blank = encode(Image.new("RGB", (6000, 6000), (200, 30, 40)))  # ~120 KB that decode to 108 MB each
    data = make_zip([(f"{c}/{i}.png", blank) for c in ("a", "b") for i in range(10)])
    decoded = []
    monkeypatch.setattr(imagefiles, "_decode", lambda *a, **k: decoded.append(1))
    with pytest.raises(DataError, match=r"720 million pixels .* resize them first"):
        read_image_zip(data)
    assert decoded == []  # refused on the headers: no pixel was decoded


def test_the_pixel_budget_grows_with_the_archive_and_counts_jpegs_at_their_draft_scale():
    from core.data.imagefiles import _decoded_pixels, _Entry, _Probe

    entry = _Entry("a/1.jpg", ("a", "1.jpg"), Path("a/1.jpg"), 3_000_000)
    photo = _Probe(entry, "a", None, 4000, 3000, False, True)
    assert _decoded_pixels(photo, (512, 384)) == 1000 * 750  # drawn at 1/4 scale
    assert _decoded_pixels(photo, (4000, 3000)) == 4000 * 3000
    png = _Probe(entry, "a", None, 4000, 3000, False, False)
    assert _decoded_pixels(png, (512, 384)) == 4000 * 3000  # PNG has no reduced decoding
    # noisy (incompressible) images of one shared size above 512 px: accepted, scaled down
    data = make_zip([(f"{c}/{i}.png", noise_png((1200, 900), seed=i)) for c in ("a", "b") for i in range(3)])
    res = read_image_zip(data)
    assert res.images.shape == (6, 384, 512, 3) and res.orig_sizes.tolist() == [[1200, 900]] * 6
    with pytest.raises(DataError, match="million pixels"):
        read_image_zip(data, limits=ArchiveLimits(min_pixel_budget=1_000_000, max_pixels_per_byte=0.1))


# --------------------------------------------------------------------------- preview before import


def test_preview_counts_classes_per_split_and_lists_what_would_be_skipped():
    data = make_zip(
        [
            ("pets/Train/cats/1.png", gray_png(1)),
            ("pets/Train/cats/2.png", gray_png(2)),
            ("pets/Train/dogs/3.png", gray_png(3)),
            ("pets/VALID/cats/4.png", gray_png(4)),
            ("pets/test/dogs/5.png", gray_png(5)),
            ("pets/test/6.png", gray_png(6)),  # in a split but no class folder
            ("pets/Train/dogs/notes.txt", b"hello"),
            ("__MACOSX/pets/._1.png", b"junk"),  # junk: ignored, not listed
            ("pets/Train/.DS_Store", b"junk"),
        ]
    )
    pre = preview_image_zip(data)
    assert pre.has_splits and pre.n_images == 5
    assert list(pre.counts.columns) == ["class", "split", "images"]
    assert pre.counts.values.tolist() == [["cats", "train", 2], ["cats", "valid", 1], ["dogs", "train", 1], ["dogs", "test", 1]]
    assert dict(pre.skipped) == {
        "pets/Train/dogs/notes.txt": "not an image (.txt)",
        "pets/test/6.png": "in split folder 'test' but not in a class folder inside it (test/<class>/)",
    }
    # the same classes, splits and skips as the import (whose images here all decode)
    res = read_image_zip(data)
    assert sorted(zip(res.labels, res.splits or [])) == sorted((c, s) for c, s, n in pre.counts.values.tolist() for _ in range(n))
    assert res.skipped == pre.skipped


def test_preview_without_split_folders():
    data = make_zip([("a/1.png", gray_png()), ("a/2.png", gray_png()), ("b/3.png", gray_png()), ("loose.png", gray_png())])
    pre = preview_image_zip(data)
    assert not pre.has_splits and pre.n_images == 3
    assert pre.counts.values.tolist() == [["a", None, 2], ["b", None, 1]]
    assert dict(pre.skipped) == {"loose.png": "not inside a class folder; put each image in a folder named after its class"}


def test_preview_reads_no_member(monkeypatch):
    corrupt = b"\x89PNG\r\n\x1a\nnot really"  # counted here; found only at import
    data = make_zip([("a/1.png", gray_png()), ("b/2.png", corrupt)])

    def refuse(*args, **kwargs):
        raise AssertionError("the preview must not read any member")

    monkeypatch.setattr(imagefiles, "_read_zip_member", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "read", refuse)
    pre = preview_image_zip(data)
    assert pre.n_images == 2 and pre.skipped == []


@pytest.mark.parametrize("bad", ["cats/../../evil.png", "/abs.png"])
def test_preview_refuses_unsafe_archives_like_the_import(bad):
    data = make_zip([("cats/1.png", gray_png()), ("dogs/2.png", gray_png()), (zipfile.ZipInfo(bad), gray_png())])
    with pytest.raises(DataError, match="contains unsafe paths: ") as err:
        preview_image_zip(data)
    with pytest.raises(DataError) as same:
        read_image_zip(data)
    assert str(err.value) == str(same.value)


def test_preview_refuses_limits_non_zips_and_archives_without_images():
    data = make_zip([(f"c{i % 2}/{i}.png", gray_png()) for i in range(5)])
    with pytest.raises(DataError, match="holds 5 entries; the limit is 3 files per archive"):
        preview_image_zip(data, limits=ArchiveLimits(max_entries=3))
    with pytest.raises(DataError, match="is not a valid ZIP archive"):
        preview_image_zip(b"not a zip at all")
    with pytest.raises(DataError, match=r"No readable images were found .* Skipped: notes\.txt: not an image"):
        preview_image_zip(make_zip([("notes.txt", b"hello")]))
