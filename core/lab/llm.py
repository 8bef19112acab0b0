"""The lab's real model, probed: SmolLM2-135M-Instruct answering the shipped facts (``core.lab.facts``).

The model comes from the ``smollm2`` asset (a GGUF file, Q4_1, checked by SHA-256), which
transformers de-quantises to float32 with ``gguf``. The first load writes the de-quantised model and
its tokenizer as safetensors beside the asset (``smollm2/hf``); later loads read that folder, which
holds no code and no pickles. On a CPU the lab only probes the model; fine-tuning it is for a GPU.

``probe_facts`` answers every fact's greedy prompts in batches (left-padded), keeps the first line
of each answer and the probability the model gave its tokens, samples ``samples`` answers of the
first prompt at ``temperature``, and returns one row per fact for ``core.lab.facts.summarise``.
``ProbeJob`` runs a probe in a background thread of the app and stores the record
(``core.lab.facts.save_probe``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.background import ProgressJob
from core.data import assets
from core.hardware import torch_device
from core.lab.facts import Fact, ProbeSettings, categorise, choose, is_right, normalise, prompts, save_probe, summarise

ASSET = "smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1, de-quantised)"
BATCH = 32
Progress = Callable[[int, int, str], None]


def load_model(log: Callable[[str], None] = print) -> tuple[Any, Any]:
    """(model in eval mode on the GPU when there is one, tokenizer padding on the left)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = assets.asset_path(ASSET)
    cached = folder / "hf"
    if not (cached / "config.json").exists():
        log("de-quantising the GGUF file (once; the float32 copy is kept beside it)")
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
        quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF, dtype=torch.float32)
        _save_float(quantised, tok, folder / "hf.partial").replace(cached)
    tok = AutoTokenizer.from_pretrained(cached)
    model: Any = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32, use_safetensors=True)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model.to(torch_device("auto")).eval(), tok


def _save_float(model: Any, tok: Any, folder: Path) -> Path:
    """The de-quantised weights as safetensors (transformers will not save a model it loaded from
    GGUF), its config without the GGUF quantisation entry, and the tokenizer."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    tok.save_pretrained(folder)
    return folder


def _answer_and_prob(tok: Any, new_ids: torch.Tensor, logprobs: torch.Tensor) -> tuple[str, float]:
    """The first line of one generation and the probability of its tokens (up to the line's end)."""
    text, total = "", 0.0
    for token, lp in zip(new_ids.tolist(), logprobs.tolist()):
        if token in (tok.eos_token_id, tok.pad_token_id):
            break
        piece = tok.decode([token])
        if "\n" in piece:
            if text.strip() or piece.split("\n", 1)[0].strip():
                text += piece.split("\n", 1)[0]
                total += lp
                break
            continue  # a newline before any answer: skip it
        text += piece
        total += lp
    return text.strip(), float(np.exp(total)) if text.strip() else 0.0


def generate(
    model: Any,
    tok: Any,
    texts: Sequence[str],
    *,
    max_new_tokens: int,
    sample: bool = False,
    temperature: float = 1.0,
    after_batch: Callable[[int], None] | None = None,
) -> list[tuple[str, float]]:
    """One answer per text (greedy, or sampled at ``temperature``) with its probability, in batches;
    ``after_batch`` is told how many texts are answered so far."""
    out: list[tuple[str, float]] = []
    for lo in range(0, len(texts), BATCH):
        enc = tok(list(texts[lo : lo + BATCH]), return_tensors="pt", padding=True).to(model.device)
        kwargs: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if sample else {"do_sample": False}
        )
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, output_scores=True,
                                 return_dict_in_generate=True, **kwargs)  # fmt: skip
            scores = model.compute_transition_scores(gen.sequences, gen.scores, normalize_logits=True)
        new = gen.sequences[:, enc["input_ids"].shape[1] :]
        out += [_answer_and_prob(tok, new[i].cpu(), scores[i].float().cpu()) for i in range(new.shape[0])]
        if after_batch is not None:
            after_batch(len(out))
    return out


def agreement(answer: tuple[str, float], samples: Sequence[tuple[str, float]]) -> float:
    """The model's confidence in ``answer``: the share of its samples that say the same (compared as
    ``normalise`` does) — self-consistency, which a word's several spellings in tokens do not split;
    without samples, the answer's own probability."""
    if not samples:
        return answer[1]
    mine = normalise(answer[0])
    return float(np.mean([normalise(a) == mine for a, _ in samples]))


def probe_facts(
    model: Any, tok: Any, facts: Sequence[Fact], settings: ProbeSettings, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """One row per fact: its greedy answers and samples, whether each is right, the SliCK category,
    and the answer (first greedy) with its confidence."""
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    asked = [prompts(f, settings, rng) for f in facts]
    greedy_texts = [p for ps in asked for p in ps]
    sample_texts = [ps[0] for ps in asked for _ in range(settings.samples)]
    total = len(greedy_texts) + len(sample_texts)
    done: list[tuple[str, float]] = []
    for texts, sample in ((greedy_texts, False), (sample_texts, True)):
        stage, before = "sampling" if sample else "greedy answers", len(done)

        def tell(n: int, stage: str = stage, before: int = before) -> None:
            if progress is not None:
                progress(before + n, total, f"{stage}: {before + n:,} of {total:,} generations")

        done += generate(model, tok, texts, max_new_tokens=settings.max_new_tokens, sample=sample, temperature=settings.temperature,
                         after_batch=tell)  # fmt: skip
    greedy, sampled = done[: len(greedy_texts)], done[len(greedy_texts) :]
    g, s = settings.greedy_prompts, settings.samples
    rows = []
    for i, f in enumerate(facts):
        mine, theirs = greedy[i * g : (i + 1) * g], sampled[i * s : (i + 1) * s]
        g_right, s_right = [is_right(a, f.answer) for a, _ in mine], [is_right(a, f.answer) for a, _ in theirs]
        rows.append({
            "family": f.family, "subject": f.subject, "question": f.question, "truth": f.answer,
            "answer": mine[0][0], "confidence": agreement(mine[0], theirs), "probability": mine[0][1], "right": g_right[0],
            "greedy": [a for a, _ in mine], "greedy_right": float(np.mean(g_right)),
            "samples": [a for a, _ in theirs], "sampled_right": float(np.mean(s_right)) if s_right else 0.0,
            "category": categorise(g_right, s_right),
        })  # fmt: skip
    return rows


def run_probe(settings: ProbeSettings, progress: Progress | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Load the model, probe the chosen facts, and return the record (settings, rows, summary, seconds)."""
    t0 = time.perf_counter()
    if progress is not None:
        progress(0, 1, "loading SmolLM2")
    model, tok = load_model(log)
    loaded = time.perf_counter() - t0
    rows = probe_facts(model, tok, choose(settings), settings, progress)
    return {
        "model": MODEL_NAME,
        "device": str(model.device),
        "settings": settings.to_dict(),
        "rows": rows,
        "summary": summarise(rows, settings.tau),
        "load_seconds": loaded,
        "seconds": time.perf_counter() - t0,
    }


class ProbeJob(ProgressJob):
    """``run_probe`` in the background; the record is stored under the home and kept in ``record``."""

    def __init__(self, home: str | Path, settings: ProbeSettings) -> None:
        super().__init__(name="gapscope-lab-probe")
        self.home, self.settings = Path(home), settings
        self.record: dict[str, Any] | None = None

    def work(self) -> None:
        record = run_probe(self.settings, self.progress, log=lambda m: self.progress(0, 1, m))
        self.record = save_probe(self.home, record)
