"""Severity sweeps: one simulated version per severity of one knob, a fast run on each (and a
mitigated twin when a preset is chosen), submitted through the runner; the results read back per
severity. Torch-free.

    sweep_id = start_sweep(store, runner, parent, knob="long_tail", severities=[1, 10, 50, 100],
                           base=Recipe(), config=fast_config("image"), preset="long_tail")
    table = sweep_results(store, store.sweeps()[0])   # one row per severity and arm
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.metrics.names import metric_name
from core.metrics.results import RunResults
from core.mitigate.presets import preset as make_preset
from core.mitigate.settings import Mitigations
from core.simulate.recipe import Recipe
from core.simulate.versions import save_simulated
from core.store.status import RunStatus
from core.train.config import RunConfig

if TYPE_CHECKING:
    from core.runners.base import Runner
    from core.store.database import Store

# knob → (axis title, default severities, help)
KNOBS: dict[str, tuple[str, list[float], str]] = {
    "long_tail": ("imbalance ratio (long tail)", [1, 10, 30, 100], "largest ÷ smallest train class, exponential profile"),
    "step": ("imbalance ratio (step)", [1, 5, 20, 50], "half of the classes keep 1/ratio of their train items"),
    "noise": ("label noise rate", [0.0, 0.1, 0.2, 0.3, 0.4], "share of each class's train labels flipped to another class"),
    "duplicates": ("duplicated share", [0.0, 0.2, 0.5, 1.0], "share of train items copied once more"),
    "drop": ("classes dropped from train", [0, 1, 2, 3], "the last classes lose every train item (kept in test as unknown)"),
}
METRICS = ["hallucination_rate", "forced_known_rate", "ece", "macro_f1"]


def recipe_at(base: Recipe, knob: str, severity: float, class_names: list[str]) -> Recipe:
    """``base`` with ``knob`` set to ``severity``."""
    if knob == "long_tail":
        return base.with_severity(imbalance="long_tail" if severity > 1 else base.imbalance, ratio=max(1.0, float(severity)))
    if knob == "step":
        return base.with_severity(imbalance="step" if severity > 1 else base.imbalance, ratio=max(1.0, float(severity)))
    if knob == "noise":
        return base.with_severity(noise_kind="symmetric" if base.noise_kind == "matrix" else base.noise_kind, noise_rate=float(severity))
    if knob == "duplicates":
        return base.with_severity(duplicate_share=float(severity))
    if knob == "drop":
        n = int(severity)
        return base.with_severity(drop_classes=tuple(str(c) for c in class_names[len(class_names) - n :]) if n else ())
    raise ValueError(f"unknown sweep knob {knob!r}; choose one of {', '.join(KNOBS)}")


def fast_config(modality: str, *, epochs: int | None = None, seed: int = 0) -> RunConfig:
    """A short run that still shows the trend: a small CNN from scratch on images, a linear probe
    on MiniLM features for text, the MLP on tables."""
    if modality == "image":
        return RunConfig(model="small_cnn", epochs=epochs or 3, batch_size=128, lr=3e-3, seed=seed)
    if modality == "text":
        return RunConfig(model="minilm", finetune="linear_probe", epochs=epochs or 10, batch_size=256, seed=seed)
    return RunConfig(model="mlp", epochs=epochs or 10, batch_size=128, seed=seed)


def find_or_save(store: Store, parent: int, recipe: Recipe) -> int:
    """The child of ``parent`` made with ``recipe`` (the same severity is simulated once), or a new one."""
    info = store.version(parent)
    wanted = recipe.to_dict()
    for v in store.versions(info.dataset_id):
        if v.parent_id == parent and v.kind == "simulate" and v.params.get("recipe") == wanted:
            return v.id
    return save_simulated(store, parent, recipe)


def start_sweep(
    store: Store,
    runner: Runner,
    parent: int,
    *,
    knob: str,
    severities: list[float],
    base: Recipe,
    config: RunConfig,
    preset: str | None = None,
    progress: Any = None,
) -> int:
    """Simulate each severity, queue its run (and a mitigated twin with ``preset``); return the sweep id.

    ``progress(done, total, text)`` is called after each version (the page's progress bar)."""
    if knob not in KNOBS:
        raise ValueError(f"unknown sweep knob {knob!r}; choose one of {', '.join(KNOBS)}")
    if not severities:
        raise ValueError("A sweep needs at least one severity.")
    info = store.version(parent)
    arms = {"baseline": Mitigations()}
    if preset and preset != "baseline":
        arms["mitigated"] = make_preset(preset, modality=info.modality, finetune=config.finetune)
    recipes = [recipe_at(base, knob, s, info.class_names) for s in severities]
    params = {
        "knob": knob,
        "severities": [float(s) for s in severities],
        "base": base.to_dict(),
        "preset": preset or "",
        "config": dataclasses.replace(config, version_id=parent).to_dict(),
    }
    sweep_id = store.create_sweep(parent, params, name=f"{KNOBS[knob][0]} sweep of {info.label}")
    for i, (severity, recipe) in enumerate(zip(severities, recipes)):
        vid = find_or_save(store, parent, recipe)
        for arm, mitigations in arms.items():
            cfg = dataclasses.replace(
                config, version_id=vid, mitigations=mitigations, name=f"sweep {sweep_id} · {KNOBS[knob][0]} {severity:g} · {arm}"
            )
            store.add_sweep_run(sweep_id, severity, arm, vid, runner.submit(cfg))
        if progress is not None:
            progress(i + 1, len(severities), f"severity {severity:g} queued")
    return sweep_id


def sweep_results(store: Store, sweep: dict[str, Any]) -> pd.DataFrame:
    """One row per severity and arm: status, message, run and version ids, and ``METRICS`` on the
    test split at the run's result, the evaluation its checkpoint rule picks (NaN until it has one)."""
    rows = []
    for r in sweep["runs"]:
        res = RunResults(store, r["run_id"])
        step = res.result_step
        values = {m: res.at(m, step) for m in METRICS}
        rows.append(
            {
                "severity": r["severity"],
                "arm": r["arm"],
                "run_id": r["run_id"],
                "version_id": r["version_id"],
                "status": str(res.status),
                "ended": not res.status.active,
                "failed": res.status == RunStatus.FAILED,
                "message": res.row.message,
                **{m: float("nan") if v is None else v for m, v in values.items()},
            }
        )
    return pd.DataFrame(rows, columns=["severity", "arm", "run_id", "version_id", "status", "ended", "failed", "message", *METRICS])


# ---------------------------------------------------------------------- what the Simulate page shows of sweeps

#: why a finished sweep can leave a metric without a value
EMPTY_BECAUSE = {"forced_known_rate": "It applies only where the test split has classes missing from train (dropped classes)."}
MIN_SEVERITIES, MAX_SEVERITIES = 2, 6


def default_severities(knob: str) -> str:
    """The knob's default severities as the page's text box holds them: '1, 10, 30, 100'."""
    return ", ".join(f"{v:g}" for v in KNOBS[knob][1])


def parse_severities(raw: str) -> tuple[list[float], str | None]:
    """(severities, None) from comma- or semicolon-separated numbers, or what is wrong with them."""
    try:
        severities = [float(v) for v in raw.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        return [], "Severities are numbers separated by commas, e.g. 0, 0.1, 0.2, 0.3."
    if not MIN_SEVERITIES <= len(severities) <= MAX_SEVERITIES:
        return severities, f"Give {MIN_SEVERITIES} to {MAX_SEVERITIES} severities."
    return severities, None


def n_runs(severities: list[float], *, mitigated: bool) -> int:
    """Runs a sweep starts: one per severity, two with a mitigated twin."""
    return len(severities) * (2 if mitigated else 1)


def sweeps_of(store: Store, dataset_id: int) -> list[dict[str, Any]]:
    """The sweeps of any version of dataset ``dataset_id`` (archived ones included), newest first."""
    family = {v.id for v in store.versions(dataset_id, include_archived=True)}
    return [sw for sw in store.sweeps() if sw["version_id"] in family]


def progress(table: pd.DataFrame) -> tuple[int, float, str]:
    """(runs finished, the share finished, '3 of 4 runs finished, 1 failed') of a ``sweep_results`` table."""
    done, failed = int((table["ended"] & ~table["failed"]).sum()), int(table["failed"].sum())
    return done, done / max(len(table), 1), f"{done} of {len(table)} runs finished" + (f", {failed} failed" if failed else "")


def metric_note(table: pd.DataFrame, metric: str, done: int) -> str | None:
    """None when ``metric`` has a value to draw; else why not: the runs are not evaluated yet, or no
    run has a value (and, where known, why)."""
    if table[metric].notna().any():
        return None
    if done < len(table):
        return f"**{title(metric)}** appears as the runs are evaluated."
    return f"**{title(metric)}**: no run has a value. {EMPTY_BECAUSE.get(metric, '')}"


def failures(table: pd.DataFrame) -> list[str]:
    """One line per failed run: its number, arm, severity and the end of its message."""
    return [
        f"Run #{row['run_id']} ({row['arm']}, severity {row['severity']:g}) failed: {str(row['message'])[-400:]}"
        for _, row in table[table["failed"]].iterrows()
    ]


def runs_table(table: pd.DataFrame, titles: dict[str, str]) -> pd.DataFrame:
    """A ``sweep_results`` table as shown: metrics to 4 decimals ('—' where missing), columns named
    as people read them (``titles``: metric → title)."""
    shown = table.drop(columns=["ended", "failed"])
    shown[list(METRICS)] = shown[list(METRICS)].map(lambda v: "—" if pd.isna(v) else f"{v:.4f}")
    return shown.rename(columns={"run_id": "run", "version_id": "version", **titles})


def title(metric: str) -> str:
    """A metric's name at the start of a sentence ("Hallucination rate @τ")."""
    name = metric_name(metric)
    return name[0].upper() + name[1:]
