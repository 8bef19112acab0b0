"""A simulation recipe: how to make a clean dataset version incomplete on purpose. Torch-free.

Only the **train** split is touched — val and test stay as they are, so the damage a recipe does
is measured on the same clean items as the run without it. The steps, in this order:

1. ``thin`` — keep ``thin_keep`` of the train items whose meta column ``thin_column`` equals
   ``thin_value`` (e.g. one VADER domain);
2. ``drop_classes`` — every train item of these classes goes (val and test keep them: there they
   are classes the model never saw, scored by the forced-known rate);
3. ``imbalance`` — ``long_tail``: class rank k of K keeps ``ratio^(-k/(K-1))`` of its train items
   (rank 0 all of them, the last ``1/ratio``); ``step``: the last ``minority_share`` of the classes
   keep ``1/ratio``; ranks follow ``order`` (class names), else the class order;
4. ``noise`` — ``noise_rate`` of each class's remaining train items get a wrong label,
   ``symmetric`` (uniformly among the other classes still in train), ``pairflip`` (to the next
   class still in train) or ``matrix`` (``noise_matrix[i][j]`` = P(given i | true j) over all
   classes);
5. ``duplicates`` — ``duplicate_share`` of the train items are copied once more (exact copies,
   added to train).

``seed`` fixes every random choice; counts are exact (rounded to whole items).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from core.errors import DataError

IMBALANCES = {"none": "as it is", "long_tail": "exponential long tail", "step": "step: a share of the classes is rare"}
NOISE_KINDS = {"symmetric": "to any other class", "pairflip": "to the next class", "matrix": "by a matrix P(given | true)"}


@dataclass(frozen=True)
class Recipe:
    imbalance: str = "none"
    ratio: float = 1.0  # share kept by the first class ÷ by the last (≥ 1): the result's largest ÷ smallest on balanced data
    minority_share: float = 0.5  # step: share of the classes that become rare
    order: tuple[str, ...] = ()  # class names from most to least frequent (default: class order)
    drop_classes: tuple[str, ...] = ()
    noise_kind: str = "symmetric"
    noise_rate: float = 0.0
    noise_matrix: tuple[tuple[float, ...], ...] = ()
    duplicate_share: float = 0.0
    thin_column: str = ""
    thin_value: str = ""
    thin_keep: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.imbalance not in IMBALANCES:
            problems.append(f"imbalance must be one of {', '.join(IMBALANCES)}, not {self.imbalance!r}")
        if not self.ratio >= 1.0:
            problems.append(f"the imbalance ratio must be at least 1 (largest ÷ smallest class), not {self.ratio}")
        if not 0.0 < self.minority_share < 1.0:
            problems.append(f"the minority share must be between 0 and 1, not {self.minority_share}")
        if self.noise_kind not in NOISE_KINDS:
            problems.append(f"noise kind must be one of {', '.join(NOISE_KINDS)}, not {self.noise_kind!r}")
        if not 0.0 <= self.noise_rate < 1.0:
            problems.append(f"the noise rate must be in [0, 1), not {self.noise_rate}")
        if not 0.0 <= self.duplicate_share <= 1.0:
            problems.append(f"the duplicate share must be in [0, 1], not {self.duplicate_share}")
        if not 0.0 <= self.thin_keep <= 1.0:
            problems.append(f"the share of the slice to keep must be in [0, 1], not {self.thin_keep}")
        if self.thin_keep < 1.0 and not self.thin_column:
            problems.append("thinning a slice needs its column (thin_column) and value (thin_value)")
        if problems:
            raise DataError("This simulation recipe cannot work: " + "; ".join(problems) + ".")

    # ------------------------------------------------------------------ what it does
    @property
    def active(self) -> list[str]:
        """Short descriptions of the steps that change something (empty: the recipe is a copy)."""
        out = []
        if self.thin_column and self.thin_keep < 1.0:
            out.append(f"{self.thin_column}={self.thin_value} kept {self.thin_keep:.0%}")
        if self.drop_classes:
            out.append(f"dropped {', '.join(self.drop_classes)}")
        if self.imbalance == "long_tail" and self.ratio > 1.0:
            out.append(f"long tail ×{self.ratio:g}")
        elif self.imbalance == "step" and self.ratio > 1.0:
            out.append(f"step ×{self.ratio:g} on {self.minority_share:.0%} of classes")
        if self.noise_kind == "matrix" and self.noise_matrix:
            out.append("noise by matrix")
        elif self.noise_rate > 0:
            out.append(f"{self.noise_rate:.0%} {self.noise_kind} noise")
        if self.duplicate_share > 0:
            out.append(f"{self.duplicate_share:.0%} duplicated")
        return out

    def summary(self) -> str:
        return "simulated: " + (" · ".join(self.active) or "no change") + f" (seed {self.seed})"

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["order"], d["drop_classes"] = list(self.order), list(self.drop_classes)
        d["noise_matrix"] = [list(row) for row in self.noise_matrix]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for name in ("order", "drop_classes"):
            if name in kw:
                kw[name] = tuple(str(c) for c in kw[name])
        if "noise_matrix" in kw:
            kw["noise_matrix"] = tuple(tuple(float(x) for x in row) for row in kw["noise_matrix"])
        return cls(**kw)

    def with_severity(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)
