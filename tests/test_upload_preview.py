"""What an upload's preview says before the import, checked against what the import then does:
the encoding a text fell back to (and where UTF-8 broke), and the split the import makes (val
carved out of train, a whole split made, no test items), with the same figures."""

from __future__ import annotations

import codecs
import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.data import upload_preview as up
from core.data.imagefiles import preview_image_zip
from core.data.imports import load_upload
from core.data.tables import TableRoles, TextEncoding, decode_text, guess_roles, read_table_encoded, table_split
from core.errors import DataError
from core.store import Store
from tests.conftest import APP
from tests.fuzz_inputs import inputs


def _latin1_csv() -> bytes:
    rows = [f"{'très bon film' if i % 3 else 'horrible à mourir'} numéro {i},{'pos' if i % 3 else 'neg'}" for i in range(60)]
    return ("text,label\n" + "\n".join(rows) + "\n").encode("latin-1")


def test_a_latin1_csv_is_said_to_be_read_as_latin1_with_the_first_bad_byte():
    data = _latin1_csv()
    df, warnings, encoding = read_table_encoded(data, "reviews.csv")
    first = data.index("à".encode("latin-1"))  # "horrible à" on the first data row: the first byte UTF-8 cannot read
    assert first == 20 and encoding == TextEncoding("Latin-1", 20)
    assert up.encoding_note(encoding) == (
        "read as Latin-1: the file is not valid UTF-8 (first bad byte at offset 20). If accents look wrong, save it as UTF-8 "
        "and upload it again."
    )
    # the import reads the very text the preview names
    ds = load_upload("reviews.csv", data).dataset
    assert df["text"].iloc[0] == ds.items[0] == "horrible à mourir numéro 0"
    assert warnings == decode_text(data)[1] and "read as Latin-1" in warnings[0]


def test_windows_1252_only_when_the_file_has_its_letters_and_an_offset_after_a_bom_counts_the_bom():
    euro = "text,label\nprix 5 € seulement,pos\n“cher”,neg\n".encode("cp1252")
    encoding = read_table_encoded(euro, "p.csv").encoding
    assert encoding == TextEncoding("Windows-1252", euro.index(b"\x80")) == TextEncoding("Windows-1252", 18)  # the €
    assert str(up.encoding_note(encoding)).startswith(
        "read as Windows-1252 (Latin-1 with € and curly quotes in bytes 0x80–0x9F, which the file has): "
        "the file is not valid UTF-8 (first bad byte at offset 18)."
    )
    assert read_table_encoded(euro, "p.csv").df["text"].tolist() == ["prix 5 € seulement", "“cher”"]
    undefined = b"text,label\nab\x81cd,pos\n"  # 0x81 has no Windows-1252 character: Latin-1 reads every byte
    assert read_table_encoded(undefined, "u.csv").encoding == TextEncoding("Latin-1", 13)
    bom = codecs.BOM_UTF8 + "text,label\ncafé,pos\n".encode("latin-1")
    read = read_table_encoded(bom, "b.csv")
    assert read.encoding == TextEncoding("Latin-1", bom.index(b"\xe9")) == TextEncoding("Latin-1", 17)
    assert list(read.df.columns) == ["text", "label"] and read.df["text"].tolist() == ["café"]  # the BOM is not text
    utf8 = "text,label\ncafé,pos\n".encode()
    assert up.encoding_note(read_table_encoded(utf8, "ok.csv").encoding) is None
    assert up.encoding_note(read_table_encoded("text,label\ncafé,pos\n".encode("utf-16"), "w.csv").encoding) is None
    assert up.encoding_note(None) is None  # Parquet has no text encoding


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 6), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(counts: dict[str, int]) -> bytes:
    """An archive with ``counts`` images per "split/class" folder."""
    png, buf = _png(), io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for folder, n in counts.items():
            for i in range(n):
                zf.writestr(f"{folder}/{i}.png", png)
    return buf.getvalue()


def test_an_image_zip_with_train_and_test_only_says_how_much_val_it_carves_from_train():
    # per class, floor(10% of its train images): 25 → 2, 14 → 1, 5 → 0
    data = _zip({"train/cat": 25, "train/dog": 14, "train/owl": 5, "test/cat": 3, "test/dog": 3, "test/owl": 2})
    plan = up.zip_split(preview_image_zip(data))
    assert plan.carved_val == 3 and not plan.made
    assert up.split_note(plan, what="images") == (
        "no val split: 10% of train (3 images) will become val, seeded (per class, rounded down: a class of fewer than 10 "
        "train images gives none)."
    )
    ds = load_upload("pets.zip", data).dataset
    val = ds.split == 1
    assert int(val.sum()) == 3  # the import carves exactly what the preview said
    assert {ds.class_names[c]: int(n) for c, n in zip(*np.unique(ds.labels[val], return_counts=True))} == {"cat": 2, "dog": 1}
    assert np.bincount(ds.split, minlength=3).tolist() == np.bincount(plan.split, minlength=3).tolist() == [41, 3, 8]


def test_an_image_zip_without_split_folders_names_the_split_it_makes_and_a_given_val_says_nothing():
    data = _zip({"cat": 30, "dog": 12, "owl": 4})
    plan = up.zip_split(preview_image_zip(data))
    # per class floor(10%) to val and to test: cat 3 + 3, dog 1 + 1, owl none
    assert up.split_note(plan, what="images") == (
        "no split given: a stratified split will be made, seeded: 38 train, 4 val and 4 test images "
        "(10% val and 10% test per class, rounded down)."
    )
    assert np.bincount(load_upload("p.zip", data).dataset.split, minlength=3).tolist() == [38, 4, 4]
    given = _zip({"train/cat": 5, "train/dog": 5, "val/cat": 1, "val/dog": 1, "test/cat": 1, "test/dog": 1})
    assert up.split_note(up.zip_split(preview_image_zip(given)), what="images") is None
    tiny = up.zip_split(preview_image_zip(_zip({"train/cat": 4, "train/dog": 3, "test/cat": 1, "test/dog": 1})))
    assert tiny.carved_val == 0 and up.split_note(tiny, what="images") == (
        "no val split, and no class has 10 train images: val stays empty, so a run reads its latest evaluation instead "
        "of choosing the best by val."
    )
    no_test = up.split_note(up.zip_split(preview_image_zip(_zip({"train/cat": 20, "train/dog": 20}))), what="images")
    assert no_test is not None and no_test.startswith("no val split: 10% of train (4 images) will become val")
    assert "This version has no test items, so a run could not be scored" in no_test


def test_a_table_split_column_without_val_rows_says_the_carve_out_the_import_makes():
    rows = [f"review number {i} is long enough,{'pos' if i % 4 else 'neg'},{'test' if i % 5 == 0 else 'train'}" for i in range(200)]
    data = ("text,label,split\n" + "\n".join(rows) + "\n").encode()
    df, _, _ = read_table_encoded(data, "t.csv")
    roles = guess_roles(df).roles
    assert roles is not None and roles.split == "split"
    plan = table_split(df, roles)
    ds = load_upload("t.csv", data).dataset
    # train: 160 rows, 120 pos and 40 neg → 12 + 4 to val
    assert plan.carved_val == int((ds.split == 1).sum()) == 16
    assert (plan.split == ds.split).all()
    assert up.split_note(plan, what="rows") == (
        "no val split: 10% of train (16 rows) will become val, seeded (per class, rounded down: a class of fewer than 10 "
        "train rows gives none)."
    )
    with pytest.raises(DataError, match="not train/val/test"):  # the preview refuses what the import would
        table_split(df, TableRoles(label="label", text="text", split="label"))


def test_the_previewed_split_is_the_stored_split_on_hostile_uploads():
    compared = 0
    for name, raw in inputs(300, seed=7):
        try:
            result = load_upload(name, raw)
            df, _, _ = read_table_encoded(raw, name)
        except DataError:
            continue
        roles = guess_roles(df).roles
        assert roles is not None  # the import succeeded with the guess
        assert table_split(df, roles).split.tolist() == result.dataset.split.tolist(), name
        compared += 1
    assert compared > 30


def test_the_data_page_says_both_before_the_import(home):
    rows = [f"très bon film numéro {i},{'pos' if i % 4 else 'neg'},{'test' if i % 5 == 0 else 'train'}" for i in range(200)]
    data = ("text,label,split\n" + "\n".join(rows) + "\n").encode("latin-1")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/data.py")
    at.run()
    at.file_uploader(key="upload").set_value(("films.csv", data, "text/csv"))
    at.run()
    assert not at.exception, at.exception
    notes = [i.value for i in at.info]
    assert notes[0].startswith("read as Latin-1: the file is not valid UTF-8 (first bad byte at offset 19).")
    assert notes[1].startswith("no val split: 10% of train (16 rows) will become val, seeded")
    at.button(key="import_upload").click()
    at.run()
    assert not at.exception, at.exception
    assert Store(home).versions()[0].n_items == 200
