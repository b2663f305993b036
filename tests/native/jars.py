"""Delta Lake's Spark jars for the Delta-JVM test sessions, resolved with Maven into ~/.cache/seeknal_spark.

Maven (as the machine configures it, mirrors included) resolves ``io.delta:delta-spark_<spark>_<scala>`` and its
runtime dependencies once; only io.delta's own jars are kept (Spark already ships Scala, Hadoop, Parquet, Jackson).
The folder is filled under a temporary name and renamed into place, so it is never half-filled.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

# pyspark 4.2 <-> Delta 4.4 (the delta-spark artifact names the Spark line it is built for).
DELTA_COORDINATE = "io.delta:delta-spark_4.2_2.13:4.4.0"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>seeknal</groupId><artifactId>delta-jars</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""


def delta_jars(coordinate: str = DELTA_COORDINATE) -> List[str]:
    """Paths of the jars of ``coordinate`` (resolved on first use; needs ``mvn``)."""
    cache = Path(os.environ.get("SEEKNAL_CACHE", Path.home() / ".cache" / "seeknal_spark"))
    digest = hashlib.sha256(coordinate.encode()).hexdigest()[:12]
    target = cache / f"jars-native-{digest}"
    if not (target / ".complete").is_file():
        if shutil.which("mvn") is None:
            raise RuntimeError(f"mvn is not on PATH: cannot resolve {coordinate} for the Delta-JVM tests")
        group, artifact, version = coordinate.split(":")
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=cache))
        try:
            (work / "pom.xml").write_text(_POM.format(group=group, artifact=artifact, version=version))
            subprocess.run(["mvn", "-q", "-B", "-f", str(work / "pom.xml"), "dependency:copy-dependencies",
                            f"-DoutputDirectory={work / 'jars'}", "-DincludeScope=runtime",
                            "-DincludeGroupIds=io.delta"], check=True, stdout=sys.stderr)
            (work / "jars" / ".complete").touch()
            if target.exists():
                shutil.rmtree(target)
            (work / "jars").rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return sorted(str(p) for p in target.glob("*.jar"))


if __name__ == "__main__":  # pragma: no cover
    print(",".join(delta_jars()))
