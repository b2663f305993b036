"""The Delta-Spark engine of :class:`~seeknal_spark.offline.metadata.TableMetadata` (sessions with Delta's JVM).

Everything goes through Delta Lake's own Python API (``delta.tables.DeltaTable``) and ``spark.read.format("delta")``,
so all IO uses Spark/Hadoop file systems (``dbfs:/``, ``abfss://``, ``s3a://``...) and every Delta feature the
session's Delta version supports (deletion vectors, column mapping, v2 checkpoints) is honoured. No ``_jvm``.

S3 tables (``s3://`` as users write them) are read through ``s3a://`` (hadoop-aws in the session) with the store's
connection settings passed per operation: as ``fs.s3a.*`` options of ``spark.read`` and as the ``hadoopConf`` of
``DeltaTable.forPath`` (:func:`seeknal_spark.storage.hadoop_options`); the session is never reconfigured. A missing
bucket or denied access is a :class:`~seeknal_spark.errors.StoreError` naming the bucket.

On Spark Connect sessions ``DeltaTable.forPath`` needs Delta Connect on the server (Databricks has it; a plain
Spark Connect server needs ``io.delta:delta-connect-server`` and its plugin settings).

Run ids: Delta's Python API does not expose the ``txn`` actions of a snapshot. :meth:`SparkDeltaMetadata.run_version`
reads the run id that both write paths record in every commit's ``seeknal.write`` (``run_id``), from the table
history. History only reaches back ``delta.logRetentionDuration`` (30 days by default); for older runs the native
writer's ``txnAppId``/``txnVersion`` still make Delta itself skip a repeated run (and the writer reports it skipped).
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from seeknal_spark import storage
from seeknal_spark.errors import StoreError
from seeknal_spark.offline.layout import PARTITION_COL
from seeknal_spark.offline.metadata import CommitRecord, TableMetadata
from seeknal_spark.offline.state import STATE_KEY, GroupState

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkDeltaMetadata", "session_or_none"]

_DATE_IN_PATH = re.compile(rf"/{PARTITION_COL}=(\d{{4}}-\d{{2}}-\d{{2}})/")
_RUN_PREFIX = "seeknal-run:"


def session_or_none() -> "Optional[SparkSession]":
    """The active Spark session, or None. Never imports pyspark: a process that has not imported it (serving,
    CLI readers) has no session, and reads metadata with delta-rs."""
    if "pyspark" not in sys.modules:
        return None
    try:
        from seeknal_spark.session import active_session

        return active_session()
    except ImportError:
        return None


class SparkDeltaMetadata(TableMetadata):
    """Table metadata read with Delta Lake's Spark API."""

    def __init__(self, spark: "SparkSession", uri: str, storage_options: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(uri)
        self.spark = spark
        self.storage_options = storage.as_options(storage_options)
        #: the path Spark/Hadoop opens (``s3a://`` for S3) and the per-operation options that reach it
        self.path = storage.hadoop_uri(uri)
        self.options: Dict[str, str] = storage.hadoop_options(self.storage_options) if storage.is_s3(uri) else {}

    # -- helpers -----------------------------------------------------------------------------------------------
    def _table(self) -> Optional[Any]:
        from delta.tables import DeltaTable

        try:
            if not self.options:
                if not DeltaTable.isDeltaTable(self.spark, self.path):
                    return None
                return DeltaTable.forPath(self.spark, self.path)
            # ``isDeltaTable`` takes no per-operation options: ``forPath`` with them; "not a Delta table" is None.
            return DeltaTable.forPath(self.spark, self.path, dict(self.options))
        except Exception as exc:  # noqa: BLE001 - classified below
            if self.options and _not_a_delta_table(exc):
                return None
            if storage.is_s3(self.uri):  # a missing bucket, denied access: a StoreError naming the bucket
                raise storage.store_error(exc, self.uri, f"open the Delta table {self.uri}",
                                          self.storage_options) from exc
            raise

    def _history(self, limit: Optional[int] = None) -> "Optional[DataFrame]":
        from pyspark.sql import functions as F

        table = self._table()
        if table is None:
            return None
        history = table.history(limit) if limit is not None else table.history()
        # Milliseconds as a number: a collected TIMESTAMP would depend on the Python process' time zone.
        return history.select("version", F.unix_millis(F.col("timestamp")).alias("timestamp"), "operation",
                              "userMetadata")

    def snapshot(self, version: Optional[int] = None) -> "DataFrame":
        """The table's rows at ``version`` (latest if None), read by Delta's own reader."""
        reader = self.spark.read.format("delta").options(**self.options)
        if version is not None:
            reader = reader.option("versionAsOf", int(version))
        return reader.load(self.path)

    # -- TableMetadata -----------------------------------------------------------------------------------------
    def latest_version(self) -> Optional[int]:
        history = self._history(1)
        if history is None:
            return None
        row = history.first()
        return None if row is None else int(row["version"])

    def commits(self, limit: Optional[int] = None) -> List[CommitRecord]:
        history = self._history(limit)
        if history is None:
            return []
        rows = history.orderBy("version", ascending=False).collect()
        return [CommitRecord.from_entry(row.asDict()) for row in rows]

    def state(self, version: Optional[int] = None) -> Optional[GroupState]:
        from pyspark.sql import functions as F

        history = self._history()
        if history is None:
            return None
        if version is not None:
            self.check_readable(version)
            history = history.where(F.col("version") <= F.lit(int(version)))
        # Only commits whose metadata can hold a state; the newest of them decides.
        rows = (history.where(F.col("userMetadata").contains(STATE_KEY))
                .orderBy(F.col("version").desc()).limit(1).collect())
        for row in rows:
            record = CommitRecord.from_entry(row.asDict())
            if record.state is not None:
                return record.state
        return self._state_from_properties()

    def _state_from_properties(self) -> Optional[GroupState]:
        """Tables written by seeknal_spark 0.1 kept the state in custom commit-info keys (not in Spark's history);
        their ``seeknal.state`` table property mirrors it."""
        table = self._table()
        if table is None:
            return None
        row = table.detail().select("properties").first()
        props: Dict[str, str] = dict(row["properties"] or {}) if row is not None else {}
        raw = props.get(STATE_KEY)
        return GroupState.from_json(raw) if raw else None

    def dates(self, version: Optional[int] = None) -> List[dt.date]:
        """Partition dates holding live files, from the snapshot's file list (Delta's log; no data is read).

        Tables whose file paths do not carry the partition directory (column mapping with random prefixes) are
        answered with a scan of the partition column instead.
        """
        if version is None and self.latest_version() is None:
            return []
        snapshot = self.snapshot(version)
        files = snapshot.inputFiles()
        found = set()
        for path in files:
            match = _DATE_IN_PATH.search(path)
            if match is None:
                return self._scan_dates(snapshot)
            found.add(dt.date.fromisoformat(match.group(1)))
        return sorted(found)

    @staticmethod
    def _scan_dates(snapshot: "DataFrame") -> List[dt.date]:
        return sorted(r[0] for r in snapshot.select(PARTITION_COL).distinct().collect() if r[0] is not None)

    def run_version(self, app_id: str) -> Optional[int]:
        """0 when a commit in the table's history records the run of ``app_id``, else None (see module doc)."""
        from pyspark.sql import functions as F

        if not app_id.startswith(_RUN_PREFIX):
            return None
        run_id = app_id[len(_RUN_PREFIX):]
        history = self._history()
        if history is None:
            return None
        # A cheap text filter first; the decoded metadata decides.
        candidates = history.where(F.col("userMetadata").contains(run_id)).collect()
        for row in candidates:
            record = CommitRecord.from_entry(row.asDict())
            if record.write is not None and record.write.get("run_id") == run_id:
                return 0
        return None

    def check_readable(self, version: Optional[int] = None) -> None:
        """Delta's JVM reader honours every feature the session's Delta version knows: nothing to refuse."""
        if version is not None:
            latest = self.latest_version()
            if latest is None or version > latest or version < 0:
                raise StoreError(f"Delta table {self.uri} has no version {version} (latest is {latest})")


def _not_a_delta_table(exc: BaseException) -> bool:
    """Delta's "not a Delta table" error (``DELTA_MISSING_DELTA_TABLE``) of ``forPath`` on a path without a log."""
    text = str(exc)
    return "DELTA_MISSING_DELTA_TABLE" in text or "is not a Delta table" in text
