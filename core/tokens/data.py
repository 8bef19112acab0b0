"""A token ``Dataset`` from sentences: labels are each sentence's rarest entity type.

``token_dataset`` is the one place a token dataset's ``labels`` and ``class_names`` are made, so
the loaders, the demos and anything that builds sentences anew (augmentation, corruption) agree:
``labels`` = ``core.tokens.spans.sentence_labels(tags, train=split == 0)`` (rarest by train
mentions), ``class_names`` = ``["(no entity)", *types]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.data.dataset import Dataset, sentences_array
from core.tokens.spans import sentence_labels


def token_dataset(
    name: str,
    tokens: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    split: np.ndarray | Sequence[int],
    meta: pd.DataFrame | None = None,
) -> Dataset:
    """A ``Dataset`` of modality "tokens".

    Parameters
    ----------
    tokens, tags : (n,) sequences of str sequences, one tag per token, tags in IOB2
    split : (n,) split codes (0 train, 1 val, 2 test); "rarest" counts train mentions only
    meta : (n, m) slice columns, optional
    """
    items, tag_arr = sentences_array(tokens), sentences_array(tags)
    split = np.asarray(split, dtype=np.int8)
    labels, class_names = sentence_labels(list(tag_arr), train=split == 0)
    return Dataset(
        name=name,
        modality="tokens",
        items=items,
        labels=labels,
        class_names=class_names,
        split=split,
        meta=meta if meta is not None else pd.DataFrame(),
        tags=tag_arr,
    )
