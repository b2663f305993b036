"""Writing one feature-group batch as a single Delta commit: the request, the result and the rules both paths share.

Two paths, one table format and one set of guarantees (:mod:`seeknal_spark.offline.plan` decides which stored
rows a write replaces):

- portable (:mod:`~seeknal_spark.offline.write_portable`, no Delta JVM, e.g. plain ``pip install pyspark``):
  Spark stages Parquet files, the checks run on them, the driver commits them with delta-rs with optimistic
  concurrency;
- native (:mod:`~seeknal_spark.offline.write_native`, Delta's JVM present, e.g. Databricks): Spark's own
  ``format("delta")`` writer, Delta's conflict checker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence, Tuple

from seeknal_spark.errors import DataError
from seeknal_spark.offline.state import GroupState
from seeknal_spark.storage import StorageOptions

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame

__all__ = ["WriteRequest", "WriteResult", "StagedCheck", "write", "run_app_id", "check_keys", "key_problem", "row_key"]

# A check receives the staged rows of this write (keys, event time, features) and may raise to abort the write.
# What it returns (a JSON-serialisable dict) is recorded in the commit metadata under its name.
StagedCheck = Callable[["DataFrame"], Optional[Dict[str, object]]]

# The group's state after this write, given the state it is committed on (None for a new table). Raises
# SchemaError when the write does not fit that state; called again when a concurrent commit changed the state.
Evolve = Callable[[Optional[GroupState]], GroupState]


@dataclass
class WriteRequest:
    """Everything one write needs. ``df`` holds exactly keys, event time (TIMESTAMP) and features, in order."""

    uri: str
    df: "DataFrame"
    evolve: Evolve
    mode: str
    start: Optional[dt.datetime] = None
    end: Optional[dt.datetime] = None
    run_id: Optional[str] = None
    checks: Dict[str, StagedCheck] = field(default_factory=dict)
    label: Optional[str] = None
    storage_options: StorageOptions = field(default_factory=StorageOptions, repr=False)  # see seeknal_spark.storage


@dataclass(frozen=True)
class WriteResult:
    """What a write committed."""

    version: Optional[int]
    rows: int
    partitions: Tuple[dt.date, ...]
    schema_version: int
    skipped: bool = False
    checks: Dict[str, object] = field(default_factory=dict)
    retries: int = 0


def run_app_id(run_id: str) -> str:
    """Delta ``txn`` application id that marks a run as written (idempotent retries)."""
    return f"seeknal-run:{run_id}"


def iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def check_keys(staged: "DataFrame", keys: Sequence[str], ts: str) -> None:
    """Refuse null join keys / event times and duplicate (keys, event time) rows, showing one example."""
    from pyspark.sql import functions as F

    from pyspark.sql.types import DoubleType, FloatType

    cols = list(keys) + [ts]
    any_null = F.lit(False)
    floats = {f.name for f in staged.schema.fields if isinstance(f.dataType, (FloatType, DoubleType))}
    for c in cols:
        any_null = any_null | F.col(c).isNull() | (F.isnan(F.col(c)) if c in floats else F.lit(False))
    bad = (staged.groupBy(*cols).agg(F.count(F.lit(1)).alias("_n"))
           .where(any_null | (F.col("_n") > 1)).limit(1).collect())
    if not bad:
        return
    row = bad[0].asDict()
    for c in cols:
        if row[c] is None:
            what = "event-time column" if c == ts else "join key"
            raise DataError(f"{what} {c!r} is null in at least one row (e.g. {row_key(row, cols)}); "
                            "drop or fill those rows before writing. Nothing was written.")
        if c in floats and row[c] != row[c]:  # NaN: training sets would join it, online lookups never find it
            raise DataError(f"join key {c!r} is NaN in at least one row (e.g. {row_key(row, cols)}); NaN never "
                            "equals itself, so no lookup could find it: drop or fix those rows before writing. "
                            "Nothing was written.")
    raise DataError(f"duplicate rows for keys and event time {row_key(row, cols)} ({row['_n']} rows) in this write; "
                    "a feature group holds one row per (join keys, event time): aggregate or deduplicate first. "
                    "Nothing was written.")


def key_problem(df: "DataFrame", keys: Sequence[str], ts: str, day_col: str) -> "Column":
    """True for a row that :func:`check_keys` refuses: a null (or NaN) join key or event time, or the same keys and
    event time as the row before it (the rows of one ``day_col`` value and keys, ordered by event time).

    ``day_col`` is a function of ``ts``, so duplicates share it: on rows already hash-partitioned by ``day_col``
    the window needs no exchange of its own, only a sort within each partition by (day, keys, event time), which
    also serves a write partitioned by ``day_col``. Flags, not errors: count them (e.g. with ``observe``) and call
    :func:`check_keys` for the message when any is set.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    floats = {f.name for f in df.schema.fields if isinstance(f.dataType, (FloatType, DoubleType))}
    bad = F.lit(False)
    for c in list(keys) + [ts]:
        bad = bad | F.col(c).isNull() | (F.isnan(F.col(c)) if c in floats else F.lit(False))
    order = Window.partitionBy(F.col(day_col), *[F.col(k) for k in keys]).orderBy(F.col(ts))
    return bad | F.coalesce(F.lag(F.col(ts)).over(order) == F.col(ts), F.lit(False))


def row_key(row: Dict[str, object], cols: Sequence[str]) -> str:
    return "{" + ", ".join(f"{c}={row[c]!r}" for c in cols) + "}"


def write(req: WriteRequest) -> WriteResult:
    """Write ``req`` with Spark's Delta writer on sessions with Delta's JVM side, else the portable path."""
    from seeknal_spark.session import has_delta_jvm, require_s3_filesystem

    require_s3_filesystem(req.df.sparkSession, req.uri, req.storage_options)  # before any job or commit
    if has_delta_jvm(req.df.sparkSession):
        from seeknal_spark.offline.write_native import write_native

        return write_native(req)
    from seeknal_spark.offline.write_portable import write_portable

    return write_portable(req)
