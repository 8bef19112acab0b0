"""Adversarial training as a mitigation: its settings, where it is offered and refused, the seam the
worker builds from it, and a run that trains with it and holds up better under attack."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.mitigate.checks import check
from core.mitigate.fields import FIELDS, context, from_widgets, shown, tabs_for, widget_values
from core.mitigate.settings import Adversarial, Mitigations
from tests.test_train import _digits, _run

pytestmark = [pytest.mark.timeout(600), pytest.mark.usefixtures("one_torch_thread")]
COUNTS = {"a": 50, "b": 40}


def test_the_settings_validate_and_say_themselves():
    m = Mitigations(adversarial=Adversarial(method="pgd", eps=0.1, steps=3, share=0.5))
    assert m.validate() is m and m.active == ["adversarial=pgd3 ε=0.1 ×0.5"]
    assert Mitigations(adversarial=Adversarial(method="fgsm", eps=0.03)).active == ["adversarial=fgsm ε=0.03"]
    for bad, words in (({"method": "cw"}, "adversarial.method"), ({"method": "pgd", "eps": 0.0}, "adversarial.eps"),
                       ({"method": "pgd", "steps": 0}, "adversarial.steps"), ({"method": "pgd", "share": 0.0}, "adversarial.share")):  # fmt: skip
        with pytest.raises(ValueError, match=words):
            Mitigations(adversarial=Adversarial(**bad)).validate()
    back, unknown = Mitigations.from_dict(m.to_dict())
    assert back == m and unknown == {}


def test_it_is_offered_for_images_and_tables_and_refused_elsewhere():
    m = Mitigations(adversarial=Adversarial(method="fgsm"))
    assert check(m, modality="image", finetune="full", train_counts=COUNTS) == []
    assert check(m, modality="tabular", finetune="full", train_counts=COUNTS) == []
    assert "attack the finished run on the Runs page" in check(m, modality="text", finetune="full", train_counts=COUNTS)[0]
    assert "linear probe trains on frozen features" in check(m, modality="image", finetune="linear_probe", train_counts=COUNTS)[0]
    assert "not words" in check(m, modality="tokens", finetune="full", train_counts=COUNTS)[0]
    assert (
        "ε ≤ 1"
        in check(Mitigations(adversarial=Adversarial(method="pgd", eps=2.0)), modality="image", finetune="full", train_counts=COUNTS)[0]
    )
    assert "adversarial" in tabs_for("image") and "adversarial" in tabs_for("tabular")
    assert "adversarial" not in tabs_for("text") and "adversarial" not in tabs_for("tokens")
    values = {**widget_values(Mitigations()), "tr_adv_method": "pgd", "tr_adv_eps": 0.05, "tr_adv_steps": 5}
    drawn = {f.key for f in FIELDS if shown(f, context(values, modality="image", finetune="full"))}
    assert {"tr_adv_method", "tr_adv_eps", "tr_adv_steps", "tr_adv_share"} <= drawn
    assert from_widgets(values, modality="image", finetune="full").adversarial == Adversarial("pgd", 0.05, 5, 1.0)
    # a linear probe, or text: not drawn, and the run gets none
    assert from_widgets(values, modality="image", finetune="linear_probe").adversarial == Adversarial()
    assert from_widgets(values, modality="text", finetune="full").adversarial == Adversarial()


def test_the_worker_builds_the_seam_in_the_models_input_space(store):
    from core.robust.attack import Adversary
    from core.train.config import RunConfig
    from core.train.prepare import prepare

    vid = _digits(store)
    cfg = RunConfig(version_id=vid, model="small_cnn", epochs=1, batch_size=64, device="cpu",
                    mitigations=Mitigations(adversarial=Adversarial(method="pgd", eps=0.1, steps=2)))  # fmt: skip
    job = prepare(store.load_dataset(vid), cfg)
    adv = job.seams.adversary
    assert isinstance(adv, Adversary) and adv.method == "pgd" and adv.steps == 2
    spec = job.built.image
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    assert torch.allclose(adv.eps, 0.1 / std) and torch.allclose(adv.hi, (1 - torch.tensor(spec.mean).view(1, -1, 1, 1)) / std)
    plain = prepare(store.load_dataset(vid), RunConfig(version_id=vid, model="small_cnn", epochs=1, batch_size=64, device="cpu"))
    assert plain.seams.adversary is None


def test_a_run_trained_adversarially_holds_up_better_under_pgd(store):
    from core.robust.evaluate import evaluate_run

    vid = _digits(store)
    accs = {}
    for name, mit in (("plain", {}), ("adversarial", {"adversarial": {"method": "pgd", "eps": 0.1, "steps": 3}})):
        run_id, status = _run(store, version_id=vid, epochs=6, mitigations=mit)
        assert status == "finished", store.run(run_id).message
        rec = evaluate_run(store, run_id, eps=(0.1,), steps=5, n_items=176)
        accs[name] = (rec["clean"]["accuracy"], rec["budgets"][0]["accuracy"])
    assert accs["adversarial"][1] > accs["plain"][1] + 0.1  # robust accuracy at ε = 0.1, well above
    assert accs["adversarial"][0] > accs["plain"][0] - 0.05 and np.isfinite(accs["adversarial"][0])
