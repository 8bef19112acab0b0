"""Where a Gapscope run's time goes, step by step: the first steps and the steady state.

    GAPSCOPE_ASSETS=.gpu-assets/assets python benchmarks/gpu_profile.py [--out DIR] [--quick]

``bench_gpu.py`` says how fast a run is; this says why. For its MobileNetV2 (Fashion-MNIST at
64 px) and BERT 6×384 (VADER) scenarios, at Gapscope's own settings on this device, it trains
through ``core.train``'s loop with hooks that synchronise the device at each phase boundary (which
slows the run a little: figures from here are for finding the time, not for quoting speed):

- per step: data (gather, augment, preprocess) → forward → loss, backward and clipping →
  optimiser → the rest (callbacks), for the first three steps and the median of the steps from
  the fourth to the profiled window;
- over ten steps after those, PyTorch's profiler: the share of wall time the device was busy, and
  the top operators by self device time and by self CPU time (tables in ``DIR``).

One line per scenario goes to stdout, so the tail of a remote command's output holds them. Needs only
torch, torchvision, transformers, numpy, pandas and pyarrow, like ``bench_gpu.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gpu
import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from core.train.events import Callback, Control, State

PHASES = ("data", "forward", "backward", "optimiser", "rest")


def _sync(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class PhaseClock(Callback):
    """Times each step's phases (device synchronised at each boundary); profiles the steady window,
    then stops the run."""

    def __init__(self, net: torch.nn.Module, device: torch.device, *, steady_from: int, steady_n: int, out: Path, name: str) -> None:
        self.device, self.steady_from, self.steady_n, self.out, self.name = device, steady_from, steady_n, out, name
        self.marks: dict[str, float] = {}
        self.steps: list[dict[str, float]] = []
        self.prof: torch.profiler.profile | None = None
        self.window_s = 0.0
        net.register_forward_pre_hook(lambda *_: self._mark("forward"))
        net.register_forward_hook(lambda *_: self._mark("backward"))
        self._hooks = [
            register_optimizer_step_pre_hook(lambda *_: self._mark("optimiser")),
            register_optimizer_step_post_hook(lambda *_: self._mark("rest")),
        ]

    def _mark(self, phase: str) -> None:
        if phase not in self.marks:  # the first forward of a step (a compiled or wrapped net may call in twice)
            self.marks[phase] = _sync(self.device)

    def on_train_begin(self, state: State, control: Control) -> None:
        self.marks = {"data": _sync(self.device)}

    def on_step_end(self, state: State, control: Control) -> None:
        end = _sync(self.device)
        m = self.marks
        bounds = [m.get(p) for p in PHASES] + [end]
        if all(b is not None for b in bounds):
            self.steps.append({p: bounds[i + 1] - bounds[i] for i, p in enumerate(PHASES)})  # type: ignore[operator]
        if state.step == self.steady_from:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if self.device.type == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self.prof = torch.profiler.profile(activities=activities)
            self.prof.start()
            self.window_s = -_sync(self.device)
        elif self.prof is not None and state.step == self.steady_from + self.steady_n:
            self._end_window()
            control.stop("requested")
        self.marks = {"data": _sync(self.device)}

    def on_train_end(self, state: State, control: Control) -> None:
        self._end_window()  # a run shorter than the window: profiled to its end

    def _end_window(self) -> None:
        if self.prof is not None and self.window_s < 0:
            self.window_s += _sync(self.device)
            self.prof.stop()

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()

    def report(self) -> str:
        first = self.steps[:3]
        # steps 4 … steady_from: past the warm-up, before the profiler's overhead
        steady = self.steps[3 : self.steady_from] or self.steps[3:]
        med = {p: float(np.median([s[p] for s in steady])) for p in PHASES} if steady else {}
        line = f"{self.name}: first step {sum(first[0].values()):.2f} s ({_phases(first[0])})" if first else f"{self.name}: no step"
        if len(first) > 1:
            line += " · steps 2–3 " + ", ".join(f"{sum(s.values()) * 1e3:.0f} ms" for s in first[1:])
        if med:
            line += f" · steady step {sum(med.values()) * 1e3:.1f} ms ({_phases(med, ms=True)})"
        if self.prof is not None and self.window_s > 0:
            averages = self.prof.key_averages()
            busy = sum(_device_self_us(e) for e in averages) / 1e6
            line += f" · device busy {100 * busy / self.window_s:.0f}% of the profiled steps" if busy else ""
            tables = []
            for key in ("self_cuda_time_total", "self_cpu_time_total"):
                if key == "self_cuda_time_total" and self.device.type != "cuda":
                    continue
                tables.append(
                    f"--- {self.name}: top operators by {key} over steps {self.steady_from + 1}–{self.steady_from + self.steady_n}\n"
                )
                tables.append(averages.table(sort_by=key, row_limit=25) + "\n")
            (self.out / f"profile_{self.name}.txt").write_text("".join(tables))
        return line


def _device_self_us(event: object) -> float:
    for attr in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(event, attr, None)
        if value is not None:
            return float(value)
    return 0.0


def _phases(step: dict[str, float], *, ms: bool = False) -> str:
    return ", ".join(f"{p} {v * 1e3:.1f} ms" if ms else f"{p} {v:.2f} s" for p, v in step.items())


def profile_run(ds, cfg_kw: dict, *, name: str, out: Path, steady_from: int, steady_n: int = 10) -> str:
    """Train ``ds`` with ``cfg_kw`` through ``core.train.loop.fit`` in this process, phases timed."""
    from core.store import Store
    from core.train.callbacks import Cadence
    from core.train.config import RunConfig
    from core.train.loop import fit
    from core.train.prepare import prepare
    from core.train.worker import plan

    home = Path(tempfile.mkdtemp(prefix="gapscope-gpu-profile-"))
    try:
        os.environ["GAPSCOPE_HOME"] = str(home)
        store = Store(home)
        vid = store.save_dataset(ds, source="profile")
        t = time.perf_counter()
        job = prepare(store.load_dataset(vid), RunConfig(version_id=vid, temperature_scaling=False, **cfg_kw))
        ready = time.perf_counter() - t
        state = plan(job, run_id=0)
        steady_from = min(steady_from, max(4, state.total_steps - steady_n - 1))
        clock = PhaseClock(job.built.net, job.device, steady_from=steady_from, steady_n=steady_n, out=out, name=name)
        try:
            fit(job, state, [Cadence(log_every_steps=10**9, eval_every_steps=0), clock])
        finally:
            clock.close()
        head = f"[{job.device}, batch {job.cfg.batch_size}, {job.speed.describe()}; prepared in {ready:.1f} s] "
        return head + clock.report()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "."), help="where the profiler tables go")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (e.g. a dry run on a CPU)")
    parser.add_argument("--only", nargs="*", choices=["mobilenet_v2", "bert"], help="scenarios (default: both)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ["mobilenet_v2", "bert"])
    cuda = torch.cuda.is_available()
    print(f"device: {torch.cuda.get_device_name(0) if cuda else 'CPU'} · torch {torch.__version__}", flush=True)
    from core.data.dataset import Dataset

    lines = []
    if "mobilenet_v2" in only:
        x, y, xv, yv, xt, yt = bench_gpu.fashion(2048 if args.quick else None)
        split = np.r_[np.zeros(len(x), np.int8), np.ones(len(xv), np.int8), np.full(len(xt), 2, np.int8)]
        ds = Dataset("fashion", "image", np.concatenate([x, xv, xt]), np.concatenate([y, yv, yt]), [str(i) for i in range(10)], split)
        kw = {"model": "mobilenet_v2", "epochs": 2, "batch_size": 0, "device": "auto", "image_size": 32 if args.quick else 64}
        lines.append(profile_run(ds, kw, name="mobilenet_v2", out=args.out, steady_from=8 if args.quick else 20))
    if "bert" in only:
        texts, labels = bench_gpu.vader(512 if args.quick else None)
        split, hold = np.zeros(len(texts), np.int8), max(64, len(texts) // 20)
        split[-2 * hold : -hold], split[-hold:] = 1, 2
        with tempfile.TemporaryDirectory(prefix="profile-bert-") as tmp:
            folder = bench_gpu.bert_folder(Path(tmp) / "bert")
            ds = Dataset("vader", "text", np.asarray(texts, dtype=object), labels, ["negative", "neutral", "positive"], split)
            kw = {"model": str(folder), "epochs": 1, "batch_size": 64, "lr": 5e-5, "device": "auto", "max_length": 128}
            lines.append(profile_run(ds, kw, name="bert", out=args.out, steady_from=3 if args.quick else 40))
    print("\n".join(["", *lines]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
