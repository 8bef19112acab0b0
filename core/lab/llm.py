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

``run_tune`` fine-tunes the model on a stored probe's facts as ``core.lab.finetune`` plans it (all
weights, AdamW at a constant rate, bf16 autocast on a GPU; the loss only on the taught answer and its
line end, after a zero-shot "Q: … A:" prompt), evaluates it greedily after every ``eval_every``
epochs, and asks the whole probe again at the end; ``TuneJob`` runs it in the background. It needs a
GPU unless ``allow_cpu`` (the benchmark and the tests, which fine-tune a tiny model of the same
tokenizer).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.background import ProgressJob
from core.data import assets
from core.errors import DataError
from core.hardware import autocast, torch_device
from core.lab import facts as F
from core.lab.facts import Fact, ProbeSettings, categorise, choose, is_right, normalise, prompts, save_probe, summarise
from core.lab.finetune import TuneSettings, curve_point, plan, target, tune_table

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
        _publish(_save_float(quantised, tok, Path(tempfile.mkdtemp(prefix="hf.partial-", dir=folder))), cached)
    model: Any = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32, use_safetensors=True)
    return model.to(torch_device("auto")).eval(), load_tokenizer(cached)


def load_tokenizer(folder: str | Path | None = None) -> Any:
    """The model's tokenizer (from the de-quantised copy by default), padding on the left for generation."""
    from transformers import AutoTokenizer

    if folder is None and not (assets.asset_path(ASSET) / "hf" / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(assets.asset_path(ASSET), gguf_file=GGUF)  # not de-quantised yet
    else:
        tok = AutoTokenizer.from_pretrained(folder or assets.asset_path(ASSET) / "hf")
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _publish(partial: Path, cached: Path) -> None:
    """``partial`` renamed to ``cached`` in one step; when another process got there first (two
    first loads at once), its copy stays and ours is removed."""
    try:
        partial.replace(cached)
    except OSError:
        if not (cached / "config.json").exists():
            raise
        shutil.rmtree(partial, ignore_errors=True)


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


def probe_prompts(facts: Sequence[Fact], settings: ProbeSettings) -> list[list[str]]:
    """Each fact's greedy prompts, drawn by the settings' seed: the same prompts for the same facts."""
    rng = np.random.default_rng(settings.seed)
    return [prompts(f, settings, rng) for f in facts]


def probe_facts(
    model: Any, tok: Any, facts: Sequence[Fact], settings: ProbeSettings, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """One row per fact: its greedy answers and samples, whether each is right, the SliCK category,
    and the answer (first greedy) with its confidence."""
    torch.manual_seed(settings.seed)
    asked = probe_prompts(facts, settings)
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


def encode_pairs(tok: Any, pairs: Sequence[tuple[str, str]], device: torch.device | str) -> dict[str, torch.Tensor]:
    """(prompt, taught answer) pairs as one right-padded batch of ``prompt + " " + answer + "\n"``;
    the labels are the answer's tokens and the line end, -100 on the prompt and the padding."""
    ids, labels = [], []
    for prompt, answer in pairs:
        head = tok(prompt)["input_ids"]
        full = tok(f"{prompt} {answer}\n")["input_ids"]
        k = 0
        while k < min(len(head), len(full)) and head[k] == full[k]:
            k += 1
        ids.append(full)
        labels.append([-100] * k + full[k:])
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), int(tok.pad_token_id), dtype=torch.long)
    target_ids = torch.full((len(ids), width), -100, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, (row, lab) in enumerate(zip(ids, labels)):
        input_ids[i, : len(row)] = torch.tensor(row)
        target_ids[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(row)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device), "labels": target_ids.to(device)}


def tune_model(
    model: Any,
    tok: Any,
    pairs: Sequence[tuple[str, str]],
    settings: TuneSettings,
    evaluate: Callable[[], dict[str, float]],
    progress: Progress | None = None,
) -> list[dict[str, float]]:
    """Fine-tune every weight on ``pairs`` for ``settings.epochs`` epochs (seeded order); after every
    ``eval_every`` epochs and the last, one history entry: the epoch, its mean loss and ``evaluate()``."""
    device = model.device
    torch.manual_seed(settings.seed)
    order_gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)
    per_epoch = -(-len(pairs) // settings.batch_size)
    history: list[dict[str, float]] = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        losses = []
        order = torch.randperm(len(pairs), generator=order_gen).tolist()
        for j, lo in enumerate(range(0, len(pairs), settings.batch_size)):
            batch = encode_pairs(tok, [pairs[i] for i in order[lo : lo + settings.batch_size]], device)
            with autocast(device):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            if progress is not None:
                done = (epoch - 1) * per_epoch + j + 1
                progress(done, settings.epochs * per_epoch, f"fine-tuning: epoch {epoch}/{settings.epochs} · loss {losses[-1]:.3f}")
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            model.eval()
            history.append({"epoch": float(epoch), "loss": float(np.mean(losses)), **evaluate()})
    model.eval()
    return history


def run_tune(
    home: str | Path,
    settings: TuneSettings,
    progress: Progress | None = None,
    log: Callable[[str], None] = print,
    *,
    loader: Callable[[Callable[[str], None]], tuple[Any, Any]] = load_model,
    allow_cpu: bool = False,
) -> dict[str, Any]:
    """Fine-tune on the stored probe ``settings.probe_id``'s facts (see the module's docstring) and
    return the record: the plan, the evaluations over epochs, the probe asked again, and ``tune_table``."""
    t0 = time.perf_counter()
    if not allow_cpu and torch_device("auto").type == "cpu":
        raise DataError("fine-tuning SmolLM2 needs a GPU (this machine has none); a probe runs on a CPU")
    probe = next((r for r in F.probes(home) if int(r["id"]) == settings.probe_id), None)
    if probe is None:
        raise DataError(f"there is no stored probe {settings.probe_id}; probe the model first")
    asked = ProbeSettings.from_dict(probe["settings"])
    facts = F.probe_facts_of(probe)
    cats = [str(r["category"]) for r in probe["rows"]]
    roles = plan(cats, settings).tolist()
    targets = [target(f, c, settings.idk) for f, c in zip(facts, cats)]
    pairs = [(F.prompt(f, []), t) for f, t, r in zip(facts, targets, roles) if r == "tuned"]
    first = [ps[0] for ps in probe_prompts(facts, asked)]
    if progress is not None:
        progress(0, 1, "loading SmolLM2")
    model, tok = loader(log)

    def evaluate() -> dict[str, float]:
        answers = [a for a, _ in generate(model, tok, first, max_new_tokens=asked.max_new_tokens)]
        return curve_point(answers, facts, cats, roles, targets)

    start = {"epoch": 0.0, **curve_point([str(r["answer"]) for r in probe["rows"]], facts, cats, roles, targets)}
    t1 = time.perf_counter()
    history = [start, *tune_model(model, tok, pairs, settings, evaluate, progress)]
    trained = time.perf_counter() - t1

    def asking(done: int, total: int, stage: str) -> None:
        if progress is not None:
            progress(done, total, f"asking the probe again: {stage}")

    after = probe_facts(model, tok, facts, asked, asking)
    return {
        "model": MODEL_NAME if loader is load_model else type(model).__name__,
        "device": str(model.device),
        "probe": int(probe["id"]),
        "probe_settings": asked.to_dict(),
        "settings": settings.to_dict(),
        "categories": cats,
        "roles": roles,
        "targets": targets,
        "history": history,
        "before": probe["rows"],
        "after": after,
        "table": tune_table(probe["rows"], after, roles, asked.tau).to_dict("records"),
        "train_seconds": trained,
        "seconds": time.perf_counter() - t0,
    }


class TuneJob(ProgressJob):
    """``run_tune`` in the background; the record is stored under the home (``core.lab.facts.TUNES_DIR``)
    and kept in ``record``."""

    def __init__(self, home: str | Path, settings: TuneSettings, *, loader: Callable[[Callable[[str], None]], tuple[Any, Any]] = load_model,
                 allow_cpu: bool = False) -> None:  # fmt: skip
        super().__init__(name="gapscope-lab-tune")
        self.home, self.settings, self.loader, self.allow_cpu = Path(home), settings, loader, allow_cpu
        self.record: dict[str, Any] | None = None

    def work(self) -> None:
        record = run_tune(self.home, self.settings, self.progress, log=lambda m: self.progress(0, 1, m), loader=self.loader,
                          allow_cpu=self.allow_cpu)  # fmt: skip
        self.record = F.save_record(self.home, record, folder=F.TUNES_DIR, prefix="tune")
