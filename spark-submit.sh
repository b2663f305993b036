#!/usr/bin/env bash
# Run a seeknal_spark job with spark-submit.
#
#   ./spark-submit.sh JOB [args...]
#
# JOB is materialize | backfill | training_set | publish_online | demo (a file in jobs/), or a path to a .py file.
# The arguments are forwarded unchanged; see `seeknal-spark --help` (exit codes: 0 ok, 1 failure, 2 usage error,
# 3 data validation rejected; spark-submit is exec'd so exit codes and signals pass through).
#
# Environment:
#   DRY_RUN=1                 print the spark-submit command instead of running it
#   WITH_DELTA=1              add Delta Lake's package and session extension (needs Maven Central access)
#   DELTA_VERSION             Delta package version for WITH_DELTA (default 4.4.1, as the pinned delta-spark)
#   SPARK_PROPERTIES_FILE     properties file (default $SEEKNAL_CONF_DIR/spark-defaults.conf)
#   SPARK_SUBMIT_EXTRA_ARGS   more spark-submit options, split on whitespace (e.g. "--master yarn --deploy-mode client")
#   SPARK_SUBMIT              the spark-submit executable (default $SPARK_HOME/bin/spark-submit, else .venv's)
#   BUILD_DIR                 where the --py-files archive is built (default build/)
#   PYSPARK_PYTHON            Python of the driver and executors (default .venv/bin/python when present)
#   SEEKNAL_CONF_DIR          configuration directory (default conf/)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  [ $# -ge 1 ] && exit 0 || exit 2
fi
job=$1
shift

case "$job" in
  *.py) app=$job ;;
  *) app="$ROOT/jobs/${job//-/_}.py" ;;
esac
if [ ! -f "$app" ]; then
  echo "spark-submit.sh: unknown job '$job' (no $app); jobs: $(cd "$ROOT/jobs" && ls *.py | sed 's/\.py$//' | tr '\n' ' ')" >&2
  exit 2
fi

if [ -x "$ROOT/.venv/bin/python" ]; then
  default_python="$ROOT/.venv/bin/python"
else
  default_python=$(command -v python3)
fi
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$default_python}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PYSPARK_PYTHON}"
export SEEKNAL_CONF_DIR="${SEEKNAL_CONF_DIR:-$ROOT/conf}"

if [ -n "${SPARK_SUBMIT:-}" ]; then
  submit=$SPARK_SUBMIT
elif [ -n "${SPARK_HOME:-}" ] && [ -x "$SPARK_HOME/bin/spark-submit" ]; then
  submit="$SPARK_HOME/bin/spark-submit"
elif [ -x "$ROOT/.venv/bin/spark-submit" ]; then
  submit="$ROOT/.venv/bin/spark-submit"
else
  submit=$(command -v spark-submit || true)
fi
if [ -z "$submit" ]; then
  echo "spark-submit.sh: no spark-submit found: set SPARK_HOME or SPARK_SUBMIT, or run ./run.sh test once" >&2
  exit 1
fi

# The package archive for --py-files, rebuilt when any source file is newer than it (or it is missing).
build_dir="${BUILD_DIR:-$ROOT/build}"
archive="$build_dir/seeknal_spark.zip"
if [ ! -f "$archive" ] || [ -n "$(find "$ROOT/seeknal_spark" -newer "$archive" \( -name '*.py' -o -name '*.typed' \) -print -quit)" ]; then
  mkdir -p "$build_dir"
  "$PYSPARK_PYTHON" - "$ROOT" "$archive" <<'PY'
import os, sys, zipfile
root, archive = sys.argv[1], sys.argv[2]
tmp = f"{archive}.tmp-{os.getpid()}"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
    for base, dirs, files in os.walk(os.path.join(root, "seeknal_spark")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".typed")):
                path = os.path.join(base, name)
                zf.write(path, os.path.relpath(path, root))
os.replace(tmp, archive)
PY
  echo "spark-submit.sh: built $archive" >&2
fi

properties="${SPARK_PROPERTIES_FILE:-$SEEKNAL_CONF_DIR/spark-defaults.conf}"
[ -f "$properties" ] || properties="$ROOT/conf/spark-defaults.conf"
cmd=("$submit" --properties-file "$properties")
if [ -f "$SEEKNAL_CONF_DIR/log4j2.properties" ]; then
  cmd+=(--driver-java-options "-Dlog4j2.configurationFile=file:$SEEKNAL_CONF_DIR/log4j2.properties")
fi
if [ "${WITH_DELTA:-0}" = "1" ]; then
  cmd+=(--packages "io.delta:delta-spark_2.13:${DELTA_VERSION:-4.4.1}"
        --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension
        --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog)
fi
if [ -n "${SPARK_SUBMIT_EXTRA_ARGS:-}" ]; then
  read -r -a extra <<< "$SPARK_SUBMIT_EXTRA_ARGS"
  cmd+=("${extra[@]}")
fi
cmd+=(--conf "spark.pyspark.python=$PYSPARK_PYTHON" --py-files "$archive" "$app" "$@")

if [ "${DRY_RUN:-0}" = "1" ]; then
  printf '%q ' "${cmd[@]}"
  printf '\n'
  exit 0
fi
exec "${cmd[@]}"
