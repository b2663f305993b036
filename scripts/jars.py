#!/usr/bin/env python3
"""Resolve the JVM jars Spark needs (Delta Lake, hadoop-aws) with Maven, cached, no manual step.

Usage::

    python scripts/jars.py delta-spark42            # one jar path per line
    python scripts/jars.py delta-spark35 --csv      # comma-separated, for spark.jars / spark-submit --jars
    python scripts/jars.py --for-pyspark            # the Delta profile matching the installed pyspark
    python scripts/jars.py --for-pyspark --s3 --conf    # Delta + hadoop-aws (Delta-JVM sessions on s3a://)
    python scripts/jars.py --artifact io.delta:delta-spark_4.2_2.13:4.4.0 --csv   # any version (spark-submit.sh)

The profiles live in ``jvm/pom.xml``. Resolution runs
``mvn -q -f jvm/pom.xml -P <profile> dependency:copy-dependencies -DincludeScope=runtime`` into a temporary
directory beside the cache entry, then renames it to ``<cache>/jars/<profile>-<hash of the pom>`` (atomic: a
half-resolved directory is never seen, and an edit of the pom gives a new entry). ``--artifact`` resolves one
Maven coordinate the same way (for a cluster's own Spark line, see ``spark-submit.sh``): its runtime dependencies
of the artifact's own group only (Scala, Spark, Hadoop come with Spark), cached as
``<cache>/jars/artifact-<hash of the coordinate>``. Maven uses whatever mirror the
machine's ``~/.m2/settings.xml`` names. The cache root is ``$SEEKNAL_SPARK_CACHE`` or ``~/.cache/seeknal_spark``.

Standard library only: this runs before any project environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
POM = REPO / "jvm" / "pom.xml"

# Spark line ("major.minor" of pyspark) -> the Delta profile of jvm/pom.xml built for it.
DELTA_PROFILES: Dict[str, str] = {"3.5": "delta-spark35", "4.2": "delta-spark42"}
# Spark line -> the hadoop-aws profile matching the Hadoop client bundled in that pyspark.
S3_PROFILES: Dict[str, str] = {"3.5": "s3-hadoop334", "4.2": "s3-hadoop350"}
PROFILES = tuple(DELTA_PROFILES.values()) + tuple(S3_PROFILES.values())


class JarResolutionError(RuntimeError):
    """Maven is missing or could not resolve a profile."""


def cache_root() -> Path:
    """``$SEEKNAL_SPARK_CACHE`` or ``~/.cache/seeknal_spark``."""
    return Path(os.environ.get("SEEKNAL_SPARK_CACHE") or Path.home() / ".cache" / "seeknal_spark")


def pom_hash(pom: Path = POM) -> str:
    """First 16 hex digits of the pom's sha256: the cache key of every profile."""
    return hashlib.sha256(pom.read_bytes()).hexdigest()[:16]


def spark_line(version: str) -> str:
    """``"3.5.7"`` or ``"3.5"`` -> ``"3.5"``."""
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"not a Spark version: {version!r} (expected e.g. '3.5' or '4.2.0')")
    return f"{parts[0]}.{parts[1]}"


def delta_profile(version: str) -> str:
    """The Delta profile for a pyspark version (``"3.5.7"`` -> ``"delta-spark35"``)."""
    line = spark_line(version)
    if line not in DELTA_PROFILES:
        raise JarResolutionError(
            f"no Delta jar profile for Spark {line}; jvm/pom.xml has {sorted(DELTA_PROFILES)} "
            "(add a profile with the delta-spark artifact built for that Spark line)")
    return DELTA_PROFILES[line]


def jar_dir(profile: str, pom: Path = POM) -> Path:
    """Where a profile's jars are cached (it may not exist yet)."""
    return cache_root() / "jars" / f"{profile}-{pom_hash(pom)}"


def resolve(profile: str, pom: Path = POM, mvn: Optional[str] = None, quiet: bool = True) -> List[str]:
    """The absolute paths of a profile's jars, resolving them with Maven first if not cached.

    Raises ``JarResolutionError`` if the profile is unknown, ``mvn`` is not on PATH, or Maven fails.
    """
    if profile not in PROFILES:
        raise JarResolutionError(f"unknown jar profile {profile!r}; jvm/pom.xml has {list(PROFILES)}")
    target = jar_dir(profile, pom)
    if not target.is_dir():
        _resolve_into(f"jvm/pom.xml profile {profile}", pom, target, mvn, quiet, ["-P", profile])
    return _jars_in(target)


def resolve_artifact(coordinate: str, mvn: Optional[str] = None, quiet: bool = True) -> List[str]:
    """The jars of one Maven coordinate ``group:artifact:version`` and of its runtime dependencies in the same
    group (e.g. delta-spark, delta-storage, delta-kernel-* for ``io.delta:...``), resolved once and cached."""
    parts = coordinate.split(":")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_.\-]+", p) for p in parts):
        raise ValueError(f"bad Maven coordinate {coordinate!r}: expected GROUP:ARTIFACT:VERSION")
    group, artifact, version = parts
    digest = hashlib.sha256(f"{coordinate} own-group".encode()).hexdigest()[:16]
    target = cache_root() / "jars" / f"artifact-{digest}"
    if not target.is_dir():
        with tempfile.TemporaryDirectory() as work:
            pom = Path(work) / "pom.xml"
            pom.write_text(
                '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
                "<groupId>seeknal</groupId><artifactId>artifact-jars</artifactId><version>1</version>"
                f"<packaging>pom</packaging><dependencies><dependency><groupId>{group}</groupId>"
                f"<artifactId>{artifact}</artifactId><version>{version}</version></dependency></dependencies>"
                "</project>")
            _resolve_into(coordinate, pom, target, mvn, quiet, [f"-DincludeGroupIds={group}"])
    return _jars_in(target)


def _jars_in(target: Path) -> List[str]:
    jars = sorted(str(p) for p in target.glob("*.jar"))
    if not jars:
        raise JarResolutionError(f"{target} holds no jars; delete it and run again")
    return jars


def _resolve_into(profile: str, pom: Path, target: Path, mvn: Optional[str], quiet: bool,
                  extra: Sequence[str] = ()) -> None:
    """Run Maven's copy-dependencies for ``profile`` (a pom profile, or the name of an ``--artifact`` pom) into a
    temporary directory, then rename it to ``target``."""
    mvn = shutil.which(mvn or "mvn")
    if not mvn:
        raise JarResolutionError("Maven ('mvn') is not on PATH: install Maven 3.6+ (e.g. apt-get install maven) "
                                 "or put the jars of " + profile + " in spark.jars yourself")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        cmd = [mvn, "-B", "-Dstyle.color=never", "-f", str(pom), *extra, "dependency:copy-dependencies",
               "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"]
        if quiet:
            cmd.insert(1, "-q")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
            raise JarResolutionError(f"mvn failed for {profile} (exit {done.returncode}):\n{tail}")
        if not any(tmp.glob("*.jar")):
            raise JarResolutionError(f"mvn resolved no jars for {profile}")
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # not a concurrent winner: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def delta_jars(version: str) -> List[str]:
    """The Delta Lake jars for a pyspark version (``"3.5"``, ``"4.2.0"``...)."""
    return resolve(delta_profile(version))


def delta_spark_conf(version: str) -> Dict[str, str]:
    """Session settings for a classic Spark session with Delta's JVM side, for a pyspark version."""
    return {
        "spark.jars": ",".join(delta_jars(version)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    }


def _installed_pyspark() -> str:
    try:
        import pyspark
    except ImportError as exc:
        raise JarResolutionError("--for-pyspark: pyspark is not importable by " + sys.executable) from exc
    return pyspark.__version__


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", nargs="?", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--artifact", metavar="GROUP:ARTIFACT:VERSION",
                        help="resolve this Maven coordinate (and its runtime dependencies of the same group)")
    parser.add_argument("--for-pyspark", action="store_true",
                        help="the Delta profile matching the pyspark this python imports")
    parser.add_argument("--s3", action="store_true",
                        help="with --for-pyspark: also the hadoop-aws profile of that pyspark's Hadoop (s3a://)")
    parser.add_argument("--csv", action="store_true", help="print one comma-separated line (spark.jars)")
    parser.add_argument("--conf", action="store_true",
                        help="print spark-submit --conf arguments for a Delta session (Delta profiles)")
    args = parser.parse_args(argv)
    if args.artifact:
        try:
            jars = resolve_artifact(args.artifact)
        except ValueError as exc:
            print(f"jars.py: {exc}", file=sys.stderr)
            return 2
        except JarResolutionError as exc:
            print(f"jars.py: {exc}", file=sys.stderr)
            return 1
        print(",".join(jars) if args.csv else "\n".join(jars))
        return 0
    try:
        profile = delta_profile(_installed_pyspark()) if args.for_pyspark else args.profile
        if not profile:
            parser.error("give a profile or --for-pyspark")
        jars = resolve(profile, quiet=True)
        if args.s3:
            if not args.for_pyspark:
                parser.error("--s3 goes with --for-pyspark (or name an s3-* profile)")
            jars += resolve(S3_PROFILES[spark_line(_installed_pyspark())], quiet=True)
    except JarResolutionError as exc:
        print(f"jars.py: {exc}", file=sys.stderr)
        return 1
    if args.conf:
        print(f"--conf spark.jars={','.join(jars)} "
              "--conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension "
              "--conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog")
    elif args.csv:
        print(",".join(jars))
    else:
        print("\n".join(jars))
    return 0


if __name__ == "__main__":
    sys.exit(main())
