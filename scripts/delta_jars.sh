#!/usr/bin/env bash
# Resolve Delta Lake's Spark jars with Maven (once) and print them comma-separated, for `spark-submit --jars`.
#
#   scripts/delta_jars.sh io.delta:delta-spark_4.2_2.13:4.4.0
#   -> /root/.cache/seeknal_spark/jars-delta-<hash>/delta-spark_4.2_2.13-4.4.0.jar,...
#
# Maven (`mvn`, as the machine configures it) resolves the artifact and its runtime dependencies; only io.delta's
# own jars (delta-spark, delta-storage, delta-kernel-*) are copied into ~/.cache/seeknal_spark/jars-delta-<hash>:
# Scala, Spark, Hadoop, Jackson, Parquet come with Spark itself. The directory is filled under a temporary name
# and renamed into place (never half-filled).
# Only the jar list is printed on stdout; Maven's output goes to stderr. Exit 1 when Maven is missing or fails.
set -euo pipefail
coord=${1:?usage: scripts/delta_jars.sh GROUP:ARTIFACT:VERSION}
IFS=: read -r group artifact version <<< "$coord"
[ -n "$group" ] && [ -n "$artifact" ] && [ -n "$version" ] || { echo "delta_jars.sh: bad coordinate '$coord'" >&2; exit 2; }
cache=${SEEKNAL_CACHE:-$HOME/.cache/seeknal_spark}
dir="$cache/jars-delta-$(printf '%s io.delta-only' "$coord" | sha256sum | cut -c1-12)"
if [ ! -f "$dir/.complete" ]; then
  command -v mvn >/dev/null || { echo "delta_jars.sh: mvn is not on PATH; cannot resolve $coord" >&2; exit 1; }
  mkdir -p "$cache"
  tmp="$dir.tmp-$$"
  rm -rf "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/jars"
  cat > "$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>seeknal</groupId><artifactId>delta-jars</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency>
  </dependencies>
</project>
POM
  mvn -q -B -Dstyle.color=never -f "$tmp/pom.xml" dependency:copy-dependencies -DoutputDirectory="$tmp/jars" \
      -DincludeScope=runtime -DincludeGroupIds=io.delta >&2
  ls "$tmp/jars"/*.jar >/dev/null
  touch "$tmp/jars/.complete"
  rm -rf "$dir"
  mv "$tmp/jars" "$dir"
  rm -rf "$tmp"
  trap - EXIT
fi
ls "$dir"/*.jar | paste -sd, -
