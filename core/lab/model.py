"""The lab's language model: a word-level tokenizer built from the corpus and a small GPT-2 from scratch.

The tokenizer is Hugging Face ``tokenizers``' ``WordLevel`` model over every word the lab can write
(templates, questions, names, values, ``unknown``), split on whitespace — a word is one token, so an
answer is one next-token prediction and its confidence one softmax probability. The model is
``transformers``' ``GPT2LMHeadModel`` with a small config (``LabModelSpec``: 1–10 M parameters).

``next_word_probs`` reads the model's next-word distribution after each prompt; batches are
left-padded (positions counted from each prompt's first word) so the last position is every
prompt's last word.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from core.lab.corpus import ATTRIBUTES, QUESTIONS, TEMPLATES, UNKNOWN, Corpus

PAD, BOS, EOS, UNK = "[PAD]", "[BOS]", "[EOS]", "[UNK]"


@dataclass(frozen=True)
class LabModelSpec:
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 128

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def corpus_words(corpus: Corpus) -> list[str]:
    """Every word the lab writes, in a fixed order (specials first)."""
    words: dict[str, None] = dict.fromkeys([PAD, BOS, EOS, UNK, UNKNOWN])
    for text in [*(t for a in ATTRIBUTES for t in TEMPLATES[a]), *QUESTIONS.values()]:
        words.update(dict.fromkeys(w for w in text.split() if not w.startswith("{")))
    for name in corpus.people:
        words.update(dict.fromkeys(name.split()))
    for a in ATTRIBUTES:
        words.update(dict.fromkeys(corpus.vocabulary[a]))
    return list(words)


def build_tokenizer(corpus: Corpus):
    """A ``PreTrainedTokenizerFast`` with one id per word of ``corpus_words``."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(corpus_words(corpus))}
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK)


def build_model(spec: LabModelSpec, vocab_size: int, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=vocab_size,
        n_positions=spec.n_positions,
        n_embd=spec.n_embd,
        n_layer=spec.n_layer,
        n_head=spec.n_head,
        bos_token_id=2,
        eos_token_id=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(cfg)


def n_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    """Each text as ids, starting with [BOS]."""
    if not texts:
        return []
    bos = tokenizer.bos_token_id
    return [[bos, *ids] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def batch_tensors(seqs: list[list[int]], pad: int, loss_from: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding and before
    ``loss_from[i]``, the first position whose token is scored)."""
    n, width = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s)
        mask[i, : len(s)] = 1
        start = loss_from[i] if loss_from is not None else 1
        labels[i, start : len(s)] = torch.as_tensor(s[start:])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@torch.no_grad()
def next_word_probs(model, tokenizer, prompts: list[str], batch: int = 256) -> np.ndarray:
    """(n, vocab): the model's next-word probabilities after each prompt."""
    model.eval()
    pad, seqs, out = tokenizer.pad_token_id, encode(tokenizer, prompts), []
    for lo in range(0, len(seqs), batch):
        chunk = seqs[lo : lo + batch]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, s in enumerate(chunk):  # left padding: the last position is every prompt's last word
            ids[i, width - len(s) :] = torch.as_tensor(s)
            mask[i, width - len(s) :] = 1
        dev = next(model.parameters()).device
        ids, mask = ids.to(dev), mask.to(dev)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)).logits[:, -1]
        out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(tokenizer)))


@torch.no_grad()
def name_familiarity(model, tokenizer, prompts: list[str], names: list[str], batch: int = 256) -> np.ndarray:
    """(n,): how familiar the model finds the name in each prompt — the log-probability of the name's
    words after its first, given what comes before them. A name the corpus never wrote scores low
    even when each of its words is common: the model has not seen them together."""
    model.eval()
    seqs, out = encode(tokenizer, prompts), []
    name_ids = [ids for ids in tokenizer(names, add_special_tokens=False)["input_ids"]]
    starts = [_find(s, n) for s, n in zip(seqs, name_ids)]
    for lo in range(0, len(seqs), batch):
        chunk = seqs[lo : lo + batch]
        b = batch_tensors(chunk, tokenizer.pad_token_id)
        dev = next(model.parameters()).device
        logits = model(input_ids=b["input_ids"].to(dev), attention_mask=b["attention_mask"].to(dev)).logits
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
        for i, s in enumerate(chunk):
            at, n = starts[lo + i], name_ids[lo + i]
            out.append(float(sum(logp[i, at + j - 1, s[at + j]] for j in range(1, len(n)))))
    return np.asarray(out, dtype=np.float64)


def _find(seq: list[int], part: list[int]) -> int:
    for i in range(1, len(seq) - len(part) + 1):
        if seq[i : i + len(part)] == part:
            return i
    raise ValueError("the name is not in its prompt")
