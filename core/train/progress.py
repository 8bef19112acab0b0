"""Throughput and time left, measured over the window since the last log point."""

from __future__ import annotations

import math
import time

from core.train.events import State


class Throughput:
    """Samples per second of the current logging window (evaluation time inside it excluded), and
    the ETA of the run: the steps left at the run's mean step time, plus the evaluations left at
    their mean time (guessed from the step time before the first one)."""

    def __init__(self, state: State, *, eval_items: int, batch_size: int) -> None:
        self.state, self.eval_items, self.batch_size = state, eval_items, batch_size
        self.t_fit = time.perf_counter()
        self._reset()

    def _reset(self) -> None:
        self.steps, self.samples, self.t, self.eval_s = 0, 0, time.perf_counter(), 0.0

    def step(self, n: int) -> None:
        self.steps += 1
        self.samples += n

    def evaluated(self, seconds: float) -> None:
        self.eval_s += seconds

    def read(self) -> dict[str, float]:
        """``samples_per_s`` and ``eta_s`` of the current window (``restart`` begins the next)."""
        st = self.state
        now = time.perf_counter()
        span = max(now - self.t - self.eval_s, 1e-9)
        per_step = max(now - self.t_fit - st.eval_time_s, 1e-9) / max(st.step, 1)
        per_eval = st.eval_time_s / st.n_evals if st.n_evals else per_step * self.eval_items / max(1, self.batch_size) / 3
        evals_left = max(0, st.evals_planned - st.n_evals)
        return {"samples_per_s": self.samples / span, "eta_s": (st.total_steps - st.step) * per_step + evals_left * per_eval}

    def restart(self) -> None:
        """Begin a new window (after a log point has been written: its writes count in neither)."""
        self._reset()

    def training_seconds(self) -> float:
        """Wall clock since the loop began, evaluations excluded."""
        return time.perf_counter() - self.t_fit - self.state.eval_time_s


def fmt_seconds(s: float) -> str:
    """'45s', '3m05s', '1h02m'; '?' when unknown."""
    if not math.isfinite(s):
        return "?"
    s = round(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
