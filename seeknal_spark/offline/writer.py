"""Writing one feature-group batch as a single Delta commit.

Portable path (no Delta JVM, e.g. plain ``pip install pyspark``): Spark writes Parquet files in parallel into a
staging directory of the table; the checks run on the staged files; the driver moves them into the table's
partition directories, reads their footers for statistics and commits them with delta-rs in one transaction.
Until that commit nothing is visible; on failure the staged and moved files are deleted.

Native path (Delta JVM present, e.g. Databricks): Spark's own ``format("delta")`` writer with ``replaceWhere``,
``userMetadata``, ``mergeSchema`` and ``txnAppId``/``txnVersion``; see :func:`native_write_options`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Set, Tuple

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake.transaction import AddAction

from seeknal_spark.errors import DataError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.cleanup import WriterHeartbeat
from seeknal_spark.offline.frames import in_range, utc_date
from seeknal_spark.offline.layout import PARTITION_COL, SEQ_COL, STAGING_DIR, data_file_name
from seeknal_spark.offline.parquet_stats import file_stats_json
from seeknal_spark.offline.reader import read_table
from seeknal_spark.offline.state import STATE_KEY, WRITE_KEY, GroupState, WriteInfo
from seeknal_spark.offline.write_stats import stat_columns, stats_from_metrics
from seeknal_spark.timeutil import to_utc, utc_date as py_utc_date

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

__all__ = ["WriteRequest", "WriteResult", "write_portable", "native_write_options", "run_app_id"]

log = logging.getLogger(__name__)

MAX_RECORDS_PER_FILE = 2_000_000

# A check receives the staged rows of this write (keys, event time, features) and may raise to abort the write.
# What it returns (a JSON-serialisable dict) is recorded in the commit metadata under its name.
StagedCheck = Callable[["DataFrame"], Optional[Dict[str, object]]]


@dataclass
class WriteRequest:
    """Everything one write needs. ``df`` holds exactly keys, event time (TIMESTAMP) and features, in order."""

    uri: str
    df: "DataFrame"
    before: Optional[GroupState]
    after: GroupState
    mode: str
    start: Optional[dt.datetime] = None
    end: Optional[dt.datetime] = None
    run_id: Optional[str] = None
    checks: Dict[str, StagedCheck] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    """What a write committed."""

    version: Optional[int]
    rows: int
    partitions: Tuple[dt.date, ...]
    schema_version: int
    skipped: bool = False
    checks: Dict[str, object] = field(default_factory=dict)


def run_app_id(run_id: str) -> str:
    """Delta ``txn`` application id that marks a run as written (idempotent retries)."""
    return f"seeknal-run:{run_id}"


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _partition_filters(req: WriteRequest, schema_changed: bool) -> Tuple[str, Optional[List[Tuple[str, str, object]]]]:
    """Delta write mode and partition filters: which live files the commit removes."""
    if req.mode == "overwrite":
        if req.start is None and req.end is None:
            return "overwrite", None
        filters: List[Tuple[str, str, object]] = []
        if req.start is not None:
            filters.append((PARTITION_COL, ">=", py_utc_date(req.start).isoformat()))
        if req.end is not None:
            filters.append((PARTITION_COL, "<=", py_utc_date(req.end).isoformat()))
        return "overwrite", filters
    if schema_changed:
        # delta-rs writes a new schema only with mode="overwrite": match no partition so nothing is removed.
        return "overwrite", [(PARTITION_COL, "=", "0001-01-01")]
    return "append", None


def _affected_dates(req: WriteRequest) -> List[dt.date]:
    """Dates whose live files this write's commit removes."""
    if req.before is None or req.mode != "overwrite":
        return []
    dates = [dt.date.fromisoformat(d) for d in req.before.watermarks]
    if req.start is not None:
        dates = [d for d in dates if d >= py_utc_date(req.start)]
    if req.end is not None:
        dates = [d for d in dates if d <= py_utc_date(req.end)]
    return dates


def _kept_rows(req: WriteRequest, version: int) -> Optional["DataFrame"]:
    """Stored rows on the partial boundary days of an overwrite range, outside the range: they are rewritten."""
    from pyspark.sql import functions as F

    if req.before is None or req.mode != "overwrite" or (req.start is None and req.end is None):
        return None
    boundary = {py_utc_date(t) for t in (req.start, req.end) if t is not None}
    boundary &= {dt.date.fromisoformat(d) for d in req.before.watermarks}
    if not boundary:
        return None
    ts = req.after.event_time_col
    frames = []
    spark = req.df.sparkSession
    for day in sorted(boundary):
        lo = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
        hi = lo + (dt.timedelta(days=1) - dt.timedelta(microseconds=1))  # no overflow on 9999-12-31
        stored = read_table(spark, req.uri, ts, version=version, start=lo, end=hi, with_seq=True)
        frames.append(stored.where(~in_range(F.col(ts), req.start, req.end)))
    kept = frames[0]
    for frame in frames[1:]:
        kept = kept.unionByName(frame)
    have = set(kept.columns)
    columns = [F.col(f.name) if f.name in have else F.lit(None).cast(f.dataType).alias(f.name)
               for f in req.df.schema.fields]  # features added by this write read as null in older rows
    return kept.select(*columns, F.col(PARTITION_COL), F.col(SEQ_COL))


def _check_keys(staged: "DataFrame", keys: Sequence[str], ts: str) -> None:
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


def row_key(row: Dict[str, object], cols: Sequence[str]) -> str:
    return "{" + ", ".join(f"{c}={row[c]!r}" for c in cols) + "}"


def write_portable(req: WriteRequest) -> WriteResult:
    """Write ``req`` through staged Parquet files and one delta-rs commit."""
    from pyspark.sql import functions as F

    table = delta_log.open_table(req.uri)
    exists = table is not None
    version_before = table.version() if table is not None else -1
    if req.run_id and exists and table.transaction_version(run_app_id(req.run_id)) is not None:
        log.info("run %s already committed to %s: skipping", req.run_id, req.uri)
        return WriteResult(None, 0, (), req.after.schema_version, skipped=True)
    seq = version_before + 1
    ts = req.after.event_time_col
    keys = list(req.after.join_keys)
    fs, root = pafs.FileSystem.from_uri(req.uri) if "://" in req.uri else (pafs.LocalFileSystem(), req.uri)
    staging_rel = f"{STAGING_DIR}/{uuid.uuid4().hex}"
    staging = f"{root}/{staging_rel}"
    moved: List[str] = []
    committed = False
    heartbeat = WriterHeartbeat(staging, filesystem=fs).start()  # tells cleanup this staging dir is alive
    try:
        from pyspark.sql import Observation

        features = [f for f, _ in req.after.all_features()]
        observation = Observation(f"seeknal_write_{uuid.uuid4().hex}")
        new = (req.df.observe(observation, *stat_columns(req.df, features))
               .withColumn(PARTITION_COL, utc_date(F.col(ts))).withColumn(SEQ_COL, F.lit(seq).cast("long")))
        kept = _kept_rows(req, version_before) if exists else None
        out = new if kept is None else new.unionByName(kept)
        # One shuffle so each (date, write) lands in few files instead of one file per task and date.
        (out.repartition(F.col(PARTITION_COL), F.col(SEQ_COL)).write.mode("append")  # dir holds the heartbeat
         .option("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
         .option("compression", "snappy")
         .option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
         .partitionBy(PARTITION_COL, SEQ_COL)
         .parquet(_spark_path(req.uri, staging_rel)))
        from pyspark.sql.types import DateType, LongType, StructField, StructType

        staged_schema = StructType(req.df.schema.fields + [StructField(PARTITION_COL, DateType()),
                                                           StructField(SEQ_COL, LongType())])
        staged_all = req.df.sparkSession.read.schema(staged_schema).parquet(_spark_path(req.uri, staging_rel))
        staged = staged_all.where(F.col(SEQ_COL) == F.lit(seq)).select(*req.df.columns)
        check_results: Dict[str, object] = {}
        for name, check in req.checks.items():  # user checks first, so validation reports what it finds
            check_results[name] = check(staged)
        _check_keys(staged, keys, ts)

        adds, rows, written, all_dates = _move_staged(fs, root, staging, seq, moved)
        # An empty write has no observed metrics (Spark reports none for a job without rows).
        stats = stats_from_metrics(observation.get if rows else {}, features)
        written_dates = sorted(written)
        after = req.after.with_watermarks(_affected_dates(req), sorted(all_dates))
        info = WriteInfo(mode=req.mode, start=_iso(req.start), end=_iso(req.end), rows=rows,
                         schema_version=after.schema_version, seq=seq,
                         partitions_written=tuple(d.isoformat() for d in written_dates), run_id=req.run_id,
                         extra={"stats": stats, **({"checks": check_results} if check_results else {})})
        schema_changed = req.before is None or req.before.schema_version != after.schema_version
        mode, filters = _partition_filters(req, schema_changed)
        schema_json = delta_log.commit_schema_json(
            [(k, t) for k, t in after.key_types] + [(ts, "timestamp")] + after.all_features()
            + [(PARTITION_COL, "date")])
        version = delta_log.commit_files(
            req.uri, schema_json, adds, exists=exists, mode=mode, partition_filters=filters,
            metadata={STATE_KEY: after.to_json(), WRITE_KEY: info.to_json()},
            app_txn=(run_app_id(req.run_id), 0) if req.run_id else None)
        committed = True
    finally:
        heartbeat.stop()
        if not committed:
            for path in moved:
                _quiet(fs.delete_file, path)
        _quiet(fs.delete_dir, staging)
    try:
        delta_log.set_properties(req.uri, after)
    except Exception as exc:  # noqa: BLE001 - the data commit stands; its metadata holds the same state
        log.warning("could not refresh seeknal.* table properties of %s: %s", req.uri, exc)
    return WriteResult(version, rows, tuple(written_dates), after.schema_version, checks=check_results)


def _spark_path(uri: str, rel: str) -> str:
    return f"{uri.rstrip('/')}/{rel}"


def _quiet(fn: Callable[[str], None], path: str) -> None:
    try:
        fn(path)
    except (FileNotFoundError, OSError):
        pass


def _move_staged(fs: pafs.FileSystem, root: str, staging: str, seq: int,
                 moved: List[str]) -> Tuple[List[AddAction], int, Set[dt.date], Set[dt.date]]:
    """Move staged files into ``_event_date=<day>/s<seq>-...`` and build their Delta add actions.

    Returns the add actions, the rows and dates of this write's new rows, and the dates of every added file.
    """
    adds: List[AddAction] = []
    rows = 0
    written: Set[dt.date] = set()
    all_dates: Set[dt.date] = set()
    now_ms = int(time.time() * 1000)
    infos = fs.get_file_info(pafs.FileSelector(staging, recursive=True))
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
            continue
        parts = dict(p.split("=", 1) for p in info.path[len(staging) + 1:].split("/")[:-1])
        day = parts[PARTITION_COL]
        file_seq = int(parts[SEQ_COL])
        rel = f"{PARTITION_COL}={day}/{data_file_name(file_seq, info.base_name)}"
        target = f"{root}/{rel}"
        fs.create_dir(f"{root}/{PARTITION_COL}={day}", recursive=True)
        fs.move(info.path, target)
        moved.append(target)
        with fs.open_input_file(target) as handle:
            meta = pq.read_metadata(handle)
        all_dates.add(dt.date.fromisoformat(day))
        if file_seq == seq:
            rows += meta.num_rows
            written.add(dt.date.fromisoformat(day))
        adds.append(AddAction(rel, info.size, {PARTITION_COL: day}, now_ms, True, file_stats_json(meta)))
    return adds, rows, written, all_dates


def native_write_options(req: WriteRequest, state_json: str, info_json: str) -> Tuple[str, Dict[str, str]]:
    """Save mode and options for Spark's ``format("delta")`` writer (sessions with Delta's JVM side).

    ``replaceWhere`` replaces exactly the rows in [start, end] (Delta rewrites the boundary files itself).
    """
    options: Dict[str, str] = {
        "userMetadata": "{" + f'"{STATE_KEY}":{state_json},"{WRITE_KEY}":{info_json}' + "}",
        "mergeSchema": "true",
    }
    if req.run_id:
        options["txnAppId"] = run_app_id(req.run_id)
        options["txnVersion"] = "0"
    if req.mode == "append":
        return "append", options
    col = "`" + req.after.event_time_col.replace("`", "``") + "`"
    conds = []
    if req.start is not None:
        conds.append(f"{col} >= TIMESTAMP '{to_utc(req.start).strftime('%Y-%m-%d %H:%M:%S.%f')}+00:00'")
    if req.end is not None:
        conds.append(f"{col} <= TIMESTAMP '{to_utc(req.end).strftime('%Y-%m-%d %H:%M:%S.%f')}+00:00'")
    if conds:
        options["replaceWhere"] = " AND ".join(conds)
    return "overwrite", options


def write_native(req: WriteRequest) -> WriteResult:
    """Write with Spark's own Delta writer (only on sessions with Delta's JVM side)."""
    from pyspark.sql import functions as F

    ts = req.after.event_time_col
    # No staging on this path: checks run on the rows about to be written (the source is computed again).
    check_results = {name: check(req.df) for name, check in req.checks.items()}
    out = req.df.withColumn(PARTITION_COL, utc_date(F.col(ts)))
    info = WriteInfo(mode=req.mode, start=_iso(req.start), end=_iso(req.end), rows=-1,
                     schema_version=req.after.schema_version, seq=-1, run_id=req.run_id,
                     extra={"checks": check_results} if check_results else {})
    mode, options = native_write_options(req, req.after.to_json(), info.to_json())
    out.write.format("delta").mode(mode).partitionBy(PARTITION_COL).options(**options).save(req.uri)
    table = delta_log.open_table(req.uri)
    return WriteResult(table.version() if table else None, -1, (), req.after.schema_version, checks=check_results)
