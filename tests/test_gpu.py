"""The CUDA path of the training loop (bf16 autocast, channels_last, data resident on the GPU).

Marked ``gpu``: skipped, with the reason, on machines without a CUDA GPU (``tests/conftest.py``).
"""

from __future__ import annotations

import pytest

from core.data.demos import load_digits_8x8
from core.store import RunFiles
from core.train.config import RunConfig
from core.train.worker import train_run

pytestmark = [pytest.mark.gpu, pytest.mark.timeout(300)]


def test_a_run_trains_and_evaluates_on_the_gpu(store):
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    cfg = RunConfig(version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3, device="cuda")
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    m = store.metrics(run_id)
    test = m[(m.split == "test") & (m.step == m[m.split == "test"].step.max())].set_index("name")["value"]
    assert test["accuracy"] > 0.8  # bf16 autocast trains as well as fp32 on this task
    assert RunFiles(run_id, home=store.home).read_json("config.json")["device"] == "cuda"


# The fast path on a real GPU: the checks benchmarks/gpu_check.py runs on a GPU machine without pytest
# (benchmarks/gpu_check.py), run here under pytest wherever CUDA and the test extras meet.
def _gpu_checks():
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CHECKS


@pytest.mark.parametrize("check", _gpu_checks(), ids=lambda c: c.__name__)
def test_the_fast_path_on_the_gpu(check, store):
    assert check(store)  # each check asserts its own rule and returns its figures


def test_a_lab_run_trains_on_the_gpu():
    from core.lab.corpus import CorpusSpec, make_corpus
    from core.lab.settings import LabSettings
    from core.lab.train import train_lab

    c = make_corpus(CorpusSpec(n_people=16, buckets=(8,), held_out=0.25, paraphrases=5, shuffle=True, seed=0))
    s = LabSettings(epochs=30, eval_every=30, batch_size=8, n_embd=64, n_layer=2, seed=0, abstain_unfamiliar=0.05)
    res = train_lab(c, s, device="cuda")
    table = res.evaluations[-1]["table"]
    assert table[8]["accuracy"] >= 0.6 and table[0]["abstained"] >= 0.5  # on the CPU: 0.77 and 1.0


def test_smollm2_fine_tunes_on_the_gpu(tmp_path):
    from core.data import assets
    from core.lab import facts as F
    from core.lab.finetune import TuneSettings
    from core.lab.llm import run_probe, run_tune

    if not assets.is_ready("smollm2"):
        pytest.skip("the smollm2 asset is not fetched (python -m core.data.assets fetch)")
    F.save_probe(tmp_path, run_probe(F.ProbeSettings(n_facts=24, greedy_prompts=1, samples=2), log=lambda _: None))
    rec = run_tune(tmp_path, TuneSettings(probe_id=1, unknown_share=0.5, held_out=0.3, epochs=8, eval_every=4), log=lambda _: None)
    assert rec["device"].startswith("cuda")
    last = rec["history"][-1]
    # bench_lab_tune.py --cpu, mixed arm at epoch 8: 1.0 and 1.0 on 3 seeds
    assert last.get("fit tuned known", 1.0) >= 0.8 and last.get("fit tuned unknown", 1.0) >= 0.5
