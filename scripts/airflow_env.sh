#!/usr/bin/env bash
# Build (once) and print the path of a cached virtual environment with Apache Airflow and the apache-spark provider.
#
#   scripts/airflow_env.sh 3     # -> ~/.cache/seeknal_spark/venv-airflow3-<hash>
#   scripts/airflow_env.sh 2     # -> ~/.cache/seeknal_spark/venv-airflow2-<hash>
#
# The pins are scripts/airflow-<line>.txt; scripts/airflow-<line>-constraints.txt (when present) pins every
# transitive dependency, as Airflow's own constraints files do, so a fresh machine installs the same set from PyPI.
# The hash covers both files and the Python version: a changed pin builds a new venv. Building happens in a
# temporary directory that is renamed into place, so an interrupted build never leaves a half venv behind.
# Only the venv path is printed on stdout; pip's output goes to stderr.
set -euo pipefail
line=${1:?usage: scripts/airflow_env.sh 2|3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
reqs="$here/airflow-$line.txt"
cons="$here/airflow-$line-constraints.txt"
[ -f "$reqs" ] || { echo "airflow_env.sh: no $reqs" >&2; exit 2; }
PY=${PYTHON:-python3}
hash=$( { cat "$reqs"; [ -f "$cons" ] && cat "$cons"; "$PY" -c 'import sys; print(sys.version_info[:2])'; } \
        | sha256sum | cut -c1-12)
cache=${SEEKNAL_CACHE:-$HOME/.cache/seeknal_spark}
venv="$cache/venv-airflow$line-$hash"
if [ ! -x "$venv/bin/airflow" ]; then
  mkdir -p "$cache"
  tmp="$venv.tmp-$$"
  rm -rf "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  started=$(date +%s)
  "$PY" -m venv "$tmp" >&2
  "$tmp/bin/python" -m pip install --quiet --upgrade pip >&2
  args=(-r "$reqs")
  [ -f "$cons" ] && args+=(-c "$cons")
  "$tmp/bin/python" -m pip install --quiet "${args[@]}" >&2
  # venvs are not relocatable: rebuild the entry points' shebangs for the final path, then rename.
  grep -rlI --null "$tmp" "$tmp/bin" | xargs -0 -r sed -i "s#$tmp#$venv#g"
  rm -rf "$venv"
  mv "$tmp" "$venv"
  trap - EXIT
  echo "airflow_env.sh: built $venv in $(( $(date +%s) - started )) s" >&2
fi
echo "$venv"
