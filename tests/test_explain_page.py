"""The Runs page explains a hallucination-gallery item: attributions for the class answered and
the given class, a method to pick that stays, the whole gallery in the background, and the
nearest train items once the version is embedded."""

from __future__ import annotations

import pytest

from core.data import demos
from core.explain import cache
from core.metrics.results import RunResults
from core.store import RunFiles, Store
from core.train.config import RunConfig
from core.train.worker import train_run
from tests.test_train_pages import open_page, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("one_torch_thread")]


def test_the_runs_page_explains_a_gallery_item_and_the_whole_gallery_in_the_background(home):
    store = Store(home)
    vid = demos.import_demo(store, "digits")
    run_id = store.create_run(vid, RunConfig(version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3).to_dict())
    assert train_run(store, run_id) == "finished"
    res = RunResults(store, run_id)
    at = open_page("app_pages/runs.py")
    pick = at.selectbox(key=f"rn_ex_item_{run_id}")
    assert len(pick.options) >= 2 and "given" in pick.options[0] and "predicted" in pick.options[0]
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum('"answered: ' in s for s in titles) == 1 and sum('"given: ' in s for s in titles) == 1
    assert any("Integrated Gradients of the class's logit" in c.value for c in at.caption)
    assert any("Appear once the version is embedded" in c.value for c in at.caption)
    item = int(pick.value)
    files = RunFiles(run_id, home=home)
    assert any(files.folder.joinpath("explain").glob(f"s{res.result_step}-*-integrated_gradients.npz"))  # kept with the run
    # another method: kept when the page is left and opened again
    at.radio(key=f"rn_ex_method_{run_id}").set_value("occlusion").run()
    assert not at.exception, at.exception
    assert any("blacked out" in c.value for c in at.caption)
    at.switch_page("app_pages/data.py").run()
    at.switch_page("app_pages/runs.py").run()
    assert at.radio(key=f"rn_ex_method_{run_id}").value == "occlusion"
    # the whole gallery in the background, then the nearest train items
    at.button(key=f"rn_ex_all_{run_id}").click().run()
    assert not at.exception, at.exception
    from ui.explain_view import _jobs

    job = _jobs()[(str(home), run_id)]
    assert wait_for(lambda: not job.is_alive(), timeout=400) and job.error is None, job.error
    gallery = len(pick.options)
    assert len(list(files.folder.joinpath("explain").glob(f"s{res.result_step}-*.npz"))) >= 3 * gallery  # both classes, 3 methods
    at.run()
    assert not at.exception, at.exception
    assert any("nearest train items are labelled" in m.value for m in at.markdown)
    assert any("Every gallery item explained" in c.value for c in at.caption)
    assert cache.load(files, res.result_step, item, int(store.load_dataset(vid).labels[item]), "occlusion") is not None


def test_compare_explains_a_runs_gallery_when_asked(home):
    store = Store(home)
    vid = demos.import_demo(store, "digits")
    ids = []
    for seed in (0, 1):
        run_id = store.create_run(vid, RunConfig(version_id=vid, model="small_cnn", epochs=1, batch_size=64, lr=3e-3, seed=seed).to_dict())
        assert train_run(store, run_id) == "finished"
        ids.append(run_id)
    at = open_page("app_pages/compare.py")
    charts_before = len(at.get("plotly_chart"))
    assert not [s for s in at.selectbox if s.key and s.key.startswith("cmp_ex_item_")]  # nothing computed until asked
    at.toggle(key=f"cmp_ex_on_{ids[0]}").set_value(True).run()
    assert not at.exception, at.exception
    assert at.selectbox(key=f"cmp_ex_item_{ids[0]}").options
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(titles) == charts_before + 2 and sum('"answered: ' in s for s in titles) == 1
