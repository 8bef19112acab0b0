"""Gapscope's training loop against the loops people would otherwise write, side by side on one GPU.

    python benchmarks/bench_gpu.py            # on a GPU machine; about 3–5 minutes on one GPU
    python benchmarks/bench_gpu.py --quick    # a smoke test of every scenario on a CPU (tiny sizes)

Scenarios (the same device, data and hyper-parameters for both sides; warm-up counted):

- ``mobilenet_v2``: Fashion-MNIST train (55k; Gapscope also evaluates its 5k val) at 64 px, 2 epochs,
  batch 256, ImageNet weights. Gapscope (``core.train``, in this process, through a temporary store)
  against a torchvision ``DataLoader`` loop as tutorials write it: PIL transforms in worker
  processes, fp32, AdamW.
- ``small_cnn``: the same at 28 px with Gapscope's small CNN on both sides.
- ``bert``: VADER texts, ≤ 128 tokens, batch 64, 1 epoch, a MiniLM-shaped BERT (6 layers × 384,
  random weights: speed depends on the shape only). Gapscope against a transformers ``Trainer``
  with the same hyper-parameters (bf16 on a GPU).

For each side: wall seconds of training (evaluations excluded), items/s end to end, Gapscope's
steady-state items/s (the median of its logged throughput after the first tenth of the run), the
seconds to its first logged step, GPU utilisation (median and p90 from ``nvidia-smi``) and
model-FLOP utilisation: FLOPs of one training step (``torch.utils.flop_counter``) × steps/s ÷ the
GPU's dense bf16 peak. Then the ratios.

Needs only torch, torchvision, transformers, numpy, pandas and pyarrow (``accelerate`` for
``Trainer``): what GPU machines offer. Data come from ``GAPSCOPE_ASSETS`` (the fashion-mnist,
vader and mobilenet-v2 assets, and minilm's tokenizer files).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

#: Dense bf16 peak FLOP/s by GPU name (vendor data sheets, SXM parts).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12, "V100": 125e12}


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


class GpuSampler(threading.Thread):
    """GPU utilisation every 200 ms from ``nvidia-smi`` while a scenario runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.values: list[float] = []
        self.proc: subprocess.Popen[str] | None = None

    def run(self) -> None:
        if not torch.cuda.is_available() or shutil.which("nvidia-smi") is None:
            return
        index = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
        self.proc = subprocess.Popen(
            ["nvidia-smi", "-i", index, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.values.append(float(line.strip()))

    def stop(self) -> str:
        if self.proc is not None:
            self.proc.terminate()
        self.join(timeout=5)
        if not self.values:
            return "n/a"
        v = np.asarray(self.values)
        return f"{np.median(v):.0f}% / p90 {np.percentile(v, 90):.0f}%"


def step_flops(model: torch.nn.Module, batch: object, loss_fn) -> float:
    """FLOPs of one forward + backward of ``batch`` (counted, not timed)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


# ---------------------------------------------------------------------- data


def fashion(n_train: int | None):
    """Fashion-MNIST as the demo splits it: train (55k), val (5k: Gapscope picks its best step on
    it, as every run does; the tutorial loop has none) and 2,000 test images for both sides."""
    from core.data.demos import load_fashion_mnist

    ds = load_fashion_mnist().dataset
    train, val, test = (np.flatnonzero(ds.split == s) for s in (0, 1, 2))
    if n_train:
        train, val = train[:n_train], val[: n_train // 4]
    test = test[:2000]
    return ds.items[train], ds.labels[train], ds.items[val], ds.labels[val], ds.items[test], ds.labels[test]


def vader(n: int | None) -> tuple[list[str], np.ndarray]:
    from core.data.demos import load_vader

    ds = load_vader().dataset
    texts, labels = [str(t) for t in ds.items], ds.labels
    return (texts[:n], labels[:n]) if n else (texts, labels)


# ---------------------------------------------------------------------- Gapscope


def gapscope_run(ds, cfg_kw: dict) -> dict:
    """Train through ``core.train`` in this process; read its own figures back from the store."""
    from core.store import Store
    from core.train.config import RunConfig
    from core.train.worker import train_run

    home = Path(tempfile.mkdtemp(prefix="gapscope-bench-gpu-"))
    try:
        os.environ["GAPSCOPE_HOME"] = str(home)
        store = Store(home)
        vid = store.save_dataset(ds, source="bench")
        cfg = RunConfig(version_id=vid, temperature_scaling=False, **cfg_kw)
        run_id = store.create_run(vid, cfg.to_dict())
        sampler = GpuSampler()
        sampler.start()
        t0 = time.perf_counter()
        status = train_run(store, run_id)
        wall = time.perf_counter() - t0
        util = sampler.stop()
        row, m = store.run(run_id), store.metrics(run_id)
        if status != "finished":
            raise RuntimeError(f"the Gapscope run ended {status}: {row.message}")
        train = m[m.split == "train"]
        value = lambda name: float(train[train.name == name].value.iloc[-1])
        speeds = train[train.name == "samples_per_s"].sort_values("step")
        steady = speeds[speeds.step > 0.1 * speeds.step.max()].value
        test = m[(m.split == "test") & (m.name == "accuracy")].sort_values("step")
        used = json.loads((home / "runs" / str(run_id) / "config.json").read_text())  # batch and lr as resolved
        return {
            "train_s": value("train_runtime_s"),
            "items_per_s": value("train_samples_per_s"),
            "steady": float(steady.median()) if len(steady) else float("nan"),
            "first_step_s": value("first_step_s"),
            "wall_s": wall,
            "util": util,
            "steps": int(m.step.max()),
            "accuracy": float(test.value.iloc[-1]),
            "batch": int(used["batch_size"]),
            "lr": used["lr"],
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------- the tutorial image loop


def tutorial_images(
    x: np.ndarray,
    y: np.ndarray,
    xt: np.ndarray,
    yt: np.ndarray,
    *,
    model_name: str,
    size: int,
    epochs: int,
    batch: int,
    lr: float,
    workers: int,
) -> dict:
    """The loop a torchvision tutorial writes: a Dataset of PIL images with transforms, a shuffling
    DataLoader with worker processes and pinned memory, fp32, AdamW."""
    from PIL import Image
    from torchvision import transforms

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rgb = model_name == "mobilenet_v2"
    steps = [transforms.Resize(size)] if size != x.shape[1] else []
    steps += [transforms.Grayscale(3)] if rgb else []
    mean, std = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) if rgb else ([0.5], [0.5])
    tf = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(mean, std)])

    class Images(torch.utils.data.Dataset):
        def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
            self.images, self.labels = images, labels

        def __len__(self) -> int:
            return len(self.images)

        def __getitem__(self, i: int):
            return tf(Image.fromarray(self.images[i])), int(self.labels[i])

    loader = torch.utils.data.DataLoader(
        Images(x, y), batch_size=batch, shuffle=True, num_workers=workers, pin_memory=dev.type == "cuda", persistent_workers=workers > 0
    )
    model = image_model(model_name).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    xb, yb = next(iter(loader))
    flops = step_flops(model, (xb.to(dev), yb.to(dev)), lambda m, b: loss_fn(m(b[0]), b[1])) / len(xb)
    sampler = GpuSampler()
    sampler.start()
    t0 = time.perf_counter()
    seen, first = 0, None
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(xb)
            if first is None:
                float(loss.detach())  # the first step, done
                first = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    util = sampler.stop()
    model.eval()
    right = 0
    with torch.inference_mode():
        for xb, yb in torch.utils.data.DataLoader(Images(xt, yt), batch_size=batch, num_workers=0):
            right += int((model(xb.to(dev)).argmax(1).cpu() == yb).sum())
    return {
        "train_s": wall,
        "items_per_s": seen / wall,
        "first_step_s": first or 0.0,
        "util": util,
        "flops_per_item": flops,
        "accuracy": right / len(yt),
        "batch": batch,
        "lr": lr,
    }


def image_model(name: str) -> torch.nn.Module:
    if name == "mobilenet_v2":
        from torchvision.models import mobilenet_v2

        from core.data import assets
        from core.models.vision import MOBILENET_FILE

        net = mobilenet_v2(weights=None)
        net.load_state_dict(torch.load(assets.asset_path("mobilenet-v2", MOBILENET_FILE), map_location="cpu", weights_only=True))
        net.classifier[-1] = torch.nn.Linear(net.last_channel, 10)
        return net
    from core.models.build import build
    from core.train.config import RunConfig

    return build(RunConfig(version_id=1, model="small_cnn"), modality="image", n_classes=10, item_shape=(28, 28)).net


# ---------------------------------------------------------------------- the Trainer text loop


def bert_folder(dest: Path) -> Path:
    """A MiniLM-shaped BERT (6 × 384, random weights) with MiniLM's tokenizer, as a local folder."""
    from transformers import BertConfig, BertForSequenceClassification

    from core.data import assets

    cfg = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536, num_labels=3)
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(dest)
    src = assets.asset_path("minilm")  # a BERT vocabulary, as the config above expects
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (src / name).exists():
            shutil.copy(src / name, dest / name)
    return dest


def trainer_text(folder: Path, texts: list[str], labels: np.ndarray, *, batch: int, lr: float, max_length: int) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    enc = tok(texts, truncation=True, max_length=max_length)
    rows = [{"input_ids": i, "attention_mask": a, "labels": int(y)} for i, a, y in zip(enc["input_ids"], enc["attention_mask"], labels)]
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3, local_files_only=True)
    cuda = torch.cuda.is_available()
    out = tempfile.mkdtemp(prefix="bench-trainer-")
    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=batch,
        learning_rate=lr,
        num_train_epochs=1,
        weight_decay=0.01,
        warmup_steps=round(0.06 * -(-len(rows) // batch)),
        lr_scheduler_type="cosine",
        max_grad_norm=1.0,
        bf16=cuda,
        logging_steps=50,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=not cuda,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=DataCollatorWithPadding(tok))
    sampler = GpuSampler()
    sampler.start()
    t0 = time.perf_counter()
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return {"train_s": wall, "items_per_s": len(rows) / wall, "first_step_s": float("nan"), "util": sampler.stop()}


def text_flops_per_item(folder: Path, texts: list[str], *, batch: int, max_length: int) -> float:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3, local_files_only=True).to(dev)
    enc = tok(texts[:batch], truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(dev)
    y = torch.zeros(len(enc["input_ids"]), dtype=torch.long, device=dev)
    return step_flops(model, enc, lambda m, b: torch.nn.functional.cross_entropy(m(**b).logits, y)) / batch


# ---------------------------------------------------------------------- report


def line(name: str, r: dict, flops: float | None, peak: float | None) -> str:
    mfu = "n/a" if not (flops and peak) else f"{100 * flops * r['items_per_s'] / peak:.1f}%"
    steady = f" · steady {r['steady']:,.0f}/s" if "steady" in r and np.isfinite(r["steady"]) else ""
    first = f" · first step after {r['first_step_s']:.1f} s" if np.isfinite(r.get("first_step_s", float("nan"))) else ""
    if "batch" in r:
        first += f" · batch {r['batch']}, lr {r['lr']:.2g}" if r.get("lr") else f" · batch {r['batch']}, lr default"
    if "accuracy" in r:
        first += f" · test accuracy {r['accuracy']:.3f}"
    return f"  {name:<22} {r['train_s']:7.1f} s  {r['items_per_s']:9,.0f} items/s end to end{steady}{first} · GPU {r['util']} · MFU {mfu}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that every scenario runs (e.g. on a CPU)")
    parser.add_argument("--same-batch", action="store_true", help="images: Gapscope at the tutorial's batch and lr, not its own")
    parser.add_argument("--only", nargs="*", choices=["mobilenet_v2", "small_cnn", "bert"], help="scenarios to run (default: all)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_name(0) if cuda else "CPU"
    peak = peak_flops(gpu) if cuda else None
    workers = min(8, os.cpu_count() or 1) if cuda else 2
    print(f"device: {gpu}" + (f" · dense bf16 peak {peak / 1e12:,.0f} TFLOP/s" if peak else "") + f" · torch {torch.__version__}")
    print(f"tutorial DataLoader workers: {workers}{' · --quick sizes' if args.quick else ''}\n")
    only = set(args.only or ["mobilenet_v2", "small_cnn", "bert"])
    n_img = 2048 if args.quick else None
    device = "auto"
    t_all = time.perf_counter()

    if only & {"mobilenet_v2", "small_cnn"}:
        from core.data.dataset import Dataset

        x, y, xv, yv, xt, yt = fashion(n_img)
        classes = [str(i) for i in range(10)]
        split = np.r_[np.zeros(len(x), np.int8), np.ones(len(xv), np.int8), np.full(len(xt), 2, np.int8)]
        ds = Dataset("fashion", "image", np.concatenate([x, xv, xt]), np.concatenate([y, yv, yt]), classes, split)
        for name, size in (("mobilenet_v2", 32 if args.quick else 64), ("small_cnn", 28)):
            if name not in only:
                continue
            epochs, batch, lr = (1 if args.quick else 2), (64 if args.quick else 256), 1e-3
            ours = gapscope_run(
                ds,
                {
                    "model": name,
                    "epochs": epochs,
                    "batch_size": batch if args.same_batch else 0,  # 0: Gapscope's own choice on this device
                    "lr": lr if args.same_batch else None,
                    "device": device,
                    "image_size": size if size != 28 else 0,
                    "log_every_steps": 5,
                },
            )
            theirs = tutorial_images(x, y, xt, yt, model_name=name, size=size, epochs=epochs, batch=batch, lr=lr, workers=workers)
            print(f"{name} · {len(x):,} train images at {size} px · {epochs} epoch(s)")
            print(line("Gapscope", ours, theirs["flops_per_item"], peak))
            print(line("tutorial DataLoader", theirs, theirs["flops_per_item"], peak))
            print(f"  Gapscope ÷ tutorial, end to end: {ours['items_per_s'] / theirs['items_per_s']:.2f}×\n")

    if "bert" in only:
        from core.data.dataset import Dataset

        texts, labels = vader(512 if args.quick else None)
        with tempfile.TemporaryDirectory(prefix="bench-bert-") as tmp:
            folder = bert_folder(Path(tmp) / "bert")
            split, hold = np.zeros(len(texts), np.int8), max(64, len(texts) // 20)
            split[-2 * hold : -hold], split[-hold:] = 1, 2  # val, test; Trainer trains on the same train rows
            ds = Dataset("vader", "text", np.asarray(texts, dtype=object), labels, ["negative", "neutral", "positive"], split)
            train_texts = [t for t, s in zip(texts, split) if s == 0]
            batch, lr = 64, 5e-5
            ours = gapscope_run(
                ds,
                {
                    "model": str(folder),
                    "epochs": 1,
                    "batch_size": batch,
                    "lr": lr,
                    "device": device,
                    "max_length": 128,
                    "log_every_steps": 5,
                },
            )
            theirs = trainer_text(folder, train_texts, labels[split == 0], batch=batch, lr=lr, max_length=128)
            flops = text_flops_per_item(folder, train_texts, batch=batch, max_length=128)
            print(f"bert 6×384 · {len(train_texts):,} VADER texts · ≤128 tokens · 1 epoch · batch {batch}")
            print(line("Gapscope", ours, flops, peak))
            print(line("transformers Trainer", theirs, flops, peak))
            print(f"  Gapscope ÷ Trainer, end to end: {ours['items_per_s'] / theirs['items_per_s']:.2f}×\n")

    print(f"all scenarios: {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
