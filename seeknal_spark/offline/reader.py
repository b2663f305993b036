"""Reading a feature group's Delta table into Spark.

Portable path: delta-rs lists the live files of the snapshot (pruned by partition date), Spark reads those
Parquet files with the table schema (files written before a feature was added read it as null). Sessions with
Delta's JVM side read with ``format("delta")``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence

from seeknal_spark import storage
from seeknal_spark.errors import StoreError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.frames import in_range, utc_date
from seeknal_spark.offline.layout import PARTITION_COL, SEQ_COL, SEQ_FILE_PATTERN
from seeknal_spark.timeutil import utc_date as py_utc_date

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["read_table", "read_live_files", "scan_files"]


def read_table(spark: "SparkSession", uri: str, event_time_col: str, *, version: Optional[int] = None,
               start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
               with_seq: bool = False, min_date: Optional[dt.date] = None,
               storage_options: Optional[Mapping[str, str]] = None) -> "DataFrame":
    """The rows of the table at ``uri`` with ``start <= event_time <= end``.

    Only files whose partition date can hold such rows are read. With ``with_seq`` a ``_seq`` column holds the
    write sequence number of each row's write (later writes have larger numbers). ``min_date`` prunes partitions
    without filtering rows (used by lookups with a TTL). ``storage_options``: see :mod:`seeknal_spark.storage`
    (S3 files are read through ``s3a://`` with per-read ``fs.s3a.*`` options).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    from seeknal_spark.session import has_delta_jvm, require_s3_filesystem

    require_s3_filesystem(spark, uri, storage_options)  # before any job
    if has_delta_jvm(spark):
        return _read_delta(spark, uri, event_time_col, version, start, end, with_seq, min_date, storage_options)
    table = delta_log.open_table(uri, version, storage_options)
    if table is None:
        raise StoreError(f"no Delta table at {uri}: the feature group has never been written")
    delta_log.check_portable(table)
    schema = StructType.fromJson(json.loads(table.schema().to_json()))
    data_schema = StructType([f for f in schema.fields if f.name != PARTITION_COL])
    first = py_utc_date(start) if start else min_date
    last = py_utc_date(end) if end else None
    files = delta_log.live_files(table, first, last)
    if not files:
        df = spark.createDataFrame([], data_schema)
        if with_seq:
            df = df.withColumn(SEQ_COL, F.lit(0).cast("long"))
    elif with_seq:
        df = _read_with_seq(spark, data_schema, files, delta_log.options_of(table))
    else:
        df = _parquet(spark, data_schema, files, delta_log.options_of(table))
    df = df.withColumn(PARTITION_COL, utc_date(F.col(event_time_col)))
    if start is not None or end is not None:
        df = df.where(in_range(F.col(event_time_col), start, end))
    return df


def _read_delta(spark: "SparkSession", uri: str, event_time_col: str, version: Optional[int],
                start: Optional[dt.datetime], end: Optional[dt.datetime], with_seq: bool,
                min_date: Optional[dt.date], storage_options: Optional[Mapping[str, str]] = None) -> "DataFrame":
    """Delta's own reader (sessions with Delta's JVM): every Delta feature, every Spark/Hadoop file system."""
    from pyspark.sql import functions as F

    from seeknal_spark.offline.metadata_spark import SparkDeltaMetadata

    meta = SparkDeltaMetadata(spark, uri, storage_options)
    if meta.latest_version() is None:
        raise StoreError(f"no Delta table at {uri}: the feature group has never been written")
    meta.check_readable(version)
    df = meta.snapshot(version)
    first = py_utc_date(start) if start else min_date
    last = py_utc_date(end) if end else None
    if first is not None:
        df = df.where(F.col(PARTITION_COL) >= F.lit(first))
    if last is not None:
        df = df.where(F.col(PARTITION_COL) <= F.lit(last))
    if start is not None or end is not None:
        df = df.where(in_range(F.col(event_time_col), start, end))
    extra = []
    if with_seq:  # files written by the portable path carry their write's number in their names (others: 0)
        seq = F.regexp_extract(F.col("_metadata.file_name"), SEQ_FILE_PATTERN, 1)
        df = df.withColumn(SEQ_COL, F.when(seq == "", F.lit(0)).otherwise(seq).cast("long"))
        extra = [SEQ_COL]
    # The portable reader's column order: data columns in table order, then ``_seq``, then the partition date.
    return df.select(*[c for c in df.columns if c not in (PARTITION_COL, SEQ_COL)], *extra, PARTITION_COL)


# Up to this many distinct writes, files are read as one scan per write with the sequence number as a literal
# (a plain vectorised scan); beyond it, the number is parsed from each row's file name.
MAX_SEQ_SCANS = 32


# Spark lists more than this many paths of one scan with a distributed job (the session's
# spark.sql.sources.parallelPartitionDiscovery.threshold, default 32), which costs a local session ~0.3-0.5 s.
_LOCAL_PATHS_PER_SCAN = 32


def scan_files(reader: "DataFrameReader", schema: "StructType", uris: Sequence[str],
               seq_from_names: bool = False) -> "DataFrame":
    """The Parquet files ``uris`` (Hadoop URIs) read with ``reader`` and ``schema``.

    Local files are read as a union of scans of at most 32 paths each: their file statuses cost microseconds, so
    listing them in the driver beats a listing job. Remote files keep one scan, whose listing job lists them in
    parallel. ``seq_from_names``: add the write sequence number parsed from each row's file name (``_metadata``
    is a column of a scan, so it is read before the union)."""
    from pyspark.sql import functions as F

    step = _LOCAL_PATHS_PER_SCAN if all(storage.is_local(u) for u in uris) else max(1, len(uris))
    scans = [reader.schema(schema).parquet(*uris[i:i + step]) for i in range(0, len(uris), step)]
    if seq_from_names:
        seq = F.regexp_extract(F.col("_metadata.file_name"), SEQ_FILE_PATTERN, 1)
        scans = [scan.withColumn(SEQ_COL, F.when(seq == "", F.lit(0)).otherwise(seq).cast("long")) for scan in scans]
    return _union(scans)


def _union(frames: Sequence["DataFrame"]) -> "DataFrame":
    """The rows of every frame (same columns, matched by name)."""
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def _parquet(spark: "SparkSession", schema: "StructType", files: List[delta_log.LiveFile],
             options: Optional[Mapping[str, str]], seq_from_names: bool = False) -> "DataFrame":
    """Spark's Parquet scan of ``files`` (``s3a://`` with per-read S3 options for S3 tables)."""
    reader = spark.read.options(**storage.hadoop_options(options)) if storage.is_s3(files[0].uri) else spark.read
    return scan_files(reader, schema, [storage.hadoop_uri(f.uri) for f in files], seq_from_names)


def _read_with_seq(spark: "SparkSession", schema: "StructType", files: List[delta_log.LiveFile],
                   options: Optional[Mapping[str, str]] = None) -> "DataFrame":
    from pyspark.sql import functions as F

    by_seq: Dict[int, List[delta_log.LiveFile]] = {}
    for f in files:
        by_seq.setdefault(f.seq if f.seq is not None else 0, []).append(f)
    if len(by_seq) <= MAX_SEQ_SCANS:
        frames = [_parquet(spark, schema, group, options).withColumn(SEQ_COL, F.lit(seq).cast("long"))
                  for seq, group in sorted(by_seq.items())]
        return _union(frames)
    return _parquet(spark, schema, files, options, seq_from_names=True)


def read_live_files(spark: "SparkSession", table: "delta_log.DeltaTable", files: List[delta_log.LiveFile],
                    with_seq: bool = False) -> "DataFrame":
    """The rows of ``files`` (live files of ``table``'s loaded snapshot) with the table's data schema."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    schema = StructType.fromJson(json.loads(table.schema().to_json()))
    data_schema = StructType([f for f in schema.fields if f.name != PARTITION_COL])
    if not files:
        df = spark.createDataFrame([], data_schema)
        return df.withColumn(SEQ_COL, F.lit(0).cast("long")) if with_seq else df
    if with_seq:
        return _read_with_seq(spark, data_schema, files, delta_log.options_of(table))
    return _parquet(spark, data_schema, files, delta_log.options_of(table))
