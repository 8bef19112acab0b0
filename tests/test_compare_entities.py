"""Token runs compared (``core.compare.entities``): per-sentence sums that give
``core.metrics.entities``' numbers (seqeval's entity F1 among them), paired bootstrap intervals over
sentences, the entities fixed and introduced, galleries and per-type tables read from stored runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from core.compare.entities import (
    BOOT_METRICS,
    TokenAnswers,
    diff_counts,
    entity_diff,
    marked_pieces,
    metrics_from_sums,
    paired_entity_bootstrap,
    seeds_entity_bootstrap,
    sentence_sums,
    type_f1,
)
from core.metrics.entities import evaluate_entities
from core.tokens.spans import spans, tag_names
from tests.conftest import ROOT
from tests.test_token_runs_page import conll_slice, needs_conll, write_token_run

TYPES = ["LOC", "ORG", "PER"]
NAMES = tag_names(TYPES)  # the model has no MISC tags: MISC is a dropped type


def _sentences(rng: np.random.Generator, n: int) -> list[list[str]]:
    """Random IOB2 sentences of 3–12 tokens, entities of LOC, ORG, PER and (rarely) MISC."""
    out = []
    for _ in range(n):
        tags: list[str] = []
        length = int(rng.integers(3, 13))
        while len(tags) < length:
            if rng.random() < 0.35:
                kind = str(rng.choice([*TYPES, "MISC"], p=[0.3, 0.25, 0.35, 0.1]))
                size = int(rng.integers(1, 4))
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (size - 1)
            else:
                tags.append("O")
        out.append(tags[:length])
    return out


def _noisy_probs(rng: np.random.Generator, truth: list[list[str]], right: float, names: list[str] = NAMES) -> list[np.ndarray]:
    """A tagger's probabilities: each token's true tag (MISC → O, the model lacks it) with chance
    ``right``, else another tag; the chosen tag gets 0.5–0.999 of the mass."""
    index = {t: i for i, t in enumerate(names)}
    out = []
    for seq in truth:
        p = np.zeros((len(seq), len(names)))
        for i, tag in enumerate(seq):
            want = index.get(tag, 0)
            pick = want if rng.random() < right else int(rng.integers(0, len(names)))
            top = rng.uniform(0.5, 0.999)
            p[i] = (1 - top) / (len(names) - 1)
            p[i, pick] = top
        out.append(p)
    return out


def _answers(truth, probs, *, keys=None, tau=0.9) -> TokenAnswers:
    n = len(truth)
    keys = np.arange(n) if keys is None else np.asarray(keys)
    return TokenAnswers(keys, keys.copy(), [[f"w{i}" for i in range(len(t))] for t in truth], truth, probs, list(NAMES), tau)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sentence_sums_give_the_entity_metrics_and_seqeval_f1(seed):
    rng = np.random.default_rng(seed)
    truth = _sentences(rng, 80)
    probs = _noisy_probs(rng, truth, right=0.7)
    ev = evaluate_entities(truth, probs, NAMES, tau=0.8, dropped_types=["MISC"])
    types = list(ev.types)
    x = sentence_sums(ev, types)
    assert x.shape[0] == 80
    got = metrics_from_sums(x.sum(axis=0), len(types))
    want = ev.summary()
    assert want["n_dropped_type_mentions"] > 0 and want["n_pred_spans"] > 0  # the fixture exercises every rate
    for m in BOOT_METRICS:
        assert float(got[m]) == pytest.approx(want[m], abs=1e-12, nan_ok=True), m
    per_type = ev.per_type()
    f1 = type_f1(x.sum(axis=0), len(types))
    for i, t in enumerate(types):
        assert f1[i] == pytest.approx(per_type[t]["f1"], abs=1e-12, nan_ok=True), t
    # with the columns of another type order (and an extra type nobody has) the numbers stay
    other = sentence_sums(ev, ["ZZZ", *reversed(types)])
    again = metrics_from_sums(other.sum(axis=0), len(types) + 1)
    assert all(float(again[m]) == pytest.approx(float(got[m]), nan_ok=True) for m in BOOT_METRICS)
    with pytest.raises(ValueError, match="missing"):
        sentence_sums(ev, types[:1])


def test_a_resample_is_the_metric_of_the_resampled_sentences():
    """A weight vector over sentences scores the same as evaluating the drawn sentences again."""
    rng = np.random.default_rng(3)
    truth = _sentences(rng, 40)
    probs = _noisy_probs(rng, truth, right=0.75)
    ev = evaluate_entities(truth, probs, NAMES, tau=0.8, dropped_types=["MISC"])
    x = sentence_sums(ev, list(ev.types))
    draw = rng.integers(0, 40, size=40)
    w = np.bincount(draw, minlength=40).astype(float)
    got = metrics_from_sums(w @ x, len(ev.types))
    again = evaluate_entities([truth[i] for i in draw], [probs[i] for i in draw], NAMES, tau=0.8, dropped_types=["MISC"]).summary()
    for m in BOOT_METRICS:
        assert float(got[m]) == pytest.approx(again[m], abs=1e-12, nan_ok=True), m


def test_an_interval_excludes_zero_where_run_b_fixes_many_entities():
    rng = np.random.default_rng(4)
    truth = _sentences(rng, 150)
    weak = _answers(truth, _noisy_probs(rng, truth, right=0.55))
    strong = _answers(truth, _noisy_probs(rng, truth, right=0.97))
    ivs = paired_entity_bootstrap(weak, strong, n_boot=400)
    f1 = ivs["entity_f1_micro"]
    assert f1.low > 0 and f1.verdict == "better" and f1.delta == pytest.approx(f1.b - f1.a)
    assert ivs["entity_f1_macro"].verdict == "better" and ivs["spurious_rate"].verdict == "better"  # lower is better
    assert ivs["spurious_rate"].high < 0
    assert f1.a == pytest.approx(weak.evaluation().summary()["entity_f1_micro"])  # the point estimate is the direct F1
    assert f1.b == pytest.approx(strong.evaluation().summary()["entity_f1_micro"])
    assert {"f1:LOC", "f1:ORG", "f1:PER"} <= set(ivs)  # per-type F1 changes with intervals
    assert ivs["f1:PER"].verdict == "better"
    back = paired_entity_bootstrap(strong, weak, n_boot=400)
    assert back["entity_f1_micro"].verdict == "worse"
    same = paired_entity_bootstrap(weak, weak, n_boot=200)
    assert all(iv.low == iv.high == 0 and iv.verdict == "no clear difference" for iv in same.values())
    assert paired_entity_bootstrap(weak, _answers(truth, weak.probs, keys=np.arange(1000, 1150))) == {}  # no shared sentence


def test_the_seeds_bootstrap_averages_the_pairs_and_resamples_sentences_together():
    rng = np.random.default_rng(7)
    truth = _sentences(rng, 120)
    weak = [_answers(truth, _noisy_probs(rng, truth, right=r)) for r in (0.5, 0.6, 0.55)]
    strong = [_answers(truth, _noisy_probs(rng, truth, right=r)) for r in (0.95, 0.9, 0.97)]
    metrics = ("entity_f1_micro", "entity_f1_macro", "spurious_rate")
    # one pair: the paired bootstrap's point and interval (the same seeded weights)
    one = seeds_entity_bootstrap([(weak[0], strong[0])], metrics=metrics, n_boot=300)
    ref = paired_entity_bootstrap(weak[0], strong[0], metrics=metrics, n_boot=300)
    for m in metrics:
        assert (one[m].a, one[m].b, one[m].low, one[m].high) == pytest.approx((ref[m].a, ref[m].b, ref[m].low, ref[m].high))
    # three pairs: the point is the mean of the three changes, inside the interval
    ivs = seeds_entity_bootstrap(list(zip(weak, strong)), metrics=metrics, n_boot=300)
    singles = [paired_entity_bootstrap(a, b, metrics=metrics, n_boot=300) for a, b in zip(weak, strong)]
    for m in metrics:
        assert ivs[m].delta == pytest.approx(np.mean([s[m].delta for s in singles]))
        assert ivs[m].a == pytest.approx(np.mean([s[m].a for s in singles])) and ivs[m].low <= ivs[m].delta <= ivs[m].high
    assert ivs["entity_f1_micro"].verdict == "better" and ivs["spurious_rate"].verdict == "better"
    # the same pair three times is the pair itself: every seed sees the same resampled sentences
    thrice = seeds_entity_bootstrap([(weak[1], strong[1])] * 3, metrics=metrics, n_boot=300)
    again = paired_entity_bootstrap(weak[1], strong[1], metrics=metrics, n_boot=300)
    assert all((thrice[m].low, thrice[m].high) == pytest.approx((again[m].low, again[m].high)) for m in metrics)
    # only the sentences every run scored count; none shared, nothing
    half = _answers(truth[:60], weak[2].probs[:60])
    cut = seeds_entity_bootstrap([(weak[0], strong[0]), (half, strong[2])], metrics=metrics, n_boot=100)
    sub = [_answers(truth[:60], x.probs[:60]) for x in (weak[0], strong[0], strong[2])]
    want = seeds_entity_bootstrap([(sub[0], sub[1]), (half, sub[2])], metrics=metrics, n_boot=100)
    assert all(cut[m].delta == pytest.approx(want[m].delta) for m in metrics)
    far = _answers(truth, weak[0].probs, keys=np.arange(1000, 1120))
    assert seeds_entity_bootstrap([(weak[0], strong[0]), (far, strong[1])]) == {} and seeds_entity_bootstrap([]) == {}


def test_sentences_are_paired_by_key_whatever_their_order():
    rng = np.random.default_rng(5)
    truth = _sentences(rng, 60)
    probs = _noisy_probs(rng, truth, right=0.8)
    a = _answers(truth, probs)
    order = rng.permutation(60)
    shuffled = _answers([truth[i] for i in order], [probs[i] for i in order], keys=order)
    ivs = paired_entity_bootstrap(a, shuffled, n_boot=100)
    assert all(iv.delta == pytest.approx(0.0, abs=1e-12) and iv.low == iv.high == 0 for iv in ivs.values())


def _one_hot(tags: list[str], conf: float = 0.95) -> np.ndarray:
    p = np.full((len(tags), len(NAMES)), (1 - conf) / (len(NAMES) - 1))
    p[np.arange(len(tags)), [NAMES.index(t) for t in tags]] = conf
    return p


def test_entities_fixed_introduced_and_hallucinations_on_a_hand_fixture():
    truth = [
        ["B-PER", "I-PER", "O", "B-LOC", "O"],  # Ann Lee in Paris .
        ["O", "B-ORG", "O", "O"],
        ["O", "O", "O"],
    ]
    pred_a = [
        ["B-PER", "I-PER", "O", "O", "O"],  # PER right, LOC missed
        ["O", "B-PER", "O", "B-LOC"],  # ORG as PER (wrong type), a spurious LOC
        ["O", "O", "O"],
    ]
    pred_b = [
        ["B-PER", "O", "O", "B-LOC", "O"],  # PER cut short (introduced), LOC found (fixed)
        ["O", "B-ORG", "O", "O"],  # ORG fixed, the hallucinations gone
        ["B-ORG", "O", "O"],  # a new spurious ORG
    ]
    a = _answers(truth, [_one_hot(t) for t in pred_a])
    b = _answers(truth, [_one_hot(t, 0.9) for t in pred_b], keys=[0, 1, 2])
    diff = entity_diff(a, b)
    got = {(r.outcome, r.key, r.start, r.end, r.type, r.a, r.b) for r in diff.itertuples()}
    assert got == {
        ("fixed", 0, 3, 4, "LOC", "missed", "right"),
        ("fixed", 1, 1, 2, "ORG", "as PER", "right"),
        ("introduced", 0, 0, 2, "PER", "right", "partly as PER"),
        ("hallucination removed", 1, 1, 2, "PER", "PER", "—"),
        ("hallucination removed", 1, 3, 4, "LOC", "LOC", "—"),
        ("hallucination added", 2, 0, 1, "ORG", "—", "ORG"),
    }
    assert diff_counts(diff) == {"fixed": 2, "introduced": 1, "hallucination removed": 2, "hallucination added": 1}
    assert list(diff["outcome"])[:2] == ["fixed", "fixed"]  # ordered by outcome
    wrong_type = diff[(diff.outcome == "hallucination removed") & (diff.start == 1)].iloc[0]
    assert wrong_type["true"] == "ORG" and wrong_type["conf_a"] == pytest.approx(0.95) and np.isnan(wrong_type["conf_b"])
    assert diff[diff.outcome == "hallucination added"].iloc[0]["true"] == ""
    assert diff_counts(entity_diff(a, a)) == dict.fromkeys(diff_counts(diff), 0)


def test_marked_pieces_split_a_sentence_at_entities_and_the_focus():
    tokens = ["Ann", "Lee", "met", "the", "EU", "in", "Rome"]
    tags = ["B-PER", "I-PER", "O", "O", "B-ORG", "O", "B-LOC"]
    pieces = marked_pieces(tokens, tags, focus=(3, 5))
    assert [(p.text, p.kind, p.focus) for p in pieces] == [
        ("Ann Lee", "PER", False),
        ("met", None, False),
        ("the", None, True),
        ("EU", "ORG", True),
        ("in", None, False),
        ("Rome", "LOC", False),
    ]
    assert " ".join(p.text for p in marked_pieces(tokens, tags)) == " ".join(tokens)
    assert not any(p.focus for p in marked_pieces(tokens, tags))
    assert [p.kind for p in marked_pieces(tokens, tags) if p.kind] == [k for k, _, _ in spans(tags)]


def test_the_compare_module_is_torch_free():
    code = "import sys; import core.compare.entities; print('torch' in sys.modules, 'streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert out.stdout.strip() == "False False", out.stderr


# ------------------------------------------------------------------ from stored runs


@pytest.fixture
def stored_runs(store):
    """A weak and a strong token run written by ``TokenMetricWriter`` (``tests.test_token_runs_page``)."""
    ds = conll_slice()
    vid = store.save_dataset(ds, source="demo:conll2003")
    return store, [
        write_token_run(store, vid, ds, name=n, rights=r, seed=s) for n, r, s in (("weak", (0.6, 0.7), 1), ("strong", (0.8, 0.95), 2))
    ]


@needs_conll
def test_stored_token_runs_compare_with_their_metric_rows(stored_runs):
    from core.compare.entities import (
        compare_entities_to_reference,
        diff_examples,
        dropped_types,
        entity_gallery,
        token_answers,
        type_confusion,
        type_table,
    )
    from core.metrics.keys import per_class_key
    from core.metrics.results import RunResults

    store, (weak, strong) = stored_runs
    results = [RunResults(store, weak), RunResults(store, strong)]
    ds = store.load_dataset(int(results[0].row.version_id))
    comps = compare_entities_to_reference(results, [ds, ds], n_boot=300)
    ivs = comps[strong].intervals
    for m in ("entity_f1_micro", "entity_f1_macro", "confident_spurious_rate", "token_ece"):
        assert ivs[m].a == pytest.approx(results[0].at(m, 20), abs=2e-3), m  # word probabilities are stored as float16
        assert ivs[m].b == pytest.approx(results[1].at(m, 20), abs=2e-3), m
    assert ivs["entity_f1_micro"].verdict == "better" and ivs["entity_f1_micro"].low > 0
    per = per_class_key("f1", list(ds.class_names).index("PER"))
    assert ivs[per].a == pytest.approx(results[0].per_class("f1", step=20)[list(ds.class_names).index("PER")], abs=2e-3)
    a, b = token_answers(results[0], ds), token_answers(results[1], ds)
    assert a is not None and b is not None and len(a.keys) == 60 and a.dropped == ["MISC"]
    assert dropped_types(results[1], ds) == ["MISC"]
    fixed = diff_examples(a, b, entity_diff(a, b), "fixed", n=5)
    assert fixed and all(e.tags_b[e.start] == e.true_tags[e.start] and e.a != "right" for e in fixed)
    gallery = entity_gallery(results[1], ds)
    assert gallery and all(e.confidence >= results[1].tau and len(e.pred_tags) == len(e.tokens) for e in gallery)
    assert all(e.pred_tags[e.start] == f"B-{e.predicted}" and (e.true is None) == (e.kind == "spurious") for e in gallery)
    table = type_table(results[1], ds)
    assert list(table["type"])[-1] == "MISC" and table.set_index("type").loc["MISC", "train mentions"] == 0
    assert table.set_index("type").loc["MISC", "group"] == "tail"
    assert table.set_index("type").loc["PER", "f1"] == pytest.approx(results[1].per_class("f1", step=20)[list(ds.class_names).index("PER")])
    labels, counts = type_confusion(results[1])  # type: ignore[misc]
    assert labels[0] == "O" and counts.shape == (len(labels), len(labels)) and counts[0, 0] == 0


@needs_conll
def test_runs_without_word_probabilities_get_no_interval(stored_runs):
    from core.compare.entities import compare_entities_to_reference, token_answers
    from core.metrics.results import RunResults

    store, (weak, strong) = stored_runs
    for path in (store.home / "runs" / str(strong) / "evals").glob("*_tokens.npz"):
        path.unlink()
    results = [RunResults(store, weak), RunResults(store, strong)]
    ds = store.load_dataset(int(results[0].row.version_id))
    assert token_answers(results[1], ds) is None
    comp = compare_entities_to_reference(results, [ds, ds])[strong]
    assert comp.intervals == {} and "no stored word probabilities" in (comp.why_none or "")
