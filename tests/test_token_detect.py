"""Token label errors: word vectors (core.tokens.embed) and the detector (core.tokens.detect).

The detector tests run on synthetic sentences (names of four entity types among filler words, word
vectors that cluster by type as an encoder's do) with noise from ``core.tokens.corrupt.inject_noise``;
the embedding tests run the real tokenizer with a counting fake encoder. Only the tests marked slow
load MiniLM.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from core.errors import DataError
from core.tokens import detect, embed
from core.tokens.corrupt import inject_noise
from core.tokens.spans import entity_types, spans, tag_names
from tests.conftest import needs_asset

# --------------------------------------------------------------------------- a synthetic corpus

TYPES = ("PER", "LOC", "ORG", "MISC")
FILLER = ["the", "a", "of", "in", "on", "said", "that", "was", "for", "with", "by", "to", "and", "at", "from", "his", "her", "new"]


def _corpus(n: int = 700, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of filler words holding 1-2 names; a name is 1-3 capitalised words, drawn from its
    type's 100 words or from 8 words every type shares (as "Jordan" is a person, a country, a
    river), so names recur as they do in news text and some can only be read in context."""
    rng = np.random.default_rng(seed)
    shared = [f"Amb{chr(97 + i)}{i}" for i in range(8)]
    vocab = {t: [f"{t.title()}{chr(97 + i % 26)}{i}" for i in range(100)] + shared for t in TYPES}
    tokens, tags = [], []
    for _ in range(n):
        words = [str(w) for w in rng.choice(FILLER, int(rng.integers(5, 11)))]
        labels = ["O"] * len(words)
        for _ in range(int(rng.integers(1, 3))):
            kind = TYPES[int(rng.integers(len(TYPES)))]
            name = [str(w) for w in rng.choice(vocab[kind], int(rng.integers(1, 4)))]
            at = int(rng.integers(0, len(words) + 1))
            if at < len(labels) and labels[at].startswith("I-"):
                continue
            words[at:at] = name
            labels[at:at] = [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
        tokens.append(words)
        tags.append(labels)
    return tokens, tags


def _vectors(tokens: list[list[str]], tags: list[list[str]], d: int = 48, seed: int = 0) -> np.ndarray:
    """Word vectors as a contextual encoder's: the centre of the type the word has in this
    sentence (its true tag), plus the word form's own offset and a little noise."""
    rng = np.random.default_rng(seed)
    centres = {t: rng.normal(size=d) * 1.5 for t in ("O", *TYPES)}
    forms: dict[str, np.ndarray] = {}
    rows = []
    for sent, labels in zip(tokens, tags):
        for w, t in zip(sent, labels):
            if w not in forms:
                forms[w] = rng.normal(size=d)
            rows.append(centres[t[2:] or "O"] + forms[w] + 0.5 * rng.normal(size=d))
    return np.asarray(rows, np.float32)


@pytest.fixture(scope="module")
def noisy_corpus():
    tokens, tags = _corpus()
    names = tag_names(entity_types(tags))
    noisy, truth = inject_noise(tokens, tags, sentence_share=0.10, seed=3)
    feats = detect.token_features(tokens, _vectors(tokens, tags), n_components=24, context_components=8, seed=0)
    y, offsets = detect.encode_tags(noisy, names)
    probs = detect.out_of_fold_token_probs(feats, y, offsets, len(names), seed=0)
    return tokens, tags, noisy, truth, names, feats, probs


def _valid_iob2(tags: list[str]) -> bool:
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            return False
        prev = t
    return True


# --------------------------------------------------------------------------- the detector


def test_detector_ranks_corrupted_sentences_far_above_chance(noisy_corpus):
    tokens, tags, noisy, truth, names, _, probs = noisy_corpus
    corrupt = np.array([t is not None for t in truth])
    k = int(corrupt.sum())
    assert 50 <= k <= 80  # 10 % of the sentences holding an entity (all of them here)
    res = detect.detect_token_issues(tokens, noisy, probs, names, seed=0)
    chance = k / len(tokens)
    p_at_k = corrupt[res.ranking[:k]].mean()
    assert p_at_k >= 0.8, (p_at_k, chance)  # chance is 0.1
    # the probe counts: with random probabilities (word-form votes alone) far fewer are found
    rng = np.random.default_rng(0)
    blind = detect.detect_token_issues(tokens, noisy, rng.dirichlet(np.ones(len(names)), len(probs)), names, seed=0)
    assert corrupt[blind.ranking[:k]].mean() <= p_at_k - 0.1
    # the flags: a count from the data, mostly the corrupted sentences
    tp = (res.is_issue & corrupt).sum()
    precision, recall = tp / max(res.n_issues, 1), tp / k
    assert precision >= 0.8 and recall >= 0.6, (precision, recall, res.n_issues, k)
    assert res.n_issues == res.n_confident == len(res.issues)
    # ranked: scores ascending, and the suspect tokens of a corrupted sentence include a changed tag
    assert [i.score for i in res.issues] == sorted(i.score for i in res.issues)
    hits = [i for i in res.issues if corrupt[i.sentence]]
    changed = [set(np.flatnonzero(np.array(noisy[i.sentence]) != np.array(tags[i.sentence])).tolist()) for i in hits]
    assert np.mean([bool(set(i.positions) & c) for i, c in zip(hits, changed)]) >= 0.8
    # most suggestions give back the true tags
    assert np.mean([i.suggested == tags[i.sentence] for i in hits]) >= 0.5


def test_detector_beats_the_reference_ranking(noisy_corpus):
    tokens, _, noisy, truth, names, _, probs = noisy_corpus
    corrupt = np.array([t is not None for t in truth])
    k = int(corrupt.sum())
    y, offsets = detect.encode_tags(noisy, names)
    _, reference = detect.reference_scores(y, probs, offsets)
    ours = detect.detect_token_issues(tokens, noisy, probs, names, seed=0).sentence_score
    p_ref = corrupt[np.argsort(reference, kind="stable")[:k]].mean()
    p_ours = corrupt[np.argsort(ours, kind="stable")[:k]].mean()
    assert p_ours >= p_ref, (p_ours, p_ref)


def test_suggested_tags_are_valid_iob2(noisy_corpus):
    tokens, _, noisy, _, names, _, probs = noisy_corpus
    res = detect.detect_token_issues(tokens, noisy, probs, names, seed=0)
    assert res.issues
    for issue in res.issues:
        assert _valid_iob2(issue.suggested), issue
        assert len(issue.suggested) == len(tokens[issue.sentence])
        assert issue.kinds and set(issue.kinds) <= {"type", "boundary", "missed span", "spurious span", "no change"}
    flat = [names[j] for j in res.suggested]
    for i in range(len(tokens)):
        sent = flat[res.offsets[i] : res.offsets[i + 1]]
        assert _valid_iob2(sent)
        if not res.is_issue[i]:
            assert sent == noisy[i]  # an unflagged sentence keeps its tags


def test_repair_makes_valid_spans_of_one_type():
    names = tag_names(["LOC", "ORG"])
    structure = detect._tag_structure(names)
    idx = {n: i for i, n in enumerate(names)}
    # "I-LOC I-ORG" after O, with ORG more probable over the run: one ORG span
    sug = np.array([idx[t] for t in ["O", "I-LOC", "I-ORG", "O", "I-LOC"]])
    B = np.full((5, len(names)), 0.01)
    B[1:3, idx["I-ORG"]] = 0.9
    B[4, idx["B-LOC"]] = 0.9
    out = detect._repair(sug, np.ones(5, bool), B, np.array([0, 5]), structure)
    assert [names[j] for j in out] == ["O", "B-ORG", "I-ORG", "O", "B-LOC"]


def test_oof_split_never_trains_on_the_sentence_it_scores():
    """Every token of a sentence carries the sentence's own vector and its one random tag: a model
    that saw any of those tokens predicts the rest, one that did not is at chance."""
    rng = np.random.default_rng(0)
    n_sent, per, d, K = 80, 4, 128, 3
    sent_vec = rng.normal(size=(n_sent, d))
    X = np.repeat(sent_vec, per, axis=0) + 0.01 * rng.normal(size=(n_sent * per, d))
    y = np.repeat(rng.integers(0, K, n_sent), per)
    offsets = np.arange(0, n_sent * per + 1, per)
    P = detect.out_of_fold_token_probs(X.astype(np.float32), y, offsets, K, seed=0, C=100.0)
    assert (P.argmax(1) == y).mean() < 0.55  # chance: 1/3
    # the same probe with folds by token (one token of each sentence held out) would know them all
    from sklearn.linear_model import LogisticRegression

    held = np.arange(0, n_sent * per, per)
    train = np.setdiff1d(np.arange(n_sent * per), held)
    leaky = LogisticRegression(C=100.0, max_iter=1000).fit(X[train], y[train])
    assert (leaky.predict(X[held]) == y[held]).mean() > 0.95


class _Spy(ClassifierMixin, BaseEstimator):
    """Records the sentences (column 0 holds the sentence id) each fold trains on and scores."""

    log: ClassVar[list[tuple[set, set]]] = []

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.seen_ = set(X[:, 0].astype(int).tolist())
        return self

    def predict_proba(self, X):
        _Spy.log.append((self.seen_, set(X[:, 0].astype(int).tolist())))
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


def test_oof_folds_hold_out_whole_sentences():
    lengths = np.random.default_rng(1).integers(1, 9, 50)
    offsets = np.r_[0, np.cumsum(lengths)]
    X = np.repeat(np.arange(50), lengths)[:, None].astype(np.float32)
    y = np.random.default_rng(2).integers(0, 3, int(offsets[-1]))
    _Spy.log = []
    detect.out_of_fold_token_probs(X, y, offsets, 3, seed=4, model=_Spy())
    assert len(_Spy.log) == detect.N_FOLDS
    scored = set()
    for seen, scoring in _Spy.log:
        assert not seen & scoring
        scored |= scoring
    assert scored == set(range(50))
    folds = detect.sentence_folds(50, 5, seed=4)
    assert np.bincount(folds).tolist() == [10] * 5


def test_seeded_results_repeat(noisy_corpus):
    tokens, _, noisy, _, names, feats, probs = noisy_corpus
    y, offsets = detect.encode_tags(noisy, names)
    again = detect.out_of_fold_token_probs(feats, y, offsets, len(names), seed=0)
    np.testing.assert_array_equal(again, probs)
    other = detect.out_of_fold_token_probs(feats, y, offsets, len(names), seed=1)
    assert not np.array_equal(other, probs)
    a = detect.detect_token_issues(tokens, noisy, probs, names, seed=0)
    b = detect.detect_token_issues(tokens, noisy, probs, names, seed=0)
    np.testing.assert_array_equal(a.sentence_score, b.sentence_score)
    assert [(i.sentence, i.positions, i.suggested) for i in a.issues] == [(i.sentence, i.positions, i.suggested) for i in b.issues]


def test_probabilities_as_a_list_per_sentence_and_bad_inputs(noisy_corpus):
    tokens, _, noisy, _, names, _, probs = noisy_corpus
    _, offsets = detect.encode_tags(noisy, names)
    per_sentence = [probs[offsets[i] : offsets[i + 1]] for i in range(len(tokens))]
    a = detect.detect_token_issues(tokens, noisy, per_sentence, names, seed=0)
    b = detect.detect_token_issues(tokens, noisy, probs, names, seed=0)
    np.testing.assert_array_equal(a.sentence_score, b.sentence_score)
    with pytest.raises(DataError, match="not one of the tag names"):
        detect.detect_token_issues([["x"]], [["B-FOO"]], np.ones((1, 1)), ["O"], seed=0)
    with pytest.raises(DataError, match="one row per word"):
        detect.detect_token_issues(tokens, noisy, probs[:-1], names, seed=0)


def test_reference_scores_match_the_paper_definitions():
    y = np.array([0, 0, 1, 0, 1])
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.05, 0.95], [0.8, 0.2], [0.8, 0.2]])
    offsets = np.array([0, 3, 5])
    tok, sent = detect.reference_scores(y, probs, offsets)
    np.testing.assert_allclose(tok, [0.9, 0.7, 0.95, 0.8, 0.2])
    np.testing.assert_allclose(sent, [0.7, 0.2])
    # softmin, t = 0.05: the values in the paper's reference implementation's documentation
    s = np.array([0.9, 0.6, 0.0, 0.8, 0.8, 0.8])
    P = np.stack([s, 1 - s], axis=1)
    _, soft = detect.reference_scores(np.zeros(6, np.int64), P, np.array([0, 2, 5, 6]), method="softmin")
    np.testing.assert_allclose(soft, [6.00741787e-01, 1.80056239e-07, 8.0e-01], rtol=1e-6, atol=1e-12)


def test_a_corrupted_span_is_found_in_a_small_hand_made_case():
    tokens = [["Paris", "is", "big"]] * 30 + [["Anna", "met", "Bob"]] * 30
    tags = [["B-LOC", "O", "O"]] * 30 + [["B-PER", "O", "B-PER"]] * 30
    noisy = [list(t) for t in tags]
    noisy[3] = ["B-ORG", "O", "O"]  # a type swap
    noisy[40] = ["B-PER", "O", "O"]  # a deleted span
    names = tag_names(["LOC", "ORG", "PER"])
    y_true, _ = detect.encode_tags(tags, names)
    probs = np.full((len(y_true), len(names)), 0.02)
    probs[np.arange(len(y_true)), y_true] = 1.0
    probs /= probs.sum(1, keepdims=True)  # a probe that learnt the clean tags
    res = detect.detect_token_issues(tokens, noisy, probs, names, seed=0)
    assert sorted(res.ranking[:2].tolist()) == [3, 40]
    found = {i.sentence: i for i in res.issues}
    assert found[3].suggested == ["B-LOC", "O", "O"] and found[3].kinds == ["type"] and found[3].positions == [0]
    assert found[40].suggested == ["B-PER", "O", "B-PER"] and found[40].kinds == ["missed span"]
    assert all(spans(i.suggested) for i in res.issues)


# --------------------------------------------------------------------------- word vectors


class _FakeEncoder:
    """The real tokenizer with a counting stand-in for the encoder: a piece's state is a fixed
    random row of its id (no context), so a word's vector shows which piece it came from."""

    def __init__(self, dim: int = 8) -> None:
        from core.models.text import load_tokenizer, text_source

        self.tokenizer = load_tokenizer(text_source("minilm"))
        self.table = np.random.default_rng(0).normal(size=(self.tokenizer.vocab_size, dim)).astype(np.float32)
        self.dim = dim
        self.loads = 0
        self.batches: list[tuple[int, int]] = []

    def __call__(self, source: str, device: str, engine: str):
        self.loads += 1
        return self.tokenizer, self.forward, self.dim, "cpu", "fake"

    def forward(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        ids = feed["input_ids"]
        self.batches.append(ids.shape)
        assert ids.shape[1] <= embed.MAX_LENGTH
        assert np.all(ids[:, 0] == self.tokenizer.cls_token_id)
        return self.table[ids]

    def first_piece(self, word: str) -> np.ndarray:
        ids = self.tokenizer([[word]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
        return self.table[ids[0] if ids else self.tokenizer.unk_token_id]


@pytest.fixture
def fake_encoder(monkeypatch):
    fake = _FakeEncoder()
    monkeypatch.setattr(embed, "_encoder", fake)
    return fake


@needs_asset("minilm")
def test_embedding_cache_is_hit_on_a_second_call(fake_encoder):
    sentences = [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["EU", "rejects", "German", "call"]]
    progress: list[tuple[int, int]] = []
    first = embed.word_embeddings(sentences, progress=lambda d, n: progress.append((d, n)))
    assert fake_encoder.loads == 1 and len(fake_encoder.batches) == 1  # a repeated sentence is embedded once
    assert progress[-1] == (3, 3)
    assert first.vectors.shape == (10, 8) and first.offsets.tolist() == [0, 4, 6, 10]
    assert embed.is_cached(sentences)
    timing: dict = {}
    second = embed.word_embeddings(sentences, timing=timing)
    assert fake_encoder.loads == 1 and len(fake_encoder.batches) == 1 and timing["cached"]
    np.testing.assert_array_equal(first.vectors, second.vectors)
    np.testing.assert_array_equal(first.windows, second.windows)
    # the first piece of each word ("blackburn" is several pieces)
    np.testing.assert_array_equal(second.sentence(1), np.stack([fake_encoder.first_piece(w) for w in sentences[1]]))
    # other tokens, another file
    embed.word_embeddings([["EU", "rejects"]])
    assert fake_encoder.loads == 2


@needs_asset("minilm")
def test_words_past_128_pieces_are_embedded_in_further_windows(fake_encoder):
    long = [f"Xylophonist{i}" for i in range(120)]  # ~4 pieces a word: ~480 pieces
    short = ["a", "b"]
    emb = embed.word_embeddings([long, short, [], ["", "\u200b", "ok"]], cache=False)
    assert emb.windows[0] >= 4 and emb.windows[1:].tolist() == [1, 0, 1]
    assert emb.vectors.shape[0] == 120 + 2 + 0 + 3
    np.testing.assert_array_equal(emb.sentence(0), np.stack([fake_encoder.first_piece(w) for w in long]))
    assert max(shape[1] for shape in fake_encoder.batches) <= embed.MAX_LENGTH
    # words with no pieces read as [UNK]
    unk = fake_encoder.table[fake_encoder.tokenizer.unk_token_id]
    np.testing.assert_array_equal(emb.sentence(3)[:2], np.stack([unk, unk]))


def test_windows_cover_every_word_once_with_left_context():
    rng = np.random.default_rng(0)
    pieces = rng.integers(1, 6, 90)  # pieces per word
    starts = np.r_[0, np.cumsum(pieces)]
    ids = np.arange(starts[-1])
    segs = embed._windows(ids, starts, 1000, budget=40, context=10)
    rows = np.concatenate([s.rows for s in segs])
    assert rows.tolist() == list(range(1000, 1090))  # each word once, in order
    for k, s in enumerate(segs):
        assert 0 < len(s.ids) <= 40
        words = s.rows - 1000
        assert np.array_equal(s.ids[s.positions], starts[words])  # each position is its word's first piece
        if k:
            assert s.positions[0] > 0  # left context before the first new word
    one = embed._windows(np.arange(7), np.array([0, 3, 7]), 0, budget=126, context=32)
    assert len(one) == 1 and one[0].positions.tolist() == [0, 3]
    huge = embed._windows(np.arange(300), np.array([0, 300]), 0, budget=126, context=32)
    assert len(huge) == 1 and len(huge[0].ids) == 126  # one word longer than a window keeps its first pieces


@pytest.mark.slow
@needs_asset("minilm")
def test_minilm_word_vectors_windows_and_engines():
    """The first window of a long sentence is the sentence cut there; ONNX Runtime and torch agree."""
    words = ("The European Commission said on Thursday it disagreed with German advice to consumers " * 12).split()
    from core.models.text import load_tokenizer, text_source

    tok = load_tokenizer(text_source("minilm"))
    pieces = [len(tok([[w]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]) for w in words]
    fit = int(np.searchsorted(np.cumsum(pieces), embed.MAX_LENGTH - 2, side="right"))
    full = embed.word_embeddings([words], cache=False)
    cut = embed.word_embeddings([words[:fit]], cache=False)
    assert full.windows[0] >= 2 and full.vectors.shape == (len(words), 384)
    np.testing.assert_allclose(full.vectors[:fit], cut.vectors, atol=1e-4)
    sample = [words[:20], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]]
    a = embed.word_embeddings(sample, engine="onnx", cache=False).vectors
    b = embed.word_embeddings(sample, engine="torch", cache=False).vectors
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.9999


def test_importing_the_modules_loads_neither_torch_nor_cleanlab():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, core.tokens.embed, core.tokens.detect; print(sorted(m for m in ('torch', 'transformers', 'cleanlab') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(Path(__file__).parents[1]))
    assert out.stdout.strip() == "[]"
