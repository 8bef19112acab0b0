"""Token-classification runs: word alignment, the tagger's outputs, sentence predictions, and a run
through the real worker on a CoNLL-2003 slice (slow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import assets
from core.tokens.model import IGNORE, tokenise_words
from core.tokens.train import selection_metric, sentence_predictions, softmax
from core.train.config import TOKEN_SELECTION

needs_minilm = pytest.mark.skipif(not assets.is_ready("minilm"), reason="the MiniLM asset is not fetched")


@needs_minilm
def test_each_word_is_read_at_its_first_sub_token_and_the_rest_is_ignored() -> None:
    from core.models.text import load_tokenizer, text_source

    tok = load_tokenizer(text_source("minilm"))
    sentences = [["Gapscopeification", "in", "Zürich"], ["EU"]]
    tags = [["B-ORG", "O", "B-LOC"], ["B-ORG"]]
    index = {"O": 0, "B-ORG": 1, "I-ORG": 2, "B-LOC": 3}
    words = tokenise_words(sentences, tags, tok, index, max_length=64)
    enc = tok(sentences[0], is_split_into_words=True)
    first = [enc.word_ids().index(w) for w in range(3)]
    assert words.first[0, :3].tolist() == first
    assert first[1] - first[0] > 1  # the long word has several sub-tokens: only its first is read
    assert words.targets[0, :3].tolist() == [1, 0, 3]
    assert words.first[1, 1:].tolist() == [-1, -1] and words.targets[1, 1:].tolist() == [IGNORE, IGNORE]
    batch = words.batch(np.array([0, 1]), torch.device("cpu"))
    assert batch["targets"].tolist() == [1, 0, 3, 1]  # flattened in (sentence, word) order


@needs_minilm
def test_words_past_the_sub_token_limit_are_truncated_and_counted() -> None:
    from core.models.text import load_tokenizer, text_source

    tok = load_tokenizer(text_source("minilm"))
    sentence = ["word"] * 40
    words = tokenise_words([sentence], [["O"] * 40], tok, {"O": 0}, max_length=16)
    assert words.truncated == 40 - 14  # [CLS] and [SEP] take two of the 16 places
    assert (words.targets[0, 14:] == IGNORE).all()


@needs_minilm
def test_the_tagger_returns_one_row_per_kept_word() -> None:
    from core.models.text import text_source
    from core.tokens.model import build_tagger

    tok, tagger, _ = build_tagger(text_source("minilm"), 5)
    words = tokenise_words([["a", "b", "c"], ["d"]], [["O", "O", "O"], ["O"]], tok, {"O": 0}, max_length=32)
    batch = words.batch(np.array([0, 1]), torch.device("cpu"))
    targets = batch.pop("targets")
    tagger.eval()
    assert tagger(batch).shape == (4, 5) == (len(targets), 5)


def test_sentence_prediction_is_the_rarest_predicted_type_and_its_lowest_span_confidence() -> None:
    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]
    probs = [np.array([[0, 0, 0, 0.9, 0.1], [0, 0, 0, 0.2, 0.7], [1, 0, 0, 0, 0], [0.4, 0.6, 0, 0, 0]]), np.eye(5)[[0, 0]]]
    labels, conf = sentence_predictions(pred, probs, names, ["(no entity)", "LOC", "PER"], {"LOC": 100, "PER": 5})
    assert labels.tolist() == [2, 0]  # PER has fewer train mentions than LOC
    assert conf[0] == pytest.approx(0.6) and conf[1] == 1.0


def test_a_token_run_selects_on_an_entity_metric() -> None:
    assert selection_metric("macro_f1") == "entity_f1_macro"
    assert selection_metric("accuracy") == "entity_f1_micro"
    assert all(v.startswith(("entity_", "token_", "confident_")) for v in TOKEN_SELECTION.values())
    z = np.array([[1.0, 2.0, 3.0]])
    assert softmax(z).sum() == pytest.approx(1.0) and softmax(z, 0.5)[0, 2] > softmax(z)[0, 2]


@pytest.mark.slow
@needs_minilm
@pytest.mark.skipif(not assets.is_ready("conll2003"), reason="the CoNLL-2003 asset is not fetched")
def test_a_token_run_trains_through_the_worker_and_writes_entity_metrics(tmp_path, monkeypatch) -> None:
    from core.data.demos import load_conll2003
    from core.store import Store
    from core.store.artifacts import RunFiles
    from core.tokens.train import read_word_probs
    from core.train.config import RunConfig
    from core.train.worker import train_run

    monkeypatch.setenv("GAPSCOPE_HOME", str(tmp_path))
    ds = load_conll2003().dataset
    rng = np.random.default_rng(0)
    keep = np.concatenate([rng.choice(np.flatnonzero(ds.split == s), n, replace=False) for s, n in ((0, 200), (1, 60), (2, 60))])
    ds = ds.subset(np.sort(keep))
    store = Store(tmp_path)
    vid = store.save_dataset(ds, source="test")
    cfg = RunConfig(version_id=vid, model="minilm", epochs=2, batch_size=16, lr=1e-4, seed=0)
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    m = store.metrics(run_id)
    test = m[m.split == "test"]
    names = set(test.name)
    assert {"entity_f1_micro", "entity_f1_macro", "spurious_rate", "confident_spurious_rate", "token_ece", "token_accuracy"} <= names
    last = test[test.step == test.step.max()].set_index("name").value
    assert last["token_accuracy"] > 0.8  # most tokens are O: even two short epochs get those
    assert "test_ts" in set(m.split)  # temperature scaling on the val words
    per_type = [n for n in names if n.startswith("f1/")]
    assert per_type  # per-type F1 under the dataset's class index of each type
    preds = store.predictions(run_id)
    assert len(preds) and set(preds.item) <= set(np.flatnonzero(ds.split == 2))
    files = RunFiles(run_id, home=tmp_path)
    rows, probs, tags = read_word_probs(files.folder, int(test.step.max()))  # type: ignore[misc]
    assert len(rows) == 60 and tags[0] == "O"
    assert [len(p) for p in probs] == [len(ds.items[r]) for r in rows]
    assert all(np.allclose(p.sum(axis=1), 1.0, atol=1e-2) for p in probs)


def test_word_shapes_name_what_an_uncased_vocabulary_cannot_see() -> None:
    from core.tokens.model import SHAPES, word_shape

    assert [SHAPES[word_shape(w)] for w in ["house", "Paris", "NATO", "1996-08-22", "--", "eBay", "I"]] == [
        "lower", "Capitalised", "ALL CAPS", "digit", "punctuation", "other", "Capitalised",
    ]  # fmt: skip


@needs_minilm
def test_each_kept_word_carries_its_shape_in_the_batch() -> None:
    from core.models.text import load_tokenizer, text_source
    from core.tokens.model import word_shape

    tok = load_tokenizer(text_source("minilm"))
    sentences = [["Peter", "visited", "NATO"], ["in", "1996"]]
    words = tokenise_words(sentences, None, tok, {}, max_length=32)
    batch = words.batch(np.array([0, 1]), torch.device("cpu"), with_targets=False)
    assert batch["shapes"].tolist() == [word_shape(w) for s in sentences for w in s]


def test_every_word_weighs_the_same_whatever_the_batch_it_lands_in() -> None:
    from core.mitigate.criterion import make_criterion
    from core.mitigate.settings import LossSettings
    from core.tokens.train import PerWordLoss

    loss = PerWordLoss(make_criterion(LossSettings(), np.array([10, 10, 10])), words_per_batch=10.0)
    rng = torch.Generator().manual_seed(0)
    z = torch.randn(22, 3, generator=rng)
    y = torch.randint(0, 3, (22,), generator=rng)
    per_word = torch.nn.functional.cross_entropy(z, y, reduction="none")
    short, long = loss(z[:2], y[:2]), loss(z[2:], y[2:])  # a batch of 2 words and one of 20
    torch.testing.assert_close(short, per_word[:2].sum() / 10.0)
    torch.testing.assert_close(long, per_word[2:].sum() / 10.0)
    torch.testing.assert_close(short + long, per_word.sum() / 10.0)  # the same total as one batch of every word
    loss.begin_epoch(0, 3)  # passed on to the criterion (deferred re-weighting)
