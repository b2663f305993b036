"""Freshness: how old is the newest event time stored for a feature group (read from the Delta log only)."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Optional, Tuple

import pyarrow as pa

from seeknal_spark.errors import StoreError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.layout import PARTITION_COL
from seeknal_spark.timeutil import to_utc

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = ["Freshness", "freshness", "StaleFeatureWarning"]

log = logging.getLogger(__name__)


class StaleFeatureWarning(UserWarning):
    """The newest data of a feature group is older than the freshness threshold."""


@dataclass(frozen=True)
class Freshness:
    """Newest stored event time, its age at ``checked_at`` and whether that age passes the threshold."""

    group: str
    newest_event_time: Optional[dt.datetime]
    newest_watermark: Optional[dt.date]
    checked_at: dt.datetime
    age: Optional[dt.timedelta]
    threshold: dt.timedelta
    stale: bool


def freshness(table_uri: str, group: str, event_time_col: str, threshold: dt.timedelta = dt.timedelta(days=1),
              now: Optional[dt.datetime] = None, spark: "Optional[SparkSession]" = None,
              storage_options: Optional[Mapping[str, str]] = None) -> Freshness:
    """Freshness of the table at ``table_uri``; warns with StaleFeatureWarning when older than ``threshold``.

    The newest event time comes from the per-file statistics of the newest partition (no data is read); on a
    session with Delta's JVM side, from Delta's reader over that one partition.
    """
    from seeknal_spark.offline.metadata_spark import session_or_none
    from seeknal_spark.session import has_delta_jvm

    checked = to_utc(now) if now is not None else dt.datetime.now(dt.timezone.utc)
    session = spark if spark is not None else session_or_none()
    if session is not None and has_delta_jvm(session):
        newest_time, newest_day = _newest_spark(session, table_uri, group, event_time_col, storage_options)
        return _result(group, newest_time, newest_day, checked, threshold)
    table = delta_log.open_table(table_uri, storage_options=storage_options)
    if table is None:
        raise StoreError(f"feature group {group} has never been written ({table_uri})")
    actions = pa.table(table.get_add_actions(flatten=True))
    newest_time: Optional[dt.datetime] = None
    newest_day: Optional[dt.date] = None
    if actions.num_rows:
        days = actions.column(f"partition.{PARTITION_COL}").to_pylist()
        newest_day = max(d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in days)
        column = f"max.{event_time_col}"
        if column in actions.column_names:
            times = [t for t in actions.column(column).to_pylist() if t is not None]
            if times:
                newest_time = max(to_utc(t) for t in times)
        if newest_time is None:
            newest_time = dt.datetime.combine(newest_day, dt.time(23, 59, 59), dt.timezone.utc)
    return _result(group, newest_time, newest_day, checked, threshold)


def _newest_spark(spark: "SparkSession", table_uri: str, group: str, event_time_col: str,
                  storage_options: Optional[Mapping[str, str]] = None,
                  ) -> Tuple[Optional[dt.datetime], Optional[dt.date]]:
    """Newest event time and day through Delta's Spark API: the day from the log, the time from that day's rows."""
    from pyspark.sql import functions as F

    from seeknal_spark.offline.metadata_spark import SparkDeltaMetadata

    meta = SparkDeltaMetadata(spark, table_uri, storage_options)
    if meta.latest_version() is None:
        raise StoreError(f"feature group {group} has never been written ({table_uri})")
    days = meta.dates()
    if not days:
        return None, None
    row = (meta.snapshot().where(F.col(PARTITION_COL) == F.lit(days[-1]))
           .agg(F.max(F.unix_micros(F.col(event_time_col))).alias("m")).first())
    micros = row["m"] if row is not None else None
    newest = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=int(micros))
              if micros is not None else dt.datetime.combine(days[-1], dt.time(23, 59, 59), dt.timezone.utc))
    return newest, days[-1]


def _result(group: str, newest_time: Optional[dt.datetime], newest_day: Optional[dt.date], checked: dt.datetime,
            threshold: dt.timedelta) -> Freshness:
    age = checked - newest_time if newest_time is not None else None
    stale = age is None or age > threshold
    result = Freshness(group, newest_time, newest_day, checked, age, threshold, stale)
    if stale:
        message = (f"feature group {group} is stale: newest event time {newest_time} is {age} old "
                   f"(threshold {threshold})" if age is not None else f"feature group {group} holds no data")
        warnings.warn(message, StaleFeatureWarning, stacklevel=3)
    return result
