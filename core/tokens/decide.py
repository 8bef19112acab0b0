"""Fewer invented entities: one offset on the "O" logit, fitted on val at every evaluation.

A tagger trained on a draw richer in entities than the data (sentence over-sampling by rare type,
augmented copies) names more entities than the data holds: its spurious-entity rate rises with the
rare types it learns to find. Raising the logit of "O" by ``b`` makes every word a little less
likely to open or continue a span; a span survives only where the model is sure of it. Types are
untouched relative to each other, so a rare type is still told from a frequent one.

The offset is chosen on the val sentences, per evaluation, by a rule that favours fewer entities:
the **largest** ``b`` in ``OFFSETS`` whose val entity micro-F1 (strict: exact span and type) is
within ``TOLERANCE`` of the best on the grid. Micro-F1 is read from the SemEval-2013 counts of
``core.metrics.entities`` (exact matches ÷ predicted and true spans), which equal seqeval's strict
micro scores; the grid is searched on the val logits alone, the test words only get the chosen
``b``. Without a val entity, or when no offset gets one right, the offset is 0.

Usage::

    b = fit_o_offset(val_logits, val_tags, tag_names)      # 0 … 4
    moved = with_o_offset(test_logits, b, tag_names)        # "O" raised by b, sentence by sentence
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.tokens.spans import OUTSIDE

#: the offsets searched (logits), toward "O" only: the rule exists to invent fewer entities
OFFSETS = np.round(np.arange(0.0, 4.0 + 1e-9, 0.25), 2)
#: how much val entity micro-F1 the rule gives up, at most, for a larger offset
TOLERANCE = 0.01


def with_o_offset(logits: Sequence[np.ndarray], offset: float, tag_names: Sequence[str]) -> list[np.ndarray]:
    """The logits per sentence with ``offset`` added to the "O" column (copies)."""
    col = list(tag_names).index(OUTSIDE)
    out = []
    for z in logits:
        moved = np.array(z, dtype=np.float32, copy=True)
        moved[:, col] += np.float32(offset)
        out.append(moved)
    return out


def micro_f1_by_offset(logits: Sequence[np.ndarray], truth: Sequence[Sequence[str]], tag_names: Sequence[str]) -> np.ndarray:
    """Strict entity micro-F1 of the sentences at each offset of ``OFFSETS`` (nan without any span)."""
    from core.metrics.entities import evaluate_entities
    from core.tokens.train import softmax

    out = np.full(len(OFFSETS), np.nan)
    for i, b in enumerate(OFFSETS):
        probs = [softmax(z) for z in with_o_offset(logits, float(b), tag_names)]
        ev = evaluate_entities(list(truth), probs, list(tag_names))
        n = len(ev.pred_spans) + len(ev.true_spans)
        if n:
            out[i] = 2.0 * ev.categories().overall.correct / n
    return out


def fit_o_offset(
    logits: Sequence[np.ndarray], truth: Sequence[Sequence[str]], tag_names: Sequence[str], *, tolerance: float = TOLERANCE
) -> float:
    """The largest offset of ``OFFSETS`` whose micro-F1 on these (val) sentences is within
    ``tolerance`` of the best; 0 when they hold no entity, true or predicted, or when no offset
    finds a single one right (then every offset ties at 0 and val says nothing of which is best)."""
    f1 = micro_f1_by_offset(logits, truth, tag_names)
    if not np.isfinite(f1).any() or np.nanmax(f1) <= 0:
        return 0.0
    good = np.flatnonzero(f1 >= np.nanmax(f1) - tolerance)
    return float(OFFSETS[good.max()])
