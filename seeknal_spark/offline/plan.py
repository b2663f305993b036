"""Which stored rows a write replaces: one rule for both write paths.

A feature group's table holds one row per (join keys, event time). A write therefore rewrites the days it touches
that already hold data (copy-on-write limited to those days): it keeps their stored rows except those it replaces
(rows with the same keys and event time, and for an overwrite every row in [start, end]). Days without stored data
are only added to, so appending a new day never reads old days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Optional, Sequence, Tuple

from seeknal_spark.timeutil import utc_date

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

__all__ = ["DayPlan", "plan_days", "kept_rows"]


@dataclass(frozen=True)
class DayPlan:
    """The days one write reads, removes and adds."""

    rewrite: Tuple[dt.date, ...]  # stored days whose surviving rows are read and written again
    replace: Tuple[dt.date, ...]  # stored days whose live files the commit removes (rewrite + overwritten days)
    touched: Tuple[dt.date, ...]  # every day the commit changes: replace + days of the new rows

    @property
    def empty(self) -> bool:
        return not self.touched


def plan_days(mode: str, start: Optional[dt.datetime], end: Optional[dt.datetime], new_days: Iterable[dt.date],
              stored_days: Iterable[dt.date]) -> DayPlan:
    """The day plan of a write of rows on ``new_days`` to a table with data on ``stored_days``."""
    new, stored = set(new_days), set(stored_days)
    rewrite = new & stored
    replaced: set = set()
    if mode == "overwrite":
        lo = utc_date(start) if start is not None else None
        hi = utc_date(end) if end is not None else None
        replaced = {d for d in stored if (lo is None or d >= lo) and (hi is None or d <= hi)}
        # The range's first and last days may hold rows outside it: those days are rewritten, not dropped.
        rewrite |= {d for d in (lo, hi) if d is not None} & stored
    replace = rewrite | replaced
    return DayPlan(rewrite=tuple(sorted(rewrite)), replace=tuple(sorted(replace)),
                   touched=tuple(sorted(replace | new)))


def kept_rows(stored: "DataFrame", new: "DataFrame", keys: Sequence[str], ts: str, mode: str,
              start: Optional[dt.datetime], end: Optional[dt.datetime],
              seq_col: Optional[str] = None) -> "DataFrame":
    """The stored rows of the rewritten days that survive the write, with ``new``'s columns.

    ``stored`` holds the rewritten days only. Rows in [start, end] go for an overwrite; rows with the keys and
    event time of a new row go always. Tables written before rows were unique per (keys, event time) may hold
    several: with ``seq_col`` the one of the latest write is kept.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from seeknal_spark.offline.frames import in_range

    out = stored
    if mode == "overwrite":
        out = out.where(~in_range(F.col(ts), start, end))
    ids = list(keys) + [ts]
    if seq_col is not None and seq_col in out.columns:
        order = Window.partitionBy(*[F.col(c) for c in ids]).orderBy(F.col(seq_col).desc())
        out = out.withColumn("__sk_rank", F.row_number().over(order)).where(F.col("__sk_rank") == 1)
    out = out.join(new.select(*ids), on=ids, how="left_anti")
    have = set(out.columns)
    return out.select(*[F.col(f.name) if f.name in have else F.lit(None).cast(f.dataType).alias(f.name)
                        for f in new.schema.fields])  # features added by this write read as null in older rows
