"""Mitigations on token (NER) data: the token augmentation setting (validated, stored with a run,
old configs still load, in words), what applies to a token run and what is refused (the page's
check and the worker say the same words), the rare-types preset, an epoch's expected draws, the
step plan, and the epoch hook that adds augmented copies (seeded; every word's target its copy's tag)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.compare.setting_words import mitigation_words, setting_name, setting_value
from core.data import assets
from core.mitigate.checks import TOKEN_REFUSALS, check
from core.mitigate.presets import preset, presets_for, rare_types
from core.mitigate.preview import loss_preview, token_epoch, token_train
from core.mitigate.settings import (
    Cleaning,
    Decision,
    LossSettings,
    Mitigations,
    Resampling,
    SemiSupervision,
    TokenAugmentation,
)
from core.tokens.augment import TokenAugment, TokenTable, augmented_copies, copy_sources
from core.tokens.data import token_dataset
from core.tokens.decide import OFFSETS
from core.tokens.spans import spans
from core.train.config import TOKEN_LR, RunConfig
from core.train.estimates import TOKEN_BATCH, estimate_seconds, step_plan

needs_minilm = pytest.mark.skipif(not assets.is_ready("minilm"), reason="the MiniLM asset is not fetched")

RARE = TokenAugmentation(mention=0.3, shuffle=0.3, copies=2, types=["LOC"])


def small_corpus(n: int = 60, seed: int = 0):
    """Sentences with PER in most, ORG in some, LOC in a few; every fourth without an entity."""
    rng = np.random.default_rng(seed)
    tokens, tags, split = [], [], []
    names = {"PER": ["Ann", "Bo Li", "Cy"], "ORG": ["Acme Corp", "Unesco"], "LOC": ["Oslo", "New York"]}
    for i in range(n):
        words, marks = ["we", "saw"], ["O", "O"]
        kinds = [] if i % 4 == 0 else ["PER"] + (["ORG"] if i % 3 == 0 else []) + (["LOC"] if i % 7 == 1 else [])
        for kind in kinds:
            mention = names[kind][int(rng.integers(len(names[kind])))].split()
            words += [*mention, "and"]
            marks += [f"B-{kind}"] + [f"I-{kind}"] * (len(mention) - 1) + ["O"]
        tokens.append([*words, "today"])
        tags.append([*marks, "O"])
        split.append(0 if i < n * 0.7 else (1 if i < n * 0.85 else 2))
    return token_dataset("small", tokens, tags, np.array(split))


# ---------------------------------------------------------------------- the setting


def test_token_augmentation_round_trips_and_old_configs_load_without_it():
    m = Mitigations(resample=Resampling(method="sqrt"), token_augment=RARE)
    back, unknown = Mitigations.from_dict(m.to_dict())
    assert back == m and unknown == {}
    stored = m.to_dict()
    del stored["token_augment"]  # a config stored before the setting existed
    old, unknown = Mitigations.from_dict(stored)
    assert old.token_augment == TokenAugmentation() and not old.token_augment.active and unknown == {}
    cfg = RunConfig(version_id=1, model="minilm", mitigations=m)
    assert RunConfig.from_dict(cfg.to_dict()).mitigations.token_augment == RARE
    assert "token_augment=mention 0.3+shuffle 0.3 ×2 [LOC]" in m.active


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"mention": 1.5}, "mitigations.token_augment.mention"),
        ({"shuffle": -0.1}, "mitigations.token_augment.shuffle"),
        ({"copies": 0}, "mitigations.token_augment.copies"),
        ({"copies": 11}, "mitigations.token_augment.copies"),
        ({"types": "LOC"}, "mitigations.token_augment.types"),
        ({"types": [""]}, "mitigations.token_augment.types"),
    ],
)
def test_token_augmentation_is_validated(change, words):
    with pytest.raises(ValueError, match=words):
        Mitigations(token_augment=dataclasses.replace(RARE, **change)).validate()


def test_token_augmentation_in_words():
    m = Mitigations(resample=Resampling(method="class_balanced"), token_augment=RARE)
    assert mitigation_words(m) == [
        "Class-balanced sampling (resampling)",
        "Mention replacement 0.3 · Shuffle within segments 0.3 · 2 copies per sentence · only sentences with LOC",
    ]
    assert setting_name("mitigations.token_augment.mention") == "augmentation: mention replacement"
    assert setting_value("mitigations.token_augment.types", ["LOC", "ORG"]) == "LOC, ORG"
    assert setting_value("mitigations.token_augment.types", []) == "all"
    assert RunConfig(version_id=1, model="minilm", mitigations=m).display_name().endswith("only sentences with LOC")


# ---------------------------------------------------------------------- what applies


def test_what_applies_to_a_token_run_passes():
    counts = {"(no entity)": 10, "PER": 30, "LOC": 5}
    for method in ("class_balanced", "sqrt", "random_over", "random_under"):
        for loss in ("focal", "balanced_softmax", "ldam", "logit_adjusted"):
            m = Mitigations(resample=Resampling(method=method), loss=LossSettings(name=loss, class_weights="inverse"), token_augment=RARE)
            assert check(m, modality="tokens", finetune="full", train_counts=counts, entity_types=["LOC", "PER"]) == []


def test_what_does_not_apply_to_a_token_run_is_refused_in_words():
    counts = {"(no entity)": 10, "PER": 30}

    def problems(m: Mitigations, finetune: str = "full") -> list[str]:
        return check(m, modality="tokens", finetune=finetune, train_counts=counts, n_unlabelled=50, entity_types=["PER"])

    smote = problems(Mitigations(resample=Resampling(method="smote")))
    assert smote == [TOKEN_REFUSALS["feature_sampler"].format(method="smote") + "."]
    assert "a token run draws whole sentences" in smote[0] and "linear probe" not in smote[0]
    assert problems(Mitigations(clean=Cleaning(action="drop"))) == ["in-run cleaning does not apply to token data yet: set it to none."]
    assert problems(Mitigations(semi=SemiSupervision(method="pseudo_label"))) == [TOKEN_REFUSALS["semi"] + "."]
    assert problems(Mitigations(decision=Decision(threshold_moving=True))) == [TOKEN_REFUSALS["threshold_moving"] + "."]
    assert problems(Mitigations(decision=Decision(abstain_below=0.5))) == [TOKEN_REFUSALS["abstain"] + "."]
    assert problems(Mitigations(), finetune="linear_probe") == [TOKEN_REFUSALS["linear_probe"] + "."]
    unknown = problems(Mitigations(token_augment=TokenAugmentation(mention=0.2, types=["MISC"])))
    assert unknown == ["token augmentation names entity types without train mentions: MISC. Pick from PER."]
    # the token augmentation on a classification dataset
    text = check(Mitigations(token_augment=RARE), modality="text", finetune="full", train_counts={"a": 5, "b": 5})
    assert text and "needs token (NER) data; this dataset is text" in text[0]
    # the O offset: a token decision, refused elsewhere, passed on token data
    offset = Mitigations(decision=Decision(o_offset=True))
    assert check(offset, modality="image", finetune="full", train_counts={"a": 5, "b": 5}) == [
        "fewer invented entities (the O offset) needs token (NER) data; this dataset is image. Turn it off."
    ]
    assert problems(offset) == []
    with pytest.raises(ValueError, match=r"decision\.o_offset must be true or false"):
        Mitigations(decision=Decision(o_offset=1)).validate()  # type: ignore[arg-type]


def test_the_worker_refuses_what_does_not_apply_with_the_same_words():
    pytest.importorskip("torch")
    from core.tokens.train import prepare_tokens

    ds = small_corpus()
    for m, key in (
        (Mitigations(resample=Resampling(method="smote")), "feature_sampler"),
        (Mitigations(clean=Cleaning(action="drop")), "clean"),
        (Mitigations(decision=Decision(abstain_below=0.4)), "abstain"),
    ):
        cfg = RunConfig(version_id=1, model="minilm", mitigations=m)
        with pytest.raises(ValueError) as err:
            prepare_tokens(ds, cfg)
        assert str(err.value) == TOKEN_REFUSALS[key].format(method="smote") + "."
    with pytest.raises(ValueError, match="a token-classification run fine-tunes the encoder"):
        prepare_tokens(ds, RunConfig(version_id=1, model="minilm", finetune="linear_probe"))


# ---------------------------------------------------------------------- presets, epochs, plans


def test_the_rare_types_preset():
    assert list(presets_for("tokens")) == ["baseline", "rare_types"]
    assert list(presets_for("image")) == ["baseline", "long_tail", "noisy_labels", "missing_class"]
    m = preset("rare_types", modality="tokens")
    assert m == Mitigations(
        resample=Resampling(method="sqrt"),
        token_augment=TokenAugmentation(mention=0.3, lwtr=0.3, synonym=0.3, shuffle=0.3, copies=1),
        decision=Decision(o_offset=True),
    )
    assert check(m, modality="tokens", finetune="full", train_counts={"(no entity)": 9, "movie": 2, "tvshow": 1},
                 entity_types=["movie", "tvshow"]) == []  # fmt: skip
    assert preset("baseline", modality="tokens") == Mitigations()
    with pytest.raises(ValueError, match="not for tokens data"):
        preset("long_tail", modality="tokens")
    # the types outside the head group (≤ 100 train mentions), rarest first; all head: the rarest alone
    assert rare_types({"person": 364, "geo-loc": 218, "movie": 27, "tvshow": 28, "facility": 84}) == ["movie", "tvshow", "facility"]
    assert rare_types({"LOC": 7140, "PER": 6600, "ORG": 6321, "MISC": 3438}) == ["MISC"]
    assert rare_types({"A": 5, "B": 0}) == ["A"] and rare_types({}) == []


def test_token_train_counts_sentences_mentions_and_tags():
    ds = small_corpus()
    t = token_train(ds)
    train = np.flatnonzero(ds.split == 0)
    assert sum(t.sentences.values()) == len(train) == len(t.labels)
    mentions = {k: sum(1 for i in train for kind, _, _ in spans(ds.tags[i]) if kind == k) for k in ("PER", "ORG", "LOC")}
    assert t.mentions == {k: n for k, n in sorted(mentions.items(), key=lambda kv: -kv[1]) if n}
    assert next(iter(t.tags)) == "O" and sum(t.tags.values()) == sum(len(ds.tags[i]) for i in train)
    assert t.rare == rare_types(t.mentions)
    # the loss preview says tags and words
    words = loss_preview(LossSettings(class_weights="inverse"), t.tags, per="tag").words
    assert "train words" in words[0] and "a word of" in words[0]


def test_an_epoch_adds_the_copies_of_the_sentences_holding_the_types():
    t = token_train(small_corpus())
    holding = sum(1 for c in t.held if "LOC" in c)
    e = token_epoch(Mitigations(token_augment=RARE), t)
    assert e.drawn == e.before and sum(e.copies.values()) == pytest.approx(2 * holding)
    assert e.sentences == pytest.approx(len(t.labels) + 2 * holding)
    assert e.mentions_after["LOC"] == pytest.approx(3 * t.mentions["LOC"])  # every LOC sentence and its two copies
    balanced = token_epoch(Mitigations(resample=Resampling(method="class_balanced")), t)
    assert sum(balanced.copies.values()) == 0 and len(set(np.round(list(balanced.drawn.values()), 6))) == 1
    assert token_epoch(Mitigations(), t).after == token_epoch(Mitigations(), t).before


def test_the_step_plan_counts_sentences_and_copies():
    ds = small_corpus(200)
    n_train = int((ds.split == 0).sum())
    base = RunConfig(version_id=1, model="auto", epochs=2)
    plan = step_plan(base, ds, gpu=False)
    assert plan.batch == TOKEN_BATCH[False] == 32 and plan.auto_batch
    assert plan.steps_per_epoch == -(-n_train // 32) and plan.steps == 2 * plan.steps_per_epoch and plan.lr == pytest.approx(TOKEN_LR)
    assert step_plan(dataclasses.replace(base, batch_size=0), ds, gpu=True).batch == TOKEN_BATCH[True]
    t = token_train(ds)
    copies = 2 * sum(1 for c in t.held if "LOC" in c)
    augmented = step_plan(dataclasses.replace(base, mitigations=Mitigations(token_augment=RARE)), ds, gpu=False)
    assert augmented.epoch_items == n_train + copies and augmented.steps_per_epoch == -(-(n_train + copies) // 32)
    assert estimate_seconds(dataclasses.replace(base, mitigations=Mitigations(token_augment=RARE)), ds) > estimate_seconds(base, ds)


def test_the_token_batch_is_the_workers():
    pytest.importorskip("torch")
    from core.tokens.train import CPU_BATCH, GPU_BATCH

    assert TOKEN_BATCH == {False: CPU_BATCH, True: GPU_BATCH}


# ---------------------------------------------------------------------- the epoch hook


def test_copy_sources_say_where_augmented_copies_come_from():
    ds = small_corpus()
    tokens, tags = [list(s) for s in ds.items], [list(t) for t in ds.tags]
    settings = TokenAugment(mention=0.5, shuffle=0.5, copies=2, types=("LOC",))
    _, _, sources = augmented_copies(tokens, tags, settings, np.random.default_rng(0))
    assert sources == copy_sources(tags, settings) and len(sources) == 2 * sum(1 for t in tags if any(k == "LOC" for k, _, _ in spans(t)))
    assert copy_sources(tags, TokenAugment(copies=3)) == []  # nothing on: no copies


@needs_minilm
def test_an_augmented_epoch_trains_each_copy_on_its_own_tags():
    import torch

    from core.models.text import load_tokenizer, text_source
    from core.tokens.model import IGNORE, tokenise_words
    from core.tokens.spans import entity_types, tag_names
    from core.tokens.train import MAX_SUBTOKENS, SentenceCopies, TokenInputs

    ds = small_corpus()
    sentences, tags = [list(map(str, s)) for s in ds.items], [list(map(str, t)) for t in ds.tags]
    names = tag_names(entity_types(tags))
    index = {t: i for i, t in enumerate(names)}
    tok = load_tokenizer(text_source("minilm"))
    words = tokenise_words(sentences, tags, tok, index, MAX_SUBTOKENS)
    train = np.arange(40)
    settings = TokenAugment(mention=0.6, shuffle=0.6, copies=2, types=("PER",))
    hook = SentenceCopies(settings, TokenTable.from_train([sentences[i] for i in train], [tags[i] for i in train]))
    inputs = TokenInputs(torch.device("cpu"), words, sentences, tags, names, tok, augment=hook, tag_index=index)
    order = np.random.default_rng(3).permutation(train)

    view = inputs.epoch(order, rng=np.random.default_rng(7))
    # the same draws again: the copies, then the order they are mixed in
    rng = np.random.default_rng(7)
    given_s, given_t = [sentences[i] for i in order], [tags[i] for i in order]
    new_s, new_t, sources = hook(given_s, given_t, rng)
    mixed = rng.permutation(len(order) + len(sources))
    every_s, every_t = given_s + new_s, given_t + new_t
    assert len(sources) == 2 * sum(1 for t in given_t if any(k == "PER" for k, _, _ in spans(t))) > 0
    assert new_s != [given_s[j] for j in sources]  # the copies changed
    assert view.order.tolist() == np.r_[order, order[sources]][mixed].tolist()  # each copy on its source's row
    batches = view.batches(8, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(mixed)))
    for batch, on_device in zip(batches, view.to_device(batches)):
        targets = view.raw(batch, on_device)["targets"]
        expected = [index[tag] for p in batch for tag in every_t[mixed[p]]]
        assert targets.tolist() == expected  # every word's target is its (augmented) sentence's tag
        assert all(targets.ne(IGNORE).tolist())
        assert [len(every_s[mixed[p]]) for p in batch] == view.words.n_words[batch].tolist()  # type: ignore[union-attr]
    # seeded: the same epoch again; the step count (no generator) counts the copies without making them
    again = inputs.epoch(order, rng=np.random.default_rng(7))
    assert again.order.tolist() == view.order.tolist() and torch.equal(again.words.targets, view.words.targets)  # type: ignore[union-attr]
    counted = inputs.epoch(order)
    assert counted.words is None and len(counted.order) == len(view.order)
    # without the hook nothing changes
    plain = TokenInputs(torch.device("cpu"), words, sentences, tags, names, tok, tag_index=index).epoch(order, rng=np.random.default_rng(7))
    assert plain.words is None and plain.order.tolist() == order.tolist()


@pytest.mark.slow
@needs_minilm
def test_a_token_run_with_the_rare_types_preset_trains_through_the_worker(tmp_path, monkeypatch):
    from core.store import Store
    from core.store.artifacts import RunFiles
    from core.train.worker import train_run

    monkeypatch.setenv("GAPSCOPE_HOME", str(tmp_path))
    ds = small_corpus(80)
    store = Store(tmp_path)
    vid = store.save_dataset(ds, source="test")
    m = preset("rare_types", modality="tokens")
    cfg = RunConfig(version_id=vid, model="minilm", epochs=1, batch_size=16, lr=1e-4, seed=0, mitigations=m)
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    stored = RunFiles(run_id, home=tmp_path).read_json("config.json") or {}
    assert stored["mitigations"]["token_augment"] == dataclasses.asdict(m.token_augment)
    plan = step_plan(cfg, ds, gpu=False)
    steps = store.metrics(run_id)
    # the page's plan counts the copies the run draws (an expected count: square-root sampling draws anew)
    assert abs(int(steps.step.max()) - plan.steps) <= 1 and plan.epoch_items > int((ds.split == 0).sum())
    # the O offset fitted on val is part of every evaluation, a number of the grid
    offsets = steps.loc[(steps.split == "test") & (steps.name == "o_offset"), "value"]
    assert len(offsets) and offsets.notna().all() and set(offsets) <= set(OFFSETS.tolist())
