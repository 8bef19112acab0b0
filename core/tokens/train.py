"""A token-classification run: the same worker, loop, seams, callbacks and sink as a classifier.

``prepare_tokens`` builds a ``core.train.loop.Job`` whose inputs are words (``TokenInputs``): a
batch carries its words' target tags (``"targets"``), which the loop uses in place of the items'
labels, and the model returns one row of logits per word, so the criterion seam scores words.
The sampler seam draws *sentences* by their sentence label (the rarest entity type in each), so
class-balanced sampling over-samples sentences of rare types. With the token augmentation on
(``Mitigations.token_augment``), each epoch's drawn train sentences get augmented copies
(``SentenceCopies``, seeded by the epoch's generator) mixed in among them, tokenised with their own
tags; validation and test sentences are never augmented. Mitigations that do not apply to token
data are refused with ``core.mitigate.checks``' words. Evaluation (``evaluate_tokens``)
decodes each word's tag probabilities into spans and scores them with ``core.metrics.entities``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.dataset import Dataset
from core.hardware import limit_torch_threads, torch_device
from core.jsonable import to_jsonable
from core.metrics.keys import per_class_key, variant_split
from core.mitigate.augment import NoAugment
from core.mitigate.checks import TOKEN_REFUSALS, check
from core.mitigate.criterion import Criterion, make_criterion
from core.mitigate.sampler import make_sampler
from core.mitigate.seams import Seams
from core.models.build import Built
from core.tokens.augment import Lookup, TokenAugment, TokenTable, augmented_copies, copy_sources, wordnet_lookup
from core.tokens.model import IGNORE, WordTokens, build_tagger, tokenise_words
from core.tokens.spans import OUTSIDE, entity_types, tag_names
from core.train.callbacks import MetricWriter
from core.train.config import TOKEN_SELECTION, RunConfig
from core.train.events import Control, EvalResult, State
from core.train.inputs import DeviceBatch, make_batches
from core.train.loop import Job
from core.train.run_data import split_data
from core.train.sink import RunSink

MAX_SUBTOKENS = 256  # sub-tokens per sentence; words past it are truncated (core.tokens.model)
CPU_BATCH, GPU_BATCH = 32, 64  # sentences per batch when the config says 0 (auto)


@dataclass(frozen=True, eq=False)
class SentenceCopies:
    """The hook that augments an epoch: ``(sentences, tags, rng) → (copies, their tags, sources)``,
    ``sources[j]`` the position in the given sentences copy ``j`` was made from — ``settings.copies``
    copies of each given sentence holding one of ``settings.types`` (all when it names none), made by
    ``core.tokens.augment.augmented_copies`` from the train split's ``table``."""

    settings: TokenAugment
    table: TokenTable
    lookup: Lookup | None = None

    def sources(self, tags: Sequence[Sequence[str]]) -> list[int]:
        """Where the copies of sentences with ``tags`` come from, without making them."""
        return copy_sources(tags, self.settings)

    def __call__(
        self, sentences: list[list[str]], tags: list[list[str]], rng: np.random.Generator
    ) -> tuple[list[list[str]], list[list[str]], list[int]]:
        return augmented_copies(sentences, tags, self.settings, rng, table=self.table, lookup=self.lookup)


@dataclass
class PerWordLoss:
    """The criterion's mean over a batch's words × the batch's words ÷ ``words_per_batch`` (the
    words an average train batch holds): every word weighs the same in a step whatever the length
    of the sentences batched with it. Without it a length-bucketed batch of short sentences (titles,
    table rows) would weigh each of its words several times more than a batch of long ones: on the
    full CoNLL-2003 training it cost 0.006 entity F1 (benchmarks/RESULTS.md)."""

    criterion: Criterion
    words_per_batch: float

    def begin_epoch(self, epoch: int, epochs: int, drawn: np.ndarray | None = None) -> None:
        self.criterion.begin_epoch(epoch, epochs)  # the draws are sentences; the criterion's counts are tags

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits, target) * (target.shape[0] / self.words_per_batch)


@dataclass
class TokenInputs:
    """Every sentence of the run tokenised once, its words' tags, and how an epoch is drawn."""

    device: torch.device
    words: WordTokens
    sentences: list[list[str]]  # tokens of each local position
    tags: list[list[str]]  # IOB2 tags of each local position (the truth, for scoring)
    tag_names: list[str]  # the model's outputs
    tokenizer: Any
    augment: SentenceCopies | None = None  # adds augmented copies to an epoch's train sentences
    feed: str = "words"
    pad_tokens_to: int = 1
    tokens: Any = None  # the classifier path's token matrix (unused here)
    tag_index: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def lengths(self) -> np.ndarray:
        return self.words.lengths

    def prepare(self, raw: Any) -> Any:
        return raw

    def batch(self, idx: np.ndarray, on_device: torch.Tensor | None = None, *, with_targets: bool = False) -> dict[str, torch.Tensor]:
        return self.words.batch(idx, self.device, with_targets=with_targets, multiple=self.pad_tokens_to)

    def epoch(
        self, order: np.ndarray, *, text_augmenter: Any = None, labels: Any = None, rng: np.random.Generator | None = None
    ) -> TokenView:
        """The sentences at local positions ``order``; with ``augment``, their augmented copies mixed
        in (each copy's row is its source's). Without ``rng`` (counting the steps an epoch makes)
        the copies are counted but not made."""
        order = np.asarray(order, dtype=np.int64)
        if self.augment is None:
            return TokenView(self, order, None)
        sents, tags = [self.sentences[i] for i in order], [self.tags[i] for i in order]
        if rng is None:
            return TokenView(self, np.r_[order, order[np.asarray(self.augment.sources(tags), dtype=np.int64)]], None)
        new_sents, new_tags, sources = self.augment(sents, tags, rng)
        drawn = np.r_[order, order[np.asarray(sources, dtype=np.int64)]]
        every_sent, every_tags = sents + new_sents, tags + new_tags
        mixed = rng.permutation(len(drawn))
        words = tokenise_words(
            [every_sent[i] for i in mixed], [every_tags[i] for i in mixed], self.tokenizer, self.tag_index, MAX_SUBTOKENS
        )
        return TokenView(self, drawn[mixed], words)


@dataclass
class TokenView:
    """One epoch's draw of sentences (their own tokens when the epoch's sentences were augmented)."""

    inputs: TokenInputs
    order: np.ndarray
    words: WordTokens | None

    @property
    def lengths(self) -> np.ndarray:
        return self.words.lengths if self.words is not None else self.inputs.lengths[self.order]

    def batches(self, batch_size: int, rng: np.random.Generator, *, drop_last: bool = False) -> list[np.ndarray]:
        return make_batches(len(self.order), batch_size, rng, self.lengths, drop_last=drop_last)

    def to_device(self, batches: list[np.ndarray]) -> list[DeviceBatch]:
        sizes = [len(b) for b in batches]
        positions = np.concatenate(batches) if batches else np.zeros(0, np.int64)
        both = torch.from_numpy(np.stack([positions, self.order[positions]]).astype(np.int64)).to(self.inputs.device)
        return [DeviceBatch(p, r) for p, r in zip(both[0].split(sizes), both[1].split(sizes))]

    def raw(self, positions: np.ndarray, on_device: DeviceBatch | None = None) -> dict[str, torch.Tensor]:
        words = self.words if self.words is not None else self.inputs.words
        rows = positions if self.words is not None else self.order[positions]
        return words.batch(rows, self.inputs.device, multiple=self.inputs.pad_tokens_to)


def model_tags(ds: Dataset, train_rows: np.ndarray) -> list[str]:
    """The tags a model of this run outputs: "O" and B-/I- of every type with a train mention."""
    assert ds.tags is not None
    return tag_names(entity_types(ds.tags[i] for i in train_rows))


def selection_metric(name: str) -> str:
    """The val metric that picks a token run's result, for the config's ``early_stopping_metric``."""
    return TOKEN_SELECTION.get(name, name)


def prepare_tokens(ds: Dataset, cfg: RunConfig, *, progress: Callable[..., None] | None = None) -> Job:
    """Split, build the tagger, tokenise every sentence once and make the seams."""
    from core.models.text import text_source

    if ds.tags is None:
        raise ValueError("a token-classification run needs a token dataset (modality 'tokens')")
    cfg = cfg.resolved("text")
    if cfg.finetune == "linear_probe":
        raise ValueError(TOKEN_REFUSALS["linear_probe"] + ".")
    data = split_data(ds, cfg)
    refuse_mitigations(ds, cfg, data.train, data.y, [ds.class_names[c] for c in data.classes])
    device = torch_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cpu":
        limit_torch_threads()
    names = model_tags(ds, data.rows[data.train])
    index = {t: i for i, t in enumerate(names)}
    tokenizer, tagger, frozen = build_tagger(text_source(cfg.model), len(names), finetune=cfg.finetune, last_n_blocks=cfg.last_n_blocks)
    if progress:
        progress(0, 0, f"tokenising {len(data.rows):,} sentences")
    sentences = [list(ds.items[r]) for r in data.rows]
    tags = [list(ds.tags[r]) for r in data.rows]
    words = tokenise_words(sentences, tags, tokenizer, index, MAX_SUBTOKENS)
    if words.truncated:
        print(f"{words.truncated:,} words lie past {MAX_SUBTOKENS} sub-tokens: predicted O, not trained on", flush=True)
    inputs = TokenInputs(device, words, sentences, tags, names, tokenizer, tag_index=index)
    inputs.augment = sentence_copies(cfg, sentences, tags, data.train)
    if not cfg.batch_size:
        cfg = dataclasses.replace(cfg, batch_size=GPU_BATCH if device.type == "cuda" else CPU_BATCH)
    cfg = dataclasses.replace(cfg, early_stopping_metric=selection_metric(cfg.early_stopping_metric))
    built = Built(tagger, feed="words", arch="token_tagger", frozen=frozen, tokenizer=tokenizer)
    built.net.to(device)
    tag_counts = train_tag_counts(words, data.train, len(names))
    sentence_names = [ds.class_names[c] for c in data.classes]
    words_per_batch = cfg.batch_size * float(words.n_words[data.train].mean()) if len(data.train) else 1.0
    run_seams = Seams(
        sampler=make_sampler(cfg.mitigations.resample, data.y, sentence_names, epochs=cfg.epochs),
        criterion=PerWordLoss(make_criterion(cfg.mitigations.loss, tag_counts), max(words_per_batch, 1.0)),
        augmenter=NoAugment(),
    )
    job = Job(cfg, data, built, inputs, device, cfg.learning_rate("tokens"), run_seams)  # type: ignore[arg-type]
    job.evaluator = evaluate_tokens
    return job


def refuse_mitigations(ds: Dataset, cfg: RunConfig, train: np.ndarray, y: np.ndarray, sentence_names: list[str]) -> None:
    """A ``ValueError`` with ``core.mitigate.checks``' words when a mitigation of ``cfg`` does not
    apply to token data (or cannot run on this train split): it is refused, never ignored."""
    assert ds.tags is not None
    counts = np.bincount(y[train], minlength=len(sentence_names))
    problems = check(
        cfg.mitigations, modality="tokens", finetune=cfg.finetune, train_counts=dict(zip(sentence_names, counts.tolist())),
        epochs=cfg.epochs, entity_types=entity_types(ds.tags[i] for i in np.flatnonzero(ds.split == 0)),
    )  # fmt: skip
    if problems:
        raise ValueError(" ".join(problems))


def sentence_copies(cfg: RunConfig, sentences: list[list[str]], tags: list[list[str]], train: np.ndarray) -> SentenceCopies | None:
    """The epoch hook of ``cfg``'s token augmentation, its tables built from the train sentences
    once; None when it is off."""
    t = cfg.mitigations.token_augment
    if not t.active:
        return None
    settings = TokenAugment.from_dict(dataclasses.asdict(t))
    table = TokenTable.from_train([sentences[i] for i in train], [tags[i] for i in train])
    return SentenceCopies(settings, table, wordnet_lookup() if settings.synonym > 0 else None)


def train_tag_counts(words: WordTokens, train: np.ndarray, n_tags: int) -> np.ndarray:
    """Train words per model tag (the criterion's class counts)."""
    t = words.targets[torch.from_numpy(np.asarray(train, dtype=np.int64))]
    t = t[t != IGNORE]
    return np.bincount(t.numpy(), minlength=n_tags).astype(np.int64)


@torch.inference_mode()
def predict_words(job: Job, idx: np.ndarray, *, batch_size: int = 64) -> list[np.ndarray]:
    """Per sentence at local positions ``idx``: logits (n_words, C) float32; a truncated word gets
    a logit row that puts all its probability on "O"."""
    inputs: TokenInputs = job.inputs  # type: ignore[assignment]
    net, words = job.built.net, inputs.words
    net.eval()
    c = len(inputs.tag_names)
    out: list[np.ndarray] = [np.zeros((0, c), np.float32)] * len(idx)
    order = np.argsort(words.lengths[idx], kind="stable")
    for s in range(0, len(order), batch_size):
        pos = order[s : s + batch_size]
        rows = idx[pos]
        with job.autocast():
            logits = net(words.batch(rows, job.device, with_targets=False)).float().cpu().numpy()
        kept = (words.first[torch.from_numpy(rows)] >= 0).numpy()
        at = 0
        for j, p in enumerate(pos):
            n = int(words.n_words[rows[j]])
            z = np.full((n, c), -1e4, np.float32)
            z[:, 0] = 0.0  # truncated words: "O"
            k = kept[j, :n]
            z[k] = logits[at : at + int(k.sum())]
            at += int(k.sum())
            out[p] = z
    job.built.train_mode()
    return out


def softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = z.astype(np.float64) / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@dataclass
class TokenReport:
    """Every entity metric of one split at one evaluation."""

    summary: dict[str, float]
    per_type: dict[str, dict[str, float]]
    probs: list[np.ndarray]  # per sentence (n_words, C)
    pred: list[list[str]]  # decoded IOB2 tags per sentence
    extra: dict[str, Any] = field(default_factory=dict)  # type confusion, reliability, gallery
    temperature: float | None = None


def report_tokens(
    logits: Sequence[np.ndarray], truth: Sequence[Sequence[str]], tag_names_: list[str], *, tau: float, dropped: Sequence[str] = (),
    temperature: float = 1.0,
) -> TokenReport:  # fmt: skip
    """Entity scores of one split (``core.metrics.entities``) from its words' logits."""
    from core.metrics import entities as E

    probs = [softmax(z, temperature) for z in logits]
    ev = E.evaluate_entities(list(truth), probs, tag_names_, tau=tau, dropped_types=tuple(dropped))
    summary, per_type = ev.summary(), ev.per_type()
    pred = [E.decode(p, tag_names_)[0] for p in probs]
    extra = {
        "type_confusion": ev.confusion().to_dict(),
        "reliability": E.token_reliability(list(truth), probs, tag_names_).to_dict(),
        "errors": [dataclasses.asdict(e) for e in ev.confident_errors(30)],
    }
    return TokenReport(summary, per_type, probs, pred, extra, temperature if temperature != 1.0 else None)


def dropped_types(job: Job) -> list[str]:
    """Entity types with mentions in val or test and none in train."""
    inputs: TokenInputs = job.inputs  # type: ignore[assignment]
    known = {t.partition("-")[2] for t in inputs.tag_names if t != OUTSIDE}
    held = entity_types(inputs.tags[i] for i in np.r_[job.data.val, job.data.test])
    return [t for t in held if t not in known]


def evaluate_tokens(job: Job, state: State, best: Any) -> EvalResult:
    """Score val and test; ``is_best`` by the run's selection metric on val (``core.metrics.keys.improves``)."""
    from core.metrics.keys import improves, selection_value

    cfg, data = job.cfg, job.data
    inputs: TokenInputs = job.inputs  # type: ignore[assignment]
    dropped = dropped_types(job)
    reports: dict[str, Any] = {}
    logits: dict[str, Any] = {}
    bs = max(64, 2 * cfg.batch_size)
    for split, idx in (("val", data.val), ("test", data.test)):
        if len(idx) == 0 and split == "val":
            continue
        logits[split] = predict_words(job, idx, batch_size=bs)
    offset = o_offset(job, logits)
    for split, z in logits.items():
        idx = data.val if split == "val" else data.test
        reports[split] = report_tokens(z, [inputs.tags[i] for i in idx], inputs.tag_names, tau=cfg.tau, dropped=dropped)
        if offset is not None:
            reports[split].summary["o_offset"] = offset
    name = cfg.early_stopping_metric
    raw = float(reports["val"].summary.get(name, float("nan"))) if "val" in reports else float("nan")
    state.val_history.append(raw)
    value = selection_value(state.val_history, cfg.selection_window)
    is_best = cfg.checkpoint == "last" or "val" not in reports or improves(name, value, None if best is None else best.metric)
    if is_best:
        state.best_metric, state.best_step = value, state.step
    return EvalResult(state.step, state.epoch, name, value, is_best, reports, logits)


def o_offset(job: Job, logits: dict[str, list[np.ndarray]]) -> float | None:
    """With ``decision.o_offset`` on and a val split: the "O" offset fitted on the val words
    (``core.tokens.decide``), added to ``logits`` of every split in place; otherwise None."""
    from core.tokens.decide import fit_o_offset, with_o_offset

    if not job.cfg.mitigations.decision.o_offset or "val" not in logits:
        return None
    inputs: TokenInputs = job.inputs  # type: ignore[assignment]
    b = fit_o_offset(logits["val"], [inputs.tags[i] for i in job.data.val], inputs.tag_names)
    for split in logits:
        logits[split] = with_o_offset(logits[split], b, inputs.tag_names)
    return b


def fit_token_temperature(logits: Sequence[np.ndarray], truth: Sequence[Sequence[str]], tag_names_: list[str]) -> float:
    """T fitted on the val words' logits (the words whose true tag the model has)."""
    from core.train.evaluate import fit_temperature

    index = {t: i for i, t in enumerate(tag_names_)}
    z = np.concatenate(list(logits)) if len(logits) else np.zeros((0, len(tag_names_)), np.float32)
    y = np.fromiter((index.get(t, -1) for tags in truth for t in tags), dtype=np.int64, count=len(z))
    return fit_temperature(z, y)


def temperature_scaled_tokens(job: Job, best: Any) -> EvalResult:
    """The result's evaluation re-scored with T fitted on its val words (``val_ts`` / ``test_ts``)."""
    inputs: TokenInputs = job.inputs  # type: ignore[assignment]
    data = job.data
    t = fit_token_temperature(best.logits["val"], [inputs.tags[i] for i in data.val], inputs.tag_names)
    dropped = dropped_types(job)
    reports = {
        split: report_tokens(
            best.logits[split], [inputs.tags[i] for i in idx], inputs.tag_names, tau=job.cfg.tau, dropped=dropped, temperature=t
        )
        for split, idx in (("val", data.val), ("test", data.test))
    }
    for rep in reports.values():
        rep.temperature = t
    return EvalResult(best.step, best.epoch, best.metric_name, best.metric, False, reports, {})  # type: ignore[arg-type]


def sentence_predictions(
    pred: Sequence[Sequence[str]],
    probs: Sequence[np.ndarray],
    tag_names_: list[str],
    class_names: list[str],
    train_mentions: dict[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Per sentence: the predicted sentence label (the rarest predicted type by train mentions, as
    ``core.tokens.spans.sentence_labels`` picks the true one; 0 without a predicted span) and the
    lowest span confidence (1.0 without a predicted span) — what the predictions table keeps per item."""
    from core.tokens.spans import spans

    index = {name: i for i, name in enumerate(class_names)}
    tag_at = {t: i for i, t in enumerate(tag_names_)}
    labels = np.zeros(len(pred), np.int64)
    conf = np.ones(len(pred), np.float32)
    for i, (tags, p) in enumerate(zip(pred, probs)):
        found = [(k, s, e) for k, s, e in spans(tags) if k in index]
        if not found:
            continue
        labels[i] = index[min({k for k, _, _ in found}, key=lambda k: (train_mentions.get(k, 0), k))]
        token_conf = p[np.arange(len(tags)), [tag_at.get(t, 0) for t in tags]]
        conf[i] = float(min(token_conf[s:e].min() for _, s, e in found))
    return labels, conf


class TokenMetricWriter(MetricWriter):
    """``MetricWriter`` for a token run: entity metrics per split, per type (as per-class rows of the
    dataset's class of that type), sentence predictions, and each evaluation's word probabilities
    (``<step>_<split>_tokens.npz`` beside the evaluation's file)."""

    def __init__(self, sink: RunSink, job: Job, class_names: list[str], train_mentions: dict[str, int]) -> None:
        super().__init__(sink, job.data)
        self.job, self.class_names, self.train_mentions = job, class_names, train_mentions
        self.type_class = {name: i for i, name in enumerate(class_names)}

    def on_evaluate(self, state: State, control: Control, result: EvalResult) -> None:
        self.write_eval(result)
        val = result.reports["val"].summary if "val" in result.reports else {}
        test = result.reports["test"].summary
        offset = f" · O offset +{test['o_offset']:.2f}" if "o_offset" in test else ""
        print(
            f"eval step {state.step}: val {result.metric_name} {val.get(result.metric_name, float('nan')):.4f} · "
            f"test entity F1 {test.get('entity_f1_micro', float('nan')):.4f} (macro {test.get('entity_f1_macro', float('nan')):.4f}) · "
            f"spurious {test.get('spurious_rate', float('nan')):.4f} · confident spurious {test.get('confident_spurious_rate', float('nan')):.4f}"
            f"{offset}{' · best' if result.is_best else ''}",
            flush=True,
        )

    def write_eval(self, result: EvalResult, *, variant: str | None = None) -> None:
        data, files = self.data, self.sink.files
        inputs: TokenInputs = self.job.inputs  # type: ignore[assignment]
        parts, rows_by_split = {}, {}
        reports: dict[str, TokenReport] = result.reports  # type: ignore[assignment]
        for split, rep in reports.items():
            name = variant_split(split, variant) if variant else split
            values: dict[str, float | None] = dict(rep.summary)
            for kind, per in rep.per_type.items():
                if kind in self.type_class:
                    values.update({per_class_key(metric, self.type_class[kind]): v for metric, v in per.items()})
            if rep.temperature is not None:
                values["temperature"] = rep.temperature
            rows_by_split[split] = (name, values)
            split_rows = data.rows[data.val if split == "val" else data.test]
            for error in rep.extra.get("errors", []):
                error["item"] = int(split_rows[error["sentence"]])  # the sentence's row in the dataset version
            parts[name] = to_jsonable({key: rep.extra[key] for key in ("reliability", "type_confusion", "errors") if key in rep.extra})
            if split == "test":
                idx = data.test
                rows = data.rows[idx]
                labels, conf = sentence_predictions(rep.pred, rep.probs, inputs.tag_names, self.class_names, self.train_mentions)
                self.sink.add_predictions(result.step, name, rows, data.labels[idx], labels, conf)
            write_word_probs(
                files.folder, result.step, name, data.rows[data.val if split == "val" else data.test], rep.probs, inputs.tag_names
            )
        files.write_eval(result.step, result.epoch, data.classes, data.absent, parts)
        for split in sorted(rows_by_split, key=lambda s: s == "val"):
            name, values = rows_by_split[split]
            self.sink.add_metrics(result.step, name, values, epoch=result.epoch)


def write_word_probs(folder: Path, step: int, split: str, rows: np.ndarray, probs: Sequence[np.ndarray], tag_names_: list[str]) -> None:
    """One evaluation's word probabilities: dataset ``rows`` (sentences), ``offsets`` (n + 1) into
    ``probs`` (words, C) float16, and the model's ``tags``."""
    from core.atomic import atomic_write

    offsets = np.r_[0, np.cumsum([len(p) for p in probs])].astype(np.int64)
    stacked = np.concatenate(list(probs)).astype(np.float16) if len(probs) else np.zeros((0, len(tag_names_)), np.float16)

    def write(fh: Any) -> None:
        np.savez(fh, rows=np.asarray(rows, np.int64), offsets=offsets, probs=stacked, tags=np.asarray(tag_names_, dtype=str))

    atomic_write(folder / "evals" / f"{int(step)}_{split}_tokens.npz", write)


def read_word_probs(folder: Path, step: int, split: str = "test") -> tuple[np.ndarray, list[np.ndarray], list[str]] | None:
    """(dataset rows, per-sentence word probabilities, tag names) of one evaluation; None if absent."""
    from core.store.artifacts import read_word_probs as read

    return read(folder, step, split)


def after_training_tokens(job: Job, best: Any, writer: TokenMetricWriter, summary: dict[str, Any]) -> str:
    """Temperature scaling of the result's evaluation on the val words; the final message's part."""
    if "val" not in best.logits or not job.cfg.temperature_scaling:
        return ""
    scaled = temperature_scaled_tokens(job, best)
    writer.write_eval(scaled, variant="ts")
    t = scaled.reports["test"].temperature or 1.0
    summary["temperature"] = t
    before = best.summaries["test"].get("token_ece", float("nan"))
    after = scaled.reports["test"].summary.get("token_ece", float("nan"))
    print(f"temperature scaling: T = {t:.3f}", flush=True)
    return f" · T={t:.2f}: test token ECE {before:.3f} → {after:.3f}"
