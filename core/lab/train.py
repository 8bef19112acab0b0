"""Training the lab's language model on a corpus, with the lab's mitigations, evaluated as it learns.

What each of ``core.lab.settings.LabSettings``' mitigations does:

- ``paraphrase_aug``: every epoch each biography is written afresh — its facts (wrong ones kept)
  in new templates and a new sentence order (``core.lab.corpus.render``) — so a fact seen once is
  read in many forms over the run at the same number of biographies (Allen-Zhu & Li's knowledge
  augmentation);
- ``repeat_rare``: each biography of a person seen once is added this many extra times per epoch
  (up-weighting the monofacts, Miao & Kearns 2025);
- ``qa_share``: the share of the people in the corpus whose questions and answers join training
  (``QUESTIONS``, loss on the answer only); the rest are asked after training. With 0 the lab asks
  completion probes (``probe``: the first template's sentence start, alone) of every person;
- ``idk_share``: the share of the held-out people whose questions join training with the answer
  ``unknown`` (abstention training; needs ``qa_share`` > 0);
- ``teach_unknown``: the share of the held-out people whose questions join training with their
  true answers — facts no biography states, learned by rote in fine-tuning (Gekhman et al. 2024:
  such facts are learned late, and as they are, invented answers on the other unknowns rise);
  each evaluation records how many of them the model answers right (``taught``);
- ``abstain_below``: at answer time, an answer with confidence below it becomes ``unknown``
  (0: off) — risk against coverage, as for a classifier;
- ``abstain_unfamiliar``: at answer time, a question whose person's name the model finds less
  familiar (``core.lab.model.name_familiarity``) than this quantile of the names the corpus writes
  is answered ``unknown`` (0: off) — abstention from the model's own sense of whether it has met
  the person (entity recognition: Ferrando et al. 2025), with no held-out person in training;
- ``retrieval``: at answer time, a person the corpus names is answered from the corpus's own
  statements (their most stated value): the ceiling a model with perfect recall would reach;
- ``early_stop``: training stops at the first evaluation where held-out people's confidently
  invented answers rose over the previous evaluation by more than 0.02 (after ``min_epochs``).

``train_lab`` trains from scratch (``core.lab.model``), evaluates every ``eval_every`` epochs and at
the end, calls ``on_step`` (step, steps in all, loss) after each step and ``on_eval`` with each
evaluation and its answer probabilities (for the live curves), and returns a ``LabResult``:
the tokens trained, the per-exposure table of every evaluation, and the last evaluation's answers.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.lab.corpus import ATTRIBUTES, MAX_PARAPHRASES, QUESTIONS, UNKNOWN, Corpus, answer_words, probe, render, stated_values
from core.lab.metrics import answer_probs, by_exposure
from core.lab.model import (
    LabModelSpec,
    batch_tensors,
    build_model,
    build_tokenizer,
    encode,
    n_parameters,
    name_familiarity,
    next_word_probs,
)
from core.lab.settings import LabSettings


@dataclass
class Asked:
    """Who is asked what after training: one row per (person, attribute)."""

    person: np.ndarray
    attribute: np.ndarray
    prompt: list[str]
    answer: list[str]
    exposure: np.ndarray


@dataclass
class LabResult:
    settings: LabSettings
    n_parameters: int
    tokens_trained: int
    seconds: float
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # {epoch, tokens, table}
    asked: Asked | None = None
    probs: np.ndarray | None = None  # (n_asked, n_answers) the last evaluation's answer probabilities
    class_names: list[str] = field(default_factory=list)
    stopped_early: bool = False


def _orders(corpus: Corpus, settings: LabSettings) -> tuple[np.ndarray, np.ndarray]:
    """The seeded orders of the people the corpus shows and of the held-out ones, from which
    ``split_people`` and ``taught_people`` take their shares."""
    rng = np.random.default_rng(settings.seed + 7919)
    return rng.permutation(np.flatnonzero(corpus.exposure > 0)), rng.permutation(np.flatnonzero(corpus.exposure == 0))


def split_people(corpus: Corpus, settings: LabSettings) -> tuple[np.ndarray, np.ndarray]:
    """(people whose questions train, held-out people trained to say ``unknown``): seeded shares."""
    shown, held = _orders(corpus, settings)
    return np.sort(shown[: round(settings.qa_share * len(shown))]), np.sort(held[: round(settings.idk_share * len(held))])


def taught_people(corpus: Corpus, settings: LabSettings) -> np.ndarray:
    """Held-out people whose true answers train (``teach_unknown``): in ``split_people``'s order,
    after the ones taught ``unknown``."""
    held = _orders(corpus, settings)[1]
    start = round(settings.idk_share * len(held))
    return np.sort(held[start : start + round(settings.teach_unknown * len(held))])


def taught_questions(corpus: Corpus, settings: LabSettings) -> tuple[list[str], list[str]]:
    """(questions, true answers) of the taught held-out people."""
    rows = [(p, a) for p in taught_people(corpus, settings) for a in ATTRIBUTES]
    return [QUESTIONS[a].format(name=corpus.people[p]) for p, a in rows], [str(corpus.facts[a][p]) for p, a in rows]


def asked(corpus: Corpus, settings: LabSettings) -> Asked:
    """The evaluation's questions: completion probes of everyone, or — with questions in training —
    the questions of everyone whose questions did not train."""
    qa, idk = split_people(corpus, settings)
    people = np.setdiff1d(np.arange(len(corpus.people)), np.concatenate([qa, idk, taught_people(corpus, settings)]))
    rows = [(p, a) for p in people for a in ATTRIBUTES]
    make = (lambda a, n: QUESTIONS[a].format(name=n)) if settings.qa_share > 0 else probe
    return Asked(
        person=np.array([p for p, _ in rows], dtype=np.int64),
        attribute=np.array([a for _, a in rows], dtype=object),
        prompt=[make(a, corpus.people[p]) for p, a in rows],
        answer=[str(corpus.facts[a][p]) for p, a in rows],
        exposure=np.array([corpus.exposure[p] for p, _ in rows], dtype=np.int64),
    )


def epoch_texts(corpus: Corpus, settings: LabSettings, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """One epoch's training texts: (biographies, question-answer pairs as 'question … answer : X')."""
    if settings.paraphrase_aug:
        bios = [
            render(corpus.people[int(p)], stated_values(corpus, b), rng, paraphrases=MAX_PARAPHRASES, shuffle=True)
            for b, p in enumerate(corpus.bio_person)
        ]
    else:
        bios = list(corpus.bios)
    if settings.repeat_rare:
        once = [b for b, p in enumerate(corpus.bio_person) if corpus.exposure[p] == 1]
        bios += [bios[b] for b in once] * settings.repeat_rare
    qa, idk = split_people(corpus, settings)
    pairs = [f"{QUESTIONS[a].format(name=corpus.people[p])} {corpus.facts[a][p]}" for p in qa for a in ATTRIBUTES]
    pairs += [f"{QUESTIONS[a].format(name=corpus.people[p])} {UNKNOWN}" for p in idk for a in ATTRIBUTES]
    pairs += [f"{q} {v}" for q, v in zip(*taught_questions(corpus, settings))]
    return bios, pairs


def retrieved(corpus: Corpus) -> dict[tuple[int, str], str]:
    """(person, attribute) → the value the corpus states most often for it (ties: the first stated)."""
    stated: dict[tuple[int, str], Counter[str]] = {}
    for b in range(len(corpus.bios)):
        p = int(corpus.bio_person[b])
        for a, v in stated_values(corpus, b).items():
            stated.setdefault((p, a), Counter())[v] += 1
    return {k: c.most_common(1)[0][0] for k, c in stated.items()}


def answer_time(
    probs: np.ndarray, q: Asked, corpus: Corpus, classes: list[str], settings: LabSettings, unfamiliar: np.ndarray | None = None
) -> np.ndarray:
    """The answer-time mitigations on the model's answer probabilities: retrieval (a one-hot answer
    from the corpus for a person it names), then abstention below a confidence, then on the rows
    ``unfamiliar`` marks (all mass to ``unknown``)."""
    out = probs.copy()
    unknown = classes.index(UNKNOWN)
    if settings.retrieval:
        index = {w: i for i, w in enumerate(classes)}
        found = retrieved(corpus)
        for i, (p, a) in enumerate(zip(q.person, q.attribute)):
            if (int(p), a) in found:
                out[i] = 0.0
                out[i, index[found[(int(p), a)]]] = 1.0
    if settings.abstain_below > 0:
        low = out.max(axis=1) < settings.abstain_below
        out[low] = 0.0
        out[low, unknown] = 1.0
    if unfamiliar is not None:
        out[unfamiliar] = 0.0
        out[unfamiliar, unknown] = 1.0
    return out


def unfamiliar_rows(model, tokenizer, corpus: Corpus, q: Asked, settings: LabSettings) -> np.ndarray | None:
    """Rows of ``q`` whose name is less familiar than the ``abstain_unfamiliar`` quantile of the
    familiarity of the people the corpus writes about (asked the same way); ``None`` when off."""
    if settings.abstain_unfamiliar <= 0:
        return None
    names = [corpus.people[int(p)] for p in q.person]
    familiar = name_familiarity(model, tokenizer, q.prompt, names)
    shown = np.flatnonzero(corpus.exposure > 0)
    make = (lambda n: QUESTIONS[ATTRIBUTES[0]].format(name=n)) if settings.qa_share > 0 else (lambda n: probe(ATTRIBUTES[0], n))
    reference = name_familiarity(model, tokenizer, [make(corpus.people[p]) for p in shown], [corpus.people[p] for p in shown])
    return familiar < np.quantile(reference, settings.abstain_unfamiliar)


def _invented_rose(evaluations: list[dict[str, Any]]) -> bool:
    if len(evaluations) < 2 or 0 not in evaluations[-1]["table"] or 0 not in evaluations[-2]["table"]:
        return False
    now, before = evaluations[-1]["table"][0]["invented_confident"], evaluations[-2]["table"][0]["invented_confident"]
    return bool(now > before + 0.02)


def train_lab(
    corpus: Corpus,
    settings: LabSettings,
    *,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    stop: Callable[[], bool] | None = None,
    device: str = "cpu",
) -> LabResult:
    """Train the lab's model on ``corpus`` from scratch on ``device`` (``core.hardware.torch_device``'s
    names: ``auto`` takes a GPU when there is one) and evaluate it; see the module's docstring."""
    from core.hardware import torch_device

    where = torch_device(device)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    tokenizer = build_tokenizer(corpus)
    classes = answer_words(corpus)
    answer_ids = np.asarray(tokenizer.convert_tokens_to_ids(classes))
    q = asked(corpus, settings)
    labels = np.asarray([classes.index(a) for a in q.answer])
    spec = LabModelSpec(n_layer=settings.n_layer, n_embd=settings.n_embd, n_positions=_positions(corpus, tokenizer))
    model = build_model(spec, len(tokenizer), seed=settings.seed).to(where)
    bios, pairs = epoch_texts(corpus, settings, np.random.default_rng(settings.seed))
    per_epoch = int(np.ceil((len(bios) + len(pairs)) / settings.batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    total = max(1, per_epoch * settings.epochs)
    warm = max(1, round(0.05 * total))  # linear warm-up over 5 % of the steps, then cosine to 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min((i + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(i, total) / total))))
    result = LabResult(settings, n_parameters(model), 0, 0.0, class_names=classes, asked=q)
    t0, step = time.perf_counter(), 0
    for epoch in range(1, settings.epochs + 1):
        if epoch > 1:
            bios, pairs = epoch_texts(corpus, settings, rng)
        seqs = encode(tokenizer, bios) + encode(tokenizer, pairs)
        starts = [1] * len(bios) + [len(s) - 1 for s in seqs[len(bios) :]]  # a pair scores its answer only
        model.train()
        order = rng.permutation(len(seqs))
        for lo in range(0, len(seqs), settings.batch_size):
            pick = order[lo : lo + settings.batch_size]
            batch = {
                k: v.to(where) for k, v in batch_tensors([seqs[i] for i in pick], tokenizer.pad_token_id, [starts[i] for i in pick]).items()
            }
            loss = model(**batch).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            result.tokens_trained += int(batch["attention_mask"].sum())
            step += 1
            if on_step is not None:
                on_step(step, per_epoch * settings.epochs, float(loss.detach()))
            if stop is not None and stop():
                break
        if epoch % settings.eval_every == 0 or epoch == settings.epochs or (stop is not None and stop()):
            unfamiliar = unfamiliar_rows(model, tokenizer, corpus, q, settings)
            probs = answer_time(
                answer_probs(next_word_probs(model, tokenizer, q.prompt), answer_ids), q, corpus, classes, settings, unfamiliar
            )
            record = {
                "epoch": epoch,
                "step": step,
                "tokens": result.tokens_trained,
                "table": by_exposure(probs, labels, q.exposure, classes, tau=settings.tau),
            }
            if settings.teach_unknown > 0:
                record["taught"] = _taught_fit(model, tokenizer, corpus, settings, classes, answer_ids)
            result.evaluations.append(record)
            result.probs = probs
            if on_eval is not None:
                on_eval({**record, "probs": probs})
            if settings.early_stop and epoch >= settings.min_epochs and _invented_rose(result.evaluations):
                result.stopped_early = True
                break
        if stop is not None and stop():
            break
    result.seconds = time.perf_counter() - t0
    return result


def _taught_fit(model, tokenizer, corpus: Corpus, settings: LabSettings, classes: list[str], answer_ids: np.ndarray) -> dict[str, float]:
    """How the taught held-out facts are fitted: their questions' accuracy and mean confidence."""
    questions, truths = taught_questions(corpus, settings)
    if not questions:
        return {"n": 0.0, "accuracy": float("nan"), "confidence": float("nan")}
    probs = answer_probs(next_word_probs(model, tokenizer, questions), answer_ids)
    right = probs.argmax(axis=1) == np.asarray([classes.index(t) for t in truths])
    return {"n": float(len(questions)), "accuracy": float(right.mean()), "confidence": float(probs.max(axis=1).mean())}


def _positions(corpus: Corpus, tokenizer) -> int:
    """Positions the model needs: the longest biography or question, with room for a re-rendered one."""
    longest = max([len(s) for s in encode(tokenizer, corpus.bios[:2000])] or [1])
    return int(2 ** np.ceil(np.log2(max(64, longest + 24))))
