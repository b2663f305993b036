"""Finding or creating the Spark session. The library never reconfigures a session it did not create."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Mapping, Optional

from seeknal_spark.config import conf_dir, default_offline_store_path
from seeknal_spark.errors import StoreError
from seeknal_spark.storage import hadoop_options, hadoop_uri, is_s3

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = ["active_session", "get_spark", "local_session", "read_spark_defaults", "has_delta_jvm",
           "s3_settings", "require_s3_filesystem"]

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
                  extra: Optional[Dict[str, str]] = None, s3: Optional[bool] = None) -> "SparkSession":
    """Create a local session from ``conf/spark-defaults.conf`` plus the library's settings.

    With ``remote=True`` a local Spark Connect server is started and a Connect session returned.
    ``s3=True`` (default: when the configured offline store, ``SEEKNAL_OFFLINE_STORE`` or ``seeknal.ini``, is
    on S3) adds the hadoop-aws jars Spark needs for ``s3://`` stores (see :func:`s3_settings`).
    """
    from pyspark.sql import SparkSession

    settings = {**_LOCAL_DEFAULTS, **read_spark_defaults(), **(extra or {})}
    settings.pop("spark.master", None)
    if s3 if s3 is not None else is_s3(default_offline_store_path()):
        settings.update(s3_settings(settings))
    log4j = conf_dir() / "log4j2.properties"
    if log4j.is_file() and "spark.driver.extraJavaOptions" not in settings:
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j.resolve().as_uri()}"
    builder = SparkSession.builder.appName(app_name)
    builder = builder.remote(master) if remote else builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    _CREATED[id(spark)] = spark
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


# Sessions local_session() built (the S3 advice differs: restart with s3=True rather than add a --packages).
_CREATED: Dict[int, "SparkSession"] = {}
# Sessions seen to have an S3 file system (probed once per session).
_HAS_S3A: Dict[int, "SparkSession"] = {}


def _pyspark_version() -> str:
    import pyspark

    return pyspark.__version__


def s3_settings(settings: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """What a local session built by the library adds for ``s3a://``: ``spark.jars`` extended with the hadoop-aws
    jars matching the pyspark's Hadoop from the project's jar cache (``python scripts/jars.py s3-hadoop350``),
    else ``spark.jars.packages`` extended with the ``org.apache.hadoop:hadoop-aws:<Hadoop version>`` coordinate
    (Spark downloads it through Ivy at start). Nothing when ``settings`` name hadoop-aws already."""
    from seeknal_spark import jvm_versions

    settings = settings or {}
    jars, packages = settings.get("spark.jars", ""), settings.get("spark.jars.packages", "")
    if "hadoop-aws" in jars or "hadoop-aws" in packages:
        return {}
    hadoop = jvm_versions.pyspark_hadoop_version()
    row = jvm_versions.line_of(_pyspark_version())
    hadoop = hadoop or (row.hadoop if row else None)
    if hadoop is None:
        raise StoreError(f"cannot tell the Hadoop version of pyspark {_pyspark_version()} for its hadoop-aws jars; "
                         "pass extra={'spark.jars.packages': 'org.apache.hadoop:hadoop-aws:<its Hadoop version>'}")
    cached = jvm_versions.cached_s3_jars(hadoop)
    if cached:
        return {"spark.jars": ",".join([j for j in jars.split(",") if j] + cached)}
    coordinate = jvm_versions.hadoop_aws_coordinate("", hadoop)
    return {"spark.jars.packages": ",".join([p for p in packages.split(",") if p] + [coordinate])}


def _missing_s3a(text: str) -> bool:
    return "S3AFileSystem" in text and ("not found" in text or "ClassNotFound" in text) \
        or 'No FileSystem for scheme "s3a"' in text or "No FileSystem for scheme: s3a" in text


def require_s3_filesystem(spark: "SparkSession", uri: str,
                          storage_options: Optional[Mapping[str, str]] = None) -> None:
    """Before Spark reads or writes the S3 store ``uri``: raise StoreError naming the setting that adds hadoop-aws
    when the session's JVM has no ``s3a://`` file system. Connect-safe: the probe is the analysis of a read of a
    path that does not exist (a driver-side file system lookup, no job); once per session."""
    if not is_s3(uri) or id(spark) in _HAS_S3A or _is_databricks(spark):
        return
    probe = hadoop_uri(uri).rstrip("/") + "/_seeknal_s3a_probe_does_not_exist"
    try:
        spark.read.options(**hadoop_options(storage_options)).format("text").load(probe).schema
    except Exception as exc:  # noqa: BLE001 - any other failure (path not found, denied) means s3a is there
        if _missing_s3a(str(exc)):
            raise StoreError(_s3a_advice(spark, uri)) from None
    _HAS_S3A[id(spark)] = spark


def _s3a_advice(spark: "SparkSession", uri: str) -> str:
    from seeknal_spark import jvm_versions

    version = getattr(spark, "version", "") or _pyspark_version()
    coordinate = jvm_versions.hadoop_aws_coordinate(version)
    head = (f"the Spark session cannot reach the S3 store {uri}: its JVM has no s3a:// file system "
            "(org.apache.hadoop.fs.s3a.S3AFileSystem, from the hadoop-aws jar); nothing was read or written. ")
    if id(spark) in _CREATED:
        return head + ("This session was started by seeknal_spark without S3 support: stop it and start "
                       "local_session(s3=True) (or set SEEKNAL_OFFLINE_STORE to the s3:// store before the first "
                       f"session), or start it with the conf spark.jars.packages={coordinate} "
                       f"(extra={{'spark.jars.packages': '{coordinate}'}})")
    return head + (f"Start the session with the hadoop-aws matching its Hadoop version (Spark {version}): "
                   f"spark-submit --packages {coordinate}, or the conf spark.jars.packages={coordinate} "
                   "(or spark.jars with the hadoop-aws jar and its AWS SDK bundle) "
                   "in the cluster's or notebook's Spark configuration; a Spark Connect server needs them at its start")
