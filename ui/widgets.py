"""Small rules for how widgets behave, kept out of the pages."""

from __future__ import annotations

import math


def lr_step(value: float) -> float:
    """The step of a learning-rate input at ``value``: one unit of its leading digit (3e-3 → 1e-3,
    so − and + give 2e-3 and 4e-3), and at a power of ten the unit below it (1e-2 → 1e-3, so −
    gives 9e-3 rather than 0); never below 1e-6."""
    if not value > 0:
        return 1e-6
    return max(1e-6, 10.0 ** (math.ceil(math.log10(value) - 1e-9) - 1))
