#!/usr/bin/env bash
# Copy the assets the GPU benchmarks read into .gpu-assets/assets (ignored by git; about 50 MB), for
# a GPU machine without Gapscope's setup: Fashion-MNIST, VADER, MobileNetV2's weights and MiniLM's
# tokenizer (not its 88 MB of weights: the benchmark's BERT has random weights). Copy the checkout
# with .gpu-assets to the GPU machine; there, from the repository root:
#   bash scripts/gpu_bench.sh     # gpu_check.py, bench_gpu.py and gpu_profile.py, logs in $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
src="${GAPSCOPE_ASSETS:-$HOME/.cache/gapscope/assets}"
for need in fashion-mnist vader mobilenet-v2 minilm/tokenizer.json; do
  if [ ! -e "$src/$need" ]; then
    echo "$src/$need is missing: run scripts/setup.sh test (as root, for Fashion-MNIST) first." >&2
    exit 1
  fi
done
dest=.gpu-assets/assets
rm -rf .gpu-assets
mkdir -p "$dest/minilm"
cp -rL "$src/fashion-mnist" "$src/vader" "$src/mobilenet-v2" "$dest/"
for f in tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
  if [ -e "$src/minilm/$f" ]; then cp -L "$src/minilm/$f" "$dest/minilm/"; fi
done
du -sh .gpu-assets
