"""What the Data page shows of a token dataset: entity counts per type and split, head / tail types,
sentence lengths, and example sentences cut into highlighted segments. Torch-free.

Types are grouped head / medium / tail by their **train mentions** with the one rule every page
uses (``core.metrics.groups``): a mention is to an entity type what an item is to a class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data.dataset import SPLITS, Dataset
from core.metrics.groups import group_of_classes, rule_words
from core.tokens.spans import entity_types, spans

Segment = tuple[str, str | None]  # (text, entity type or None for tokens outside any entity)


def _tags(ds: Dataset) -> list[tuple[str, ...]]:
    if ds.tags is None:
        raise ValueError(f"{ds.name} is not a token dataset")
    return list(ds.tags)


def entity_table(ds: Dataset) -> pd.DataFrame:
    """One row per entity type: mentions per split, train sentences holding it, its group by train
    mentions, and its share of train mentions; sorted by train mentions, most first."""
    tags = _tags(ds)
    types = entity_types(tags)
    mentions = {s: Counter[str]() for s in SPLITS}
    sentences = Counter[str]()
    for seq, code in zip(tags, ds.split):
        split = SPLITS[int(code)]
        kinds = [k for k, _, _ in spans(seq)]
        mentions[split].update(kinds)
        if split == "train":
            sentences.update(set(kinds))
    train = np.array([mentions["train"][t] for t in types], dtype=np.int64)
    total = max(1, int(train.sum()))
    table = pd.DataFrame(
        {
            "type": types,
            "train mentions": train,
            "val mentions": [mentions["val"][t] for t in types],
            "test mentions": [mentions["test"][t] for t in types],
            "train sentences": [sentences[t] for t in types],
            "group": group_of_classes(train) if len(types) else np.array([], dtype=str),
            "share of train mentions": train / total,
        }
    )
    return table.sort_values(["train mentions", "type"], ascending=[False, True]).reset_index(drop=True)


@dataclass(frozen=True)
class TokenKpis:
    sentences: int
    tokens: int
    types: int
    mentions: int
    no_entity_share: float  # sentences without an entity, all splits
    imbalance: float  # most ÷ fewest train mentions among types with any (inf when a type has none in train)
    absent_from_train: tuple[str, ...]  # types seen only in val / test


def kpis(ds: Dataset) -> TokenKpis:
    tags = _tags(ds)
    table = entity_table(ds)
    train = table["train mentions"].to_numpy()
    seen = train[train > 0]
    absent = tuple(table.loc[train == 0, "type"])
    imbalance = float("inf") if absent else (float(seen.max() / seen.min()) if len(seen) else float("nan"))
    no_entity = sum(1 for seq in tags if not spans(seq))
    return TokenKpis(
        sentences=len(tags),
        tokens=int(sum(len(seq) for seq in tags)),
        types=len(table),
        mentions=int(table[["train mentions", "val mentions", "test mentions"]].to_numpy().sum()),
        no_entity_share=no_entity / max(1, len(tags)),
        imbalance=imbalance,
        absent_from_train=absent,
    )


def lengths(ds: Dataset) -> pd.DataFrame:
    """Tokens per sentence with its split (a histogram's input)."""
    tags = _tags(ds)
    return pd.DataFrame({"tokens": [len(seq) for seq in tags], "split": ds.split_names})


def type_lines(table: pd.DataFrame) -> list[str]:
    """The entity balance in words: the rule, the tail types, the largest and smallest type."""
    if table.empty:
        return ["No entities in this dataset: every tag is O."]
    lines = ["Entity types by train mentions — " + rule_words().replace("items", "mentions")]
    tail = table[table["group"] == "tail"]
    if len(tail):
        lines.append("Tail types (fewest train mentions): " + ", ".join(f"{t} ({n})" for t, n in zip(tail["type"], tail["train mentions"])))
    top, low = table.iloc[0], table[table["train mentions"] > 0].iloc[-1] if (table["train mentions"] > 0).any() else None
    if low is not None and low["type"] != top["type"]:
        lines.append(
            f"{top['type']} has {int(top['train mentions']):,} train mentions, {low['type']} {int(low['train mentions']):,}: "
            f"{top['train mentions'] / max(1, low['train mentions']):.0f}:1."
        )
    missing = table[table["train mentions"] == 0]
    if len(missing):
        lines.append("Only in val / test (a model cannot learn them): " + ", ".join(missing["type"]))
    return lines


def segments(tokens: Sequence[str], tags: Sequence[str]) -> list[Segment]:
    """The sentence as (text, type) pieces: each entity one piece, the tokens between them one."""
    out: list[Segment] = []
    at = 0
    for kind, start, end in spans(tags):
        if start > at:
            out.append((" ".join(tokens[at:start]), None))
        out.append((" ".join(tokens[start:end]), kind))
        at = end
    if at < len(tokens):
        out.append((" ".join(tokens[at:]), None))
    return out


def examples(ds: Dataset, *, kind: str | None = None, split: int | None = 0, k: int = 5, seed: int = 0) -> list[tuple[int, list[Segment]]]:
    """Up to ``k`` sentences (item number, segments), drawn at random (seeded) from ``split``
    (None: any), only those holding ``kind`` when given."""
    tags = _tags(ds)
    rows = np.arange(len(tags)) if split is None else np.flatnonzero(ds.split == split)
    if kind is not None:
        rows = np.array([r for r in rows if any(t == kind for t, _, _ in spans(tags[r]))], dtype=np.int64)
    if len(rows) == 0:
        return []
    chosen = np.sort(np.random.default_rng(seed).choice(rows, size=min(k, len(rows)), replace=False))
    ids = ds.item_ids()
    return [(int(ids[r]), segments(list(ds.items[r]), list(tags[r]))) for r in chosen]


def scheme_line(stored: dict | None) -> str:
    """What the import read and changed, from a version's ``params["tag_scheme"]`` (``TagScheme.as_dict``)."""
    if not stored:
        return "Tags read as IOB2 (no record of the file's own scheme)."
    said = f"The file's tags were read as **{stored.get('scheme', 'IOB2')}** and stored as IOB2"
    changes = []
    if stored.get("repairs"):
        changes.append(f"{int(stored['repairs']):,} I- tags that opened a span became B-")
    if stored.get("converted"):
        changes.append(f"{int(stored['converted']):,} S- / E- tags became B- / I-")
    return said + (": " + "; ".join(changes) + "." if changes else "; nothing had to change.")


def broken_transitions(stored: dict | None) -> pd.DataFrame:
    """The tag transitions the file's scheme does not allow, with their counts, most first."""
    broken = dict((stored or {}).get("broken") or {})
    table = pd.DataFrame({"transition": list(broken), "times": [int(n) for n in broken.values()]})
    return table.sort_values(["times", "transition"], ascending=[False, True]).reset_index(drop=True)
