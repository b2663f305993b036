"""Freshness: how old is the newest event time stored for a feature group (read from the Delta log only)."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass
from typing import Optional

import pyarrow as pa

from seeknal_spark.errors import StoreError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.layout import PARTITION_COL
from seeknal_spark.timeutil import to_utc

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
              now: Optional[dt.datetime] = None) -> Freshness:
    """Freshness of the table at ``table_uri``; warns with StaleFeatureWarning when older than ``threshold``.

    The newest event time comes from the per-file statistics of the newest partition (no data is read).
    """
    table = delta_log.open_table(table_uri)
    if table is None:
        raise StoreError(f"feature group {group} has never been written ({table_uri})")
    checked = to_utc(now) if now is not None else dt.datetime.now(dt.timezone.utc)
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
    age = checked - newest_time if newest_time is not None else None
    stale = age is None or age > threshold
    result = Freshness(group, newest_time, newest_day, checked, age, threshold, stale)
    if stale:
        message = (f"feature group {group} is stale: newest event time {newest_time} is {age} old "
                   f"(threshold {threshold})" if age is not None else f"feature group {group} holds no data")
        warnings.warn(message, StaleFeatureWarning, stacklevel=2)
    return result
