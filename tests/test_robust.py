"""core.robust: FGSM and PGD on cases with known answers and against adversarial-robustness-toolbox,
the word-substitution attack, the adversarial-training seam, and a real run's robustness record."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from core.data import Dataset
from core.errors import DataError
from core.robust import records
from core.robust.attack import Adversary, fgsm, pgd
from core.robust.words import attack_text
from core.store import RunFiles
from tests.conftest import needs_asset
from tests.test_explain import _linear
from tests.test_train import _digits, _run

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def test_fgsm_on_a_linear_model_moves_along_the_sign_of_the_weights():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 5)).astype(np.float32)
    lin = _linear(w)
    x = torch.from_numpy(rng.normal(size=(4, 5)).astype(np.float32))
    for label in (0, 1):
        y = torch.full((4,), label)
        adv = fgsm(lin, x, y, 0.1, lo=None, hi=None)
        # the loss grows fastest along the other class's weights minus the label's
        np.testing.assert_allclose((adv - x).numpy(), 0.1 * np.sign(w[1 - label] - w[label])[None, :].repeat(4, 0), atol=1e-6)
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])  # kept columns do not move
    adv = fgsm(lin, x, torch.zeros(4, dtype=torch.long), 0.1, lo=None, hi=None, mask=mask)
    assert torch.equal(adv[:, 2:4], x[:, 2:4])


def test_pgd_stays_in_the_ball_and_the_pixel_range_and_hurts_more_than_fgsm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3)).eval()
    x = torch.rand(64, 1, 4, 4)
    y = net(x).argmax(dim=1)
    eps = 0.05
    adv = pgd(net, x, y, eps, steps=10, generator=torch.Generator().manual_seed(1))
    assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    ce = nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(net(adv), y) > ce(net(fgsm(net, x, y, eps)), y) > ce(net(x), y)
    again = pgd(net, x, y, eps, steps=10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(adv, again)  # seeded


def test_the_attacks_equal_adversarial_robustness_toolbox(tmp_path):
    """ART's FGSM and (random start off) PGD on the same model give the same inputs."""
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).eval()
    x = torch.rand(32, 6)
    y = net(x).argmax(dim=1)
    clf = PyTorchClassifier(
        model=net, loss=nn.CrossEntropyLoss(), input_shape=(6,), nb_classes=3, clip_values=(0.0, 1.0), device_type="cpu"
    )
    art_fgsm = FastGradientMethod(clf, norm=np.inf, eps=0.05).generate(x.numpy(), y=np.eye(3)[y.numpy()])
    np.testing.assert_allclose(fgsm(net, x, y, 0.05).numpy(), art_fgsm, atol=1e-6)
    art_pgd = ProjectedGradientDescent(clf, norm=np.inf, eps=0.05, eps_step=0.01, max_iter=7, num_random_init=0, verbose=False)
    mine = pgd(net, x, y, 0.05, steps=7, step_size=0.01, random_start=False)
    np.testing.assert_allclose(mine.numpy(), art_pgd.generate(x.numpy(), y=np.eye(3)[y.numpy()]), atol=1e-5)


def test_the_adversarial_training_seam_attacks_a_share_in_eval_mode_and_gives_back_train_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    net.train()
    seen = []
    original = net.forward

    def watching(x):
        seen.append(net.training)
        return original(x)

    net.forward = watching  # type: ignore[method-assign]
    x, y = torch.rand(10, 4), torch.randint(0, 2, (10,))
    adv = Adversary("pgd", 0.1, steps=3, lo=0.0, hi=1.0, share=0.5, generator=torch.Generator().manual_seed(0))
    out = adv(net, x, y, net.train)
    assert seen and not any(seen) and net.training  # attacked in eval mode, handed back training
    assert torch.equal(out[5:], x[5:]) and not torch.equal(out[:5], x[:5]) and (out - x).abs().max() <= 0.1 + 1e-6
    soft = torch.softmax(torch.rand(10, 2), dim=1)  # MixUp's class probabilities as targets
    assert Adversary("fgsm", 0.1, lo=0.0, hi=1.0)(net, x, soft, net.train).shape == x.shape


def test_the_word_attack_swaps_the_most_important_word_for_a_synonym():
    def probs(texts: list[str]) -> np.ndarray:  # "positive" as long as "good" or "nice" is there
        pos = np.array([0.95 if ("good" in t or "nice" in t) else 0.2 for t in texts])
        return np.c_[1 - pos, pos]

    table = {"good": ("respectable", "nice"), "film": ("movie",)}
    got = attack_text("a good film", 1, probs, lambda w: table.get(w, ()), max_words=2)
    assert got.flipped and got.text == "a respectable film" and got.changed == [(1, "good", "respectable")]
    assert got.p_before == pytest.approx(0.95) and got.p_after == pytest.approx(0.2)
    none = attack_text("a good film", 1, probs, lambda w: (), max_words=2)
    assert not none.flipped and none.text == "a good film" and none.changed == []
    wrong = attack_text("a bad film", 1, probs, lambda w: table.get(w, ()))
    assert not wrong.flipped and wrong.changed == []  # already wrong: nothing to attack


def test_a_digits_runs_robustness_collapses_under_pgd_and_is_kept_with_the_run(store, home):
    from core.robust.evaluate import RobustnessJob, evaluate_run

    run_id, status = _run(store, version_id=_digits(store), epochs=4)
    assert status == "finished"
    seen = []
    rec = evaluate_run(store, run_id, eps=(0.02, 0.1, 0.3), steps=5, n_items=120, progress=lambda d, t, s: seen.append(s))
    assert rec["attack"] == "pgd" and rec["n"] == 120 and "PGD at ε = 0.1" in seen and seen[-1] == "done"
    acc = [rec["clean"]["accuracy"]] + [b["accuracy"] for b in rec["budgets"]]
    assert acc[0] > 0.85 and acc[-1] < 0.2 and all(a >= b - 1e-9 for a, b in itertools.pairwise(acc))
    assert rec["budgets"][-1]["success_rate"] > 0.8 and 0 <= rec["budgets"][-1]["confident_wrong"] <= 1
    files = RunFiles(run_id, home=home)
    assert records.load(files) == rec
    assert rec["examples"] and all(e["pred_before"] == e["label"] != e["pred_after"] for e in rec["examples"])
    with np.load(files.folder / "robust_examples.npz") as z:
        assert z["images"].shape[0] == len(rec["examples"]) and z["images"].dtype == np.uint8
    table = records.table([("#1", rec)])
    assert table["budget"].tolist() == ["clean", "ε = 0.02", "ε = 0.1", "ε = 0.3"]
    with pytest.raises(DataError, match="does not attack image"):
        evaluate_run(store, run_id, attack="words")
    job = RobustnessJob(home, run_id, attack="fgsm", eps=(0.1,), n_items=50)
    job.start()
    job.join(timeout=200)
    assert not job.is_alive() and job.error is None and job.status() == (1.0, "done")
    assert records.load(files)["attack"] == "fgsm"


@needs_asset("minilm")
@needs_asset("wordnet")
def test_a_text_run_is_attacked_word_by_word(store, home, tmp_path):
    from core.data.splits import stratified_split
    from core.robust.evaluate import evaluate_run
    from tests.test_models import tiny_bert_dir

    texts = ["a good film, loved it", "a bad film, hated it", "great and moving", "awful and boring"] * 12
    labels = np.arange(len(texts)) % 2 ^ 1
    split = stratified_split(labels, val=0.25, test=0.25, seed=0)
    vid = store.save_dataset(
        Dataset("reviews", "text", np.array(texts, dtype=object), labels, ["neg", "pos"], split), source="upload:r.csv"
    )
    run_id, status = _run(store, version_id=vid, model=str(tiny_bert_dir(tmp_path / "bert")), epochs=12, batch_size=8, lr=1e-3)
    assert status == "finished"
    rec = evaluate_run(store, run_id, max_words=2)
    assert rec["attack"] == "words" and [b["budget"] for b in rec["budgets"]] == [1.0, 2.0]
    assert rec["budgets"][0]["accuracy"] >= rec["budgets"][1]["accuracy"]  # a larger budget fools at least as many
    for e in rec["examples"]:
        assert 1 <= len(e["changed"]) <= 2 and e["text"] != texts[e["item"]]
    assert records.budget_words(rec, 2.0) == "≤ 2 words"
    assert rec["budgets"][1]["success_rate"] > 0 and rec["examples"]  # two words fool this small model on some texts
    assert rec["budgets"][1]["words_changed"] <= 2
    # adversarial augmentation: the train texts it fools the model with, added with their true labels
    from core.robust.augment import adversarial_version, augmented_config

    new = adversarial_version(store, run_id, n_items=24, max_words=2)
    before, after = store.load_dataset(vid), store.load_dataset(new)
    added = np.arange(len(before), len(after))
    params = store.version(new).params["adversarial_texts"]
    assert len(added) == params["added"] > 0 and params["attacked"] == 24 and (after.split[added] == 0).all()
    src = after.meta["source_item"].to_numpy()[added]
    assert (after.labels[added] == before.labels[src]).all() and all(after.items[a] != before.items[s] for a, s in zip(added, src))
    cfg = augmented_config(store, run_id, new)
    assert cfg.version_id == new and "attacked texts added" in cfg.name


def test_the_runs_page_attacks_a_run_in_the_background_and_compare_and_the_report_show_it(home):
    from core.data import demos
    from core.report.html import build_report
    from core.store import Store
    from core.train.config import RunConfig
    from core.train.worker import train_run
    from tests.test_train_pages import open_page, wait_for

    store = Store(home)
    vid = demos.import_demo(store, "digits")
    ids = []
    for seed in (0, 1):
        run_id = store.create_run(vid, RunConfig(version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3, seed=seed).to_dict())
        assert train_run(store, run_id) == "finished"
        ids.append(run_id)
    at = open_page("app_pages/runs.py")  # the newest run
    assert any("Not attacked yet" in c.value for c in at.caption)
    at.multiselect(key="rn_rb_eps_image").set_value([0.05, 0.2])
    at.number_input(key="rn_rb_steps").set_value(3)
    at.number_input(key="rn_rb_items").set_value(60)
    at.button(key=f"rn_rb_go_{ids[1]}").click().run()
    assert not at.exception, at.exception
    from ui.robust_view import _jobs

    job = _jobs()[(str(home), ids[1])]
    assert wait_for(lambda: not job.is_alive(), timeout=240) and job.error is None, job.error
    at.run()
    assert not at.exception, at.exception
    rec = records.load(RunFiles(ids[1], home=home))
    assert rec is not None and [b["budget"] for b in rec["budgets"]] == [0.05, 0.2] and rec["n"] == 60 and rec["steps"] == 3
    assert any("PGD on 60 test items" in m.value for m in at.markdown)
    assert any("Attacked examples" in m.value for m in at.markdown) == bool(rec["examples"])
    assert at.number_input(key="rn_rb_steps").value == 3  # kept
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, at.exception
    assert any(s.value == "Under attack" for s in at.subheader)
    assert any(f"#{ids[0]}" in c.value and "Not attacked yet" in c.value for c in at.caption)
    page = build_report(store, ids)
    assert "id='robustness'" in page and "ε = 0.2" in page
