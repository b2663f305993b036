#!/usr/bin/env bash
# The two commands of the README:
#   ./run.sh demo   - end-to-end demo on generated data (local Spark, local Delta store, DuckDB file)
#   ./run.sh test   - the test suite
# Each creates or refreshes the virtual environment .venv from setup.cfg first.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY=${PYTHON:-python3}
stamp="$VENV/.seeknal-installed"
want=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
  echo "$want" > "$stamp"
fi
export SEEKNAL_CONF_DIR="${SEEKNAL_CONF_DIR:-$PWD/conf}"
cmd=${1:-}
shift || true
case "$cmd" in
  demo) exec "$VENV/bin/python" jobs/demo.py "$@" ;;
  test) exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: ./run.sh demo|test [args...]" >&2; exit 2 ;;
esac
