"""A finished run's robustness: its result model attacked on a seeded sample of its test items.

Per budget — ε (L∞, pixels in [0, 1]; a table's standardised columns in standard deviations, its
one-hot columns kept) for FGSM and PGD, words changed for text — the figures are:

- **accuracy** on the attacked items (``core.metrics.accuracy``; robust accuracy);
- **attack success rate**: of the items answered right before the attack, the share answered wrong
  after it;
- **confident-wrong @τ**: the hallucination rate of the attacked items
  (``core.metrics.hallucination_rate``: wrong with confidence ≥ τ, the run's τ).

The clean figures come first (budget 0). A few attacked items are kept for the gallery: the
attacked image (``robust_examples.npz``) or text, with the answer before and after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.background import ProgressJob
from core.errors import DataError
from core.metrics import accuracy, hallucination_rate
from core.robust import records
from core.robust.attack import fgsm, pgd
from core.store.artifacts import RunFiles

EPS = {"image": (0.01, 0.03, 0.05, 0.1), "tabular": (0.1, 0.25, 0.5, 1.0)}
EXAMPLES = 12
Progress = Callable[[int, int, str], None]


def _forward(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    net = model.built.net.eval()
    if model.ds.modality == "image":
        spec = model.built.image
        return lambda x: net(spec.prepare_float(x))
    return net


def _inputs(model: Any, rows: np.ndarray) -> tuple[torch.Tensor, Any, Any, Any]:
    """(clean inputs, lo, hi, mask) of ``rows``: images as [0, 1] pixels, tables as encoded rows with
    their numeric columns free and the one-hot columns fixed."""
    ds = model.ds
    if ds.modality == "image":
        from core.models.preprocess import to_nchw

        return to_nchw(np.asarray(ds.items[rows], dtype=np.uint8)).float().div_(255.0), 0.0, 1.0, None
    enc = model.encoder
    x = torch.from_numpy(enc.transform(ds.items.iloc[rows]))
    mask = torch.zeros(x.shape[1])
    mask[: len(enc.numeric)] = 1.0
    if not len(enc.numeric):
        raise DataError("this table has no numeric column to perturb; an L∞ attack needs one (its one-hot columns stay fixed).")
    return x, None, None, mask


def _probs(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int = 256) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([torch.softmax(forward(x[s : s + batch]).float(), dim=1) for s in range(0, len(x), batch)]).numpy()


def _figures(probs: np.ndarray, y: np.ndarray, right_before: np.ndarray | None, tau: float) -> dict[str, float]:
    out = {"accuracy": accuracy(probs, y), "confident_wrong": hallucination_rate(probs, y, tau=tau)}
    if right_before is not None:
        flipped = probs.argmax(axis=1) != y
        out["success_rate"] = float(flipped[right_before].mean()) if right_before.any() else float("nan")
    return out


def sample_rows(ds: Any, classes: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A seeded sample of ``n`` test items whose class the model knows (all of them when fewer)."""
    known = np.isin(ds.labels, classes) & (ds.split == 2)
    rows = np.flatnonzero(known)
    if len(rows) == 0:
        raise DataError("the run's version has no test items of a class the model learnt: nothing to attack.")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))


def evaluate_pixels(model: Any, rows: np.ndarray, y: np.ndarray, *, attack: str, eps: tuple[float, ...], steps: int, tau: float,
                    seed: int, progress: Progress) -> tuple[dict, list[dict], dict]:  # fmt: skip
    """FGSM or PGD at every ε on images or table rows; (clean figures, per-budget figures, examples)."""
    forward = _forward(model)
    x, lo, hi, mask = _inputs(model, rows)
    yt = torch.from_numpy(y)
    clean = _probs(forward, x)
    right = clean.argmax(axis=1) == y
    gen = torch.Generator().manual_seed(seed)
    budgets, kept = [], {}
    batch = 128
    for k, e in enumerate(eps):
        parts = []
        for s in range(0, len(x), batch):
            progress(k * len(x) + s, len(eps) * len(x), f"{records.ATTACK_WORDS[attack]} at ε = {e:g}")
            xb, yb = x[s : s + batch], yt[s : s + batch]
            if attack == "fgsm":
                parts.append(fgsm(forward, xb, yb, e, lo=lo, hi=hi, mask=mask))
            else:
                parts.append(pgd(forward, xb, yb, e, steps=steps, lo=lo, hi=hi, mask=mask, generator=gen))
        x_adv = torch.cat(parts)
        probs = _probs(forward, x_adv)
        budgets.append({"budget": float(e), **_figures(probs, y, right, tau)})
        kept[float(e)] = (x_adv, probs)
    return _figures(clean, y, None, tau), budgets, {"clean": clean, "adv": kept, "x": x}


def evaluate_words(
    model: Any, rows: np.ndarray, y: np.ndarray, *, max_words: int, tau: float, progress: Progress
) -> tuple[dict, list[dict], list]:
    """The word-substitution attack with up to ``max_words`` words; figures at every budget ≤ it."""
    from core.explain.attribute import Explainer
    from core.mitigate.language import synonyms, wordnet_ready
    from core.robust.words import attack_text

    if not wordnet_ready():
        raise DataError("the WordNet asset is not installed; run scripts/setup.sh to fetch it, then attack text runs.")
    ex = Explainer(model)
    texts = [str(t) for t in model.ds.items[rows]]
    clean = ex.text_probs(texts)
    right = clean.argmax(axis=1) == y
    attacks = []
    for j, (t, label) in enumerate(zip(texts, y.tolist())):
        progress(j, len(texts), f"word substitution ({j:,} of {len(texts):,} texts)")
        attacks.append(attack_text(t, int(label), ex.text_probs, synonyms, max_words=max_words))
    budgets = []
    after = ex.text_probs([a.text for a in attacks])
    for b in range(1, max_words + 1):
        within = np.array([a.flipped and len(a.changed) <= b for a in attacks])
        # an attack that needed more than b words is still answered right after b of them (it stops at
        # the first change of answer): at budget b it counts as the clean text
        probs = np.where(within[:, None], after, clean)
        changed = [len(a.changed) for a, w in zip(attacks, within) if w]
        figures = _figures(probs, y, right, tau)
        budgets.append({"budget": float(b), **figures, "words_changed": float(np.mean(changed)) if changed else 0.0})
    return _figures(clean, y, None, tau), budgets, attacks


def evaluate_run(store: Any, run_id: int, *, attack: str | None = None, eps: tuple[float, ...] | None = None, steps: int = 10,
                 n_items: int = 500, seed: int = 0, max_words: int = 3, progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
    """Attack run ``run_id``'s result model and keep the record with the run; return the record."""
    from core.train.apply import load_run_model

    report = progress or (lambda done, total, stage: None)
    t0 = time.perf_counter()
    model = load_run_model(store, run_id, device="cpu")
    if model.probe:
        raise DataError("a linear probe is attacked through its frozen backbone; attack a run that fine-tunes the model (full or last_n).")
    modality = model.ds.modality
    attack = attack or ("words" if modality == "text" else "pgd")
    if (attack == "words") != (modality == "text"):
        raise DataError(
            f"{records.ATTACK_WORDS.get(attack, attack)} does not attack {modality} data; text takes 'words', images and tables 'pgd' or 'fgsm'."
        )
    tau = float(store.run(run_id).config.get("tau", 0.9))
    rows = sample_rows(model.ds, model.classes, n_items if modality != "text" else min(n_items, 200), seed)
    pos = {int(c): i for i, c in enumerate(model.classes.tolist())}
    y = np.array([pos[int(v)] for v in model.ds.labels[rows]], dtype=np.int64)
    files = RunFiles(run_id, home=store.home)
    record: dict[str, Any] = {"run": run_id, "step": model.step, "attack": attack, "tau": tau, "n": len(rows), "seed": seed}
    if attack == "words":
        clean, budgets, attacks = evaluate_words(model, rows, y, max_words=max_words, tau=tau, progress=report)
        record["examples"] = _word_examples(model, rows, y, attacks)
    else:
        budget_list = tuple(eps or EPS[modality])
        clean, budgets, kept = evaluate_pixels(
            model, rows, y, attack=attack, eps=budget_list, steps=steps, tau=tau, seed=seed, progress=report
        )
        record["steps"] = steps if attack == "pgd" else 1
        record["examples"] = _pixel_examples(model, rows, y, kept, files)
    record.update(clean=clean, budgets=budgets, seconds=time.perf_counter() - t0)
    records.save(files, record)
    report(1, 1, "done")
    return record


def _pixel_examples(model: Any, rows: np.ndarray, y: np.ndarray, kept: dict, files: RunFiles) -> list[dict]:
    """The items right before the attack and wrong after it at the smallest ε that fools them; for
    images the attacked pixels are kept in ``robust_examples.npz``."""
    clean = kept["clean"]
    chosen: list[dict] = []
    images = []
    for e, (x_adv, probs) in kept["adv"].items():
        for j in np.flatnonzero((clean.argmax(axis=1) == y) & (probs.argmax(axis=1) != y)).tolist():
            if len(chosen) == EXAMPLES or any(c["item"] == int(rows[j]) for c in chosen):
                continue
            chosen.append(_example(model, int(rows[j]), y[j], clean[j], probs[j], budget=e))
            if model.ds.modality == "image":
                images.append(np.round(x_adv[j].permute(1, 2, 0).squeeze(-1).numpy() * 255).clip(0, 255).astype(np.uint8))
    if images:
        from core.atomic import atomic_write

        atomic_write(files.folder / "robust_examples.npz", lambda fh: np.savez_compressed(fh, images=np.stack(images)))
    return chosen


def _example(model: Any, item: int, y: int, before: np.ndarray, after: np.ndarray, **extra: Any) -> dict:
    cls = model.classes
    return {
        "item": item, "label": int(cls[y]), "pred_before": int(cls[int(before.argmax())]), "conf_before": float(before.max()),
        "pred_after": int(cls[int(after.argmax())]), "conf_after": float(after.max()), **extra,
    }  # fmt: skip


def _word_examples(model: Any, rows: np.ndarray, y: np.ndarray, attacks: list) -> list[dict]:
    from core.explain.attribute import Explainer

    flipped = [j for j, a in enumerate(attacks) if a.flipped][:EXAMPLES]
    if not flipped:
        return []
    ex = Explainer(model)
    before = ex.text_probs([str(model.ds.items[rows[j]]) for j in flipped])
    after = ex.text_probs([attacks[j].text for j in flipped])
    return [
        _example(
            model,
            int(rows[j]),
            y[j],
            before[k],
            after[k],
            budget=float(len(attacks[j].changed)),
            text=attacks[j].text,
            changed=[[w, old, new] for w, old, new in attacks[j].changed],
        )
        for k, j in enumerate(flipped)
    ]


class RobustnessJob(ProgressJob):
    """``evaluate_run`` in the background; the record lands with the run."""

    def __init__(self, home: str | Path, run_id: int, **kwargs: Any) -> None:
        super().__init__(name=f"gapscope-robustness-{run_id}")
        self.home, self.run_id, self.kwargs = Path(home), int(run_id), kwargs

    def work(self) -> None:
        from core.store import Store

        evaluate_run(Store(self.home), self.run_id, progress=self.progress, **self.kwargs)
