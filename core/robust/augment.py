"""Adversarial augmentation for text: the word-substitution attack run on a finished run's own train
texts, and the texts it fooled the model with added to a new version as train items with their
true labels (the adversarial training of Jin et al. 2020, done as data). A run on that version with
the first run's settings is the one to compare; attack both on the Runs page to see what it bought.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.background import ProgressJob
from core.errors import DataError

Progress = Callable[[int, int, str], None]


def adversarial_version(store: Any, run_id: int, *, n_items: int = 300, max_words: int = 3, seed: int = 0,
                        progress: Progress | None = None) -> int:  # fmt: skip
    """Attack a seeded sample of ``n_items`` train texts of run ``run_id``'s version with its result
    model; save the version with every text the attack fooled it with added as a train item of the
    same label (``source_item``: the text it came from); return the new version's id."""
    from core.explain.attribute import Explainer
    from core.mitigate.language import synonyms, wordnet_ready
    from core.robust.words import attack_text
    from core.train.apply import load_run_model

    report = progress or (lambda done, total, stage: None)
    if not wordnet_ready():
        raise DataError("the WordNet asset is not installed; run scripts/setup.sh to fetch it.")
    model = load_run_model(store, run_id, device="cpu")
    ds = model.ds
    if ds.modality != "text":
        raise DataError(
            "adversarial augmentation rewrites texts; for images and tables train with adversarial training (Train → Robustness)."
        )
    ex = Explainer(model)
    pos = {int(c): i for i, c in enumerate(model.classes.tolist())}
    train = np.flatnonzero((ds.split == 0) & np.isin(ds.labels, list(pos)))
    rows = np.sort(np.random.default_rng(seed).choice(train, size=min(n_items, len(train)), replace=False))
    added_rows: list[int] = []
    added_texts: list[str] = []
    for j, r in enumerate(rows.tolist()):
        report(j, len(rows), f"attacking train texts ({j:,} of {len(rows):,}; {len(added_rows):,} fooled it)")
        got = attack_text(str(ds.items[r]), pos[int(ds.labels[r])], ex.text_probs, synonyms, max_words=max_words)
        if got.flipped:
            added_rows.append(r)
            added_texts.append(got.text)
    if not added_rows:
        raise DataError(
            f"the attack fooled the model on none of {len(rows):,} train texts: nothing to add. Attack more texts or allow more words."
        )
    picked = np.asarray(added_rows, dtype=np.int64)
    meta_a, meta_b = ds.meta.copy(), ds.meta.iloc[picked].reset_index(drop=True).copy()
    meta_a["source_item"], meta_b["source_item"] = ds.item_ids(), ds.item_ids()[picked]
    out = dataclasses.replace(
        ds,
        items=np.concatenate([np.asarray(ds.items, dtype=object), np.asarray(added_texts, dtype=object)]),
        labels=np.r_[ds.labels, ds.labels[picked]].astype(np.int64),
        split=np.r_[ds.split, np.zeros(len(picked), np.int8)].astype(np.int8),
        meta=pd.concat([meta_a, meta_b], ignore_index=True),
    )
    info = store.version(store.run(run_id).version_id)
    vid = store.save_dataset(
        out, source=f"adversarial:{info.id}", dataset_id=info.dataset_id, parent_id=info.id, kind="augment",
        note=f"{len(picked):,} attacked train texts added (run #{run_id}, at most {max_words} words changed)",
        params={"adversarial_texts": {"run": int(run_id), "attacked": len(rows), "added": len(picked), "max_words": max_words, "seed": seed}},
    )  # fmt: skip
    report(1, 1, "done")
    return int(vid)


def augmented_config(store: Any, run_id: int, version_id: int) -> Any:
    """Run ``run_id``'s settings on the augmented version ``version_id``."""
    from core.train.config import RunConfig

    base = RunConfig.from_dict(store.run(run_id).config)
    return dataclasses.replace(base, version_id=int(version_id), name=f"{base.display_name()} · attacked texts added")


class AugmentJob(ProgressJob):
    """``adversarial_version`` in the background, then a run on the new version through ``submit``
    (the app's runner); ``version_id`` and ``new_run`` once made."""

    def __init__(self, home: str | Path, run_id: int, submit: Callable[[Any], int], **kwargs: Any) -> None:
        super().__init__(name=f"gapscope-adversarial-texts-{run_id}")
        self.home, self.run_id, self.submit, self.kwargs = Path(home), int(run_id), submit, kwargs
        self.version_id: int | None = None
        self.new_run: int | None = None

    def work(self) -> None:
        from core.store import Store

        store = Store(self.home)
        self.version_id = adversarial_version(store, self.run_id, progress=self.progress, **self.kwargs)
        self.new_run = self.submit(augmented_config(store, self.run_id, self.version_id))
