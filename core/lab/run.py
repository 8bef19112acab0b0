"""A lab run in the worker: the same claim, watchdog, sink, metric rows and Runs page as any run.

``run_lab`` reads the run's ``RunConfig.lab`` (the settings and the corpus's settings), makes the
corpus again, trains (``core.lab.train.train_lab``) and writes, through the run's sink:

- train rows (loss, samples per second, ETA) and the progress line every ``LOG_EVERY`` steps;
- each evaluation as a classifier evaluation of the asked questions (``core.train.evaluate.report``
  on the answer probabilities, written by ``MetricWriter.write_eval``): summary metrics, per-slice
  rows by ``exposure`` (``slice/exposure=8/accuracy``), test predictions and held-out
  probabilities — so Compare's paired intervals and the report read a lab run like any other —
  plus the held-out people's ``lab_invented``, ``lab_invented_confident`` and ``lab_abstained``, and
  with ``teach_unknown`` the taught held-out facts' ``lab_taught_accuracy``;
- ``lab.json``: the per-exposure table of every evaluation, the corpus's monofact rate and
  Good–Turing estimate, the Kalai–Vempala line, tokens trained and parameters.

The question rows are the stored version's rows (person-major, ``ATTRIBUTES`` order: see
``core.lab.stored``). A lab run keeps no checkpoint: its result is its last evaluation.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np

from core.jsonable import to_jsonable
from core.lab.corpus import ATTRIBUTES, UNKNOWN, Corpus, CorpusSpec, answer_words, good_turing, make_corpus, monofact_rate, stated_values
from core.lab.metrics import kalai_vempala, lab_hallucination
from core.lab.settings import read_lab
from core.lab.train import Asked, LabResult, asked, train_lab
from core.store.status import RunStatus
from core.train.callbacks import MetricWriter
from core.train.config import RunConfig
from core.train.evaluate import report
from core.train.events import EvalResult, SplitReport
from core.train.run_data import RunData
from core.train.sink import RunSink

LOG_EVERY = 10


def question_rows(q: Asked) -> np.ndarray:
    """The stored version's row of each asked question."""
    index = {a: i for i, a in enumerate(ATTRIBUTES)}
    return np.array([int(p) * len(ATTRIBUTES) + index[a] for p, a in zip(q.person, q.attribute)], dtype=np.int64)


def lab_run_data(corpus: Corpus, q: Asked, classes: list[str]) -> RunData:
    """The asked questions as a run's test split; ``train_counts``: how often the corpus states each answer word."""
    labels = np.array([classes.index(a) for a in q.answer], dtype=np.int64)
    stated: Counter[str] = Counter()
    for b in range(len(corpus.bios)):
        stated.update(stated_values(corpus, b).values())
    empty = np.zeros(0, dtype=np.int64)
    return RunData(
        rows=question_rows(q), train=empty, val=empty, test=np.arange(len(labels)), y=labels, labels=labels,
        classes=np.arange(len(classes)), absent=empty, train_counts=np.array([stated[w] for w in classes], dtype=np.int64),
        slices={"exposure": q.exposure.copy()},
    )  # fmt: skip


def lab_report(rep: SplitReport, probs: np.ndarray, data: RunData, classes: list[str], tau: float) -> SplitReport:
    """The classifier report with the lab's hallucination @τ (``lab_hallucination``: ``unknown`` is an
    abstention, not a wrong answer) in its summary and in each exposure slice."""
    unknown = classes.index(UNKNOWN) if UNKNOWN in classes else None
    labels = data.y[data.test]
    rep.summary["hallucination_rate"] = lab_hallucination(probs, labels, unknown, tau)
    exposure = data.slices["exposure"][data.test]
    for value, row in rep.slices.get("exposure", {}).items():
        rows = exposure == int(value)
        row["hallucination_rate"] = lab_hallucination(probs[rows], labels[rows], unknown, tau)
    return rep


def run_lab(sink: RunSink, cfg: RunConfig, stop: Any) -> tuple[RunStatus, str]:
    """Train and evaluate the lab run ``cfg`` describes; ``stop()`` is true once a stop was requested."""
    settings, corpus_settings = read_lab(cfg.lab)
    corpus = make_corpus(CorpusSpec.from_dict(corpus_settings))
    q = asked(corpus, settings)
    classes = answer_words(corpus)
    data = lab_run_data(corpus, q, classes)
    writer = MetricWriter(sink, data)
    mono, gt = monofact_rate(corpus), good_turing(corpus)
    sink.files.write_json("config.json", cfg.to_dict())
    t0, seen = time.perf_counter(), [0]
    sink.progress(f"lab run: {len(corpus.bios):,} biographies, {len(q.prompt):,} questions asked · starting", progress=0.0)

    def on_step(step: int, total: int, loss: float) -> None:
        if step % LOG_EVERY and step != total:
            return
        elapsed = time.perf_counter() - t0
        rate = step / max(elapsed, 1e-9)
        sink.add_metrics(
            step, "train", {"loss": loss, "samples_per_s": rate * settings.batch_size, "eta_s": (total - step) / max(rate, 1e-9)}
        )
        sink.progress(f"step {step}/{total} · loss {loss:.4f}", progress=step / max(total, 1))

    def on_eval(record: dict[str, Any]) -> None:
        probs = record["probs"]
        logits = np.log(np.clip(probs, 1e-12, 1.0))
        rep = lab_report(report(logits, data.test, data, tau=settings.tau), probs, data, classes, settings.tau)
        writer.write_eval(
            EvalResult(
                record["step"], float(record["epoch"]), "accuracy", float("nan"), False, {"test": rep}, {"test": logits.astype(np.float32)}
            )
        )
        held = record["table"].get(0)
        if held is not None:
            sink.add_metrics(record["step"], "test", {"lab_invented": held["invented"], "lab_invented_confident": held["invented_confident"],
                                                      "lab_abstained": held["abstained"]}, epoch=float(record["epoch"]))  # fmt: skip
        if "taught" in record:
            sink.add_metrics(record["step"], "test", {"lab_taught_accuracy": record["taught"]["accuracy"]}, epoch=float(record["epoch"]))
        seen[0] += 1
        print(
            f"eval epoch {record['epoch']}: " + " · ".join(f"{k}× {v['accuracy']:.3f}" for k, v in sorted(record["table"].items())),
            flush=True,
        )

    res = train_lab(corpus, settings, on_eval=on_eval, on_step=on_step, stop=stop, device=cfg.device)
    _write_lab_json(sink, res, mono, gt)
    summary = {"status": RunStatus.FINISHED.value, "steps": res.evaluations[-1]["step"] if res.evaluations else 0, "checkpoint": "last",
               "train_runtime_s": res.seconds, "tokens_trained": res.tokens_trained, "stopped_early": res.stopped_early}  # fmt: skip
    if stop():
        summary["status"] = RunStatus.STOPPED.value
        sink.files.write_json("summary.json", to_jsonable(summary))
        return RunStatus.STOPPED, f"stopped after {seen[0]} evaluation(s)"
    sink.files.write_json("summary.json", to_jsonable(summary))
    last = res.evaluations[-1]["table"] if res.evaluations else {}
    words = " · ".join(f"{k}× {v['accuracy']:.2f}" for k, v in sorted(last.items()))
    early = " (stopped early: invented answers rose)" if res.stopped_early else ""
    return RunStatus.FINISHED, f"done: {res.tokens_trained:,} tokens · accuracy by exposure {words}{early}"


def _write_lab_json(sink: RunSink, res: LabResult, mono: float, gt: float) -> None:
    evaluations = [{k: v for k, v in e.items() if k != "probs"} for e in res.evaluations]
    last = evaluations[-1]["table"] if evaluations else {}
    seen_ece = [v["ece"] for k, v in last.items() if k > 0]
    sink.files.write_json(
        "lab.json",
        to_jsonable(
            {
                "evaluations": [{**e, "table": {str(k): v for k, v in e["table"].items()}} for e in evaluations],
                "monofact_rate": mono,
                "good_turing": gt,
                "kalai_vempala": kalai_vempala(mono, float(np.mean(seen_ece))) if seen_ece else None,
                "tokens_trained": res.tokens_trained,
                "n_parameters": res.n_parameters,
                "seconds": res.seconds,
                "stopped_early": res.stopped_early,
            }
        ),
    )
