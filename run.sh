#!/usr/bin/env bash
# The two commands of the README:
#   ./run.sh demo   - end-to-end demo on generated data (local Spark, local Delta store, DuckDB file)
#   ./run.sh test   - the test suite: with no arguments, all three phases CI runs
#                       1. the whole suite on the pinned Spark 4.2 environment (.venv)
#                       2. the Spark 3.5 selection (tests/spark35.txt) on a cached pyspark 3.5 venv
#                       3. the runtime-install check (tests/test_runtime_install.py, a Databricks-like venv)
#                     with arguments: pytest on .venv with those arguments (targeted runs)
#   ./run.sh test35 [pytest args]  - the Spark 3.5 venv (default: the tests/spark35.txt selection)
# .venv is created or refreshed from setup.cfg + constraints.txt first; the side venvs (scripts/envs.py) and the
# Delta jars (scripts/jars.py) are built on first use under ~/.cache/seeknal_spark and reused.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY=${PYTHON:-python3}
stamp="$VENV/.seeknal-installed"
want=$(cat setup.cfg pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e '.[dev]'
  echo "$want" > "$stamp"
fi
export SEEKNAL_CONF_DIR="${SEEKNAL_CONF_DIR:-$PWD/conf}"

spark35_selection() { grep -v '^\s*#' tests/spark35.txt | grep -v '^\s*$'; }

run_spark35() {
  local py35
  py35=$("$VENV/bin/python" scripts/envs.py spark35 --python) || return 1
  # The 3.5 venv holds the dependencies only; the checkout's code comes from PYTHONPATH (children inherit it).
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$py35" -m pytest -p no:cacheprovider "$@"
}

phase() {  # phase <name> <command...>: run, time, remember failures
  local name=$1 start rc
  shift
  start=$(date +%s)
  echo "=== run.sh test: $name" >&2
  set +e
  "$@"
  rc=$?
  set -e
  echo "=== run.sh test: $name: exit $rc, $(( $(date +%s) - start )) s" >&2
  [ "$rc" -eq 0 ] || failed="$failed $name"
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo) exec "$VENV/bin/python" jobs/demo.py "$@" ;;
  test)
    if [ $# -gt 0 ]; then exec "$VENV/bin/python" -m pytest "$@"; fi
    failed=""
    phase "main suite (pyspark 4.2)" "$VENV/bin/python" -m pytest -m "not runtime_install"
    # shellcheck disable=SC2046
    phase "Spark 3.5 selection" run_spark35 $(spark35_selection)
    phase "runtime install check" "$VENV/bin/python" -m pytest -m runtime_install
    if [ -n "$failed" ]; then echo "run.sh test: FAILED phases:$failed" >&2; exit 1; fi
    ;;
  test35)
    # shellcheck disable=SC2046
    if [ $# -gt 0 ]; then run_spark35 "$@"; else run_spark35 $(spark35_selection); fi ;;
  *) echo "usage: ./run.sh demo|test|test35 [args...]" >&2; exit 2 ;;
esac
