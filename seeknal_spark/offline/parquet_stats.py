"""Delta per-file statistics (numRecords, minValues, maxValues, nullCount) from Parquet footers.

Only the footer is read, never the data. Min/max are kept for the column types Delta readers skip files on.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, Optional

import pyarrow.parquet as pq

__all__ = ["file_stats_json"]


def _json_value(value: Any, upper: bool) -> Optional[Any]:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        ms = value.replace(microsecond=(value.microsecond // 1000) * 1000)
        if upper and ms != value:  # Delta stats have millisecond precision: round the max up, never down
            try:
                ms += dt.timedelta(milliseconds=1)
            except OverflowError:  # past 9999-12-31T23:59:59.999: no max, so readers never skip the file
                return None
        # Not strftime: its %Y does not pad years before 1000 ("999-..."), which is no valid Delta timestamp.
        return (f"{ms.year:04d}-{ms.month:02d}-{ms.day:02d}T{ms.hour:02d}:{ms.minute:02d}:{ms.second:02d}."
                f"{ms.microsecond // 1000:03d}Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool) or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, str):
        return value[:32] if not upper else None if len(value) > 32 else value
    return None


def file_stats_json(metadata: pq.FileMetaData) -> str:
    """Delta statistics JSON for one Parquet file, aggregated over its row groups."""
    num_rows = metadata.num_rows
    mins: Dict[str, Any] = {}
    maxs: Dict[str, Any] = {}
    nulls: Dict[str, int] = {}
    schema = metadata.schema
    for col in range(metadata.num_columns):
        path = schema.column(col).path
        if "." in path:  # nested fields: no statistics
            continue
        lo: Any = None
        hi: Any = None
        null_count = 0
        usable = True
        for rg in range(metadata.num_row_groups):
            stats = metadata.row_group(rg).column(col).statistics
            if stats is None or not stats.has_null_count:
                usable = False
                break
            null_count += stats.null_count
            if stats.has_min_max:
                lo = stats.min if lo is None else min(lo, stats.min)
                hi = stats.max if hi is None else max(hi, stats.max)
        if not usable:
            continue
        nulls[path] = null_count
        lo_json, hi_json = _json_value(lo, False), _json_value(hi, True)
        if lo_json is not None and hi_json is not None:
            mins[path] = lo_json
            maxs[path] = hi_json
    return json.dumps({"numRecords": num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
                      separators=(",", ":"))
