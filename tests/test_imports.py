"""Uploads end to end: parse → validate → store; a bad upload changes nothing already stored."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data.imports import import_upload, load_upload
from core.errors import DataError

CSV = b"text,label\n" + b"".join(f"an example sentence number {i} for the test,{'pos' if i % 3 else 'neg'}\n".encode() for i in range(60))


def png(value: int, size=(12, 10), mode="L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def image_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def snapshot(store, home):
    return [v.id for v in store.versions()], sorted(p.name for p in (home / "versions").iterdir())


def test_csv_upload_is_stored(store):
    imported = import_upload(store, "reviews.csv", CSV)
    info = store.version(imported.version_id)
    assert info.source == "upload:reviews.csv" and info.n_items == 60 and info.class_names == ["neg", "pos"]
    assert info.params["filename"] == "reviews.csv"
    ds = store.load_dataset(imported.version_id)
    assert np.bincount(ds.labels).tolist() == [20, 40]


def test_image_zip_upload_with_a_corrupt_file(store):
    entries = {f"cats/{i}.png": png(10 * i) for i in range(10)}
    entries |= {f"dogs/{i}.png": png(200 - i, size=(20, 16)) for i in range(10)}
    entries["dogs/broken.png"] = png(5)[:40]
    imported = import_upload(store, "pets.zip", image_zip(entries), image_size=16)
    ds = store.load_dataset(imported.version_id)
    assert ds.items.shape == (20, 16, 16) and ds.class_names == ["cats", "dogs"]
    assert np.bincount(ds.labels).tolist() == [10, 10]
    info = store.version(imported.version_id)
    assert [name for name, _ in info.skipped] == ["dogs/broken.png"]
    assert "corrupt or truncated" in info.skipped[0][1]


@pytest.mark.parametrize(
    "filename, data, message",
    [
        ("empty.csv", b"", "is empty (0 bytes)"),
        ("empty.zip", b"", "is empty (0 bytes)"),
        (
            "one.csv",
            b"text,label\n" + b"".join(f"text {i} is long enough,same\n".encode() for i in range(9)),
            "Every row has the same label",
        ),
        (
            "nolabel.csv",
            b"body\n" + b"".join(f"unique text number {i} here\n".encode() for i in range(9)),
            "No column can serve as the label",
        ),
        ("sheet.xlsx", b"PK\x03\x04junk", "unsupported file type '.xlsx'"),
        ("evil.zip", image_zip({"../escape.png": png(1), "cats/a.png": png(2)}), "unsafe"),
        ("notzip.zip", b"this is not a zip file", "not a valid ZIP"),
    ],
)
def test_bad_uploads_change_nothing(store, home, filename, data, message):
    import_upload(store, "reviews.csv", CSV)
    before = snapshot(store, home)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_upload(store, filename, data)
    assert snapshot(store, home) == before
    assert len(store.load_dataset(before[0][0])) == 60  # what was stored is intact


def test_upload_over_the_size_limit(store, monkeypatch):
    monkeypatch.setenv("GAPSCOPE_MAX_UPLOAD_MB", "1")
    with pytest.raises(DataError, match=r"over the 1 MiB upload limit.*GAPSCOPE_MAX_UPLOAD_MB"):
        load_upload("big.csv", b"x" * (1024 * 1024 + 1))
    assert store.versions() == []


def test_zip_bomb_is_refused(store):
    bomb = image_zip({"cats/a.png": png(1), "cats/huge.png": b"\0" * (50 * 1024 * 1024)})
    assert len(bomb) < 200_000
    with pytest.raises(DataError, match=r"'bomb.zip': entry 'cats/huge.png' expands 1,0\d\d×.*the limit is 200×.*zip bomb"):
        import_upload(store, "bomb.zip", bomb)
    assert store.versions() == []


def test_decompression_bomb_image_is_skipped_and_listed(store):
    from core.data.imagefiles import ArchiveLimits, read_image_zip

    entries = {f"a/{i}.png": png(i) for i in range(3)} | {f"b/{i}.png": png(100 + i) for i in range(3)}
    entries["b/giant.png"] = png(0, size=(3000, 3000))  # 9 MP of zeros: a few KB compressed
    res = read_image_zip(image_zip(entries), limits=ArchiveLimits(max_image_pixels=1_000_000))
    assert len(res.labels) == 6
    assert res.skipped[0][0] == "b/giant.png" and "exceeds the 1,000,000-pixel limit" in res.skipped[0][1]


def test_the_uploads_that_ended_in_a_traceback_now_load_or_say_what_to_change(store):
    import pandas as pd

    from core.data.idx import read_idx

    # a text column holding numbers with a blank cell
    ds = load_upload("a.csv", b"text,label\n1,a\n,b\n3,a\n4,b\n").dataset
    assert ds.items.tolist() == ["1", "", "3", "4"]
    # a blank split cell beside an unknown value
    with pytest.raises(DataError, match=r"values \['\(blank\)', 'weird'\] that are not train/val/test"):
        load_upload("a.csv", b"text,label,split\nhi,a,train\nho,b,\nhu,a,weird\nha,b,test\n")
    # label and Label: the exact name is the label, the other is kept and stored
    vid = import_upload(store, "a.csv", b"text,Label,label\nhi,a,x\nho,b,y\nhu,a,x\nha,b,y\n").version_id
    back = store.load_dataset(vid)
    assert back.class_names == ["x", "y"] and back.meta["Label"].tolist() == ["a", "b", "a", "b"]
    # nested JSON values become JSON text, with a warning
    result = load_upload("a.jsonl", b'{"text": {"a": 1}, "label": [1]}\n{"text": "b", "label": [2]}\n{"text": "c", "label": [1]}\n')
    assert result.dataset.items.tolist()[0] == '{"a": 1}' and result.dataset.class_names == ["[1]", "[2]"]
    assert any("nested values" in w for w in result.warnings)
    # a Parquet binary column with invalid UTF-8
    buf = io.BytesIO()
    pd.DataFrame({"text": [b"\xff\xfe", b"ok", b"a", b"b"], "label": ["a", "b", "a", "b"]}).to_parquet(buf)
    result = load_upload("a.parquet", buf.getvalue())
    assert result.dataset.items.tolist()[0] == "\ufffd\ufffd" and any("not valid UTF-8" in w for w in result.warnings)
    # malformed IDX headers
    with pytest.raises(DataError, match="claims 255 dimensions"):
        read_idx(b"\x00\x00\x08\xff" + b"\x00" * 2000)
    with pytest.raises(DataError, match="is empty"):
        read_idx(b"\x00\x00\x08\x01\x00\x00\x00\x00")
