"""Loaders: tables, IDX, splits, and every bad input with the message that says what to change."""

from __future__ import annotations

import gzip
import io
import struct

import numpy as np
import pandas as pd
import pytest

from core.data.idx import dataset_from_idx, read_idx
from core.data.labels import encode_labels
from core.data.splits import stratified_split
from core.data.tables import TableRoles, decode_text, guess_roles, load_table, read_table
from core.errors import DataError

REVIEWS = (
    "text,label,domain\n"
    + "".join(f"this is a rather long positive review number {i},pos,{'web' if i % 2 else 'shop'}\n" for i in range(30))
    + "".join(f"this is a rather long negative review number {i},neg,shop\n" for i in range(20))
).encode()


def test_csv_text_dataset_with_guessed_roles():
    res = load_table(REVIEWS, "reviews.csv")
    ds = res.dataset
    assert ds.modality == "text" and ds.class_names == ["neg", "pos"] and len(ds) == 50
    assert np.bincount(ds.labels).tolist() == [20, 30]
    assert list(ds.meta.columns) == ["domain"]
    # stratified 80/10/10 per class: neg 16/2/2, pos 24/3/3
    assert np.bincount(ds.split, minlength=3).tolist() == [40, 5, 5]
    assert np.bincount(ds.split[ds.labels == 0], minlength=3).tolist() == [16, 2, 2]
    assert res.warnings == []


def test_tsv_parquet_and_jsonl_give_the_same_dataset():
    df = pd.read_csv(io.BytesIO(REVIEWS))
    tsv = df.to_csv(sep="\t", index=False).encode()
    pq = io.BytesIO()
    df.to_parquet(pq)
    jsonl = df.to_json(orient="records", lines=True).encode()
    base = load_table(REVIEWS, "r.csv").dataset
    for data, name in ((tsv, "r.tsv"), (pq.getvalue(), "r.parquet"), (jsonl, "r.jsonl")):
        ds = load_table(data, name).dataset
        assert list(ds.items) == list(base.items) and ds.labels.tolist() == base.labels.tolist(), name


def test_tabular_dataset_with_split_column_and_natural_class_order():
    rows = "x1,x2,target,split\n" + "".join(f"{i},{i * 2},{i % 11},{'test' if i % 5 == 0 else 'train'}\n" for i in range(440))
    res = load_table(rows.encode(), "t.csv")
    ds = res.dataset
    assert ds.modality == "tabular" and list(ds.items.columns) == ["x1", "x2"]
    assert ds.class_names == [str(i) for i in range(11)]  # 10 sorts after 9, not after 1
    assert (ds.split == 2).sum() == 88
    # no val in the file: floor(10%) of each class's 32 train rows (3) is set aside, with a warning
    assert (ds.split == 1).sum() == 33 and any("set aside as val" in w for w in res.warnings)


def test_split_aliases_and_unknown_split_values():
    rows = "text,label,split\n" + "".join(
        f"some sufficiently long text {i},{i % 2},{s}\n" for i, s in enumerate(["training", "validation", "testing", "dev"] * 5)
    )
    ds = load_table(rows.encode(), "s.csv").dataset
    assert np.bincount(ds.split).tolist() == [5, 10, 5]
    bad = rows.replace("dev", "holdout")
    with pytest.raises(DataError, match=r"not train/val/test.*Rename them"):
        load_table(bad.encode(), "s.csv")


def test_stratified_split_is_exact_and_seeded():
    labels = np.repeat([0, 1, 2], [100, 20, 5])
    split = stratified_split(labels, seed=3)
    assert [np.bincount(split[labels == c], minlength=3).tolist() for c in range(3)] == [[80, 10, 10], [16, 2, 2], [5, 0, 0]]
    assert (split == stratified_split(labels, seed=3)).all()
    assert not (split == stratified_split(labels, seed=4)).all()


# ---------------------------------------------------------------- bad input, one by one


def test_empty_file():
    with pytest.raises(DataError, match=r"'e.csv' is empty \(0 bytes\)\. Upload a file with a header row"):
        read_table(b"", "e.csv")
    with pytest.raises(DataError, match="only whitespace"):
        read_table(b"  \n\n", "e.csv")


def test_header_only_file():
    with pytest.raises(DataError, match="has no data rows"):
        read_table(b"text,label\n", "h.csv")


def test_latin1_text_is_read_with_a_warning():
    data = "text,label\ncafé crème très bon,pos\nhorrible à mourir,neg\n".encode("latin-1")
    text, warnings = decode_text(data)
    assert "café crème" in text
    assert len(warnings) == 1 and "not valid UTF-8" in warnings[0] and "save the file as UTF-8" in warnings[0]
    df, w = read_table(data, "l.csv")
    assert df["text"].tolist()[0] == "café crème très bon" and w == warnings


def test_utf8_bom_and_utf16_are_decoded_silently():
    assert decode_text("\ufefftext,label".encode("utf-8")) == ("text,label", [])
    assert decode_text("text,label".encode("utf-16")) == ("text,label", [])


def test_no_label_column_asks_which_one():
    data = b"review,stars\n" + b"".join(f"a long enough review text {i},{i % 5}\n".encode() for i in range(40))
    guess = guess_roles(read_table(data, "r.csv")[0])
    assert guess.roles is None and guess.label_candidates == ["stars"]
    assert "No column is named like a label" in guess.question and "Choose the label column" in guess.question
    with pytest.raises(DataError, match="Choose the label column"):
        load_table(data, "r.csv")
    ds = load_table(data, "r.csv", TableRoles(label="stars", text="review")).dataset
    assert ds.n_classes == 5


def test_no_usable_label_column_at_all():
    data = b"text\n" + b"".join(f"unique text number {i} with words\n".encode() for i in range(20))
    with pytest.raises(DataError, match=r"No column can serve as the label.*Add a 'label' column"):
        load_table(data, "t.csv")


def test_ambiguous_text_columns_ask_which_one():
    data = b"headline,summary,label\n" + b"".join(
        f"headline number {i} is long,summary number {i} is long too,{i % 2}\n".encode() for i in range(30)
    )
    guess = guess_roles(read_table(data, "a.csv")[0])
    assert guess.roles is None and set(guess.text_candidates) == {"headline", "summary"}
    assert "Several columns look like text (headline, summary)" in guess.question


def test_every_label_the_same():
    data = b"text,label\n" + b"".join(f"some text {i} here,spam\n".encode() for i in range(10))
    with pytest.raises(DataError, match=r"Every row has the same label \('spam'\).*at least two classes"):
        load_table(data, "one.csv", TableRoles(label="label", text="text"))


def test_label_column_with_more_than_1000_values():
    data = b"text,label\n" + b"".join(f"text {i} is here,{i}\n".encode() for i in range(1500))
    with pytest.raises(DataError, match=r"Column 'label' has 1,500 distinct values; a label column has at most 1,000"):
        load_table(data, "many.csv", TableRoles(label="label", text="text"))


def test_rows_without_label_form_the_unlabelled_pool_in_train():
    data = b"text,label,split\nfirst long text here,a,train\nsecond long text here,,test\nthird long text here,b,train\nfourth long text,a,val\n"
    res = load_table(data, "m.csv", TableRoles(label="label", text="text", split="split"))
    ds = res.dataset
    assert len(ds) == 4 and ds.labels.tolist() == [0, -1, 1, 0] and ds.n_unlabelled == 1
    assert ds.split.tolist() == [0, 0, 0, 1]  # the unlabelled row was marked test: it joins train's pool
    assert ds.label_name(1) == "(unlabelled)" and ds.label_names().tolist() == ["a", "(unlabelled)", "b", "a"]
    assert any("1 row(s) have no label: they are kept as the unlabelled pool" in w for w in res.warnings)
    assert any("1 unlabelled row(s) marked val or test were put in the train split's pool" in w for w in res.warnings)
    with pytest.raises(DataError, match="no labelled rows"):
        load_table(b"text,label\nfirst long text here,\nsecond long text here,\n", "m.csv", TableRoles(label="label", text="text"))


def test_unsupported_type_and_broken_parquet():
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'"):
        read_table(b"PK\x03\x04", "book.xlsx")
    with pytest.raises(DataError, match=r"Could not parse 'x.parquet' as PARQUET.*not truncated"):
        read_table(b"PAR1 this is not parquet", "x.parquet")


def test_missing_column_in_roles():
    with pytest.raises(DataError, match="Column 'nope' is not in the file"):
        load_table(REVIEWS, "r.csv", TableRoles(label="nope", text="text"))


def test_encode_labels_rejects_empty():
    with pytest.raises(DataError, match="no labelled rows"):
        encode_labels(pd.Series([], dtype=str))


# ---------------------------------------------------------------- IDX


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_idx_round_trip_and_split():
    rng = np.random.default_rng(0)
    x_train, y_train = rng.integers(0, 256, (120, 4, 4)), np.repeat(np.arange(3), 40)
    x_test, y_test = rng.integers(0, 256, (30, 4, 4)), np.repeat(np.arange(3), 10)
    assert (read_idx(_idx(x_train)) == x_train).all()
    ds = dataset_from_idx(_idx(x_train), _idx(y_train), _idx(x_test), _idx(y_test), name="idx").dataset
    assert ds.items.shape == (150, 4, 4) and ds.class_names == ["0", "1", "2"]
    assert np.bincount(ds.split).tolist() == [111, 9, 30]  # 1/12 of each train class (3 of 40) is val


def test_bad_idx_files():
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(b"\x01\x02\x03\x04")
    truncated = gzip.decompress(_idx(np.zeros((10, 4, 4))))[:-5]
    with pytest.raises(DataError, match="IDX file is truncated"):
        read_idx(truncated)
    with pytest.raises(DataError, match="damaged gzip"):
        read_idx(_idx(np.zeros((10, 4, 4)))[:-8])
