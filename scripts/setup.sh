#!/usr/bin/env bash
# Set up Gapscope: Debian packages (when root), a virtualenv, the project, and the verified demo assets.
#   scripts/setup.sh app    what the dashboard needs
#   scripts/setup.sh test   that, plus what the tests need (Chromium for the browser tests)
# Idempotent: a stamp per step records what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-app}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- 1. Debian packages: Fashion-MNIST (data), Apertium (back-translation), Chromium (browser tests). Optional.
debs=(dataset-fashion-mnist apertium apertium-eng-spa)
[ "$purpose" = test ] && debs+=(chromium)
missing=()
for deb in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing+=("$deb")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    as_root=none
  fi
  if [ "${as_root[*]:-}" = none ]; then
    say "skipping Debian packages ${missing[*]} (needs root and apt-get): Fashion-MNIST, back-translation and the browser tests will be skipped."
  else
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq || say "apt-get update failed; trying the install anyway"
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || say "could not install ${missing[*]}; continuing without them"
  fi
fi

# --- 2. Python 3.11 virtualenv with the project --------------------------------------------------------
python=""
for candidate in "${PYTHON:-}" python3.11 python3; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "Gapscope needs Python 3.11 (python3.11 or python3). Install it, or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $python"
  "$python" -m venv .venv
fi
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
stamp=.venv/.gapscope-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Gapscope and its dependencies into .venv (torch is large: the first time takes minutes)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
fi

# --- 3. Demo data and pretrained weights, verified by SHA-256 -----------------------------------------
.venv/bin/python -m core.data.assets fetch

# --- 4. The app starts with the demos already in its store ---------------------------------------------
if [ "$purpose" = app ]; then
  .venv/bin/python -m core.data.demos import
fi
say "ready"
