#!/usr/bin/env bash
# The GPU checks, benchmark and profile in one command, each stage with its own time limit so the
# whole ends within 10 minutes: benchmarks/gpu_check.py (150 s), bench_gpu.py (330 s) and
# gpu_profile.py (90 s). Full logs and profiler tables go to $OUT (default: a folder in $TMPDIR);
# stdout keeps the summary lines.
#
#   bash scripts/gpu_assets.sh            # on a machine with the setup: the assets, into .gpu-assets
#   bash scripts/gpu_bench.sh             # on the GPU machine, from the checkout with .gpu-assets; 6–9 minutes
#   bash scripts/gpu_bench.sh --quick     # the same at tiny sizes (on a CPU: a dry run)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-${TMPDIR:-/tmp}/gapscope-gpu-bench}"
mkdir -p "$out"
export GAPSCOPE_ASSETS="${GAPSCOPE_ASSETS:-.gpu-assets/assets}"
py="${PYTHON:-python3}"
quick=()
check=()
if [ "${1:-}" = "--quick" ]; then
  quick=(--quick)
  "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || check=(--cpu)
fi

(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi") | tee "$out/gpu.txt"
"$py" -c "import torch, torchvision, transformers; print('torch', torch.__version__, '· torchvision', torchvision.__version__, '· transformers', transformers.__version__)"

stage() {  # stage NAME LIMIT_S GREP COMMAND...: run with a time limit, log to $out/NAME.log, print the summary lines
  local name=$1 limit=$2 pattern=$3
  shift 3
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s$([ $rc = 124 ] && echo " (its $limit s limit)")"
  grep -E "$pattern" "$out/$name.log" | cut -c1-600
  [ $rc = 0 ] || tail -n 15 "$out/$name.log" | cut -c1-300
}

stage gpu_check 150 '^(device|PASS|FAIL)' "$py" benchmarks/gpu_check.py "${check[@]}"
stage bench_gpu 330 '^(device|tutorial|mobilenet_v2|small_cnn|bert|  |all scenarios)' "$py" benchmarks/bench_gpu.py "${quick[@]}"
stage gpu_profile 90 '^(device|\[)' "$py" benchmarks/gpu_profile.py --out "$out" "${quick[@]}"
ls -la "$out"
