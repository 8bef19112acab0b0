"""What the Shift page picks and shows: a reference and a target made from the store, and the tables.

A **reference** is a version's train split (optionally only the rows whose column holds chosen
values). A **target** (``TargetSpec.kind``) is

- ``"column"``: the version's *test* rows whose column holds other values (another domain, a later
  year) — test rows, so no run of this version trained on them;
- ``"version"``: every row of another version of the same kind (an upload without labels too);
- ``"image"``: the version's test images under a covariate shift (``core.shift.made.corrupt_images``);
- ``"prior"``: the version's test rows drawn with another class mix (``core.shift.made.prior_shift``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.data.dataset import Dataset
from core.errors import DataError
from core.shift import made
from core.shift.weights import WEIGHT_COLUMN

if TYPE_CHECKING:
    from core.shift.estimate import TargetEstimate
    from core.shift.target import Drift, OnTarget
    from core.store import Store

KINDS = {
    "column": "other values of a column (a domain, a year)",
    "version": "another version",
    "image": "test images under a made change",
    "prior": "test rows with another class mix",
}
MAX_VALUES = 30  # a column with more distinct values is not offered for a split
METHOD_WORDS = {
    "atc_negent": "ATC (negative entropy)",
    "atc_maxconf": "ATC (max confidence)",
    "mean_confidence": "mean confidence",
    "mean_calibrated_confidence": "mean confidence, temperature-scaled",
    "bbse": "BBSE (label shift only)",
}
TEST_WORDS = {"mmd": "MMD (permutation test)", "domain_classifier": "domain classifier (AUC)"}


@dataclass(frozen=True)
class TargetSpec:
    kind: str = "column"
    column: str = ""
    reference_values: tuple[Any, ...] = ()  # empty: every train row
    target_values: tuple[Any, ...] = ()
    version_id: int | None = None
    image_shift: str = "rotate"
    severity: float = 15.0
    prior: tuple[float, ...] = ()  # class shares of the made target, one per class
    n: int = 1000  # rows of a prior-shifted target
    seed: int = 0


@dataclass(frozen=True)
class Scenario:
    reference: Dataset
    target: Dataset
    words: str  # the pair in a sentence
    labelled: bool = True  # whether the target's labels are the reference's classes
    notes: list[str] = field(default_factory=list)


def split_columns(ds: Dataset) -> list[str]:
    """Meta columns that can split a dataset: 2 to ``MAX_VALUES`` distinct values."""
    out = []
    for c in ds.meta.columns:
        if str(c).startswith("sim_") or c == WEIGHT_COLUMN:
            continue
        k = ds.meta[c].nunique(dropna=True)
        if 2 <= k <= MAX_VALUES:
            out.append(str(c))
    return out


def column_values(ds: Dataset, column: str) -> list[Any]:
    """The values of ``column``, most common first (as plain Python values)."""
    counts = ds.meta[column].dropna().value_counts()
    return [v.item() if hasattr(v, "item") else v for v in counts.index]


def _rows(ds: Dataset, mask: np.ndarray, what: str) -> np.ndarray:
    rows = np.flatnonzero(mask)
    if len(rows) < 10:
        raise DataError(f"{what} has {len(rows)} rows; a shift test needs at least 10. Pick other values or another target.")
    return rows


def _sub(ds: Dataset, rows: np.ndarray) -> Dataset:
    """``ds.subset(rows)`` with each row's item number kept (``source_item``)."""
    out = ds.subset(rows)
    out.meta["source_item"] = ds.item_ids()[rows]
    return out


def build(store: Store, version_id: int, spec: TargetSpec) -> Scenario:
    """The reference and the target ``spec`` names, from version ``version_id``."""
    ds = store.load_dataset(version_id)
    if ds.modality == "tokens":
        raise DataError("shift on token data is not available yet; pick a text, image or table dataset.")
    train = ds.split == 0
    if spec.kind == "column":
        if spec.column not in ds.meta.columns:
            raise DataError(f"no column {spec.column!r} to split by; pick one of {split_columns(ds)}.")
        col = ds.meta[spec.column]
        ref_mask = train & (col.isin(spec.reference_values).to_numpy() if spec.reference_values else True)
        if not spec.target_values:
            raise DataError("pick the column values the target holds.")
        tgt_mask = (ds.split == 2) & col.isin(spec.target_values).to_numpy()
        ref_words = ", ".join(map(str, spec.reference_values)) or "every value"
        words = f"train rows ({spec.column}: {ref_words}) → test rows ({spec.column}: {', '.join(map(str, spec.target_values))})"
        return Scenario(_sub(ds, _rows(ds, ref_mask, "the reference")), _sub(ds, _rows(ds, tgt_mask, "the target")), words)
    reference = _sub(ds, _rows(ds, train, "the train split"))
    if spec.kind == "version":
        if spec.version_id is None:
            raise DataError("pick the version to compare with.")
        other = store.load_dataset(spec.version_id)
        if other.modality != ds.modality:
            raise DataError(
                f"version {spec.version_id} holds {other.modality} data, this one {ds.modality}; pick a version of the same kind."
            )
        labelled = list(other.class_names) == list(ds.class_names) and bool((other.labels >= 0).any())
        notes = [] if labelled else ["the target's labels are not this dataset's classes: no true values beside the estimates"]
        return Scenario(reference, other, f"train rows → every row of version {spec.version_id}", labelled, notes)
    test = _rows(ds, ds.split == 2, "the test split")
    if spec.kind == "image":
        if ds.modality != "image":
            raise DataError("a made image change needs image data; pick another target kind.")
        base = _sub(ds, test)
        changed = made.corrupt_images(base.items, spec.image_shift, spec.severity)
        target = Dataset(
            f"{ds.name}, {spec.image_shift} {spec.severity:g}", "image", changed, base.labels, base.class_names, base.split, base.meta
        )
        return Scenario(
            reference, target, f"train images → test images, {spec.image_shift} {spec.severity:g} ({made.IMAGE_SHIFTS[spec.image_shift]})"
        )
    if spec.kind == "prior":
        if len(spec.prior) != len(ds.class_names):
            raise DataError(f"give one share per class ({len(ds.class_names)}); got {len(spec.prior)}.")
        picked = made.prior_shift(ds.labels[test], np.asarray(spec.prior, dtype=float), min(spec.n, len(test)), seed=spec.seed)
        shares = ", ".join(f"{c} {s:.0%}" for c, s in zip(ds.class_names, np.asarray(spec.prior) / max(sum(spec.prior), 1e-12)))
        return Scenario(reference, _sub(ds, test[picked]), f"train rows → test rows drawn as {shares}")
    raise DataError(f"unknown target kind {spec.kind!r}; pick one of {sorted(KINDS)}.")


def _p_words(p: float, alpha: float) -> str:
    return f"shifted (p = {p:.3g} < {alpha:g})" if p < alpha else f"no evidence of shift (p = {p:.3g})"


def drift_table(d: Drift) -> pd.DataFrame:
    """One row per test: what it measured, its statistic and p-value, the sizes, the time, the verdict."""
    rows = [
        {
            "test": TEST_WORDS[name],
            "statistic": t.statistic,
            "p-value": t.p_value,
            "reference items": t.n_reference,
            "target items": t.n_target,
            "seconds": round(t.seconds, 2),
            "verdict": _p_words(t.p_value, t.alpha),
        }
        for name, t in d.tests.items()
    ]
    return pd.DataFrame(rows)


def column_table(d: Drift) -> pd.DataFrame | None:
    """The per-column tests of a table, most shifted first (None for text and images)."""
    if d.features is None:
        return None
    t = d.features.table.sort_values("p_adjusted").rename(
        columns={
            "test": "test",
            "p_value": "p-value",
            "p_adjusted": "p-value (BH-adjusted)",
            "n_reference": "reference",
            "n_target": "target",
        }
    )
    t["test"] = t["test"].map({"ks": "Kolmogorov–Smirnov", "chi2": "χ²"})
    return t.reset_index(drop=True)


def estimate_table(est: TargetEstimate) -> pd.DataFrame:
    """One row per method: the estimated accuracy, the true one (where known) and the error."""
    truth = est.truth.get("accuracy")
    rows = []
    for k, v in est.accuracy.items():
        row = {"method": METHOD_WORDS[k], "estimated accuracy": v}
        if truth is not None:
            row.update({"true accuracy": truth, "|error|": abs(v - truth)})
        rows.append(row)
    return pd.DataFrame(rows)


def prior_table(on: OnTarget, class_names: list[str]) -> pd.DataFrame:
    """Per model class: its share in the run's val split, BBSE's estimate for the target, the
    importance weight and (with labels) the target's true share. ``class_names``: the dataset's."""
    ls = on.estimate.label_shift
    names = [class_names[int(c)] for c in on.classes]
    t = pd.DataFrame({"class": names, "val share": ls.source_prior, "target share (BBSE)": ls.target_prior, "weight q/p": ls.weights})
    if on.labels is not None:
        known = on.labels[on.labels >= 0]
        t["target share (true)"] = np.bincount(known, minlength=len(names))[: len(names)] / max(len(known), 1)
    return t


def headline(d: Drift | None, est: TargetEstimate | None) -> list[str]:
    """The page's sentences: is the target shifted, and what the run will score there."""
    out = []
    if d is not None:
        fired = [TEST_WORDS[k] for k, t in d.tests.items() if t.shifted]
        out.append(
            f"**The target is shifted**: {' and '.join(fired)} tell it apart from the reference (α = {next(iter(d.tests.values())).alpha:g})."
            if fired
            else "**No shift found**: neither test tells the target apart from the reference at α = 0.05 (which is not proof there is none)."
        )
    if est is not None:
        acc = est.accuracy["atc_negent"]
        line = f"The run's expected accuracy on the target is **{acc:.1%}** (ATC) and its expected hallucination rate @{est.tau:g} **{est.hallucination['atc']:.1%}**"
        if "accuracy" in est.truth:
            line += f"; with the target's labels: {est.truth['accuracy']:.1%} and {est.truth['hallucination_rate']:.1%}"
        out.append(line + ".")
    return out


def runs_for(store: Store, version_id: int) -> list[Any]:
    """Finished classifier runs whose model can answer this version's items: trained on a version
    of the same kind of data with the same classes; runs of this version first, newest first."""
    from core.store.status import RunStatus

    here = store.version(version_id)
    infos: dict[int, Any] = {}
    out = []
    for r in store.runs(status=[RunStatus.FINISHED, RunStatus.STOPPED]):
        info = infos.get(r.version_id) or infos.setdefault(r.version_id, store.version(r.version_id))
        if info.modality == here.modality and info.modality != "tokens" and list(info.class_names) == list(here.class_names):
            out.append(r)
    return sorted(out, key=lambda r: (r.version_id != version_id, -r.id))


def save_target(store: Store, version_id: int, spec: TargetSpec, scen: Scenario) -> int:
    """The made target of ``spec`` (a column's other values, changed test images, another class mix)
    saved as a new version of the dataset — every row a test row, each keeping its item's number —
    with the recipe in its params (``{"shift_target": …}``); returns its id. A later Shift page can
    pick it as *another version*, and a run can be evaluated on it."""
    import dataclasses

    if spec.kind == "version":
        raise DataError("this target is a version already.")
    info, ds = store.version(version_id), store.load_dataset(version_id)
    target = scen.target
    out = dataclasses.replace(target, name=ds.name, split=np.full(len(target), 2, np.int8))
    return store.save_dataset(
        out,
        source=f"shift:{version_id}",
        dataset_id=info.dataset_id,
        parent_id=version_id,
        kind="shift",
        note=f"target: {scen.words}",
        params={"shift_target": dataclasses.asdict(spec)},
    )
