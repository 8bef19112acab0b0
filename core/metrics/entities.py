"""Entity-level metrics of token classification (named-entity recognition): how often a tagger
names an entity that is not there, or names the wrong type, and how calibrated its tokens are.

Usage::

    from core import metrics as M
    # true: IOB2 tags per sentence; probs: per sentence an array (n_tokens, C) over tag_names ("O" first)
    s = M.entity_summary(true, probs, tag_names, tau=0.9, dropped_types=("MISC",))
    s["entity_f1_micro"], s["confident_spurious_rate"], s["forced_known_type_rate"]
    ev = M.evaluate_entities(true, probs, tag_names, tau=0.9)   # everything below from one pass
    ev.summary(), ev.per_type(), ev.confusion(), ev.confident_errors(k=20, tokens=words)

Inputs
    ``true``: ``list[list[str]]``, IOB2 tags per sentence ("O", "B-PER", "I-PER"); true spans are
    read strictly (``core.tokens.spans.spans``: a lone ``I-X`` opens nothing), as seqeval's strict
    mode reads them. A true tag outside ``tag_names`` (a type the model has no tags for, e.g. one
    left out of train) is allowed. ``probs``: per sentence an array (n_tokens, C) of tag
    probabilities over ``tag_names`` (C IOB2 tags, "O" among them), rows summing to 1.
    ``tau``: the confidence threshold; a confidence equal to τ counts as confident.

Decoding (``decode``)
    Each token takes its argmax tag (ties to the lowest tag index). The sequence is then made valid
    IOB2 by one rule: an ``I-X`` that does not continue a span of type X (it follows "O", a tag of
    another type, or opens the sentence) becomes ``B-X``, so the predicted span is kept, never
    dropped. Only the prefix changes, never the type. A token's confidence is the probability of its
    argmax tag (the model's own number; a repaired token keeps the probability it was predicted
    with, as the model put that mass on "type X here"). A predicted span's confidence is the
    lowest token confidence inside it.

Entity scores
    Precision, recall, F1 and support per type, micro and macro, come from seqeval
    (``classification_report(mode="strict", scheme=IOB2, zero_division=0)``): a type with no
    predictions has precision 0, as seqeval reports it. With no true and no predicted span at all
    they are ``nan`` (nothing to score). ``token_accuracy`` is the share of all tokens whose decoded
    tag equals the true tag (tokens of a type the model lacks count as wrong).

SemEval-2013 categories (matching rule: by overlap, per sentence; spans never cross sentences)
    A predicted span is exactly one of

    - **correct**: a true span has the same start and end and the same type;
    - **incorrect** (wrong type): a true span has the same start and end but another type;
    - **partial**: it overlaps at least one true span (≥ 1 shared token) and equals none of them,
      whatever the types: a partial overlap with a wrong type is *partial*, not incorrect (it is
      also counted apart as ``partial_wrong_type`` when no overlapped true span has its type);
    - **spurious**: it overlaps no true span (a hallucinated entity).

    A true span is exactly one of correct, incorrect (``incorrect_true``), partial
    (``partial_true``: overlapped by a prediction but equal to none) or **missed** (no predicted
    span overlaps it). So predicted = correct + incorrect + partial + spurious and true = correct +
    incorrect + partial_true + missed; per type, predicted-side counts go to the predicted type and
    true-side counts to the true type. Exact matches are one-to-one (spans on each side do not
    overlap), so correct and incorrect equal nervaluate's strict and exact counts. Partial, missed
    and spurious are decided by overlap alone, without nervaluate's greedy one-to-one pairing, so
    they equal nervaluate's "partial" scenario wherever every span overlaps at most one span of the
    other side; otherwise a second prediction inside an already matched true span is partial here
    (nervaluate: spurious), and a true span overlapped only by a prediction matched to another true
    span is partial here (nervaluate: missed).

Hallucinated entities (denominators: ``n_pred`` = predicted spans, ``n_true`` = true spans)
    - ``spurious_rate`` = spurious / n_pred;
    - ``confident_spurious_rate`` = spurious spans with confidence ≥ τ / n_pred;
    - ``type_hallucination_rate`` = incorrect (exact span, wrong type) with confidence ≥ τ / n_pred;
    - ``forced_known_type_rate`` (with ``dropped_types``): of the true spans whose type is dropped
      (absent from train), the share overlapped by a predicted span of a type not dropped with
      confidence ≥ τ;
    - ``missed_rate`` = missed / n_true.

    A zero denominator gives ``nan``, never an error.

Token calibration
    ``token_arrays`` flattens sentences into token rows (P (N, C), y (N,)), y the index of the true
    tag in ``tag_names`` or -1 (``UNKNOWN_LABEL``) for a tag the model lacks. ``token_ece`` and
    ``token_nll`` are ``core.metrics.calibration``'s ECE (top-label, argmax of the probabilities)
    and NLL of those rows, the -1 rows left out as every known-class metric leaves them out; the
    per-type ECE takes the tokens whose true tag is of that type (B and I together) through
    ``ece_by_group``, and "O" likewise (``token_ece_outside``).

Type confusion (``type_confusion``)
    Rows true type, columns predicted type, over ``["O", *types]``: every overlapping (true,
    predicted) span pair adds one (a true span split into two predictions adds two), a missed true
    span adds one to (its type, "O"), a spurious prediction one to ("O", its type).

Speed: a CoNLL-2003-sized test set (3,453 sentences, 46k tokens, 9 tags) takes 0.3–0.45 s on one
CPU core for ``entity_summary`` (measured), about 0.3 s of it seqeval's report; decoding, spans,
categories and calibration are vectorised over all tokens at once (about 0.05 s). Each public
function evaluates afresh: to get several tables, call ``evaluate_entities`` once and use its methods. seqeval (which imports scikit-learn) is imported on first use,
so ``import core.metrics`` stays light. Torch-free.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from core.errors import DataError
from core.metrics._common import NAN
from core.metrics._validate import UNKNOWN_LABEL, _as_probs, _check_n_bins, _check_tau
from core.metrics.calibration import DEFAULT_N_BINS, ReliabilityBins, _bin_index, _ece_by_group_from, _ece_from, _nll_from, reliability_bins
from core.metrics.hallucination import DEFAULT_TAU
from core.metrics.keys import PER_TYPE
from core.tokens.spans import OUTSIDE, spans, split_tag

__all__ = [
    "ENTITY_SUMMARY_KEYS",
    "PER_TYPE_KEYS",
    "EntityError",
    "EntityEvaluation",
    "SpanCategories",
    "SpanCounts",
    "TypeConfusion",
    "confident_errors",
    "decode",
    "entity_per_type",
    "entity_summary",
    "evaluate_entities",
    "span_categories",
    "token_arrays",
    "token_ece_by_type",
    "token_reliability",
    "type_confusion",
]

#: Keys of ``entity_summary``'s dict, in order; every key is always present (``nan`` where undefined).
ENTITY_SUMMARY_KEYS = (
    "n_tokens",
    "n_true_spans",
    "n_pred_spans",
    "token_accuracy",
    "entity_precision_micro",
    "entity_recall_micro",
    "entity_f1_micro",
    "entity_precision_macro",
    "entity_recall_macro",
    "entity_f1_macro",
    "n_correct_spans",
    "n_incorrect_type_spans",
    "n_partial_spans",
    "n_partial_wrong_type_spans",
    "n_spurious_spans",
    "n_partial_true_spans",
    "n_missed_spans",
    "spurious_rate",
    "n_confident_spurious",
    "confident_spurious_rate",
    "n_type_hallucinations",
    "type_hallucination_rate",
    "n_dropped_type_mentions",
    "n_forced_known_type",
    "forced_known_type_rate",
    "missed_rate",
    "token_ece",
    "token_ece_outside",
    "token_nll",
)

#: Keys of each type's dict in ``entity_per_type``, in order (stored per type by ``keys.per_type_keys``).
PER_TYPE_KEYS = PER_TYPE

# category codes: predicted side (correct, incorrect, partial, spurious), true side (…, missed)
CORRECT, INCORRECT, PARTIAL, SPURIOUS = 0, 1, 2, 3
MISSED = 3
_O, _B, _I = 0, 1, 2  # tag prefixes


# ------------------------------------------------------------------ tags and inputs


@dataclass(frozen=True)
class _TagSet:
    """``tag_names`` parsed: the prefix (``_O``/``_B``/``_I``) and type id (-1 for "O") of each tag."""

    names: tuple[str, ...]
    prefix: np.ndarray
    type_id: np.ndarray
    types: tuple[str, ...]  # the model's types, in order of first appearance in tag_names


def _tag_set(tag_names: Sequence[str]) -> _TagSet:
    names = tuple(tag_names) if not isinstance(tag_names, str) else ()
    if not names or not all(isinstance(t, str) for t in names):
        raise DataError('tag_names must be a list of IOB2 tag strings, e.g. ["O", "B-PER", "I-PER"].')
    if len(set(names)) != len(names) or OUTSIDE not in names:
        raise DataError(f'tag_names must hold "O" once and every tag once; got {list(names)}.')
    types: list[str] = []
    prefix = np.zeros(len(names), np.intp)
    type_id = np.full(len(names), -1, np.intp)
    for i, tag in enumerate(names):
        if tag == OUTSIDE:
            continue
        _check_tag(tag, "tag_names")
        p, kind = split_tag(tag)
        if kind not in types:
            types.append(kind)
        prefix[i] = _B if p == "B" else _I
        type_id[i] = types.index(kind)
    return _TagSet(names, prefix, type_id, tuple(types))


def _check_tag(tag: object, where: str) -> None:
    if not isinstance(tag, str) or (tag != OUTSIDE and (tag[:2] not in ("B-", "I-") or len(tag) < 3)):
        raise DataError(f'{where} must hold IOB2 tags ("O", "B-<type>", "I-<type>"); found {tag!r}.')


def _as_sentences(true: Any, probs: Any, tags: _TagSet) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Validated (true tags per sentence, P (N, C) of all tokens, offsets (n_sentences + 1,))."""
    if not isinstance(true, Sequence) or isinstance(true, str) or any(isinstance(s, str) or not isinstance(s, Sequence) for s in true):
        raise DataError("true must be a list of sentences, each a list of IOB2 tags.")
    if not isinstance(probs, Sequence) or len(probs) != len(true):
        n = len(probs) if isinstance(probs, Sequence) else "not a list"
        raise DataError(f"probs must hold one array per sentence of true ({len(true)}); got {n}.")
    sentences = [list(s) for s in true]
    for tag in set(chain.from_iterable(sentences)):
        _check_tag(tag, "true")
    c = len(tags.names)
    arrays = []
    for i, (seq, p) in enumerate(zip(sentences, probs)):
        a = np.asarray(p, dtype=np.float64)
        if a.size == 0 and len(seq) == 0:
            a = a.reshape(0, c)
        if a.shape != (len(seq), c):
            raise DataError(
                f"probs[{i}] must have shape (tokens of sentence {i}, tags) = ({len(seq)}, {c}); got {a.shape}. "
                "Pass one row of tag probabilities per token, one column per entry of tag_names."
            )
        arrays.append(a)
    flat = np.concatenate(arrays) if arrays else np.zeros((0, c))
    offsets = np.zeros(len(sentences) + 1, np.intp)
    np.cumsum([len(s) for s in sentences], out=offsets[1:])
    return sentences, _as_probs(flat), offsets


# ------------------------------------------------------------------ decoding and spans


def _decode_flat(p: np.ndarray, tags: _TagSet, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prefix (N,), type id (N,), confidence (N,)) of the decoded tags; ``starts``: sentence-start mask."""
    arg = p.argmax(axis=1) if p.shape[0] else np.zeros(0, np.intp)
    conf = p[np.arange(p.shape[0]), arg]
    prefix, kind = tags.prefix[arg], tags.type_id[arg]
    prev = np.empty_like(kind)
    prev[1:] = kind[:-1]
    prev[starts] = -1  # nothing continues across a sentence start
    orphan = (prefix == _I) & (prev != kind)  # follows "O", another type, or opens the sentence
    return np.where(orphan, _B, prefix), kind, conf


@dataclass(frozen=True)
class _Spans:
    """Spans in global token positions (sorted, non-overlapping): type id, start, end (exclusive)."""

    kind: np.ndarray
    start: np.ndarray
    end: np.ndarray
    conf: np.ndarray  # lowest token confidence (predicted spans); nan for true spans

    def __len__(self) -> int:
        return int(self.start.shape[0])


def _pred_spans(prefix: np.ndarray, kind: np.ndarray, conf: np.ndarray, starts: np.ndarray) -> _Spans:
    n = prefix.shape[0]
    begin = np.flatnonzero(prefix == _B)
    stops = np.append(np.flatnonzero((prefix != _I) | starts), n)  # where a span cannot go on
    end = stops[np.searchsorted(stops, begin, side="right")]
    if begin.size:
        bounds = np.column_stack([begin, end]).ravel()
        low = np.minimum.reduceat(np.append(conf, 0.0), bounds)[::2]  # min over [begin, end)
    else:
        low = np.zeros(0)
    return _Spans(kind[begin], begin, end, low)


def _true_spans(sentences: list[list[str]], offsets: np.ndarray, type_index: dict[str, int]) -> _Spans:
    kinds, begins, ends = [], [], []
    for off, seq in zip(offsets.tolist(), sentences):
        for kind, start, end in spans(seq):
            kinds.append(type_index[kind])
            begins.append(off + start)
            ends.append(off + end)
    as_int = lambda v: np.asarray(v, dtype=np.intp)
    return _Spans(as_int(kinds), as_int(begins), as_int(ends), np.full(len(begins), np.nan))


def _overlaps(a: _Spans, b: _Spans) -> tuple[np.ndarray, np.ndarray]:
    """For each span of ``a``: the range [lo, hi) of the spans of ``b`` it overlaps (≥ 1 shared token)."""
    lo = np.searchsorted(b.end, a.start, side="right")  # first b ending after a starts
    hi = np.searchsorted(b.start, a.end, side="left")  # first b starting at or after a's end
    return lo, np.maximum(hi, lo)


def _categories(a: _Spans, b: _Spans, lo: np.ndarray, hi: np.ndarray, none: int) -> np.ndarray:
    """Category of each span of ``a`` against ``b``: CORRECT, INCORRECT, PARTIAL or ``none`` (no overlap)."""
    n_over = hi - lo
    j = np.minimum(lo, max(len(b) - 1, 0))
    if len(b):
        exact = (n_over == 1) & (b.start[j] == a.start) & (b.end[j] == a.end)
        same = b.kind[j] == a.kind
    else:
        exact = same = np.zeros(len(a), bool)
    out = np.full(len(a), none, np.int8)
    out[n_over > 0] = PARTIAL
    out[exact & same] = CORRECT
    out[exact & ~same] = INCORRECT
    return out


def _pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with lo[i] <= j < hi[i], as two index arrays."""
    n = hi - lo
    i = np.repeat(np.arange(n.shape[0]), n)
    j = lo[i] + np.arange(i.shape[0]) - np.repeat(np.cumsum(n) - n, n)
    return i, j


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class SpanCounts:
    """SemEval-2013 counts. Predicted side: ``correct + incorrect + partial + spurious`` = predicted
    spans; true side: ``correct + incorrect_true + partial_true + missed`` = true spans (see the
    module docstring for the matching rule). ``partial_wrong_type``: the partial predictions of
    which no overlapped true span has the predicted type (a part of ``partial``)."""

    correct: int = 0
    incorrect: int = 0
    partial: int = 0
    spurious: int = 0
    incorrect_true: int = 0
    partial_true: int = 0
    missed: int = 0
    partial_wrong_type: int = 0

    @property
    def n_pred(self) -> int:
        return self.correct + self.incorrect + self.partial + self.spurious

    @property
    def n_true(self) -> int:
        return self.correct + self.incorrect_true + self.partial_true + self.missed


@dataclass(frozen=True)
class SpanCategories:
    """SemEval-2013 counts overall and per type (every type of the model or of the truth)."""

    overall: SpanCounts
    per_type: dict[str, SpanCounts]


@dataclass(frozen=True)
class TypeConfusion:
    """Span-level type confusion: ``counts[i, j]`` = overlapping pairs of true type ``labels[i]``
    and predicted type ``labels[j]``; ``labels[0]`` is "O" (missed: column "O"; spurious: row "O")."""

    labels: list[str]
    counts: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """``{"labels": [...], "counts": [[...]]}`` (rows true, columns predicted), for JSON."""
        return {"labels": list(self.labels), "counts": self.counts.tolist()}


@dataclass(frozen=True)
class EntityError:
    """A confident hallucinated entity: a spurious span (``true`` None) or an exact span of the
    wrong type. ``start``/``end`` are token positions in sentence ``sentence`` (end exclusive);
    ``text`` the span's tokens joined by spaces when tokens were given."""

    sentence: int
    start: int
    end: int
    predicted: str
    true: str | None
    confidence: float
    kind: str  # "spurious" or "wrong type"
    text: str | None = None


def _rate(count: int, total: int) -> float:
    return count / total if total else NAN


@dataclass(frozen=True)
class EntityEvaluation:
    """One evaluation of tagged sentences: every entity metric comes from here (build it with
    ``evaluate_entities``). ``types``: the model's types, then types found only in the truth."""

    types: tuple[str, ...]
    tau: float
    n_bins: int
    dropped: frozenset[str]
    true_tags: list[list[str]]
    pred_tags: list[list[str]]
    P: np.ndarray
    y: np.ndarray
    offsets: np.ndarray
    tag_type: np.ndarray  # type name (or "O") of each tag of tag_names
    true_spans: _Spans
    pred_spans: _Spans
    pred_cat: np.ndarray
    true_cat: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray]  # (predicted span, true span) overlapping pairs
    token_hits: int
    _report: dict[str, Any] = field(default_factory=dict, repr=False)

    # -------------------------------------------------------------- entity scores (seqeval)

    def report(self) -> dict[str, Any]:
        """seqeval's ``classification_report`` (strict IOB2, ``output_dict=True``, ``zero_division=0``)."""
        if not self._report and len(self.true_spans) + len(self.pred_spans) > 0:
            from seqeval.metrics import classification_report  # imports scikit-learn: only when scored
            from seqeval.scheme import IOB2

            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                rep = classification_report(self.true_tags, self.pred_tags, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
            self._report.update(rep)
        return self._report

    def _scores(self) -> dict[str, float]:
        out = {}
        rep = self.report()  # empty with no span on either side: every score nan
        for avg in ("micro", "macro"):
            row = rep.get(f"{avg} avg", {})
            for name, col in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
                out[f"entity_{name}_{avg}"] = float(row.get(col, NAN))
        return out

    # -------------------------------------------------------------- categories

    def categories(self) -> SpanCategories:
        """SemEval-2013 counts overall and per type."""
        k = len(self.types)
        pk, tk = self.pred_spans.kind, self.true_spans.kind
        by_pred = np.bincount(pk * 4 + self.pred_cat, minlength=k * 4).reshape(k, 4)
        by_true = np.bincount(tk * 4 + self.true_cat, minlength=k * 4).reshape(k, 4)
        wrong = np.bincount(pk[self._partial_wrong_type()], minlength=k)

        def counts(p: np.ndarray, t: np.ndarray, w: int) -> SpanCounts:
            return SpanCounts(
                correct=int(p[CORRECT]),
                incorrect=int(p[INCORRECT]),
                partial=int(p[PARTIAL]),
                spurious=int(p[SPURIOUS]),
                incorrect_true=int(t[INCORRECT]),
                partial_true=int(t[PARTIAL]),
                missed=int(t[MISSED]),
                partial_wrong_type=int(w),
            )

        per_type = {name: counts(by_pred[i], by_true[i], wrong[i]) for i, name in enumerate(self.types)}
        return SpanCategories(counts(by_pred.sum(0), by_true.sum(0), wrong.sum()), per_type)

    def _partial_wrong_type(self) -> np.ndarray:
        """Mask of predicted spans that are partial and overlap no true span of their own type."""
        i, j = self.pairs
        same = np.bincount(i[self.pred_spans.kind[i] == self.true_spans.kind[j]], minlength=len(self.pred_spans))
        return (self.pred_cat == PARTIAL) & (same == 0)

    def _confident(self) -> np.ndarray:
        return self.pred_spans.conf >= self.tau

    def _forced_known(self) -> tuple[int, int]:
        """(true spans of a dropped type, of those: overlapped by a confident span of a type not dropped)."""
        dropped = np.array([t in self.dropped for t in self.types], bool)
        if not dropped.any():
            return 0, 0
        i, j = self.pairs
        tk, pk = self.true_spans.kind, self.pred_spans.kind
        forced = dropped[tk[j]] & ~dropped[pk[i]] & self._confident()[i]
        hit = np.zeros(len(self.true_spans), bool)
        hit[j[forced]] = True
        mentions = dropped[tk]
        return int(np.count_nonzero(mentions)), int(np.count_nonzero(hit & mentions))

    # -------------------------------------------------------------- calibration

    def _known_tokens(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(P, y, conf, hit) of the tokens whose true tag is one of tag_names."""
        known = self.y != UNKNOWN_LABEL
        p, y = self.P[known], self.y[known]
        pred = p.argmax(axis=1) if p.shape[0] else np.zeros(0, np.intp)
        return p, y, p[np.arange(p.shape[0]), pred], pred == y

    def token_ece_by_type(self) -> dict[str, float]:
        """Top-label ECE of the tokens of each true type (B and I together) and of "O" tokens."""
        _, y, conf, hit = self._known_tokens()
        by = _ece_by_group_from(_bin_index(conf, self.n_bins), conf, hit, y, self.tag_type, self.n_bins)
        return {name: by.get(name, NAN) for name in (*self.types, OUTSIDE)}

    # -------------------------------------------------------------- tables

    def summary(self) -> dict[str, float]:
        """Every scalar under ``ENTITY_SUMMARY_KEYS`` (``nan`` where undefined)."""
        c = self.categories().overall
        n_pred, n_true, n_tok = len(self.pred_spans), len(self.true_spans), int(self.P.shape[0])
        confident = self._confident()
        n_conf_spur = int(np.count_nonzero(confident & (self.pred_cat == SPURIOUS)))
        n_type_hall = int(np.count_nonzero(confident & (self.pred_cat == INCORRECT)))
        n_dropped, n_forced = self._forced_known()
        p, y, conf, hit = self._known_tokens()
        out = dict.fromkeys(ENTITY_SUMMARY_KEYS, NAN)
        out.update(self._scores())
        out.update(
            {
                "n_tokens": float(n_tok),
                "n_true_spans": float(n_true),
                "n_pred_spans": float(n_pred),
                "token_accuracy": _rate(self.token_hits, n_tok),
                "n_correct_spans": float(c.correct),
                "n_incorrect_type_spans": float(c.incorrect),
                "n_partial_spans": float(c.partial),
                "n_partial_wrong_type_spans": float(c.partial_wrong_type),
                "n_spurious_spans": float(c.spurious),
                "n_partial_true_spans": float(c.partial_true),
                "n_missed_spans": float(c.missed),
                "spurious_rate": _rate(c.spurious, n_pred),
                "n_confident_spurious": float(n_conf_spur),
                "confident_spurious_rate": _rate(n_conf_spur, n_pred),
                "n_type_hallucinations": float(n_type_hall),
                "type_hallucination_rate": _rate(n_type_hall, n_pred),
                "n_dropped_type_mentions": float(n_dropped),
                "n_forced_known_type": float(n_forced),
                "forced_known_type_rate": _rate(n_forced, n_dropped),
                "missed_rate": _rate(c.missed, n_true),
                "token_ece": _ece_from(conf, hit, self.n_bins),
                "token_ece_outside": self.token_ece_by_type()[OUTSIDE],
                "token_nll": _nll_from(p, y),
            }
        )
        return out

    def per_type(self) -> dict[str, dict[str, float]]:
        """``PER_TYPE_KEYS`` of every type (model's types, then truth-only types). Precision, recall
        and F1 are seqeval's (``nan`` for a type with no true and no predicted span); predicted-side
        counts go by the predicted type, ``missed`` and ``support`` by the true type."""
        rep, cats, ece = self.report(), self.categories().per_type, self.token_ece_by_type()
        conf_spur = self._confident() & (self.pred_cat == SPURIOUS)
        n_conf_spur = np.bincount(self.pred_spans.kind[conf_spur], minlength=len(self.types))
        out = {}
        for i, name in enumerate(self.types):
            c, row = cats[name], rep.get(name)
            scores = (NAN, NAN, NAN) if row is None else (float(row["precision"]), float(row["recall"]), float(row["f1-score"]))
            values = (*scores, c.n_true, c.n_pred, c.correct, c.incorrect, c.partial, c.spurious, n_conf_spur[i], c.missed, ece[name])
            out[name] = {key: float(v) for key, v in zip(PER_TYPE_KEYS, values)}
        return out

    def confusion(self) -> TypeConfusion:
        """Span-level type confusion over ``["O", *types]`` (see ``TypeConfusion``)."""
        k = len(self.types) + 1
        i, j = self.pairs
        missed = self.true_spans.kind[self.true_cat == MISSED]
        spurious = self.pred_spans.kind[self.pred_cat == SPURIOUS]
        rows = np.concatenate([self.true_spans.kind[j] + 1, missed + 1, np.zeros(spurious.shape[0], np.intp)])
        cols = np.concatenate([self.pred_spans.kind[i] + 1, np.zeros(missed.shape[0], np.intp), spurious + 1])
        counts = np.bincount(rows * k + cols, minlength=k * k).reshape(k, k).astype(np.int64)
        return TypeConfusion([OUTSIDE, *self.types], counts)

    def confident_errors(self, k: int = 20, *, tokens: Sequence[Sequence[str]] | None = None) -> list[EntityError]:
        """The ``k`` most confident hallucinated entities with confidence ≥ τ: spurious spans and exact
        spans of the wrong type, highest confidence first (ties: earlier sentence, earlier token)."""
        ps, ts = self.pred_spans, self.true_spans
        pick = np.flatnonzero(self._confident() & ((self.pred_cat == SPURIOUS) | (self.pred_cat == INCORRECT)))
        sent = np.searchsorted(self.offsets, ps.start[pick], side="right") - 1
        order = np.lexsort((ps.start[pick], -ps.conf[pick]))[: max(int(k), 0)]
        lo = np.searchsorted(ts.end, ps.start, side="right")  # the exactly matching true span, if any
        out = []
        for o in order.tolist():
            s, idx = int(sent[o]), int(pick[o])
            begin, end = int(ps.start[idx] - self.offsets[s]), int(ps.end[idx] - self.offsets[s])
            wrong_type = self.pred_cat[idx] == INCORRECT
            truth = self.types[int(ts.kind[lo[idx]])] if wrong_type else None
            text = " ".join(str(w) for w in tokens[s][begin:end]) if tokens is not None else None
            kind = "wrong type" if wrong_type else "spurious"
            out.append(EntityError(s, begin, end, self.types[int(ps.kind[idx])], truth, float(ps.conf[idx]), kind, text))
        return out


# ------------------------------------------------------------------ public


def evaluate_entities(
    true: Sequence[Sequence[str]],
    probs: Sequence[Any],
    tag_names: Sequence[str],
    *,
    tau: float = DEFAULT_TAU,
    dropped_types: Iterable[str] = (),
    n_bins: int = DEFAULT_N_BINS,
) -> EntityEvaluation:
    """Decode, read spans and match them once; every entity metric is a method of the result.

    Parameters
    ----------
    true : list of list of str
        IOB2 tags per sentence.
    probs : list of array_like, each shape (n_tokens_i, C)
        Tag probabilities per token over ``tag_names``.
    tag_names : list of str
        The C IOB2 tags ("O" and B-/I- tags), the columns of ``probs``.
    tau : float, default 0.9
        Confidence threshold of the confident-spurious, type-hallucination and forced-known rates.
    dropped_types : iterable of str, optional
        Entity types absent from train (for ``forced_known_type_rate``).
    n_bins : int, default 15
        Bins of the token ECE.
    """
    t, nb = _check_tau(tau), _check_n_bins(n_bins)
    tags = _tag_set(tag_names)
    sentences, p, offsets = _as_sentences(true, probs, tags)
    n = p.shape[0]
    starts = np.zeros(n, bool)
    starts[offsets[:-1][offsets[:-1] < n]] = True
    prefix, kind, conf = _decode_flat(p, tags, starts)
    extra = sorted({split_tag(tag)[1] for tag in set(chain.from_iterable(sentences))} - set(tags.types) - {""})
    types = (*tags.types, *extra)
    type_index = {name: i for i, name in enumerate(types)}
    # decoded tags as strings: 0 = "O", 1 + 2 type + (prefix is I)
    out_names = np.array([OUTSIDE, *(f"{b}-{name}" for name in tags.types for b in ("B", "I"))], dtype=object)
    code = np.where(prefix == _O, 0, 1 + 2 * kind + (prefix == _I))
    flat_pred = out_names[code].tolist()
    pred_tags = [flat_pred[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    flat_true = list(chain.from_iterable(sentences))
    tag_index = {name: i for i, name in enumerate(tags.names)}
    y = np.fromiter((tag_index.get(tag, UNKNOWN_LABEL) for tag in flat_true), dtype=np.intp, count=n)
    hits = sum(a == b for a, b in zip(flat_true, flat_pred))
    true_spans = _true_spans(sentences, offsets, type_index)
    pred_spans = _pred_spans(prefix, kind, conf, starts)
    lo, hi = _overlaps(pred_spans, true_spans)
    tlo, thi = _overlaps(true_spans, pred_spans)
    tag_type = np.array([split_tag(name)[1] or OUTSIDE for name in tags.names], dtype=object).astype(str)
    return EntityEvaluation(
        types=types,
        tau=t,
        n_bins=nb,
        dropped=frozenset(str(d) for d in dropped_types),
        true_tags=sentences,
        pred_tags=pred_tags,
        P=p,
        y=y,
        offsets=offsets,
        tag_type=tag_type,
        true_spans=true_spans,
        pred_spans=pred_spans,
        pred_cat=_categories(pred_spans, true_spans, lo, hi, SPURIOUS),
        true_cat=_categories(true_spans, pred_spans, tlo, thi, MISSED),
        pairs=_pairs(lo, hi),
        token_hits=int(hits),
    )


def decode(probs_sentence: Any, tag_names: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Decoded IOB2 tags of one sentence and each token's confidence.

    Argmax tag per token, then every ``I-X`` that does not continue a span of type X becomes
    ``B-X`` (the span is kept). The confidence is the probability of the argmax tag.

    Parameters
    ----------
    probs_sentence : array_like, shape (n_tokens, C)
    tag_names : list of str, length C

    Returns
    -------
    tags : list of str
    confidence : ndarray of float, shape (n_tokens,)
    """
    tags = _tag_set(tag_names)
    a = np.asarray(probs_sentence, dtype=np.float64)
    if a.size == 0:
        a = a.reshape(0, len(tags.names))
    if a.ndim != 2 or a.shape[1] != len(tags.names):
        raise DataError(f"probs_sentence must have shape (n_tokens, {len(tags.names)}), one column per tag; got {a.shape}.")
    p = _as_probs(a, name="probs_sentence")
    starts = np.zeros(p.shape[0], bool)
    starts[:1] = True
    prefix, kind, conf = _decode_flat(p, tags, starts)
    names = [OUTSIDE if pf == _O else f"{'B' if pf == _B else 'I'}-{tags.types[k]}" for pf, k in zip(prefix.tolist(), kind.tolist())]
    return names, conf


def token_arrays(true: Sequence[Sequence[str]], probs: Sequence[Any], tag_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All tokens as rows: (P (N, C) float64, y (N,) int64), y the index of the true tag in
    ``tag_names`` or -1 for a tag the model lacks — the input of ``core.metrics.calibration`` (and
    of a temperature fitted on val tokens)."""
    tags = _tag_set(tag_names)
    sentences, p, _ = _as_sentences(true, probs, tags)
    index = {name: i for i, name in enumerate(tags.names)}
    y = np.fromiter((index.get(t, UNKNOWN_LABEL) for t in chain.from_iterable(sentences)), dtype=np.int64, count=p.shape[0])
    return p, y


def entity_summary(
    true: Sequence[Sequence[str]],
    probs: Sequence[Any],
    tag_names: Sequence[str],
    *,
    tau: float = DEFAULT_TAU,
    dropped_types: Iterable[str] = (),
    n_bins: int = DEFAULT_N_BINS,
) -> dict[str, float]:
    """Every entity scalar under ``ENTITY_SUMMARY_KEYS`` (see the module docstring for each)."""
    return evaluate_entities(true, probs, tag_names, tau=tau, dropped_types=dropped_types, n_bins=n_bins).summary()


def entity_per_type(
    true: Sequence[Sequence[str]],
    probs: Sequence[Any],
    tag_names: Sequence[str],
    *,
    tau: float = DEFAULT_TAU,
    n_bins: int = DEFAULT_N_BINS,
) -> dict[str, dict[str, float]]:
    """``{type: {PER_TYPE_KEYS: value}}``: seqeval's precision / recall / F1 / support, the SemEval
    counts, confident spurious spans, and the token ECE of the type."""
    return evaluate_entities(true, probs, tag_names, tau=tau, n_bins=n_bins).per_type()


def span_categories(true: Sequence[Sequence[str]], probs: Sequence[Any], tag_names: Sequence[str]) -> SpanCategories:
    """SemEval-2013 counts (correct, incorrect, partial, spurious, missed) overall and per type."""
    return evaluate_entities(true, probs, tag_names).categories()


def type_confusion(true: Sequence[Sequence[str]], probs: Sequence[Any], tag_names: Sequence[str] | None = None) -> TypeConfusion:
    """True span type against predicted span type over ``["O", *types]`` (see ``TypeConfusion``).

    Without ``tag_names``, ``probs`` is the predicted IOB2 tags per sentence instead (read with
    ``decode``'s rule: an ``I-X`` that continues nothing opens a span); the types are then those of
    both sides, sorted by name.
    """
    if tag_names is None:
        return evaluate_entities(true, *_one_hot(probs, true)).confusion()
    return evaluate_entities(true, probs, tag_names).confusion()


def _one_hot(pred: Sequence[Sequence[str]], true: Sequence[Sequence[str]]) -> tuple[list[np.ndarray], list[str]]:
    """Predicted tags as probabilities of 1 over the tags of every type in ``pred`` and ``true``, sorted."""
    if isinstance(pred, str) or any(isinstance(s, str) or not isinstance(s, Sequence) for s in pred):
        raise DataError("predicted tags must be a list of sentences, each a list of IOB2 tags.")
    for tag in set(chain.from_iterable(pred)):
        _check_tag(tag, "predicted tags")
    kinds = sorted({split_tag(t)[1] for t in chain.from_iterable((*pred, *true)) if isinstance(t, str)} - {""})
    names = [OUTSIDE, *(f"{b}-{k}" for k in kinds for b in ("B", "I"))]
    index = {name: i for i, name in enumerate(names)}
    eye = np.eye(len(names))
    return [eye[[index[t] for t in seq]].reshape(len(seq), len(names)) for seq in pred], names


def confident_errors(
    true: Sequence[Sequence[str]],
    probs: Sequence[Any],
    tag_names: Sequence[str],
    *,
    tau: float = DEFAULT_TAU,
    k: int = 20,
    tokens: Sequence[Sequence[str]] | None = None,
) -> list[EntityError]:
    """The ``k`` most confident spurious and wrong-type predicted spans (confidence ≥ τ), highest first."""
    return evaluate_entities(true, probs, tag_names, tau=tau).confident_errors(k, tokens=tokens)


def token_ece_by_type(
    true: Sequence[Sequence[str]], probs: Sequence[Any], tag_names: Sequence[str], *, n_bins: int = DEFAULT_N_BINS
) -> dict[str, float]:
    """Top-label token ECE of each true type's tokens (B and I together) and of the "O" tokens."""
    return evaluate_entities(true, probs, tag_names, n_bins=n_bins).token_ece_by_type()


def token_reliability(
    true: Sequence[Sequence[str]], probs: Sequence[Any], tag_names: Sequence[str], *, n_bins: int = DEFAULT_N_BINS
) -> ReliabilityBins:
    """Reliability bins of all tokens (``core.metrics.calibration.reliability_bins`` of ``token_arrays``)."""
    return reliability_bins(*token_arrays(true, probs, tag_names), n_bins=n_bins)
