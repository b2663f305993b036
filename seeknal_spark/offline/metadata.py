"""One interface to a feature group's Delta table metadata, with one engine per kind of session.

``DeltaRsMetadata`` (delta-rs, no JVM) serves the portable path and every Spark-free reader (serving, CLI);
``SparkDeltaMetadata`` (Delta Lake's own Spark API) serves sessions with Delta's JVM side, where all IO must go
through Spark/Hadoop file systems (``dbfs:/``, deletion vectors). :func:`table_metadata` chooses by session.

Both engines read the same things the same way: the group state and write info recorded in each commit's
``userMetadata`` (:func:`seeknal_spark.offline.state.decode_commit_metadata`), the partition dates holding live
data, and which run ids were committed.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from seeknal_spark.offline.state import GroupState, decode_commit_metadata

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = ["CommitRecord", "TableMetadata", "table_metadata"]


@dataclass(frozen=True)
class CommitRecord:
    """One commit of a feature group's table, as every engine reports it."""

    version: int
    timestamp_ms: int
    operation: str
    state: Optional[GroupState]
    write: Optional[Dict[str, Any]]  # the commit's ``seeknal.write`` (None for commits of other writers)

    @classmethod
    def from_entry(cls, entry: Dict[str, Any]) -> "CommitRecord":
        """A record from a commit-info dict (``version``, ``timestamp``, ``operation``, ``userMetadata``...)."""
        state, write = decode_commit_metadata(entry)
        return cls(version=int(entry.get("version", -1)), timestamp_ms=int(entry.get("timestamp") or 0),
                   operation=str(entry.get("operation") or ""), state=state, write=write)

    @property
    def committed_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.timezone.utc)


class TableMetadata(ABC):
    """Read-only view of a feature group's Delta table log (any version)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @abstractmethod
    def latest_version(self) -> Optional[int]:
        """The newest Delta version, or None when no table exists at ``uri``."""

    @abstractmethod
    def commits(self, limit: Optional[int] = None) -> List[CommitRecord]:
        """Commit records, newest first (``limit`` newest only)."""

    @abstractmethod
    def dates(self, version: Optional[int] = None) -> List[dt.date]:
        """Sorted partition dates (``_event_date``) that hold live data files at ``version`` (latest if None)."""

    @abstractmethod
    def run_version(self, app_id: str) -> Optional[int]:
        """The idempotent-write version recorded for ``app_id`` (Delta ``txn`` action), or None."""

    @abstractmethod
    def check_readable(self, version: Optional[int] = None) -> None:
        """Raise UnsupportedTableError when this engine cannot read the table's data correctly."""

    def row_count(self, version: Optional[int] = None) -> Optional[int]:
        """Rows the table holds at ``version`` from the log's file statistics, or None when unknown."""
        return None

    def state(self, version: Optional[int] = None) -> Optional[GroupState]:
        """The group state as of ``version`` (latest if None): the newest commit at or below it that has one."""
        for record in self.commits():
            if version is not None and record.version > version:
                continue
            if record.state is not None:
                return record.state
        return None


def table_metadata(uri: str, spark: Optional["SparkSession"] = None,
                   storage_options: Optional[Dict[str, str]] = None) -> TableMetadata:
    """The metadata engine for ``uri``: Delta's Spark API on sessions with Delta's JVM side, else delta-rs."""
    if spark is not None:
        from seeknal_spark.session import has_delta_jvm

        if has_delta_jvm(spark):
            from seeknal_spark.offline.metadata_spark import SparkDeltaMetadata

            return SparkDeltaMetadata(spark, uri, storage_options)
    from seeknal_spark.offline.metadata_deltars import DeltaRsMetadata

    return DeltaRsMetadata(uri, storage_options)
