#!/usr/bin/env bash
# Gapscope's two commands:
#   ./gapscope.sh run    set up (first time: a few minutes) and start the dashboard on http://127.0.0.1:8501
#   ./gapscope.sh test   set up, check lint, format and types, and run the whole test suite
# Both are idempotent; the second time they skip what is already done.
set -euo pipefail
cd "$(dirname "$0")"

command="${1:-}"
shift || true
case "$command" in
  run)
    scripts/setup.sh app
    .venv/bin/python -m core.auth check "${GAPSCOPE_ADDRESS:-127.0.0.1}"
    if [ -n "${GAPSCOPE_RAY_ADDRESS:-}" ]; then
      # the queue keeper: applies what the cluster sends and starts queued runs with no page open;
      # it ends when streamlit (this process, after exec) does
      .venv/bin/python -m core.runners.ray.keeper --parent $$ &
    fi
    exec .venv/bin/streamlit run app.py --server.address "${GAPSCOPE_ADDRESS:-127.0.0.1}" --server.port "${GAPSCOPE_PORT:-8501}" "$@"
    ;;
  test)
    scripts/setup.sh test
    scripts/check.sh
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./gapscope.sh run|test [extra streamlit or pytest arguments]" >&2
    exit 2
    ;;
esac
