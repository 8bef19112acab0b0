#!/usr/bin/env bash
# One GPU lease, one command: the fast path's checks, the benchmark, then the profile, each with a
# time limit so the whole fits a 600 s call. Full logs and profiler tables go to $OUT (what a lent
# machine sends back); stdout keeps the summary lines, which fit the call's short output tail.
#
#   here:   scripts/gpu_carry.sh                    # the assets, into the ignored .gpu-carry
#   there:  bash scripts/gpu_session.sh             # carrying .gpu-carry; about 6–9 minutes
#           bash scripts/gpu_session.sh --quick     # the same at tiny sizes (a CPU dry run here)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-${TMPDIR:-/tmp}/gapscope-gpu-session}"
mkdir -p "$out"
export GAPSCOPE_ASSETS="${GAPSCOPE_ASSETS:-.gpu-carry/assets}"
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
