"""The Train page names things in words: the automatic model, the best-checkpoint metric, and
where the baseline + mitigated pair is compared."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.data import demos
from core.store import Store
from tests.conftest import APP


def test_train_page_words(home):
    demos.import_demo(Store(home), "digits")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception, at.exception
    model = at.selectbox(key="tr_model")
    assert model.value == "auto" and model.options[0] == "auto: small CNN (random init)"
    metric = at.selectbox(key="tr_metric")
    assert metric.value == "macro_f1" and "macro-F1" in metric.options and "worst-class recall" in metric.options
    assert not any("_" in option for option in metric.options)
    pair = at.button(key="start_pair")
    assert "The Compare page opens on the pair" in pair.help and "Runs page" not in pair.help
