"""Token-classification (NER) runs side by side: paired bootstrap intervals of the change in entity
metrics over test sentences, per-type F1 changes, the entities one run fixed or broke against
another, each run's most confident hallucinated entities, and its per-type scores with head /
medium / tail types. Torch-free: every run is read from its stored word probabilities
(``RunFiles.word_probs``) at its result's step.

The bootstrap resamples **sentences** (the unit the test split was drawn in; tokens and entities of
one sentence are not independent), ``n`` draws of the ``n`` shared sentences with replacement, and
scores both runs on the same draw (paired, as ``core.compare.intervals`` does for items). Every
metric is a ratio of sums over sentences, so each run's sentences become one matrix (sentences ×
sums, ``sentence_sums``) and a resample is a weight vector: ``W @ X`` gives every metric of every
resample at once, never a seqeval call per resample. The sums, per sentence:

- per entity type t: ``tp`` (predicted spans equal to a true span in start, end and type — seqeval's
  strict IOB2 true positives), ``pred`` (predicted spans of type t), ``true`` (true spans of type t);
  micro-F1 = 2 Σtp / (Σpred + Σtrue), micro precision Σtp / Σpred and recall Σtp / Σtrue; per
  type F1 = 2 tp / (pred + true) (seqeval with ``zero_division=0``), undefined (left out) for a
  type with no true and no predicted span in the resample, as seqeval's report leaves it out;
  macro-F1 = the mean over the types present;
- predicted spans, spurious, spurious with confidence ≥ τ, exact spans of the wrong type with
  confidence ≥ τ; true spans and missed ones; mentions of types absent from train and those a
  confident span of a known type covers (``core.metrics.entities``' categories and rates);
- tokens and tokens whose decoded tag is the true one (token accuracy); known tokens, per
  confidence bin their confidences and hits, and their NLL (token ECE and NLL, as
  ``core.metrics.calibration`` scores them).

With all weights 1 these give ``core.metrics.entities.evaluate_entities``' numbers (the tests check
it against seqeval's report), so the metrics keep one definition. The 95 % interval is the 2.5th–
97.5th percentile of the resampled differences; better / worse only where it excludes zero
(``core.compare.intervals.verdict_of``).

Word probabilities are stored as float16, so a value recomputed here can differ from the stored
metric row in the last digits (a token whose two best tags tie at float16 precision).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.compare.examples import shares_items
from core.compare.intervals import CHUNK, LEVEL, N_BOOT, SEED, Comparison, Interval, bootstrap_weights, verdict_of
from core.metrics.calibration import DEFAULT_N_BINS, NLL_CLIP, _bin_index
from core.metrics.entities import CORRECT, INCORRECT, MISSED, SPURIOUS, EntityEvaluation, evaluate_entities
from core.metrics.keys import per_class_key
from core.tokens.spans import OUTSIDE, spans, split_tag

if TYPE_CHECKING:
    from core.data.dataset import Dataset
    from core.metrics.results import RunResults

__all__ = [
    "BOOT_METRICS",
    "DIFF_OUTCOMES",
    "TOKEN_METRICS",
    "DiffExample",
    "GalleryEntry",
    "Piece",
    "TokenAnswers",
    "compare_entities_to_reference",
    "diff_counts",
    "diff_examples",
    "entity_diff",
    "entity_gallery",
    "marked_pieces",
    "metrics_from_sums",
    "paired_entity_bootstrap",
    "sentence_sums",
    "token_answers",
    "type_f1_keys",
    "type_table",
]

#: The Compare table of token runs, in this order (stored metric rows at each run's result).
TOKEN_METRICS = [
    "entity_f1_micro",
    "entity_f1_macro",
    "entity_precision_micro",
    "entity_recall_micro",
    "spurious_rate",
    "confident_spurious_rate",
    "type_hallucination_rate",
    "forced_known_type_rate",
    "missed_rate",
    "token_accuracy",
    "token_ece",
    "token_nll",
]
#: Metrics whose change gets a paired bootstrap interval over sentences (and per-type F1, ``f1/<c>``).
BOOT_METRICS = tuple(TOKEN_METRICS)  # every metric of the table
#: What happened to an entity from run a to run b (``entity_diff``).
DIFF_OUTCOMES = ("fixed", "introduced", "hallucination removed", "hallucination added")
GALLERY = 12  # hallucinated entities a gallery shows
_SCALARS = 12  # per-sentence scalar sums after the per-type ones (see ``sentence_sums``)


# ------------------------------------------------------------------ per-sentence sums


def _columns(k: int, n_bins: int) -> dict[str, slice]:
    """Where each sum lies in a row of ``sentence_sums`` (k types, n_bins confidence bins)."""
    names = ["tp", "pred", "true"]
    out = {name: slice(i * k, (i + 1) * k) for i, name in enumerate(names)}
    o = 3 * k
    scalars = (
        "n_pred",
        "spurious",
        "conf_spurious",
        "type_hall",
        "n_true",
        "missed",
        "dropped",
        "forced",
        "tokens",
        "token_hits",
        "known",
        "nll",
    )
    out.update({name: slice(o + i, o + i + 1) for i, name in enumerate(scalars)})
    o += len(scalars)
    out["bin_conf"], out["bin_hit"] = slice(o, o + n_bins), slice(o + n_bins, o + 2 * n_bins)
    return out


def n_columns(k: int, n_bins: int = DEFAULT_N_BINS) -> int:
    """Columns of ``sentence_sums`` for ``k`` types."""
    return 3 * k + _SCALARS + 2 * n_bins


def _per_sentence(sentence: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(sentence, weights=weights, minlength=n).astype(np.float64)[:n]


def _by_type(sentence: np.ndarray, kind: np.ndarray, n: int, k: int) -> np.ndarray:
    return np.bincount(sentence * k + kind, minlength=n * k).astype(np.float64).reshape(n, k)


def sentence_sums(ev: EntityEvaluation, types: Sequence[str]) -> np.ndarray:
    """Per sentence of ``ev`` the sums every ``BOOT_METRICS`` metric is a ratio of: (n_sentences,
    ``n_columns(len(types))``), per-type columns in the order of ``types`` (which must hold every
    type of ``ev``). See the module docstring; ``metrics_from_sums`` reads them."""
    index = {t: i for i, t in enumerate(types)}
    missing = [t for t in ev.types if t not in index]
    if missing:
        raise ValueError(f"types must hold every type of the evaluation; missing {missing}")
    k, n = len(types), len(ev.offsets) - 1
    col = _columns(k, ev.n_bins)
    remap = np.array([index[t] for t in ev.types], dtype=np.intp)
    ps, ts = ev.pred_spans, ev.true_spans
    ps_sent = np.searchsorted(ev.offsets, ps.start, side="right") - 1
    ts_sent = np.searchsorted(ev.offsets, ts.start, side="right") - 1
    pk, tk = remap[ps.kind], remap[ts.kind]
    confident = ps.conf >= ev.tau
    out = np.zeros((n, n_columns(k, ev.n_bins)))
    out[:, col["tp"]] = _by_type(ps_sent[ev.pred_cat == CORRECT], pk[ev.pred_cat == CORRECT], n, k)
    out[:, col["pred"]] = _by_type(ps_sent, pk, n, k)
    out[:, col["true"]] = _by_type(ts_sent, tk, n, k)
    out[:, col["n_pred"]] = _per_sentence(ps_sent, n)[:, None]
    out[:, col["spurious"]] = _per_sentence(ps_sent[ev.pred_cat == SPURIOUS], n)[:, None]
    out[:, col["conf_spurious"]] = _per_sentence(ps_sent[confident & (ev.pred_cat == SPURIOUS)], n)[:, None]
    out[:, col["type_hall"]] = _per_sentence(ps_sent[confident & (ev.pred_cat == INCORRECT)], n)[:, None]
    out[:, col["n_true"]] = _per_sentence(ts_sent, n)[:, None]
    out[:, col["missed"]] = _per_sentence(ts_sent[ev.true_cat == MISSED], n)[:, None]
    mentions, forced = _forced_known(ev)
    out[:, col["dropped"]] = _per_sentence(ts_sent[mentions], n)[:, None]
    out[:, col["forced"]] = _per_sentence(ts_sent[forced], n)[:, None]
    _token_sums(ev, out, col, n)
    return out


def _forced_known(ev: EntityEvaluation) -> tuple[np.ndarray, np.ndarray]:
    """Masks over true spans: of a dropped type (a mention), and of those the ones a confident
    predicted span of a type not dropped overlaps (``EntityEvaluation``'s forced-known rule)."""
    dropped = np.array([t in ev.dropped for t in ev.types], bool)
    ts, ps = ev.true_spans, ev.pred_spans
    mentions = dropped[ts.kind] if len(ts) else np.zeros(0, bool)
    hit = np.zeros(len(ts), bool)
    if dropped.any():
        i, j = ev.pairs
        forced = dropped[ts.kind[j]] & ~dropped[ps.kind[i]] & (ps.conf[i] >= ev.tau)
        hit[j[forced]] = True
    return mentions, hit & mentions


def _token_sums(ev: EntityEvaluation, out: np.ndarray, col: dict[str, slice], n: int) -> None:
    """Tokens, decoded-tag hits, and the calibration sums of the known tokens, per sentence."""
    sent = np.repeat(np.arange(n), np.diff(ev.offsets))
    decoded_hit = np.fromiter(
        (a == b for t, p in zip(ev.true_tags, ev.pred_tags) for a, b in zip(t, p)), dtype=bool, count=int(ev.offsets[-1])
    )
    out[:, col["tokens"]] = _per_sentence(sent, n)[:, None]
    out[:, col["token_hits"]] = _per_sentence(sent[decoded_hit], n)[:, None]
    known = ev.y >= 0
    p, y, s = ev.P[known], ev.y[known], sent[known]
    pred = p.argmax(axis=1) if p.shape[0] else np.zeros(0, np.intp)
    conf = p[np.arange(p.shape[0]), pred]
    hit = (pred == y).astype(np.float64)
    nll = -np.log(np.maximum(p[np.arange(p.shape[0]), y], NLL_CLIP))
    out[:, col["known"]] = _per_sentence(s, n)[:, None]
    out[:, col["nll"]] = _per_sentence(s, n, nll)[:, None]
    b = _bin_index(conf, ev.n_bins)
    cells = s * ev.n_bins + b
    size = n * ev.n_bins
    out[:, col["bin_conf"]] = np.bincount(cells, weights=conf, minlength=size)[:size].reshape(n, ev.n_bins)
    out[:, col["bin_hit"]] = np.bincount(cells, weights=hit, minlength=size)[:size].reshape(n, ev.n_bins)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def type_f1(sums: np.ndarray, k: int) -> np.ndarray:
    """Per-type F1 (..., k) from weighted ``sentence_sums``: 2 tp / (pred + true), NaN for a type
    with no true and no predicted span."""
    s = np.asarray(sums, dtype=np.float64)
    tp, pred, true = s[..., :k], s[..., k : 2 * k], s[..., 2 * k : 3 * k]
    return _ratio(2.0 * tp, pred + true)


def metrics_from_sums(sums: np.ndarray, k: int, n_bins: int = DEFAULT_N_BINS) -> dict[str, np.ndarray]:
    """``BOOT_METRICS`` from weighted ``sentence_sums`` (..., columns); NaN where undefined."""
    s = np.asarray(sums, dtype=np.float64)
    col = _columns(k, n_bins)
    get = lambda name: s[..., col[name]][..., 0]
    tp, pred, true = (s[..., col[name]].sum(axis=-1) for name in ("tp", "pred", "true"))
    f1 = type_f1(s, k)
    present = np.isfinite(f1)
    n_present = present.sum(axis=-1)
    macro = _ratio(np.where(present, f1, 0.0).sum(axis=-1), n_present.astype(np.float64))
    gap = np.abs(s[..., col["bin_hit"]] - s[..., col["bin_conf"]]).sum(axis=-1)
    return {
        "entity_f1_micro": _ratio(2.0 * tp, pred + true),
        "entity_f1_macro": macro,
        "entity_precision_micro": np.where(pred + true > 0, np.nan_to_num(_ratio(tp, pred)), np.nan),
        "entity_recall_micro": np.where(pred + true > 0, np.nan_to_num(_ratio(tp, true)), np.nan),
        "spurious_rate": _ratio(get("spurious"), get("n_pred")),
        "confident_spurious_rate": _ratio(get("conf_spurious"), get("n_pred")),
        "type_hallucination_rate": _ratio(get("type_hall"), get("n_pred")),
        "forced_known_type_rate": _ratio(get("forced"), get("dropped")),
        "missed_rate": _ratio(get("missed"), get("n_true")),
        "token_accuracy": _ratio(get("token_hits"), get("tokens")),
        "token_ece": _ratio(gap, get("known")),
        "token_nll": _ratio(get("nll"), get("known")),
    }


# ------------------------------------------------------------------ a run's answers


@dataclass(frozen=True)
class TokenAnswers:
    """One run's test sentences at its result: ``keys`` the sentences' identities across versions
    (``Dataset.item_ids``), ``rows`` their rows in the run's version, ``tokens`` and ``true`` tags,
    ``probs`` per sentence (n_words, C) over the model's ``tag_names``; ``dropped`` the types of the
    truth the model has no tags for (absent from its train)."""

    keys: np.ndarray
    rows: np.ndarray
    tokens: list[list[str]]
    true: list[list[str]]
    probs: list[np.ndarray]
    tag_names: list[str]
    tau: float

    @property
    def model_types(self) -> list[str]:
        return list(dict.fromkeys(split_tag(t)[1] for t in self.tag_names if t != OUTSIDE))

    @property
    def dropped(self) -> list[str]:
        known = set(self.model_types)
        return sorted({k for seq in self.true for k, _, _ in spans(seq)} - known)

    def evaluation(self, order: np.ndarray | None = None) -> EntityEvaluation:
        """``evaluate_entities`` of these sentences (or of the positions ``order``, in that order)."""
        idx = range(len(self.true)) if order is None else order.tolist()
        return evaluate_entities(
            [self.true[i] for i in idx], [self.probs[i] for i in idx], self.tag_names, tau=self.tau, dropped_types=self.dropped
        )

    def predicted(self) -> list[list[str]]:
        """The decoded IOB2 tags of every sentence (``core.metrics.entities``' decoding rule)."""
        return self.evaluation().pred_tags


def token_answers(res: RunResults, ds: Dataset, *, split: str = "test") -> TokenAnswers | None:
    """Run ``res``'s sentences of ``split`` at its result's step, from its stored word
    probabilities; None before an evaluation, for a classification run, or while the file has not
    arrived."""
    if not res.is_tokens or ds.tags is None:
        return None
    got = res.word_probs(res.result_step, split)
    if got is None:
        return None
    rows, probs, tags = got
    rows = np.asarray(rows, dtype=np.int64)
    return TokenAnswers(
        keys=ds.item_ids()[rows],
        rows=rows,
        tokens=[[str(w) for w in ds.items[r]] for r in rows],
        true=[[str(t) for t in ds.tags[r]] for r in rows],
        probs=[np.asarray(p, dtype=np.float64) for p in probs],
        tag_names=list(tags),
        tau=res.tau,
    )


def _shared(a: TokenAnswers, b: TokenAnswers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shared keys, their positions in a, in b)."""
    common, ia, ib = np.intersect1d(a.keys, b.keys, assume_unique=True, return_indices=True)
    return common, ia, ib


def _types_of(*evs: EntityEvaluation, extra: Iterable[str] = ()) -> list[str]:
    return list(dict.fromkeys([*extra, *(t for ev in evs for t in ev.types)]))


def paired_entity_bootstrap(
    a: TokenAnswers, b: TokenAnswers, *, types: Sequence[str] = (), metrics: Sequence[str] = BOOT_METRICS, n_boot: int = N_BOOT,
    seed: int = SEED, level: float = LEVEL,
) -> dict[str, Interval]:  # fmt: skip
    """The change from run ``a`` to run ``b`` of each metric on the sentences both scored (matched
    by ``keys``), with a paired percentile bootstrap interval over sentences (``n_boot`` resamples,
    seeded); per-type F1 under ``"f1:<type>"`` for each type of ``types`` and of either run. Empty
    when they share no sentence. Each run keeps its own τ (``TokenAnswers.tau``)."""
    return seeds_entity_bootstrap([(a, b)], types=types, metrics=metrics, n_boot=n_boot, seed=seed, level=level)


def seeds_entity_bootstrap(
    pairs: Sequence[tuple[TokenAnswers, TokenAnswers]], *, types: Sequence[str] = (), metrics: Sequence[str] = BOOT_METRICS,
    n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL,
) -> dict[str, Interval]:  # fmt: skip
    """The mean change over seeds of each metric: ``pairs`` holds one (run ``a``, run ``b``) pair per
    seed, all scored on the same sentences. The point is the mean over pairs of each pair's change;
    the interval resamples sentences with one bootstrap weight per sentence shared by every pair (a
    sentence drawn twice counts twice in each seed's runs), so it holds the test sample's
    uncertainty with the seeds' spread averaged in. With one pair it is ``paired_entity_bootstrap``.
    Only the sentences every run scored count; empty when there is none."""
    if not pairs:
        return {}
    common = reduce(np.intersect1d, [x.keys for pair in pairs for x in pair])
    n = len(common)
    if n == 0:
        return {}
    evs = [x.evaluation(np.intersect1d(x.keys, common, assume_unique=True, return_indices=True)[1]) for pair in pairs for x in pair]
    all_types = _types_of(*evs, extra=types)
    nb = evs[0].n_bins
    xs = [sentence_sums(ev, all_types) for ev in evs]  # a₁, b₁, a₂, b₂, …
    x, w = np.hstack(xs), xs[0].shape[1]
    used = np.flatnonzero(x.any(axis=0))  # sums that stay 0 in every resample cost nothing
    rng = np.random.default_rng(seed)
    sums = np.zeros((n_boot, x.shape[1]))
    for start in range(0, n_boot, CHUNK):
        stop = min(start + CHUNK, n_boot)
        sums[start:stop, used] = bootstrap_weights(n, stop - start, rng) @ x[:, used]
    point = [_all_metrics(xi.sum(axis=0), all_types, nb) for xi in xs]
    boot = [_all_metrics(sums[:, j * w : (j + 1) * w], all_types, nb) for j in range(len(xs))]
    tail = 100 * (1 - level) / 2
    out = {}
    for m in [*metrics, *(f"f1:{t}" for t in all_types)]:
        pa, pb = np.array([float(p[m]) for p in point[0::2]]), np.array([float(p[m]) for p in point[1::2]])
        diffs = np.mean([boot[j + 1][m] - boot[j][m] for j in range(0, len(xs), 2)], axis=0)
        diffs = diffs[np.isfinite(diffs)]
        if not (np.isfinite(pa).all() and np.isfinite(pb).all()) or len(diffs) < n_boot // 2:
            continue
        low, high = (_snap(float(v)) for v in np.percentile(diffs, [tail, 100 - tail]))
        out[m] = Interval(
            m,
            float(pa.mean()),
            float(pb.mean()),
            float((pb - pa).mean()),
            low,
            high,
            verdict_of("f1" if m.startswith("f1:") else m, low, high),
        )
    return out


def _snap(v: float) -> float:
    return 0.0 if abs(v) < 1e-12 else v


def _all_metrics(sums: np.ndarray, types: Sequence[str], n_bins: int) -> dict[str, np.ndarray]:
    k = len(types)
    out = metrics_from_sums(sums, k, n_bins)
    f1 = type_f1(sums, k)
    out.update({f"f1:{t}": f1[..., i] for i, t in enumerate(types)})
    return out


def type_f1_keys(class_names: Sequence[str]) -> list[str]:
    """The stored per-type F1 keys of a token dataset's types (``f1/<class index>``; class 0 is "(no entity)")."""
    return [per_class_key("f1", c) for c in range(1, len(class_names))]


def compare_entities_to_reference(
    results: Sequence[RunResults], datasets: Sequence[Dataset], *, n_boot: int = N_BOOT, seed: int = SEED
) -> dict[int, Comparison]:
    """``run id → Comparison`` of every token run but the first against the first: intervals of the
    ``BOOT_METRICS`` and of per-type F1 under its stored key (``f1/<class index>``), so
    ``core.compare.runs.delta_table`` pairs them with the metric rows."""
    ref, ds_ref = results[0], datasets[0]
    base = token_answers(ref, ds_ref)
    out = {}
    for res, ds in zip(results[1:], datasets[1:]):
        if not shares_items(res.store, ref, res):
            out[res.run_id] = Comparison({}, None, "no interval: the runs share no test sentences (another dataset, or other types)")
            continue
        other = token_answers(res, ds)
        if base is None or other is None:
            out[res.run_id] = Comparison({}, None, "no interval: a run has no stored word probabilities at its result's step yet")
            continue
        if np.intersect1d(base.keys, other.keys).size == 0:
            out[res.run_id] = Comparison({}, None, "no interval: the runs share no test sentences")
            continue
        names = [str(c) for c in ds.class_names]
        ivs = paired_entity_bootstrap(base, other, types=names[1:], n_boot=n_boot, seed=seed)
        keyed: dict[str, Interval] = {}
        for m, iv in ivs.items():
            if m.startswith("f1:"):
                kind = m[3:]
                if kind in names:
                    key = per_class_key("f1", names.index(kind))
                    keyed[key] = Interval(key, iv.a, iv.b, iv.delta, iv.low, iv.high, iv.verdict)
            else:
                keyed[m] = iv
        out[res.run_id] = Comparison(keyed, None)
    return out


# ------------------------------------------------------------------ entities fixed and introduced


def _span_conf(probs: np.ndarray, start: int, end: int) -> float:
    return float(np.asarray(probs)[start:end].max(axis=1).min()) if end > start else float("nan")


def _what(pred: list[tuple[str, int, int]], kind: str, start: int, end: int) -> str:
    """What a run predicted over the true span (kind, start, end): "right", "as ORG", "partly as
    ORG" or "missed"."""
    over = [(k, s, e) for k, s, e in pred if s < end and e > start]
    if not over:
        return "missed"
    exact = [k for k, s, e in over if (s, e) == (start, end)]
    if exact:
        return "right" if exact[0] == kind else f"as {exact[0]}"
    return "partly as " + ", ".join(dict.fromkeys(k for k, _, _ in over))


def entity_diff(a: TokenAnswers, b: TokenAnswers) -> pd.DataFrame:
    """Entities whose outcome changed from run ``a`` to run ``b`` on their shared sentences, one row
    each (``DIFF_OUTCOMES``):

    - **fixed**: a true span that b predicts exactly (start, end and type) and a does not;
    - **introduced**: a true span that a predicts exactly and b does not;
    - **hallucination removed**: a's spurious or wrong-type span (``core.metrics.entities``'
      categories) that b does not predict;
    - **hallucination added**: b's spurious or wrong-type span that a does not predict.

    Columns: key, item_a, item_b (rows in each run's version), start, end, type (the true type, or
    the predicted type of a hallucination), true (the true type there, "" for a spurious span),
    outcome, a and b (what each run predicted there: "right", "as ORG", "partly as ORG", "missed",
    or for a hallucination its type or "—"), conf_a, conf_b (the span's confidence, NaN where the
    run predicted no such span). Ordered by outcome, then b's confidence, highest first."""
    common, ia, ib = _shared(a, b)
    pa, pb = a.predicted(), b.predicted()
    records: list[dict[str, Any]] = []
    for key, i, j in zip(common.tolist(), ia.tolist(), ib.tolist()):
        truth = spans(b.true[j])
        sa, sb = spans(pa[i]), spans(pb[j])
        records.extend(_sentence_diff(key, int(a.rows[i]), int(b.rows[j]), truth, sa, sb, a.probs[i], b.probs[j]))
    columns = ["key", "item_a", "item_b", "start", "end", "type", "true", "outcome", "a", "b", "conf_a", "conf_b"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    if frame.empty:
        return frame
    order = {o: i for i, o in enumerate(DIFF_OUTCOMES)}
    frame["_o"] = frame["outcome"].map(order)
    frame["_c"] = frame["conf_b"].fillna(frame["conf_a"])
    return (
        frame.sort_values(["_o", "_c", "key", "start"], ascending=[True, False, True, True])
        .drop(columns=["_o", "_c"])
        .reset_index(drop=True)
    )


def _sentence_diff(
    key: int, item_a: int, item_b: int, truth: list[tuple[str, int, int]], sa: list[tuple[str, int, int]], sb: list[tuple[str, int, int]],
    probs_a: np.ndarray, probs_b: np.ndarray,
) -> list[dict[str, Any]]:  # fmt: skip
    true_set, set_a, set_b = set(truth), set(sa), set(sb)
    true_at = {(s, e): k for k, s, e in truth}
    out = []

    def row(span: tuple[str, int, int], outcome: str, true: str, what_a: str, what_b: str) -> dict[str, Any]:
        kind, s, e = span
        conf_a = _span_conf(probs_a, s, e) if span in set_a else float("nan")
        conf_b = _span_conf(probs_b, s, e) if span in set_b else float("nan")
        return {"key": key, "item_a": item_a, "item_b": item_b, "start": s, "end": e, "type": kind, "true": true,
                "outcome": outcome, "a": what_a, "b": what_b, "conf_a": conf_a, "conf_b": conf_b}  # fmt: skip

    for span in truth:
        kind, s, e = span
        if span in set_b and span not in set_a:
            out.append(row(span, "fixed", kind, _what(sa, kind, s, e), "right"))
        elif span in set_a and span not in set_b:
            out.append(row(span, "introduced", kind, "right", _what(sb, kind, s, e)))
    for p in sa:
        if p not in true_set and p not in set_b and _hallucinated(p, truth):
            out.append(row(p, "hallucination removed", true_at.get((p[1], p[2]), ""), p[0], "—"))
    for p in sb:
        if p not in true_set and p not in set_a and _hallucinated(p, truth):
            out.append(row(p, "hallucination added", true_at.get((p[1], p[2]), ""), "—", p[0]))
    return out


def _hallucinated(span: tuple[str, int, int], truth: list[tuple[str, int, int]]) -> bool:
    """Spurious (overlaps no true span) or of the wrong type on an exact true span."""
    kind, s, e = span
    over = [(k, ts, te) for k, ts, te in truth if ts < e and te > s]
    return not over or any((ts, te) == (s, e) and k != kind for k, ts, te in over)


def diff_counts(diff: pd.DataFrame) -> dict[str, int]:
    """Entities per ``DIFF_OUTCOMES`` outcome (0 when none)."""
    counts = diff["outcome"].value_counts() if len(diff) else pd.Series(dtype=int)
    return {o: int(counts.get(o, 0)) for o in DIFF_OUTCOMES}


# ------------------------------------------------------------------ one run


@dataclass(frozen=True)
class GalleryEntry:
    """A confident hallucinated entity of a run, with its whole sentence: ``item`` the dataset row,
    ``true_tags`` and ``pred_tags`` (the run's decoded tags; only the entity's own span when the
    run's word probabilities are not stored), the span [start, end), its ``predicted`` and ``true``
    type (None: spurious), ``confidence`` and ``kind`` ("spurious" or "wrong type")."""

    item: int
    tokens: list[str]
    true_tags: list[str]
    pred_tags: list[str]
    start: int
    end: int
    predicted: str
    true: str | None
    confidence: float
    kind: str


def entity_gallery(res: RunResults, ds: Dataset, n: int = GALLERY, *, split: str = "test") -> list[GalleryEntry]:
    """The ``n`` most confident hallucinated entities (spurious or of the wrong type, confidence ≥ τ)
    at the run's result, from its evaluation file (``errors``), each with its sentence's true and
    predicted entities. Empty before an evaluation or without one."""
    step = res.result_step
    art = res.artifacts(step) if step is not None else {}
    errors = (art.get(split) or {}).get("errors") or []
    if not errors or ds.tags is None:
        return []
    shown = errors[: max(int(n), 0)]
    decoded = _decoded_by_row(res, step, split, {int(e["item"]) for e in shown})
    out = []
    for e in shown:
        row = int(e["item"])
        tokens, truth = [str(w) for w in ds.items[row]], [str(t) for t in ds.tags[row]]
        start, end, kind = int(e["start"]), int(e["end"]), str(e["predicted"])
        pred = decoded.get(row) or [OUTSIDE if i < start or i >= end else ("B-" if i == start else "I-") + kind for i in range(len(truth))]
        out.append(GalleryEntry(row, tokens, truth, pred, start, end, kind, e.get("true"), float(e["confidence"]), str(e["kind"])))
    return out


def _decoded_by_row(res: RunResults, step: int | None, split: str, wanted: set[int]) -> dict[int, list[str]]:
    """The run's decoded tags of the dataset rows ``wanted`` (``core.metrics.entities.decode``)."""
    got = res.word_probs(step, split)
    if got is None:
        return {}
    from core.metrics.entities import decode

    rows, probs, tags = got
    return {int(r): decode(p, tags)[0] for r, p in zip(rows, probs) if int(r) in wanted}


def type_table(res: RunResults, ds: Dataset, *, split: str = "test") -> pd.DataFrame:
    """One row per entity type of the dataset at the run's result: precision, recall, F1, support,
    predicted, spurious, confident spurious, missed (the stored per-type rows; NaN where undefined),
    its train mentions and its head / medium / tail group (``core.tokens.stats.entity_table``, the
    one rule of ``core.metrics.groups``); sorted by train mentions, most first."""
    from core.tokens.stats import entity_table

    table = entity_table(ds)[["type", "train mentions", "group"]]
    names = [str(c) for c in ds.class_names]
    step = res.result_step
    for metric in ("precision", "recall", "f1", "support", "predicted", "spurious", "confident_spurious", "missed"):
        per = res.per_class(metric, split, step=step) if step is not None else {}
        table[metric] = [per.get(names.index(t), np.nan) if t in names else np.nan for t in table["type"]]
    return table.reset_index(drop=True)


def type_confusion(res: RunResults, *, split: str = "test") -> tuple[list[str], np.ndarray] | None:
    """The span-level type confusion at the run's result (labels ["O", *types], counts rows true,
    columns predicted); None before an evaluation."""
    step = res.result_step
    art = res.artifacts(step) if step is not None else {}
    got = (art.get(split) or {}).get("type_confusion")
    if not got:
        return None
    return [str(x) for x in got["labels"]], np.asarray(got["counts"], dtype=np.int64).reshape(len(got["labels"]), -1)


def dropped_types(res: RunResults, ds: Dataset) -> list[str]:
    """The entity types of the dataset the run's model has no tags for (absent from its train),
    from its stored word probabilities' tag names, else from the dataset's train split."""
    got = res.word_probs(res.result_step)
    names = [str(c) for c in ds.class_names[1:]]
    if got is not None:
        known = {split_tag(t)[1] for t in got[2] if t != OUTSIDE}
        return [t for t in names if t not in known]
    from core.tokens.stats import entity_table

    table = entity_table(ds)
    return [str(t) for t in table.loc[table["train mentions"] == 0, "type"]]


# ------------------------------------------------------------------ a sentence in pieces


@dataclass(frozen=True)
class Piece:
    """A piece of a sentence as drawn: ``text``, its entity type (None outside entities), and whether
    it lies in the entity the picture is about (``focus``)."""

    text: str
    kind: str | None
    focus: bool


def marked_pieces(tokens: Sequence[str], tags: Sequence[str], focus: tuple[int, int] | None = None) -> list[Piece]:
    """The sentence as pieces: each entity one piece, the tokens between entities one piece, split
    where the ``focus`` span [start, end) begins and ends; an entity overlapping the focus is in it."""
    fs, fe = focus if focus is not None else (-1, -1)
    out: list[Piece] = []

    def plain(a: int, b: int) -> None:
        cuts = sorted({a, b, *(x for x in (fs, fe) if a < x < b)})
        for lo, hi in pairwise(cuts):
            out.append(Piece(" ".join(tokens[lo:hi]), None, fs <= lo and hi <= fe))

    at = 0
    for kind, start, end in spans(tags):
        if start > at:
            plain(at, start)
        out.append(Piece(" ".join(tokens[start:end]), kind, start < fe and end > fs))
        at = end
    if at < len(tokens):
        plain(at, len(tokens))
    return out


def group_of_types(table: pd.DataFrame) -> Mapping[str, str]:
    """``type → group`` from ``type_table`` or ``core.tokens.stats.entity_table``."""
    return dict(zip(table["type"].astype(str), table["group"].astype(str)))


@dataclass(frozen=True)
class DiffExample:
    """One row of ``entity_diff`` with its sentence: tokens, true tags, each run's decoded tags, the
    entity [start, end), its type, what each run predicted there (``a``, ``b``) and their confidences."""

    key: int
    item: int  # the sentence's row in run b's version
    tokens: list[str]
    true_tags: list[str]
    tags_a: list[str]
    tags_b: list[str]
    start: int
    end: int
    kind: str
    outcome: str
    a: str
    b: str
    conf_a: float
    conf_b: float


def diff_examples(a: TokenAnswers, b: TokenAnswers, diff: pd.DataFrame, outcome: str, n: int = GALLERY) -> list[DiffExample]:
    """The first ``n`` entities of ``outcome`` in ``diff`` (``entity_diff(a, b)``, ordered by b's
    confidence, then a's) with their sentences and both runs' decoded tags."""
    rows = diff[diff["outcome"] == outcome].head(max(int(n), 0))
    if rows.empty:
        return []
    pos_a = {int(k): i for i, k in enumerate(a.keys.tolist())}
    pos_b = {int(k): i for i, k in enumerate(b.keys.tolist())}
    wanted = sorted({int(k) for k in rows["key"]})
    order_a = np.array([pos_a[k] for k in wanted], dtype=np.intp)
    order_b = np.array([pos_b[k] for k in wanted], dtype=np.intp)
    tags_a = dict(zip(wanted, a.evaluation(order_a).pred_tags))
    tags_b = dict(zip(wanted, b.evaluation(order_b).pred_tags))
    out = []
    for r in rows.itertuples(index=False):
        k, j = int(r.key), pos_b[int(r.key)]
        out.append(
            DiffExample(
                k, int(r.item_b), b.tokens[j], b.true[j], tags_a[k], tags_b[k], int(r.start), int(r.end), str(r.type), str(r.outcome),
                str(r.a), str(r.b), float(r.conf_a), float(r.conf_b),
            )
        )  # fmt: skip
    return out
