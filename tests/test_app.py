"""AppTest: the app shell, the home page and the Data page (demos, uploads, bad uploads)."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.conftest import APP, needs_asset

CSV = b"text,label,domain\n" + b"".join(
    f"an example sentence number {i} for the test,{'pos' if i % 3 else 'neg'},{'web' if i % 2 else 'shop'}\n".encode() for i in range(60)
)


def open_data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/data.py")
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_home_page_explains_and_links_the_flow():
    import torch  # noqa: F401  (loaded: the sidebar then shows the device on the first run)

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Gapscope"
    text = " ".join(m.value for m in at.markdown)
    assert "hallucinate" in text and "Hallucination rate @τ" in text
    steps = [m.value for m in at.markdown if m.value.startswith("**") and len(m.value) < 20]
    assert steps == ["**📊 Data**", "**🩺 Diagnose**", "**🧪 Simulate**", "**🏋️ Train**", "**📈 Runs**", "**⚖️ Compare**"]
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "**Device:** CPU" in captions or "**Device:** NVIDIA" in captions
    assert "**Runner:** idle · 0 running · 0 queued · 0 runs stored" in captions


def test_data_page_empty_store_invites_a_choice():
    at = open_data_page()
    assert any("No dataset yet" in i.value for i in at.info)


def test_open_digits_demo_shows_kpis_and_charts(home):
    at = open_data_page()
    at.button(key="demo_digits").click()
    at.run()
    assert not at.exception, at.exception
    m = metrics(at)
    assert m["Items"] == "1,797" and m["Classes"] == "10" and m["Imbalance ratio"] == "1.1×"  # 147 / 140 training items
    assert m["Repeated items"] == "0" and m["Train–test leaks"] == "0"
    assert len(at.get("plotly_chart")) >= 2  # class distribution + split counts
    assert len(at.image) == 1  # the preview grid (one element, 40 images)
    assert [v.dataset_name for v in Store(home).versions()] == ["Digits 8×8"]
    # log scale and the "all splits" view rerun cleanly
    at.toggle(key="dt_dist_log").set_value(True)
    at.radio(key="dt_dist_split").set_value("all splits")
    at.run()
    assert not at.exception
    assert any("Groups by train items" in c.value and "Every class is head" in c.value for c in at.caption)


def test_upload_csv_and_import(home):
    at = open_data_page()
    at.file_uploader(key="upload").set_value(("reviews.csv", CSV, "text/csv"))
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox[0].label == "Label column" and at.selectbox[0].value == "label"
    assert at.selectbox[1].value == "text"
    at.button(key="import_upload").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Imported 'reviews.csv'" in s.value for s in at.success)
    m = metrics(at)
    assert m["Items"] == "60" and m["Classes"] == "2" and m["Imbalance ratio"] == "2.0×"
    assert at.selectbox(key="dt_slice_col").value == "domain"
    versions = Store(home).versions()
    assert len(versions) == 1 and versions[0].source == "upload:reviews.csv"


def test_upload_without_label_column_asks_and_imports(home):
    data = b"review,stars\n" + b"".join(f"a long enough review text {i},{i % 4}\n".encode() for i in range(40))
    at = open_data_page()
    at.file_uploader(key="upload").set_value(("r.csv", data, "text/csv"))
    at.run()
    assert any("No column is named like a label" in i.value for i in at.info)
    assert at.selectbox[0].options == ["stars"]
    at.button(key="import_upload").click()
    at.run()
    assert metrics(at)["Classes"] == "4"
    assert Store(home).versions()[0].n_items == 40


@pytest.mark.parametrize(
    "name, data, message",
    [
        (
            "same.csv",
            b"text,label\n" + b"".join(f"text number {i} is long,spam\n".encode() for i in range(20)),
            "Every row has the same label",
        ),
        ("empty.csv", b"", "is empty (0 bytes)"),
        ("evil.zip", None, "unsafe"),
    ],
)
def test_bad_upload_shows_its_message_and_stores_nothing(home, name, data, message):
    if data is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("../../etc/evil.png", b"x")
        data = buf.getvalue()
    at = open_data_page()
    at.button(key="demo_digits").click()
    at.run()
    at.file_uploader(key="upload").set_value((name, data, "application/octet-stream"))
    at.run()
    if not at.error:  # some problems surface only on Import
        at.button(key="import_upload").click()
        at.run()
    assert not at.exception, at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert [v.dataset_name for v in Store(home).versions()] == ["Digits 8×8"]
    assert metrics(at)["Items"] == "1,797"  # the page keeps showing what was there


def test_upload_image_zip(home):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls, value in (("circle", 30), ("square", 220)):
            for i in range(12):
                img = io.BytesIO()
                Image.new("RGB", (20 + i, 18), (value, i, 0)).save(img, format="PNG")
                zf.writestr(f"shapes/{cls}/{i}.png", img.getvalue())
        zf.writestr("shapes/square/notes.txt", b"not an image")
    at = open_data_page()
    at.file_uploader(key="upload").set_value(("shapes.zip", buf.getvalue(), "application/zip"))
    at.run()
    at.button(key="import_upload").click()
    at.run()
    assert not at.exception, at.exception
    m = metrics(at)
    assert m["Items"] == "24" and m["Classes"] == "2"
    assert any("file(s) skipped at import" in e.label for e in at.expander)
    info = Store(home).versions()[0]
    assert info.skipped[0][0] == "shapes/square/notes.txt"


def test_image_zip_upload_shows_a_preview_before_import(home):
    png = io.BytesIO()
    Image.new("L", (8, 8), 100).save(png, format="PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for split, cls, n in (("train", "cat", 3), ("train", "dog", 2), ("test", "cat", 1), ("test", "dog", 1)):
            for i in range(n):
                zf.writestr(f"{split}/{cls}/{i}.png", png.getvalue())
        zf.writestr("train/dog/readme.md", b"notes")
    at = open_data_page()
    at.file_uploader(key="upload").set_value(("pets.zip", buf.getvalue(), "application/zip"))
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("7 images in 2 classes (split folders found: test, train)" in c.value for c in at.caption), [c.value for c in at.caption]
    assert any("1 file(s) will be skipped" in e.label for e in at.expander)
    assert at.button(key="import_upload")  # the import is still one click away, nothing stored yet
    assert Store(home).versions() == []
    at.button(key="import_upload").click()
    at.run()
    assert not at.exception, at.exception
    assert len(Store(home).versions()) == 1
    assert not any(b.key == "import_upload" for b in at.button)  # the box is empty again: no second import of it


@needs_asset("vader")
def test_vader_demo_with_slices_and_duplicates():
    at = open_data_page()
    at.button(key="demo_vader").click()
    at.run()
    assert not at.exception, at.exception
    m = metrics(at)
    from core.data.demos import load_vader
    from core.data.profile import duplicates

    conflicting = duplicates(load_vader().dataset).n_conflicting_groups
    assert m["Items"] == "23,703" and m["Classes"] == "3" and m["Conflicting labels"] == f"{conflicting:,}" != "0"
    assert at.selectbox(key="dt_slice_col").options[0] == "domain"
    at.selectbox(key="dt_slice_col").set_value("agreement")
    at.run()
    assert not at.exception, at.exception
    # rater agreement has more than 50 values: the slice rule cuts it into quartiles (ties merge
    # some), and the table counts every item once
    table = next(df.value for df in at.dataframe if ("all", "all") in list(df.value.columns))
    assert int(table[("all", "all")].sum()) == 23_703 and 2 <= len(table) <= 4
    assert all(v.startswith("(") and v.endswith("]") for v in table.index), list(table.index)


@needs_asset("fashion-mnist")
def test_fashion_mnist_demo():
    at = open_data_page()
    at.button(key="demo_fashion-mnist").click()
    at.run()
    assert not at.exception, at.exception
    assert metrics(at)["Items"] == "70,000"
    at.number_input(key="dt_pv_page").set_value(3)
    at.multiselect(key="dt_pv_classes").set_value([9])
    at.run()
    assert not at.exception
    assert any("7,000 items match · page 3 of 175" in c.value for c in at.caption)
