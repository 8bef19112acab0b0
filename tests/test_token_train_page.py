"""AppTest of the Train page on token (NER) data and of a token file in the upload box: the page
draws the token widgets and not the classification ones, the rare-types preset fills them, they
survive a visit to another page, and Start training stores the token augmentation with the run."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.data import demos
from core.store import Store
from tests.conftest import APP, needs_asset
from tests.test_token_mitigations import small_corpus

pytestmark = [pytest.mark.timeout(300)]

TOKEN_KEYS = ["tr_tok_mention", "tr_tok_lwtr", "tr_tok_synonym", "tr_tok_shuffle"]
CLASSIFICATION_KEYS = ["tr_aug_image", "tr_aug_text", "tr_aug_classes", "tr_aug_strength", "tr_aug_multiplier", "tr_clean_action",
                       "tr_semi_method", "tr_dec_tm", "tr_dec_abstain"]  # fmt: skip


def open_train(home) -> tuple[Store, AppTest]:
    store = Store(home)
    store.save_dataset(small_corpus(120), source="upload:small.conll")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception, at.exception
    return store, at


def keys(at: AppTest, kind: str) -> set[str]:
    return {str(w.key) for w in at.get(kind)}


def text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(c.value for c in at.caption)


def test_the_train_page_draws_token_widgets_only(home):
    _, at = open_train(home)
    assert "— 120 sentences, 3 entity types" in text(at)
    assert [t.label for t in at.tabs] == ["Resampling", "Loss", "Augmentation", "Decision"]
    assert at.toggle(key="tr_dec_ooff").value is False  # the one decision of token data, off by default
    assert set(TOKEN_KEYS) <= keys(at, "slider") and "tr_tok_copies" in keys(at, "number_input")
    assert at.multiselect(key="tr_tok_types").options == ["PER", "ORG", "LOC"]  # most train mentions first
    drawn = keys(at, "slider") | keys(at, "multiselect") | keys(at, "selectbox") | keys(at, "toggle") | keys(at, "number_input")
    assert not drawn & set(CLASSIFICATION_KEYS)
    assert at.selectbox(key="tr_mode").options == ["last N blocks", "full fine-tune"]  # no linear probe
    assert at.selectbox(key="tr_model").options == ["auto: all-MiniLM-L6-v2", "all-MiniLM-L6-v2"]
    samplers = at.selectbox(key="tr_rs_method").options
    assert "Class-balanced sampling" in samplers and "SMOTE" not in samplers
    assert at.radio(key="tr_preset").options == ["baseline", "rare entity types", "custom"]
    words = text(at)
    assert "draws whole **sentences**, each by its rarest entity type" in words and "acts per tag: O, B-LOC, I-LOC" in words
    assert "on 84 training sentences" in words and "3 steps of 32" in words and "Estimated time" in words
    assert not at.error and not at.button(key="start_run").disabled
    picker = at.selectbox(key="tr_metric")  # the selection metric names what a token run selects by
    assert picker.options == [
        "entity macro-F1",
        "entity micro-F1",
        "confident spurious-entity rate @τ",
        "token ECE",
        "token NLL (log loss)",
    ]
    assert picker.value == "macro_f1"


def test_the_rare_types_preset_fills_the_token_settings_and_previews_them(home):
    _, at = open_train(home)
    at.radio(key="tr_preset").set_value("rare_types")
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="tr_rs_method").value == "sqrt"
    assert [at.slider(key=k).value for k in TOKEN_KEYS] == [0.3, 0.3, 0.3, 0.3] and at.number_input(key="tr_tok_copies").value == 1
    assert at.multiselect(key="tr_tok_types").value == []  # every drawn sentence gets its copy
    assert at.toggle(key="tr_dec_ooff").value is True
    words = text(at)
    assert "Square-root sampling (resampling), Mention replacement 0.3 · Label-wise token replacement 0.3" in words
    assert "fewer invented entities (O offset fitted on val)" in words
    assert "augmented copies" in words and "each epoch draws about" in words
    assert len(at.get("plotly_chart")) == 2  # sentences per rarest type, mentions per type: train → one epoch
    preview = " ".join(h.proto.body for h in at.get("html"))
    assert "<mark" in preview and "<ins>" in preview  # entities highlighted, changed tokens marked
    # a hand-made change makes the preset custom; the loss preview speaks of tags and words
    at.selectbox(key="tr_loss_weights").set_value("inverse")
    at.run()
    assert at.radio(key="tr_preset").value == "custom"
    assert any("Class weights ∝ 1 / train words" in m.value for m in at.markdown)


@pytest.mark.slow
def test_start_training_stores_the_token_augmentation(home):
    store, at = open_train(home)
    at.radio(key="tr_preset").set_value("rare_types")
    at.run()
    at.number_input(key="tr_tok_copies").set_value(3)
    at.multiselect(key="tr_tok_types").set_value(["LOC"])
    at.run()
    at.button(key="start_pair").click()
    at.run()
    runs = sorted(store.runs(), key=lambda r: r.id)
    for row in runs:
        store.request_stop(row.id)
    assert not at.exception, at.exception
    assert len(runs) == 2 and runs[0].name.endswith("· baseline")
    assert runs[0].config["mitigations"]["token_augment"]["mention"] == 0.0
    assert runs[1].config["mitigations"]["token_augment"] == {
        "mention": 0.3, "lwtr": 0.3, "synonym": 0.3, "shuffle": 0.3, "copies": 3, "types": ["LOC"],
    }  # fmt: skip
    assert runs[1].config["mitigations"]["decision"]["o_offset"] is True and runs[0].config["mitigations"]["decision"]["o_offset"] is False
    assert runs[1].config["mitigations"]["resample"]["method"] == "sqrt" and runs[1].config["model"] == "minilm"
    assert runs[1].config["finetune"] == "full"


@pytest.mark.slow
def test_token_settings_stay_after_a_visit_to_runs(home):
    from tests.test_settings_stay import go, timers_fire

    _, at = open_train(home)
    at.radio(key="tr_preset").set_value("rare_types")
    at.run()
    at.slider(key="tr_tok_lwtr").set_value(0.15)
    at.number_input(key="tr_tok_copies").set_value(3)
    at.multiselect(key="tr_tok_types").set_value(["ORG"])
    at.selectbox(key="tr_mode").set_value("last_n")
    at.run()
    timers_fire(at)
    go(at, "app_pages/runs.py")
    go(at, "app_pages/train.py")
    assert at.radio(key="tr_preset").value == "custom"
    assert at.slider(key="tr_tok_lwtr").value == pytest.approx(0.15) and at.slider(key="tr_tok_mention").value == pytest.approx(0.3)
    assert at.number_input(key="tr_tok_copies").value == 3 and at.multiselect(key="tr_tok_types").value == ["ORG"]
    assert at.selectbox(key="tr_mode").value == "last_n" and at.selectbox(key="tr_rs_method").value == "sqrt"


def train_on_digits_then(home) -> tuple[AppTest, int]:
    """The Train page open on the digits demo, and the id of a token version to switch to."""
    store = Store(home)
    digits = demos.import_demo(store, "digits")
    tokens = store.save_dataset(small_corpus(120), source="upload:small.conll")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.session_state["current_version"] = digits
    at.switch_page("app_pages/train.py")
    at.run()
    return at, tokens


@pytest.mark.slow
def test_a_classification_preset_reads_as_custom_on_token_data(home):
    at, tokens = train_on_digits_then(home)
    assert "long-tail fix" in at.radio(key="tr_preset").options
    at.radio(key="tr_preset").set_value("long_tail")
    at.run()
    at.session_state["current_version"] = tokens
    at.run()
    assert not at.exception, at.exception
    assert at.radio(key="tr_preset").value == "custom" and at.selectbox(key="tr_loss_name").value == "balanced_softmax"


def test_a_classifier_only_selection_metric_becomes_entity_macro_f1_on_token_data(home):
    at, tokens = train_on_digits_then(home)
    at.selectbox(key="tr_metric").set_value("worst_class_recall")
    at.run()
    at.session_state["current_version"] = tokens
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="tr_metric").value == "macro_f1"


@needs_asset("wnut16")
def test_wnut16_shows_sentences_types_and_its_rare_types(home):
    store = Store(home)
    demos.import_demo(store, "wnut16")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception, at.exception
    assert "— 2,394 sentences, 10 entity types" in text(at)
    at.radio(key="tr_preset").set_value("rare_types")
    at.run()
    assert at.multiselect(key="tr_tok_types").value == []  # every drawn sentence is copied
    assert at.multiselect(key="tr_tok_types").help.endswith("movie, tvshow, sportsteam, musicartist, product, facility.")
    assert "each epoch draws about 3,844 sentences" in text(at) and "× 121 steps of 32" in text(at)


def test_a_token_file_in_the_upload_box_shows_its_sentences_scheme_and_repairs(home):
    lines = []
    for i in range(40):
        lines += ["Ann I-PER", "met O", "Bob B-PER", "in O", "Oslo I-LOC" if i % 2 else "Oslo B-LOC", ". O", ""]
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/data.py")
    at.run()
    at.file_uploader(key="upload").set_value(("ner.txt", "\n".join(lines).encode(), "text/plain"))
    at.run()
    assert not at.exception, at.exception
    assert not at.selectbox, [s.label for s in at.selectbox]  # no column picker, no image size
    assert any("**40 sentences**, 2 entity types (LOC, PER) · tags read as **IOB2**" in m.value for m in at.markdown)
    assert any("Repaired 60 I- tags that opened a span to B-" in i.value for i in at.info), [i.value for i in at.info]
    assert any("The file gives no split" in i.value for i in at.info)
    shown = " ".join(h.proto.body for h in at.get("html"))
    assert shown.count("<mark") >= 15 and "Oslo <sub" in shown
    at.button(key="import_upload").click()
    at.run()
    assert not at.exception, at.exception
    versions = Store(home).versions()
    assert len(versions) == 1 and versions[0].modality == "tokens"
