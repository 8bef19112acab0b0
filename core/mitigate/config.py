"""``Mitigations``: the typed, validated mitigation settings stored with every run (torch-free).

Each field names an entry of a registry (``SAMPLERS``, ``LOSSES``, ``AUGMENTATIONS``); the
defaults are the no-op seams, so a config without mitigations trains exactly as before. Old
stored configs, which have no ``mitigations`` key, load with the defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: name → one line of help. Each name has an implementation in core.mitigate.{sampler,criterion,augment}.
SAMPLERS: dict[str, str] = {"shuffle": "every train item once per epoch, in a random order"}
LOSSES: dict[str, str] = {"cross_entropy": "plain cross-entropy"}
AUGMENTATIONS: dict[str, str] = {}


@dataclass
class Mitigations:
    """What a run does about incomplete data. The defaults change nothing."""

    sampler: str = "shuffle"  # which train items each epoch draws (SAMPLERS)
    loss: str = "cross_entropy"  # the training criterion (LOSSES)
    augment: list[str] = field(default_factory=list)  # augmentations, applied in order (AUGMENTATIONS)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> tuple[Mitigations, dict[str, Any]]:
        """(settings, unknown keys): keys this Gapscope does not know (a newer one wrote them) are
        returned apart, so the caller can keep them rather than lose them."""
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        if "augment" in known and known["augment"] is not None:
            known["augment"] = list(known["augment"])
        return cls(**known), {k: v for k, v in data.items() if k not in names}

    @property
    def active(self) -> list[str]:
        """The settings that differ from the defaults, as short words (for run names and tables)."""
        default = Mitigations()
        out = [f"{name}={getattr(self, name)}" for name in ("sampler", "loss") if getattr(self, name) != getattr(default, name)]
        return out + [f"augment={a}" for a in self.augment]

    def validate(self) -> Mitigations:
        """Raise ``ValueError`` saying what to change when a setting names nothing known; return self."""
        for name, registry in (("sampler", SAMPLERS), ("loss", LOSSES)):
            value = getattr(self, name)
            if value not in registry:
                raise ValueError(f"mitigations.{name} must be one of {', '.join(registry)}; got {value!r}.")
        if not isinstance(self.augment, list) or not all(isinstance(a, str) for a in self.augment):
            raise ValueError(f"mitigations.augment must be a list of augmentation names; got {self.augment!r}.")
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            choices = ", ".join(AUGMENTATIONS) or "none yet"
            raise ValueError(f"unknown augmentation(s) {unknown}; available: {choices}.")
        return self
