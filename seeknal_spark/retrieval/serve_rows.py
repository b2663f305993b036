"""Online publishing on sessions with Delta's JVM side: each source's rows computed by Spark, handed over as Arrow.

The online export (``serving/export.py``) reads a snapshot by listing its live Parquet files with delta-rs and
reading them with DuckDB. On a Delta-JVM session (Databricks, ``--packages delta``) that is wrong: ``dbfs:/`` and
cloud paths must go through Spark/Hadoop file systems, and DuckDB reading the raw files of a table with deletion
vectors would serve deleted rows again. There ``HistoricalFeatures.serve`` gives every source a :class:`SparkRows`
provider: Delta's own reader (``read_table``: ``format("delta")`` + ``versionAsOf``) reads the snapshot, Spark keeps
the export's rows (event time in ``[lower, upper]``, keys not null, the latest row per key) and the driver collects
them, one row per key, as an Arrow table. The export builds the online file from it exactly as from files.
S3 tables are read through ``s3a://`` with the source's storage options passed per read (never set on the session).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

from seeknal_spark.offline.layout import PARTITION_COL, SEQ_COL
from seeknal_spark.retrieval.asof import qcol
from seeknal_spark.offline.provided import ProvidedRows, ProvidedSnapshot, SnapshotSource
from seeknal_spark.timeutil import utc_date

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkRows", "collect_arrow", "spark_rows_provider"]

_RANK = "__seeknal_rank"
_DATE_DIR = re.compile(rf"(?:^|/){PARTITION_COL}=(\d{{4}}-\d{{2}}-\d{{2}})/")


def spark_rows_provider(spark: Optional["SparkSession"]) -> Optional["SparkRows"]:
    """A :class:`SparkRows` for ``spark`` when it has Delta's JVM side, else None (the export reads files)."""
    if spark is None:
        return None
    from seeknal_spark.session import has_delta_jvm

    return SparkRows(spark) if has_delta_jvm(spark) else None


class SparkRows:
    """Rows provider (``seeknal_spark.offline.provided.RowsProvider``) reading with Delta's Spark reader."""

    def __init__(self, spark: "SparkSession") -> None:
        self.spark = spark

    def snapshot(self, source: SnapshotSource) -> Optional[ProvidedSnapshot]:
        """The version to read (pinned, else the latest) and the state recorded at it; None when no table."""
        from seeknal_spark.offline.metadata_spark import SparkDeltaMetadata

        meta = SparkDeltaMetadata(self.spark, source.table_uri, source.storage_options)
        latest = meta.latest_version()
        if latest is None:
            return None
        version = latest if source.delta_version is None else int(source.delta_version)
        return ProvidedSnapshot(version, meta.state(version))  # state() refuses a version the table lacks

    def latest_rows(self, source: SnapshotSource, delta_version: int, columns: Sequence[str],
                    lower: Optional[dt.datetime], upper: dt.datetime) -> ProvidedRows:
        """Per key, the row with the largest event time in ``[lower, upper]`` at ``delta_version`` (as Arrow).

        Tables written by this version hold one row per (keys, event time); on older tables a tie goes to the later
        write, as in the export (the write number in the data file name).
        """
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from seeknal_spark.offline.reader import read_table

        keys, ts = list(source.join_keys), source.event_time_col
        df = read_table(self.spark, source.table_uri, ts, version=delta_version, start=lower, end=upper,
                        with_seq=True, storage_options=source.storage_options)
        present = set(df.columns)
        # a missing key or time column is left out here: the export names it (SchemaError)
        wanted = [c for c in dict.fromkeys([*keys, ts, *columns]) if c in present]
        for key in keys:
            if key in present:
                df = df.where(qcol(key).isNotNull())
        if all(k in present for k in keys) and ts in present:
            order = Window.partitionBy(*[qcol(k) for k in keys]).orderBy(qcol(ts).desc(), F.col(SEQ_COL).desc())
            df = df.withColumn(_RANK, F.row_number().over(order)).where(F.col(_RANK) == 1)
        rows = df.select(*[qcol(c) for c in wanted])
        return ProvidedRows(collect_arrow(rows), _files_in_range(rows, lower, upper))


def _files_in_range(df: "DataFrame", lower: Optional[dt.datetime], upper: dt.datetime) -> List[str]:
    """The snapshot's data files whose partition date can hold rows in ``[lower, upper]`` (the metadata's count;
    files whose path names no date are all counted)."""
    first = utc_date(lower) if lower is not None else None
    last = utc_date(upper)
    out = []
    for path in df.inputFiles():
        match = _DATE_DIR.search(path)
        day = dt.date.fromisoformat(match.group(1)) if match else None
        if day is None or ((first is None or day >= first) and day <= last):
            out.append(path)
    return out


def collect_arrow(df: "DataFrame", *, via_pandas: Optional[bool] = None) -> Any:
    """The rows of ``df`` as a ``pyarrow.Table`` with the Arrow types of its Spark schema.

    ``DataFrame.toArrow()`` where it exists (pyspark >= 4.0), else (``via_pandas``) ``toPandas()`` converted with
    the Arrow schema Spark derives: top-level LONG and TIMESTAMP columns travel as text (microseconds since the
    epoch for timestamps), since pandas turns a nullable integer column into float64 (inexact beyond 2^53) and a
    timestamp into a naive time in the session time zone; they are cast back exactly in Arrow.
    """
    if via_pandas is None:
        via_pandas = not hasattr(df, "toArrow")
    if not via_pandas:
        return df.toArrow()
    import pyarrow as pa
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import LongType, TimestampType

    fields = df.schema.fields
    as_text = {f.name: pa.int64() for f in fields if isinstance(f.dataType, LongType)}
    as_text.update({f.name: pa.timestamp("us", tz="UTC") for f in fields if isinstance(f.dataType, TimestampType)})
    wire = df.select(*[
        (F.unix_micros(qcol(f.name)) if isinstance(f.dataType, TimestampType) else qcol(f.name)).cast("string")
        .alias(f.name) if f.name in as_text else qcol(f.name) for f in fields])
    table = pa.Table.from_pandas(wire.toPandas(), schema=to_arrow_schema(wire.schema), preserve_index=False)
    for i, f in enumerate(fields):
        if f.name in as_text:
            target = as_text[f.name]
            ints = table.column(i).cast(pa.int64())
            table = table.set_column(i, pa.field(f.name, target, f.nullable), ints.cast(target))
    return table
