"""The one table of JVM versions: per Spark line, its Scala build, Delta Lake artifact and Hadoop (hadoop-aws).

Standard library only and Spark-free: the installed library reads it (the local session's hadoop-aws jars, the
advice in errors), and so do ``scripts/jars.py`` (which passes the versions to ``jvm/pom.xml`` as ``-D``
properties), ``scripts/envs.py`` (the Spark 3.5 side environment) and ``seeknal_spark/cli/submit_plan.py``
(the Delta artifact of the Spark being submitted to). The scripts load this file by path, so it must never
import the package (``tests/test_versions.py`` checks that no other file spells these versions).

Hadoop is the client version bundled in that pyspark (``pyspark/jars/hadoop-client-api-<v>.jar``); hadoop-aws
must match it exactly, and it brings the AWS SDK it was built with.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

__all__ = ["SparkLine", "SPARK_LINES", "DELTA_EXTENSION", "DELTA_CATALOG", "spark_line", "line_of",
           "hadoop_aws_coordinate", "cache_root", "pyspark_hadoop_version", "cached_s3_jars"]


@dataclass(frozen=True)
class SparkLine:
    """What goes with one Spark line (major.minor)."""

    spark: str            # "4.2"
    scala: str            # Scala binary version of that line's default build
    delta: str            # Delta Lake (delta-spark) version built for it
    delta_artifact: str   # its Maven artifact id (Scala suffix included)
    hadoop: str           # Hadoop client bundled in the pyspark of that line = the hadoop-aws version
    pyspark: Optional[str] = None  # the pyspark release the project tests this line with (None: not tested)

    @property
    def delta_coordinate(self) -> str:
        return f"io.delta:{self.delta_artifact}:{self.delta}"

    @property
    def hadoop_aws(self) -> str:
        return f"org.apache.hadoop:hadoop-aws:{self.hadoop}"

    @property
    def profile_suffix(self) -> str:
        """``"4.2"`` -> ``"42"`` (the jar profiles ``delta-spark42``)."""
        return self.spark.replace(".", "")


SPARK_LINES: Dict[str, SparkLine] = {
    "3.5": SparkLine("3.5", "2.12", "3.3.2", "delta-spark_2.12", "3.3.4", pyspark="3.5.9"),
    "4.0": SparkLine("4.0", "2.13", "4.0.1", "delta-spark_4.0_2.13", "3.4.1"),
    "4.1": SparkLine("4.1", "2.13", "4.1.0", "delta-spark_4.1_2.13", "3.4.2"),
    "4.2": SparkLine("4.2", "2.13", "4.4.0", "delta-spark_4.2_2.13", "3.5.0", pyspark="4.2.0"),
}
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def spark_line(version: str) -> str:
    """``"3.5.7"`` or ``"3.5"`` -> ``"3.5"``."""
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"not a Spark version: {version!r} (expected e.g. '3.5' or '4.2.0')")
    return f"{parts[0]}.{parts[1]}"


def line_of(version: str) -> Optional[SparkLine]:
    """The table row of a Spark version, None for a line the table does not know."""
    return SPARK_LINES.get(spark_line(version))


def hadoop_aws_coordinate(spark_version: str, hadoop: Optional[str] = None) -> str:
    """The hadoop-aws Maven coordinate for a Hadoop version, else for a Spark version's bundled Hadoop."""
    if hadoop is None:
        row = line_of(spark_version)
        if row is None:
            return "org.apache.hadoop:hadoop-aws:<the Hadoop version of your Spark>"
        hadoop = row.hadoop
    return f"org.apache.hadoop:hadoop-aws:{hadoop}"


def cache_root() -> Path:
    """Where resolved jars and side environments are cached: ``$SEEKNAL_SPARK_CACHE`` or ``~/.cache/seeknal_spark``."""
    return Path(os.environ.get("SEEKNAL_SPARK_CACHE") or Path.home() / ".cache" / "seeknal_spark")


_CLIENT_API = re.compile(r"^hadoop-client-api-(\d+\.\d+\.\d+)\.jar$")


def pyspark_hadoop_version(pyspark_dir: Optional[Path] = None) -> Optional[str]:
    """The Hadoop client version bundled with the importable pyspark (from its jar names), None if unknown."""
    if pyspark_dir is None:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            return None
        pyspark_dir = Path(list(spec.submodule_search_locations)[0])
    jars = pyspark_dir / "jars"
    if not jars.is_dir():
        return None
    for name in sorted(os.listdir(jars)):
        match = _CLIENT_API.match(name)
        if match:
            return match.group(1)
    return None


def cached_s3_jars(hadoop: str, root: Optional[Path] = None) -> List[str]:
    """The jars of a complete cache entry holding ``hadoop-aws-<hadoop>.jar`` (what ``scripts/jars.py`` resolved:
    hadoop-aws and its AWS SDK bundle), newest entry first; [] when none is cached."""
    base = (root or cache_root()) / "jars"
    if not base.is_dir():
        return []
    entries = [d for d in base.iterdir()
               if d.is_dir() and not d.name.startswith(".") and (d / f"hadoop-aws-{hadoop}.jar").is_file()]
    for entry in sorted(entries, key=lambda d: d.stat().st_mtime, reverse=True):
        jars = sorted(str(p) for p in entry.glob("*.jar"))
        if any("bundle" in Path(j).name for j in jars):  # hadoop-aws alone cannot reach S3
            return jars
    return []
