"""Reading a feature group's Delta table into Spark.

Portable path: delta-rs lists the live files of the snapshot (pruned by partition date), Spark reads those
Parquet files with the table schema (files written before a feature was added read it as null). Sessions with
Delta's JVM side read with ``format("delta")``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Optional

from seeknal_spark.errors import StoreError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.frames import in_range, utc_date
from seeknal_spark.offline.layout import PARTITION_COL, SEQ_COL, SEQ_FILE_PATTERN
from seeknal_spark.timeutil import utc_date as py_utc_date

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["read_table"]


def read_table(spark: "SparkSession", uri: str, event_time_col: str, *, version: Optional[int] = None,
               start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
               with_seq: bool = False, min_date: Optional[dt.date] = None) -> "DataFrame":
    """The rows of the table at ``uri`` with ``start <= event_time <= end``.

    Only files whose partition date can hold such rows are read. With ``with_seq`` a ``_seq`` column holds the
    write sequence number of each row's write (later writes have larger numbers). ``min_date`` prunes partitions
    without filtering rows (used by lookups with a TTL).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    table = delta_log.open_table(uri, version)
    if table is None:
        raise StoreError(f"no Delta table at {uri}: the feature group has never been written")
    delta_log.check_portable(table)
    schema = StructType.fromJson(json.loads(table.schema().to_json()))
    data_schema = StructType([f for f in schema.fields if f.name != PARTITION_COL])
    first = py_utc_date(start) if start else min_date
    last = py_utc_date(end) if end else None
    files = delta_log.live_files(table, first, last)
    if files:
        df = spark.read.schema(data_schema).parquet(*[f.uri for f in files])
    else:
        df = spark.createDataFrame([], data_schema)
    if with_seq:
        seq = F.regexp_extract(F.col("_metadata.file_name"), SEQ_FILE_PATTERN, 1) if files else F.lit("")
        df = df.withColumn(SEQ_COL, F.when(seq == "", F.lit(0)).otherwise(seq).cast("long"))
    df = df.withColumn(PARTITION_COL, utc_date(F.col(event_time_col)))
    if start is not None or end is not None:
        df = df.where(in_range(F.col(event_time_col), start, end))
    return df
