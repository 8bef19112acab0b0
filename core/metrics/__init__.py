"""How a classifier trained on incomplete data hallucinates, in numbers.

- ``core.metrics.scores`` — the metrics themselves (pure numpy), re-exported here:
  ``from core import metrics as M; M.summary(probs, labels, tau=0.9)``.
- ``core.metrics.keys`` — how metric rows are named in the store (per class, per slice, after
  temperature scaling), and which metrics are better when lower.
- ``core.metrics.results`` — ``RunResults``: one run's metrics, best step, per-class and
  per-slice values and evaluation artifacts, read without torch (for pages and reports).
"""

from core.metrics.scores import *  # noqa: F403 - the metrics, re-exported for ``M.summary`` and friends
from core.metrics.scores import __all__ as __all__
