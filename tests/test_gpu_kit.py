"""The GPU benchmarks, run here with only the packages a GPU machine can be counted on to have.

``benchmarks/gpu_check.py``, ``bench_gpu.py`` and ``gpu_profile.py`` (which ``scripts/gpu_bench.sh``
runs in one call) run from a copy of the project on a GPU machine with only torch, torchvision,
transformers, numpy, pandas and pyarrow installed (and accelerate, for ``Trainer``). GPU images
often have more (scikit-learn, SciPy, pytest) but seldom Streamlit, Plotly, imbalanced-learn or
NLTK, and time on a GPU machine is dear: a missing import must show up here, on the CPU. This runs
the check's and the profiler's CPU dry runs in a Python where the other packages cannot be
imported (as if not installed: ``importlib.util.find_spec`` says None).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, needs_asset

pytestmark = [pytest.mark.slow, needs_asset("fashion-mnist"), needs_asset("minilm")]

#: in this project's environment; not among the packages the GPU kit may count on
ABSENT = (
    "streamlit",
    "plotly",
    "sklearn",
    "scipy",
    "imblearn",
    "nltk",
    "ray",
    "pytest",
    "playwright",
    "cleanlab",
    "authlib",
    "efficientnet_lite_pytorch",
    "psutil",  # runs record process start times with it; without it a live pid is trusted
)

WITHOUT = f"""
import importlib.machinery, runpy, sys

ABSENT = {ABSENT!r}
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in ABSENT)
assert not loaded, f"imported before the check began: {{loaded}}"


class WithoutThem(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.partition(".")[0] in ABSENT else super().find_spec(name, path, target)


sys.meta_path[:] = [WithoutThem if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_without(script: str | Path, *args: str, timeout: float = 540) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, str(ROOT / script), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_the_harness_hides_a_package_as_if_it_were_not_installed(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import importlib.util\n"
        "print(importlib.util.find_spec('sklearn') is None, importlib.util.find_spec('numpy') is None)\n"
        "from core.data.demos import load_digits_8x8\n"
        "load_digits_8x8()\n"  # the digits demo needs scikit-learn: what gpu_check used before
    )
    done = run_without(script, timeout=120)
    assert done.stdout.split() == ["True", "False"], done.stdout + done.stderr
    assert done.returncode != 0 and "ModuleNotFoundError: No module named 'sklearn'" in done.stderr


def test_gpu_check_runs_with_only_what_a_gpu_machine_has(tmp_path):
    # the compiled run imports nothing beyond torch; tests/test_speed.py runs it (and it takes a minute here)
    done = run_without("benchmarks/gpu_check.py", "--cpu", "--skip", "check_compiled_run")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert out.count("PASS ") == 4 and "FAIL" not in out, out[-4000:]


@needs_asset("vader")
def test_gpu_profile_times_each_phase_with_only_what_a_gpu_machine_has(tmp_path):
    done = run_without("benchmarks/gpu_profile.py", "--quick", "--only", "bert", "--out", str(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    summary = next(line for line in done.stdout.splitlines() if "bert: first step" in line)
    for phase in ("data", "forward", "backward", "optimiser", "steady step"):
        assert phase in summary, summary
    table = (tmp_path / "profile_bert.txt").read_text()
    assert "top operators by self_cpu_time_total" in table and "aten::" in table
