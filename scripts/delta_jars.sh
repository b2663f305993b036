#!/usr/bin/env bash
# Resolve Delta Lake's Spark jars with Maven (once) and print them comma-separated, for `spark-submit --jars`.
#
#   scripts/delta_jars.sh io.delta:delta-spark_4.2_2.13:4.4.0
#   -> /root/.cache/seeknal_spark/jars/artifact-<hash>/delta-spark_4.2_2.13-4.4.0.jar,...
#
# A thin entry point for spark-submit.sh: the rule (Maven, io.delta's own jars only, atomic cache) is
# scripts/jars.py --artifact. Only the jar list is printed on stdout. Exit 1 when Maven is missing or fails,
# 2 for a bad coordinate.
set -euo pipefail
coord=${1:?usage: scripts/delta_jars.sh GROUP:ARTIFACT:VERSION}
exec "${PYTHON:-python3}" "$(dirname "$0")/jars.py" --artifact "$coord" --csv
