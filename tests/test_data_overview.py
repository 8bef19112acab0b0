"""What the Data page shows: profile figures and sentences, the paged preview, and an upload's role
choices and image-archive summary, each checked exactly on small hand-made data."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.data import Dataset, browse, overview
from core.data import upload_preview as up
from core.data.imagefiles import preview_image_zip
from core.data.profile import duplicates, profile
from core.data.tables import TableRoles, guess_roles


def _texts(labels: list[int] | None = None) -> Dataset:
    texts = ["good film", "good film", "bad film", "so so", "great", "awful", "great", "meh", "", "nice"]
    labels = labels or [0, 0, 1, 2, 0, 1, 1, 2, 0, 0]
    split = [0, 0, 0, 0, 0, 0, 2, 1, 0, 2]
    meta = pd.DataFrame({"domain": ["a", "a", "b", "b", "a", "b", "a", "b", None, "a"]})
    return Dataset("t", "text", np.array(texts, dtype=object), labels, ["pos", "neg", "mid"], split, meta)


def test_kpis_of_a_small_text_dataset():
    # train counts 4, 2, 1: ratio 4; H(4/7, 2/7, 1/7) / ln 3 = 0.870; Gini 12 / 42; Σ(1 − 0.999ⁿ)/0.001 = 6.993
    assert [f[:2] for f in overview.kpis(profile(_texts()))] == [
        ("Items", "10"),
        ("Classes", "3"),
        ("Imbalance ratio", "4.0×"),
        ("Normalised entropy", "0.870"),
        ("Gini", "0.286"),
        ("Effective samples", "7"),
    ]
    assert overview.kpis(profile(_texts()))[0].note == "Rows in all splits."


def test_kpis_say_the_unlabelled_pool_missing_classes_and_an_infinite_ratio():
    # two items in the pool; class "mid" (items 3 and 7) relabelled to "pos" leaves it with no train item
    prof = profile(_texts([0, 0, 1, 0, -1, 1, 1, 0, -1, 0]))
    figures = {f.label: f for f in overview.kpis(prof)}
    assert figures["Items"].value == "10 (2 unlabelled)"
    assert figures["Items"].note.startswith("Rows in all splits. Unlabelled rows form a pool in train")
    assert figures["Classes"].value == "3 (1 missing in train)"
    one_class = Dataset("o", "text", np.array(["a", "b", "c"], dtype=object), [0, 0, 1], ["x", "y"], [0, 0, 2])
    assert {f.label: f.value for f in overview.kpis(profile(one_class))}["Imbalance ratio"] == "∞"


def test_head_medium_tail_line():
    # train counts 4, 2, 1: every class has fewer than 20 train items, so every class is tail, and
    # the line says the groups tell nothing apart rather than shifting the thresholds
    prof = profile(_texts())
    assert overview.groups_line(prof.train) == (
        "Groups by train items, as the metrics score them — head: more than 100 train items; medium: 20–100; "
        "tail: fewer than 20 (the long-tail literature’s split). 0 head · 0 medium · 3 tail classes. Every class is "
        "tail, so the groups do not tell classes apart here and the tail ECE is the ECE of every class; the "
        "imbalance ratio says more."
    )
    # all splits: the bars count every split, the colours stay the train groups
    assert list(prof.overall.groups) == list(prof.train.groups) and prof.overall.thresholds is None
    assert overview.groups_line(prof.overall).startswith("Colours are each class’s group by its train items; the bars count all splits.")
    from core.data.profile import balance

    assert overview.groups_line(balance(np.array([1000, 50, 10]))) == (
        "Groups by train items, as the metrics score them — head: more than 100 train items; medium: 20–100; "
        "tail: fewer than 20 (the long-tail literature’s split). 1 head · 1 medium · 1 tail classes."
    )


def test_duplicate_figures_and_groups_as_shown():
    ds = _texts()
    d = duplicates(ds)
    assert [f[:2] for f in overview.duplicate_figures(d)] == [
        ("Repeated items", "2"),
        ("Train–test leaks", "1"),
        ("Train–val leaks", "0"),
        ("Conflicting labels", "1"),
    ]
    assert overview.duplicate_figures(d)[2].note == ""  # no tooltip
    table = overview.duplicate_groups(d, ds)
    assert table.to_dict("records") == [
        {"text": "great", "items": "4, 6", "size": 2, "splits": "test, train", "labels": "pos, neg", "leak": True, "conflict": True},
        {"text": "good film", "items": "0, 1", "size": 2, "splits": "train", "labels": "pos", "leak": False, "conflict": False},
    ]
    same = Dataset("i", "image", np.zeros((12, 2, 2), np.uint8), [0] * 12, ["x"], [0] * 12)
    shown = overview.duplicate_groups(duplicates(same), same)
    assert "text" not in shown and shown["items"].tolist() == ["0, 1, 2, 3, 4, 5, 6, 7, 8, 9 …"]


def test_sentences_about_empty_texts_images_and_skipped_files():
    assert overview.empty_texts_line(np.array([8])) == "1 empty texts (items 8)."
    assert overview.empty_texts_line(np.arange(21)) == f"21 empty texts (items {', '.join(map(str, range(20)))} …)."
    stats = {"height": 5, "width": 3, "channels": 1, "mean_intensity": 100.04}
    assert overview.image_lines(stats) == ["Stored at **3×5**, grayscale; mean intensity 100.0 / 255."]
    stats |= {"channels": 3, "orig_width": {"min": 20, "median": 25.4, "max": 31}, "orig_height": {"min": 18, "median": 18.0, "max": 18}}
    assert overview.image_lines(stats | {"resized": True}) == [
        "Stored at **3×5**, RGB; mean intensity 100.0 / 255.",
        "Original widths 20–31 (median 25), heights 18–18 (median 18) — resized on import.",
    ]
    assert overview.image_lines(stats | {"resized": False})[1].endswith("(median 18).")
    assert overview.skipped_table([("a/notes.txt", "not an image (.txt)")]).to_dict("records") == [
        {"file": "a/notes.txt", "reason": "not an image (.txt)"}
    ]


def test_preview_pages_captions_and_tables():
    assert browse.preview_per_page("image") == 40 and browse.preview_per_page("text") == 25 == browse.preview_per_page("tabular")
    assert browse.n_pages(7_000, 40) == 175 and browse.matches_line(7_000, 3, 175) == "7,000 items match · page 3 of 175"
    assert list(range(100))[browse.page_slice(3, 40)] == list(range(80, 100))
    ds = _texts()
    table = browse.preview_table(ds, np.array([0, 6]))
    assert table.to_dict("list") == {
        "item": [0, 6],
        "text": ["good film", "great"],
        "label": ["pos", "neg"],
        "split": ["train", "test"],
        "domain": ["a", "a"],
    }
    rows = pd.DataFrame({"f1": [1.0, 2.0, 3.0], "f2": [4.0, 5.0, 6.0]})
    tab = Dataset("tab", "tabular", rows, [0, 1, -1], ["x", "y"], [0, 2, 0], pd.DataFrame({"src": ["p", "q", "r"]}))
    assert browse.preview_table(tab, np.array([2, 1])).to_dict("list") == {
        "item": [2, 1],
        "label": ["(unlabelled)", "y"],
        "split": ["train", "test"],
        "f1": [3.0, 2.0],
        "f2": [6.0, 5.0],
        "src": ["r", "q"],
    }
    images = Dataset("i", "image", np.zeros((3, 2, 2), np.uint8), [0, 1, 1], ["cat", "dog"], [0, 1, 2])
    assert browse.image_captions(images, np.array([2, 0])) == ["#2 · dog · test", "#0 · cat · train"]


def _reviews() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": [f"an example sentence number {i} for the test" for i in range(60)],
            "label": ["pos" if i % 3 else "neg" for i in range(60)],
            "domain": ["web" if i % 2 else "shop" for i in range(60)],
            "id": [str(i) for i in range(60)],
        }
    )


def test_role_choices_start_from_the_guess():
    df = _reviews()
    guess, columns = guess_roles(df), list(df.columns)
    assert up.label_choice(guess, columns) == up.Choice(["label", "domain"], 0)
    assert up.text_choice(guess, columns, "label") == up.Choice([up.NO_TEXT, "text", "domain", "id"], 1)
    assert up.split_choice(guess, columns, "label", "text") == up.Choice([up.NO_SPLIT, "domain", "id"], 0)
    others = up.other_columns(columns, "label", "text", up.NO_SPLIT)
    assert others == ["domain", "id"] and up.default_slices(df, others) == ["domain"]  # 60 ids are too many slices
    assert up.table_roles("label", "text", up.NO_SPLIT, others, ["domain"]) == TableRoles(label="label", text="text", meta=["domain"])
    assert up.table_roles("label", up.NO_TEXT, "domain", ["id"], []) == TableRoles(label="label", split="domain", features=["id"])
    assert up.table_roles("label", up.NO_TEXT, up.NO_SPLIT, ["a", "sex"], ["sex"]) == TableRoles(
        label="label", features=["a", "sex"], meta=["sex"]
    )


def test_role_choices_without_a_guess_and_with_a_split_column():
    df = pd.DataFrame({"review": [f"a long enough review text {i}" for i in range(40)], "stars": [i % 4 for i in range(40)]})
    guess, columns = guess_roles(df), list(df.columns)
    assert guess.roles is None
    assert up.label_choice(guess, columns) == up.Choice(["stars"], 0)
    assert up.text_choice(guess, columns, "stars") == up.Choice([up.NO_TEXT, "review"], 1)  # the text candidate
    table = pd.DataFrame({"x": np.arange(20.0), "label": ["a", "b"] * 10, "split": ["train"] * 15 + ["test"] * 5})
    guess, columns = guess_roles(table), list(table.columns)
    assert up.text_choice(guess, columns, "label") == up.Choice([up.NO_TEXT, "x", "split"], 0)
    assert up.split_choice(guess, columns, "label", up.NO_TEXT) == up.Choice([up.NO_SPLIT, "x", "split"], 2)


def _zip(entries: list[str]) -> bytes:
    png = io.BytesIO()
    Image.new("L", (8, 8), 100).save(png, format="PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in entries:
            zf.writestr(name, png.getvalue() if name.endswith(".png") else b"notes")
    return buf.getvalue()


def test_image_archive_summary_with_and_without_split_folders():
    pets = preview_image_zip(_zip(["train/cat/0.png", "train/cat/1.png", "train/dog/0.png", "test/cat/0.png", "train/dog/a.md"]))
    assert up.zip_words(pets) == (
        "4 images in 2 classes (split folders found: test, train). Images that turn out corrupt or too large are skipped at import."
    )
    one = preview_image_zip(_zip(["cat/0.png"]))
    assert up.zip_words(one) == (
        "1 image in 1 class (no split folders: a stratified split will be made, 10% val and 10% test per class; a class of "
        "fewer than 10 images stays wholly in train). Images that turn out corrupt or too large are skipped at import."
    )
    assert up.zip_counts(one).to_dict("records") == [{"class": "cat", "split": "—", "images": 1}]
    assert up.zip_counts(pets).values.tolist() == [["cat", "train", 2], ["cat", "test", 1], ["dog", "train", 1]]


@pytest.mark.parametrize("figure", overview.kpis(profile(_texts())))
def test_every_kpi_has_a_note(figure):
    assert figure.note and figure.delta is None
