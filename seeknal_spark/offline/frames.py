"""Column expressions and DataFrame checks shared by the offline writer and reader (Spark, DataFrame API only)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, List, Optional, Sequence

from seeknal_spark.errors import SchemaError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["utc_micros", "utc_date", "as_utc_timestamp", "in_range", "require_columns", "check_column_names",
           "to_spark"]

_MICROS_PER_DAY = 86_400_000_000


def utc_micros(col: "Column") -> "Column":
    """Microseconds since the epoch of a timestamp column (independent of the session time zone)."""
    from pyspark.sql import functions as F

    return F.unix_micros(col)


def utc_date(col: "Column") -> "Column":
    """The UTC calendar date of a timestamp column, whatever ``spark.sql.session.timeZone`` is.

    Exact: ``unix_seconds`` floors to whole seconds (day boundaries are whole seconds, so the last microsecond of
    a day stays in it) and every second count Spark can hold (< 2^53) is exact as a double, so ``floor(s / 86400)``
    is the exact day: the quotient is below 2^28 and a second before midnight sits 1/86400 below the next whole
    number, far more than the double's rounding step there. (Decimal division, exact too, costs about a second
    per 2M rows here; this is integer-speed.)
    """
    from pyspark.sql import functions as F

    return F.date_from_unix_date(F.floor(F.unix_seconds(col) / F.lit(86_400)).cast("int"))


def as_utc_timestamp(df: "DataFrame", column: str) -> "Column":
    """The event-time column as a TIMESTAMP: dates become midnight UTC; other types are refused."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampType

    data_type = df.schema[column].dataType
    if isinstance(data_type, TimestampType):
        return F.col(column)
    if isinstance(data_type, DateType):
        return F.timestamp_micros(F.unix_date(F.col(column)).cast("long") * F.lit(_MICROS_PER_DAY))
    raise SchemaError(
        f"event-time column {column!r} has type {data_type.simpleString()}; it must be a timestamp or a date "
        f"(cast it, e.g. F.to_timestamp(F.col({column!r})))"
    )


def in_range(col: "Column", start: Optional[dt.datetime], end: Optional[dt.datetime]) -> "Column":
    """``start <= col <= end`` on a timestamp column, compared as UTC microseconds (bounds optional)."""
    from pyspark.sql import functions as F

    from seeknal_spark.timeutil import to_micros

    cond = F.lit(True)
    if start is not None:
        cond = cond & (utc_micros(col) >= F.lit(to_micros(start)))
    if end is not None:
        cond = cond & (utc_micros(col) <= F.lit(to_micros(end)))
    return cond


def require_columns(df: "DataFrame", columns: Sequence[str], what: str, hint: str = "") -> None:
    """Raise SchemaError naming every column of ``columns`` that ``df`` lacks."""
    present = set(df.columns)
    missing: List[str] = [c for c in columns if c not in present]
    if missing:
        raise SchemaError(
            f"{what} {missing} not found in the DataFrame (columns: {df.columns}){'; ' + hint if hint else ''}"
        )


def _safe_name(name: str) -> str:
    return "".join("_" if ch in ".`" or ord(ch) < 32 or ord(ch) == 127 else ch for ch in name)


def check_column_names(df: "DataFrame", used: Sequence[str]) -> None:
    """Raise SchemaError for a column of ``used`` that is duplicated in ``df`` or whose name has a dot, a backtick
    or a control character (Spark reads ``a.b`` as a struct field and cannot resolve duplicated names)."""
    names = list(df.columns)
    for name in dict.fromkeys(used):
        count = names.count(name)
        if count > 1:
            raise SchemaError(
                f"the DataFrame has {count} columns named {name!r}; column names must be unique: drop or rename "
                f"the extra ones (e.g. after a join select right[{name!r}].alias({name + '_right'!r})). "
                "Nothing was written.")
        bad = [what for what, hit in (("a dot", "." in name), ("a backtick", "`" in name),
                                      ("a control character", any(ord(c) < 32 or ord(c) == 127 for c in name)))
               if hit]
        if bad:
            raise SchemaError(
                f"column name {name!r} contains {' and '.join(bad)}, which feature groups do not allow (Spark reads "
                f"'a.b' as field b of struct a); rename it, e.g. df.withColumnRenamed({name!r}, "
                f"{_safe_name(name)!r}). Nothing was written.")


def to_spark(data: object, spark: Optional["SparkSession"] = None) -> "DataFrame":
    """A Spark DataFrame from a Spark or pandas DataFrame; naive pandas datetimes are taken as UTC."""
    from pyspark.sql import DataFrame as ClassicFrame

    if isinstance(data, ClassicFrame) or type(data).__name__ == "DataFrame" and hasattr(data, "sparkSession"):
        return data  # type: ignore[return-value]
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        from seeknal_spark.session import get_spark

        from seeknal_spark.timeutil import pandas_utc

        frame = pandas_utc(data)
        return get_spark(spark).createDataFrame(frame)
    raise SchemaError(f"expected a Spark or pandas DataFrame, got {type(data).__name__}")
