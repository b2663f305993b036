"""Finding or creating the Spark session. The library never reconfigures a session it did not create."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional

from seeknal_spark.config import conf_dir

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = ["active_session", "get_spark", "local_session", "read_spark_defaults", "has_delta_jvm"]

# Settings the library relies on when it creates a local session itself.
_LOCAL_DEFAULTS: Dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


def read_spark_defaults(path: Optional[Path] = None) -> Dict[str, str]:
    """Parse a ``spark-defaults.conf`` file (``key value`` per line, ``#`` comments)."""
    path = path or conf_dir() / "spark-defaults.conf"
    settings: Dict[str, str] = {}
    if not path.is_file():
        return settings
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if not value:
            key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    return settings


def active_session() -> Optional["SparkSession"]:
    """The active session (classic or Spark Connect), or None."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


def local_session(master: str = "local[2]", app_name: str = "seeknal_spark", remote: bool = False,
                  extra: Optional[Dict[str, str]] = None) -> "SparkSession":
    """Create a local session from ``conf/spark-defaults.conf`` plus the library's settings.

    With ``remote=True`` a local Spark Connect server is started and a Connect session returned.
    """
    from pyspark.sql import SparkSession

    settings = {**_LOCAL_DEFAULTS, **read_spark_defaults(), **(extra or {})}
    settings.pop("spark.master", None)
    log4j = conf_dir() / "log4j2.properties"
    if log4j.is_file() and "spark.driver.extraJavaOptions" not in settings:
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j.resolve().as_uri()}"
    builder = SparkSession.builder.appName(app_name)
    builder = builder.remote(master) if remote else builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not remote:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def get_spark(spark: Optional["SparkSession"] = None) -> "SparkSession":
    """The given session, else the active one, else a new local session from ``conf/``."""
    if spark is not None:
        return spark
    active = active_session()
    if active is not None:
        return active
    if os.environ.get("PYSPARK_GATEWAY_PORT") or os.environ.get("SPARK_REMOTE"):
        # Launched by spark-submit (or configured for Connect): let spark-submit's --master and --conf decide.
        from pyspark.sql import SparkSession

        return SparkSession.builder.getOrCreate()
    return local_session()


def has_delta_jvm(spark: "SparkSession") -> bool:
    """True when the session was started with Delta Lake's Spark extension (Databricks, --packages delta)."""
    try:
        extensions = spark.conf.get("spark.sql.extensions", "") or ""
    except Exception:  # noqa: BLE001 - Connect raises for unknown keys on some versions
        extensions = ""
    return "DeltaSparkSessionExtension" in extensions or _is_databricks(spark)


def _is_databricks(spark: "SparkSession") -> bool:
    try:
        return bool(spark.conf.get("spark.databricks.clusterUsageTags.sparkVersion", ""))
    except Exception:  # noqa: BLE001
        return False
