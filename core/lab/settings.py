"""What a lab run decides, stored with the run (``RunConfig.lab``): torch-free, pages import it.

``LabSettings``: epochs, batch, learning rate, the model's size, the seed, τ, how often to evaluate,
and the lab's mitigations (what each does: ``core.lab.train``): ``paraphrase_aug``, ``repeat_rare``,
``qa_share`` / ``idk_share`` (questions in training; abstention training), ``teach_unknown``
(facts only fine-tuning shows), ``abstain_below``, ``abstain_unfamiliar``,
``retrieval`` and ``early_stop``. ``lab_words`` says the switched-on ones in words for run names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import DataError
from core.lab.corpus import known_fields

LAB_MODEL = "lab_gpt2"  # the registry name of the lab's model


@dataclass(frozen=True)
class LabSettings:
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    n_layer: int = 4
    n_embd: int = 128
    seed: int = 0
    eval_every: int = 5
    paraphrase_aug: bool = False
    repeat_rare: int = 0
    qa_share: float = 0.0
    idk_share: float = 0.0
    teach_unknown: float = 0.0
    abstain_below: float = 0.0
    abstain_unfamiliar: float = 0.0
    retrieval: bool = False
    early_stop: bool = False
    min_epochs: int = 10
    tau: float = 0.9

    def __post_init__(self) -> None:
        for problem in self.problems():
            raise DataError(problem)

    def problems(self) -> list[str]:
        out = []
        if not 1 <= self.epochs <= 1000:
            out.append(f"epochs must be between 1 and 1,000 (got {self.epochs})")
        if not 1 <= self.batch_size <= 4096:
            out.append(f"the batch size must be between 1 and 4,096 (got {self.batch_size})")
        if not 0 < self.lr < 1:
            out.append(f"the learning rate must be in (0, 1) (got {self.lr:g})")
        if self.n_embd % 4 or not 16 <= self.n_embd <= 1024 or not 1 <= self.n_layer <= 12:
            out.append("the model needs 1–12 layers and a width of 16–1,024 divisible by 4")
        if not 0 <= self.qa_share < 1 or not 0 <= self.idk_share <= 1:
            out.append("the question shares must be in [0, 1)")
        if not 0 <= self.teach_unknown <= 1 or self.idk_share + self.teach_unknown > 1:
            out.append("the held-out shares taught ('unknown', and their true answers) must add up to at most 1")
        if self.idk_share > 0 and self.qa_share == 0:
            out.append("abstention training teaches the answer 'unknown' to questions: set a question share above 0 too")
        if not 0 <= self.repeat_rare <= 20:
            out.append(f"extra copies of rare biographies must be between 0 and 20 (got {self.repeat_rare})")
        if not 0 <= self.abstain_below < 1 or not 0 < self.tau <= 1:
            out.append("the abstention threshold must be in [0, 1) and τ in (0, 1]")
        if not 0 <= self.abstain_unfamiliar < 0.5:
            out.append(f"the unfamiliar-name quantile must be in [0, 0.5) (got {self.abstain_unfamiliar:g})")
        if self.eval_every < 1:
            out.append("evaluate at least every epoch count ≥ 1")
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabSettings:
        return known_fields(cls, d, "lab settings")


def lab_words(s: LabSettings) -> list[str]:
    """The mitigations a lab run switched on, in words (for its name and Compare)."""
    out = []
    if s.paraphrase_aug:
        out.append("paraphrase augmentation")
    if s.repeat_rare:
        out.append(f"rare facts ×{s.repeat_rare + 1}")
    if s.qa_share:
        out.append(f"questions of {s.qa_share:.0%} in training")
    if s.idk_share:
        out.append(f"'unknown' for {s.idk_share:.0%} of held-out people")
    if s.teach_unknown:
        out.append(f"true answers of {s.teach_unknown:.0%} of held-out people taught")
    if s.abstain_below:
        out.append(f"abstain below {s.abstain_below:g}")
    if s.abstain_unfamiliar:
        out.append(f"abstain on unfamiliar names ({s.abstain_unfamiliar:.0%})")
    if s.retrieval:
        out.append("retrieval")
    if s.early_stop:
        out.append("early stop on invented answers")
    return out


def lab_block(settings: LabSettings, corpus: Mapping[str, Any]) -> dict[str, Any]:
    """What ``RunConfig.lab`` holds: the settings and the corpus's own settings (a run says what it read)."""
    return {**settings.to_dict(), "corpus": dict(corpus)}


def read_lab(block: Mapping[str, Any]) -> tuple[LabSettings, dict[str, Any]]:
    """``RunConfig.lab`` → (settings, the corpus's settings); a ``DataError`` says what is missing."""
    if not isinstance(block, Mapping) or not isinstance(block.get("corpus"), Mapping):
        raise DataError("a lab run needs its corpus's settings in its config ('lab' → 'corpus'): start it from the Lab page")
    rest = {k: v for k, v in block.items() if k != "corpus"}
    return LabSettings.from_dict(rest), dict(block["corpus"])
