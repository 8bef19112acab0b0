"""Named-entity recognition on CoNLL-2003: Gapscope's token run against transformers' recipe.

    .venv/bin/python benchmarks/bench_ner.py                      # 3 epochs, batch 32, both loops
    .venv/bin/python benchmarks/bench_ner.py --only gapscope      # the product's run alone
    .venv/bin/python benchmarks/bench_ner.py --train 3000 --epochs 1   # a quick look
    .venv/bin/python benchmarks/bench_ner.py --seed 1             # another seed of both loops

**Gapscope**: the product's own path — the CoNLL-2003 demo stored in a temporary home, a run
created with ``RunConfig(model="minilm")`` and trained by ``core.train.worker.train_run`` in this
process (words bucketed by length, first sub-token labelled, evaluations and metric writes
included in the wall time but not in ``train_samples_per_s``). Its test entity micro-F1 (seqeval,
strict IOB2) is read back from the store at the last evaluation and at the run's result.

**Trainer**: the transformers token-classification recipe on the same model folder, data, epochs,
batch, learning rate, warm-up, cosine schedule and weight decay — ``AutoModelForTokenClassification``,
labels on each word's first sub-token (-100 elsewhere), ``DataCollatorForTokenClassification``,
``Trainer.train``; its test F1 by seqeval (strict IOB2) on ``Trainer.predict``'s argmax at first
sub-tokens. Samples/s = train sentences × epochs ÷ the wall time of ``train()``.

The machine and its load (``os.getloadavg``) are printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def conll(n_train: int | None):
    from core.data.demos import load_conll2003

    ds = load_conll2003().dataset
    if n_train:
        train = np.flatnonzero(ds.split == 0)
        keep = np.r_[np.random.default_rng(0).choice(train, n_train, replace=False), np.flatnonzero(ds.split != 0)]
        ds = ds.subset(np.sort(keep))
    return ds


def gapscope(ds, *, epochs: int, batch: int, lr: float, seed: int) -> dict:
    from core.store import Store
    from core.train.config import RunConfig
    from core.train.worker import train_run

    home = Path(tempfile.mkdtemp(prefix="gapscope-bench-ner-"))
    try:
        os.environ["GAPSCOPE_HOME"] = str(home)
        store = Store(home)
        vid = store.save_dataset(ds, source="bench")
        cfg = RunConfig(version_id=vid, model="minilm", epochs=epochs, batch_size=batch, lr=lr, temperature_scaling=False, seed=seed)
        run_id = store.create_run(vid, cfg.to_dict())
        t0 = time.perf_counter()
        status = train_run(store, run_id)
        wall = time.perf_counter() - t0
        row, m = store.run(run_id), store.metrics(run_id)
        if status != "finished":
            raise RuntimeError(f"the Gapscope run ended {status}: {row.message}")
        train = m[m.split == "train"]
        test = m[(m.split == "test") & (m.name == "entity_f1_micro")].sort_values("step")
        summary = json.loads((home / "runs" / str(run_id) / "summary.json").read_text())
        at_result = test[test.step == summary["best_step"]].value
        return {
            "train_s": float(train[train.name == "train_runtime_s"].value.iloc[-1]),
            "samples_per_s": float(train[train.name == "train_samples_per_s"].value.iloc[-1]),
            "wall_s": wall,
            "f1_last": float(test.value.iloc[-1]),
            "f1_result": float(at_result.iloc[0]) if len(at_result) else float("nan"),
            "f1_by_epoch": [round(float(v), 4) for v in test.value],
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def trainer(ds, *, epochs: int, batch: int, lr: float, seed: int) -> dict:
    import torch
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification, Trainer, TrainingArguments

    from core.hardware import limit_torch_threads
    from core.models.text import load_tokenizer, text_source
    from core.tokens.spans import entity_types, tag_names

    limit_torch_threads()
    folder = text_source("minilm")
    tok = load_tokenizer(folder)
    train_rows = np.flatnonzero(ds.split == 0)
    names = tag_names(entity_types(ds.tags[i] for i in train_rows))
    index = {t: i for i, t in enumerate(names)}

    def encode(rows: np.ndarray) -> list[dict]:
        enc = tok([list(ds.items[i]) for i in rows], is_split_into_words=True, truncation=True, max_length=256)
        out = []
        for j, i in enumerate(rows):
            seen, labels = None, []
            for w in enc.word_ids(j):
                labels.append(-100 if w is None or w == seen else index.get(ds.tags[i][w], -100))
                seen = w if w is not None else seen
            out.append({"input_ids": enc["input_ids"][j], "attention_mask": enc["attention_mask"][j], "labels": labels})
        return out

    train = encode(train_rows)
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=len(names), local_files_only=True)
    out = tempfile.mkdtemp(prefix="bench-ner-trainer-")
    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=64,
        learning_rate=lr,
        num_train_epochs=epochs,
        weight_decay=0.01,
        warmup_steps=round(0.06 * epochs * -(-len(train) // batch)),
        lr_scheduler_type="cosine",
        max_grad_norm=1.0,
        logging_steps=100,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        seed=seed,
    )
    t = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorForTokenClassification(tok))
    t0 = time.perf_counter()
    t.train()
    wall = time.perf_counter() - t0
    test_rows = np.flatnonzero(ds.split == 2)
    enc = encode(test_rows)
    logits = t.predict(enc).predictions
    pred, true = [], []
    for j, i in enumerate(test_rows):
        labels = np.asarray(enc[j]["labels"])
        keep = labels != -100 if len(ds.tags[i]) else labels != labels
        ids = logits[j, : len(labels)].argmax(-1)[keep]
        tags = [names[k] for k in ids] + ["O"] * (len(ds.tags[i]) - int(keep.sum()))
        pred.append(tags)
        true.append(list(ds.tags[i]))
    shutil.rmtree(out, ignore_errors=True)
    return {
        "train_s": wall,
        "samples_per_s": len(train) * epochs / wall,
        "f1_last": float(f1_score(true, pred, mode="strict", scheme=IOB2)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--train", type=int, default=0, help="train sentences (0: all 14,041)")
    parser.add_argument("--only", choices=["gapscope", "trainer"])
    parser.add_argument("--seed", type=int, default=0, help="both loops' seed (initialisation of the head, batch order)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    ds = conll(args.train or None)
    n_train = int((ds.split == 0).sum())
    print(f"CoNLL-2003: {n_train:,} train / {int((ds.split == 1).sum()):,} val / {int((ds.split == 2).sum()):,} test sentences")
    kw = {"epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": args.seed}
    results = {}
    if args.only != "trainer":
        results["gapscope"] = ours = gapscope(ds, **kw)
        print(
            f"Gapscope: train {ours['train_s']:.0f} s ({ours['samples_per_s']:.1f} sentences/s), wall {ours['wall_s']:.0f} s · "
            f"test entity micro-F1 {ours['f1_last']:.4f} at the last evaluation, {ours['f1_result']:.4f} at the result · "
            f"by epoch {ours['f1_by_epoch']} · load {os.getloadavg()}",
            flush=True,
        )
    if args.only != "gapscope":
        results["trainer"] = theirs = trainer(ds, **kw)
        print(
            f"Trainer: train {theirs['train_s']:.0f} s ({theirs['samples_per_s']:.1f} sentences/s) · test entity micro-F1 "
            f"{theirs['f1_last']:.4f} · load {os.getloadavg()}",
            flush=True,
        )
    if len(results) == 2:
        print(
            f"Gapscope ÷ Trainer: {results['gapscope']['samples_per_s'] / results['trainer']['samples_per_s']:.2f}× sentences/s; "
            f"F1 {results['gapscope']['f1_last'] - results['trainer']['f1_last']:+.4f}"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
