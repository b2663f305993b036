#!/usr/bin/env bash
# Run a seeknal_spark job with spark-submit.
#
#   ./spark-submit.sh JOB [args...]
#
# JOB is materialize | backfill | training_set | publish_online | demo (a file in jobs/), or a path to a .py file.
# The arguments are forwarded unchanged; see `seeknal-spark --help` (exit codes: 0 ok, 1 failure, 2 usage error,
# 3 data validation rejected; spark-submit is exec'd so exit codes and signals pass through).
#
# Settings are layered, the cluster's first: spark-submit still reads the cluster's own spark-defaults.conf
# ($SPARK_CONF_DIR, else $SPARK_HOME/conf, or your --properties-file), and this script adds the project's
# conf/spark-defaults.conf as --conf only for keys that neither that file nor your arguments set. Master, driver
# address and memory, shuffle partitions and UI (local[2], 127.0.0.1, ...) are added only when no master is
# configured anywhere (your arguments, the cluster's file, $MASTER): then the job runs on this machine.
# Your --py-files, --jars and --packages are extended, not replaced. No Python path is set for the executors:
# on a cluster set spark.pyspark.python (or PYSPARK_PYTHON) to a Python that has the package's dependencies.
#
# Environment:
#   DRY_RUN=1                 print the spark-submit command instead of running it
#   WITH_DELTA=1              add Delta Lake's jars and session extension, the artifact matching the Spark and
#                             Scala version (Spark 3.5 -> delta-spark_2.12:3.3.2, 4.2 -> delta-spark_4.2_2.13:4.4.0);
#                             the jars are resolved with Maven (scripts/delta_jars.sh, cached) and passed as --jars
#   DELTA_PACKAGE             Delta coordinate to use instead (group:artifact:version)
#   DELTA_RESOLVE=packages    pass Delta as --packages (resolved by Spark at start) instead of Maven-resolved --jars
#   DELTA_JARS                comma-separated Delta jars to pass as --jars (no resolution)
#   SEEKNAL_SPARK_DEFAULTS    the project's defaults (default $SEEKNAL_CONF_DIR/spark-defaults.conf)
#   SPARK_SUBMIT_EXTRA_ARGS   more spark-submit options, split on whitespace (e.g. "--master yarn --deploy-mode client")
#   SPARK_SUBMIT              the spark-submit executable (default $SPARK_HOME/bin/spark-submit, else .venv's)
#   BUILD_DIR                 where the --py-files archive is built (default build/)
#   PYSPARK_DRIVER_PYTHON     Python of the driver (default .venv/bin/python when present, else python3)
#   PYSPARK_PYTHON            Python of the executors (set only for local runs, to the driver's Python)
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
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$default_python}"
py=$PYSPARK_DRIVER_PYTHON   # the submitting host's Python: builds the archive, plans the options, runs the driver
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
  "$py" - "$ROOT" "$archive" <<'PY'
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

# The Spark installation spark-submit runs (for its conf/ and its version): $SPARK_HOME, else pip's pyspark.
spark_home=${SPARK_HOME:-}
if [ -z "$spark_home" ]; then
  spark_home=$("$py" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null || true)
fi
cluster_conf="${SPARK_CONF_DIR:-${spark_home:-/nonexistent}/conf}/spark-defaults.conf"
project_conf="${SEEKNAL_SPARK_DEFAULTS:-$SEEKNAL_CONF_DIR/spark-defaults.conf}"
[ -f "$project_conf" ] || project_conf="$ROOT/conf/spark-defaults.conf"
extra=()
if [ -n "${SPARK_SUBMIT_EXTRA_ARGS:-}" ]; then
  read -r -a extra <<< "$SPARK_SUBMIT_EXTRA_ARGS"
fi
planner=(--project "$project_conf" --cluster "$cluster_conf" --archive "$archive")
[ -f "$SEEKNAL_CONF_DIR/log4j2.properties" ] && planner+=(--log4j "$SEEKNAL_CONF_DIR/log4j2.properties")
if [ "${WITH_DELTA:-0}" = "1" ]; then
  coord=${DELTA_PACKAGE:-}
  if [ -z "$coord" ] && [ -z "${DELTA_JARS:-}" ]; then
    coord=$("$py" "$ROOT/seeknal_spark/cli/submit_plan.py" --mode delta-artifact --archive - --project - \
            --spark-home "$spark_home") || exit 2
  fi
  if [ -n "${DELTA_JARS:-}" ]; then
    planner+=(--delta-jars "$DELTA_JARS")
  elif [ "${DELTA_RESOLVE:-maven}" = "packages" ]; then
    planner+=(--delta-package "$coord")
  else
    jars=$("$ROOT/scripts/delta_jars.sh" "$coord") || {
      echo "spark-submit.sh: could not resolve $coord with Maven; set DELTA_RESOLVE=packages to let Spark fetch it" >&2
      exit 1
    }
    planner+=(--delta-jars "$jars")
  fi
fi
plan_file=$(mktemp)
trap 'rm -f "$plan_file"' EXIT
"$py" "$ROOT/seeknal_spark/cli/submit_plan.py" "${planner[@]}" -- "${extra[@]}" > "$plan_file"
mapfile -d '' options < "$plan_file"
rm -f "$plan_file"
trap - EXIT
if [ "${options[0]}" = "local" ]; then      # no master anywhere: driver and executors are this machine's
  export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$py}"
fi
cmd=("$submit" "${options[@]:1}" "$app" "$@")

if [ "${DRY_RUN:-0}" = "1" ]; then
  echo "spark-submit.sh: ${options[0]} run; PYSPARK_PYTHON=${PYSPARK_PYTHON:-<unset>} PYSPARK_DRIVER_PYTHON=$PYSPARK_DRIVER_PYTHON" >&2
  printf '%q ' "${cmd[@]}"
  printf '\n'
  exit 0
fi
exec "${cmd[@]}"
