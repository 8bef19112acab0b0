"""Tag schemes: which one a file uses, and its tags in IOB2.

Files tag entities in one of four schemes; Gapscope keeps IOB2 only (``core.tokens.spans``):

- **IOB2**: every entity opens with ``B-X`` and goes on with ``I-X``.
- **IOB1**: an entity opens with ``I-X``; ``B-X`` only opens one that directly follows another X.
- **IOBES**: ``S-X`` a one-token entity, ``E-X`` an entity's last token (``B-``/``I-`` as in IOB2).
- **IO**: ``I-X`` only, no ``B-``: two entities of one type side by side read as one.

Conversion to IOB2: ``S-`` → ``B-``, ``E-`` → ``I-``; then every ``I-X`` that opens a span (at the
start, after ``O``, or after a tag of another type) becomes ``B-X`` and is counted as a repair. That
one rule converts IOB1 and IO, and repairs a broken IOB2 file the way a strict reader would
otherwise drop the span. Transitions the detected scheme does not allow ("O → I-PER",
"B-LOC → I-ORG") are counted for the Data page. Pure Python, no torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.errors import DataError
from core.tokens.spans import OUTSIDE

PREFIXES = ("B", "I", "E", "S")  # IOB2 / IOB1 / IO use B and I; IOBES adds E and S
TAG_RULE = "tags are O or B-TYPE / I-TYPE (or S-, E- in IOBES)"
START, END = "(start)", "(end)"  # the ends of a sentence, as transitions name them

Where = Callable[[int, int], str]  # (sentence, token) → "line 12": where a tag came from


def is_tag(tag: str) -> bool:
    """Whether ``tag`` is ``O`` or ``<B|I|E|S>-<TYPE>`` (a type is not empty and holds no whitespace)."""
    if tag == OUTSIDE:
        return True
    prefix, sep, kind = tag.partition("-")
    return sep == "-" and prefix in PREFIXES and kind != "" and not any(c.isspace() for c in kind)


def is_iob2_tag(tag: str) -> bool:
    """Whether ``tag`` is ``O``, ``B-TYPE`` or ``I-TYPE``."""
    return is_tag(tag) and tag[0] in ("O", "B", "I")


def bad_tag_message(tag: object, where: str) -> str:
    """What a loader says of a tag that is not one: where it is, what it is, what a tag looks like."""
    shown = repr(tag) if isinstance(tag, str) else f"{tag!r} ({type(tag).__name__})"
    return f"{where}: {shown[:80]} is not a tag — {TAG_RULE}. Change it to one of those."


def _where_default(i: int, j: int) -> str:
    return f"sentence {i + 1:,}, token {j + 1:,}"


def check_tags(tag_seqs: Sequence[Sequence[str]], *, where: Where = _where_default) -> None:
    """Raise ``DataError`` at the first tag that is not ``O`` or ``<prefix>-<TYPE>``, saying where."""
    seen: dict[object, bool] = {}
    for i, seq in enumerate(tag_seqs):
        for j, tag in enumerate(seq):
            ok = seen.get(tag)
            if ok is None:
                ok = seen[tag] = isinstance(tag, str) and is_tag(tag)
            if not ok:
                raise DataError(bad_tag_message(tag, where(i, j)))


@dataclass(frozen=True)
class TagScheme:
    """What reading a file's tags found, for warnings and the Data page.

    ``scheme``: "IOB2", "IOB1", "IOBES" or "IO" (a file with only ``O`` reads as IOB2);
    ``repairs``: ``I-`` tags that opened a span and became ``B-``; ``converted``: IOBES ``S-``/``E-``
    tags rewritten as ``B-``/``I-``; ``broken``: transitions the scheme does not allow, as
    ``{"O → I-PER": 20, "B-LOC → I-ORG": 3}``, most frequent first."""

    scheme: str
    repairs: int = 0
    converted: int = 0
    broken: dict[str, int] = field(default_factory=dict)

    def words(self) -> list[str]:
        """The warnings an import shows: what was converted or repaired, in words."""
        out: list[str] = []
        examples = ", ".join(f"'{t}' {n:,}×" for t, n in list(self.broken.items())[:3])
        more = ", …" if len(self.broken) > 3 else ""
        if self.scheme == "IOBES" and self.converted:
            out.append(f"The tags are IOBES: {self.converted:,} S- and E- tags were rewritten as B- and I- (IOBES → IOB2).")
        if self.scheme == "IOB1" and self.repairs:
            out.append(f"Repaired {self.repairs:,} I- tags that opened a span to B- (IOB1 → IOB2).")
        elif self.scheme == "IO" and self.repairs:
            out.append(
                f"The tags are IO (no B- tags): {self.repairs:,} I- tags that opened a span became B- (IO → IOB2). "
                "Two entities of one type side by side cannot be told apart in IO and were read as one."
            )
        elif self.repairs:
            out.append(
                f"Repaired {self.repairs:,} I- tags that opened a span to B- (they broke {self.scheme}: {examples}{more}); "
                "each now opens its own entity (IOB2)."
            )
        if self.scheme == "IOBES" and self.broken and not self.repairs:
            out.append(f"{sum(self.broken.values()):,} tag transitions break IOBES ({examples}{more}); the tags were read as they are.")
        return out

    def as_dict(self) -> dict:
        """Plain JSON (stored with a version's params)."""
        return {"scheme": self.scheme, "repairs": self.repairs, "converted": self.converted, "broken": dict(self.broken)}


@dataclass(frozen=True)
class SchemeResult:
    """``tags``: each sentence's tags in IOB2 (tuples); ``report``: the scheme found and what changed."""

    tags: list[tuple[str, ...]]
    report: TagScheme

    @property
    def scheme(self) -> str:
        return self.report.scheme

    @property
    def repairs(self) -> int:
        return self.report.repairs

    @property
    def broken(self) -> dict[str, int]:
        return self.report.broken


def _continues(prev: str, tag: str) -> bool:
    """Whether the I-/E- ``tag`` continues the span ``prev`` is in (B-X, I-X → I-X or E-X)."""
    return prev[:2] in ("B-", "I-") and prev[2:] == tag[2:]


def _survey(tag_seqs: Sequence[Sequence[str]]) -> tuple[set[str], int, int]:
    """(prefixes used, I- tags that open a span, B- tags that open a span after O / another type)."""
    prefixes: set[str] = set()
    i_opens = b_after_outside = 0
    for seq in tag_seqs:
        prev = OUTSIDE
        for tag in seq:
            p = tag[0]
            prefixes.add(p)
            if p == "I" and not _continues(prev, tag):
                i_opens += 1
            elif p == "B" and not (prev[:2] in ("B-", "I-") and prev[2:] == tag[2:]):
                b_after_outside += 1
            prev = tag
    return prefixes, i_opens, b_after_outside


def detect_scheme(tag_seqs: Sequence[Sequence[str]]) -> str:
    """The scheme of ``tag_seqs``: IOBES (S- or E- present), IO (I- and no B-), IOB1 (I- opens
    spans and B- only follows its own type) or IOB2. Tags must pass ``check_tags``."""
    prefixes, i_opens, b_after_outside = _survey(tag_seqs)
    if prefixes & {"S", "E"}:
        return "IOBES"
    if "I" in prefixes and "B" not in prefixes:
        return "IO"
    if i_opens and not b_after_outside:
        return "IOB1"
    return "IOB2"


def _iobes_breaks(seq: Sequence[str], broken: Counter[str]) -> None:
    """Count transitions IOBES does not allow: inside a span (after B-X, I-X) only I-X or E-X may
    follow; outside (start, O, E-, S-) only O, B- or S-."""
    prev = START
    for tag in [*seq, END]:
        inside = prev[:2] in ("B-", "I-")
        if inside:
            ok = tag[:2] in ("I-", "E-") and tag[2:] == prev[2:]
        else:
            ok = tag in (END, OUTSIDE) or tag[:2] in ("B-", "S-")
        if not ok:
            broken[f"{prev} → {tag}"] += 1
        prev = tag


def to_iob2(tag_seqs: Sequence[Sequence[str]], *, where: Where = _where_default) -> SchemeResult:
    """Each sentence's tags in IOB2, with the scheme detected and what was changed.

    Parameters
    ----------
    tag_seqs : sequences of str, one per sentence
    where : (sentence, token) → where that tag came from ("line 12"), for the error message

    Raises ``DataError`` naming the first tag that is not ``O`` or ``<B|I|E|S>-<TYPE>``.
    """
    check_tags(tag_seqs, where=where)
    scheme = detect_scheme(tag_seqs)
    broken: Counter[str] = Counter()
    repairs = converted = 0
    out: list[tuple[str, ...]] = []
    for seq in tag_seqs:
        if scheme == "IOBES":
            _iobes_breaks(seq, broken)
        tags: list[str] = []
        prev, before = OUTSIDE, START  # the previous tag as converted, and as the file gave it
        for given in seq:
            tag, p = given, given[0]
            if p in ("S", "E"):
                tag = ("B-" if p == "S" else "I-") + tag[2:]
                converted += 1
            if tag[0] == "I" and (before[:2] in ("S-", "E-") or not _continues(prev, tag)):  # S-, E- close their span
                if scheme == "IOB2":
                    broken[f"{before} → {given}"] += 1
                tag = "B-" + tag[2:]
                repairs += 1
            tags.append(tag)
            prev, before = tag, given
        out.append(tuple(tags))
    return SchemeResult(out, TagScheme(scheme, repairs, converted, dict(broken.most_common())))
