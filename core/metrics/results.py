"""One run's results as pages and reports read them — from the store and the run's files, no torch.

    res = RunResults(store, run_id)
    res.latest("hallucination_rate")              # the newest test value (None if none)
    res.result_step                               # the run's result: the evaluation its checkpoint rule picks
    res.at("accuracy", res.result_step)           # a value at a given evaluation
    res.per_class("recall", step=res.result_step) # {dataset class: value}
    res.slices(step=res.result_step)              # one row per (column, value, metric)
    res.artifacts(res.result_step)                # reliability bins and confusion matrices
    res.is_tokens, res.word_probs(res.result_step) # a token run: its word probabilities (rows, probs, tags)
    RunResults(store, run_id, checkpoint="last")  # a reader's override: the last evaluation as the result

The checkpoint rule (``RunConfig.checkpoint``): "best" — the best evaluation by the selection
metric (``early_stopping_metric``) on val, the one ``best.pt`` holds; "last" — the final evaluation.

Metric names are decoded with ``core.metrics.keys``, the codec the training loop writes with.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.metrics.keys import best_index, parse_key, variant_split
from core.mitigate.settings import Mitigations
from core.store.artifacts import RunFiles
from core.store.status import RunStatus

if TYPE_CHECKING:
    from core.store.database import Store

DEFAULT_STOPPING_METRIC = "macro_f1"  # RunConfig's default, for configs stored without one
CHECKPOINTS = ("best", "last")  # RunConfig.CHECKPOINT_RULES; "best" for configs stored without one


class RunResults:
    """A snapshot of run ``run_id``: its row, every metric row so far, and its files."""

    def __init__(self, store: Store, run_id: int, *, metrics: pd.DataFrame | None = None, checkpoint: str | None = None) -> None:
        if checkpoint is not None and checkpoint not in CHECKPOINTS:
            raise ValueError(f"checkpoint must be None (the run's own rule), best or last; got {checkpoint!r}.")
        self.store, self.run_id, self.override = store, int(run_id), checkpoint
        if metrics is None:
            self.row, self.metrics = store.run_with_metrics(run_id)  # one moment: status and metrics agree
        else:
            self.row, self.metrics = store.run(run_id), metrics
        self.config: dict[str, Any] = self.row.config
        self.files = RunFiles(run_id, home=store.home)

    # ------------------------------------------------------------------ the run
    @property
    def status(self) -> RunStatus:
        return self.row.status  # "lost" too: every reader shows the same status

    @property
    def tau(self) -> float:
        return float(self.config.get("tau", 0.9))

    @cached_property
    def mitigations(self) -> Mitigations:
        """The run's mitigation settings (defaults for a run stored before they existed)."""
        return Mitigations.from_dict(self.config.get("mitigations"))[0]

    @cached_property
    def modality(self) -> str:
        """The modality of the dataset version the run trained on: "image", "text", "table" or "tokens"."""
        return str(self.store.version(int(self.row.version_id)).modality)

    @property
    def is_tokens(self) -> bool:
        """Whether the run is a token-classification run (entity metrics, per-type rows, word probabilities)."""
        return self.modality == "tokens"

    @property
    def is_lab(self) -> bool:
        """Whether the run is a knowledge-gap lab run (``core.lab``: a language model asked questions)."""
        return self.config.get("model") == "lab_gpt2"

    @property
    def stopping_metric(self) -> str:
        """The selection metric on val that picks the best evaluation. A token run selects on the
        entity metric its worker resolved the config's one to (``config.json``: ``entity_f1_macro``
        for ``macro_f1``)."""
        name = str(self.config.get("early_stopping_metric", DEFAULT_STOPPING_METRIC))
        if self.is_tokens:
            return str((self.files.read_json("config.json") or {}).get("early_stopping_metric", name))
        return name

    @property
    def run_checkpoint(self) -> str:
        """The run's own checkpoint rule: the evaluation its worker kept and temperature-scaled."""
        rule = str(self.config.get("checkpoint", "best"))
        return rule if rule in CHECKPOINTS else "best"

    @property
    def checkpoint(self) -> str:
        """The rule this reader picks the result by: the override given, else the run's own."""
        return self.override or self.run_checkpoint

    # ------------------------------------------------------------------ values
    def split_rows(self, split: str) -> pd.DataFrame:
        return self.metrics[self.metrics["split"] == split]

    def eval_steps(self, split: str = "test") -> list[int]:
        """Steps at which ``split`` was scored, ascending."""
        return sorted(int(s) for s in self.split_rows(split)["step"].unique())

    def latest(self, name: str, split: str = "test") -> float | None:
        """The newest value of ``name`` on ``split`` (None when there is none, or it is undefined)."""
        part = self.metrics[(self.metrics["name"] == name) & (self.metrics["split"] == split)]
        return None if part.empty else _value(part["value"].iloc[-1])

    def at(self, name: str, step: int | None, split: str = "test") -> float | None:
        """The value of ``name`` on ``split`` at evaluation ``step`` (None when absent or undefined)."""
        if step is None:
            return None
        m = self.metrics
        part = m[(m["name"] == name) & (m["split"] == split) & (m["step"] == step)]
        return None if part.empty else _value(part["value"].iloc[-1])

    def values(self, split: str = "test", step: int | None = None) -> dict[str, float | None]:
        """Every plain (summary) metric of one evaluation (default: the latest) by name."""
        rows = self._at_step(split, step)
        return {n: _value(v) for n, v in zip(rows["name"], rows["value"]) if "/" not in n}

    # ------------------------------------------------------------------ which evaluation
    @cached_property
    def result_step(self) -> int | None:
        """The step of the run's result: the evaluation ``checkpoint`` picks (None before one).

        Once the run has ended, and the rule is its own, from ``summary.json`` (the step its worker
        kept). Otherwise "last": the latest test evaluation; "best": by the rule the loop uses
        (``keys.improves`` on the val split's selection metric), without a val split the latest.
        """
        summary = self.files.read_json("summary.json") if self.checkpoint == self.run_checkpoint else None
        if summary and summary.get("best_step") is not None:
            return int(summary["best_step"])
        steps = self.eval_steps("test")
        if self.checkpoint == "last" or self.split_rows("val").empty:
            return steps[-1] if steps else None
        return self.best_val_step()

    @property
    def best_step(self) -> int | None:
        """``result_step`` (the name from before a run could keep its last evaluation)."""
        return self.result_step

    def best_val_step(self) -> int | None:
        """The evaluation with the best val selection metric, averaged over the run's selection
        window (``keys.best_index``, the rule the loop uses; the first of equals)."""
        name = self.stopping_metric
        val = self.metrics[(self.metrics["split"] == "val") & (self.metrics["name"] == name)]
        values = [float("nan") if v is None or pd.isna(v) else float(v) for v in val["value"]]
        i = best_index(name, values, int(self.config.get("selection_window", 1) or 1))
        return None if i is None else int(val["step"].iloc[i])

    @property
    def scaled_step(self) -> int | None:
        """The step the temperature-scaled rows (``test_ts``) were computed at, or None."""
        return self.variant_step("ts")

    def variant_step(self, variant: str) -> int | None:
        """The step a ``keys.VARIANTS`` variant (``ts``, ``tm``) was scored at, or None."""
        steps = self.eval_steps(variant_split("test", variant))
        return steps[0] if steps else None

    # ------------------------------------------------------------------ per class, per slice
    def per_class(self, metric: str = "recall", split: str = "test", step: int | None = None) -> dict[int, float]:
        """``{dataset class: value}`` of a per-class metric at one evaluation (default: latest);
        classes whose value is undefined are left out."""
        out: dict[int, float] = {}
        rows = self._at_step(split, step)
        for name, value in zip(rows["name"], rows["value"]):
            key = parse_key(name)
            v = _value(value)
            if key.kind == "class" and key.metric == metric and key.cls is not None and v is not None:
                out[key.cls] = v
        return out

    def slices(self, split: str = "test", step: int | None = None) -> pd.DataFrame:
        """Per-slice metrics of one evaluation (default: latest): columns ``column``, ``value``,
        ``metric``, ``score``; one row per slice value and metric."""
        rows = self._at_step(split, step)
        records = []
        for name, value in zip(rows["name"], rows["value"]):
            key = parse_key(name)
            if key.kind == "slice":
                records.append((key.column, key.value, key.metric, _value(value)))
        return pd.DataFrame(records, columns=["column", "value", "metric", "score"])

    # ------------------------------------------------------------------ files
    def artifacts(self, step: int | None = None) -> dict[str, Any]:
        """Reliability bins and confusion matrices (``RunFiles.eval_artifacts``); {} before the first evaluation."""
        return self.files.eval_artifacts(step)

    def summary(self) -> dict[str, Any] | None:
        """``summary.json`` (the outcome), or None while the run has not ended."""
        return self.files.read_json("summary.json")

    def resolved_config(self) -> dict[str, Any]:
        """The run's config as its worker resolved it (``config.json``: the automatic batch and the
        lr scaled with it, the model "auto" chose); the stored config until the worker has written it."""
        return {**self.config, **(self.files.read_json("config.json") or {})}

    def log(self, tail: int = 80) -> str:
        """The last ``tail`` lines of the run's log."""
        return self.files.log_tail(tail)

    def predictions(self, split: str = "test", step: int | None = None) -> pd.DataFrame:
        return self.store.predictions(self.run_id, split=split, step=step)

    def word_probs(self, step: int | None, split: str = "test") -> tuple[Any, list[Any], list[str]] | None:
        """A token run's word probabilities at evaluation ``step`` (``RunFiles.word_probs``): dataset
        rows, per sentence (n_words, C) float32, the model's tag names; None when absent."""
        return None if step is None else self.files.word_probs(step, split)

    # ------------------------------------------------------------------ internals
    def _at_step(self, split: str, step: int | None) -> pd.DataFrame:
        rows = self.split_rows(split)
        if rows.empty:
            return rows
        return rows[rows["step"] == (rows["step"].max() if step is None else step)]


def _value(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None
