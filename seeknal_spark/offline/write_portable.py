"""The portable write path (no Delta JVM): staged Parquet files, committed by the driver with delta-rs.

1. Spark writes the new rows once, as Parquet files, into ``<table>/_staging/<writer id>/``; the null and
   duplicate key check rides on that job (a window over its shuffle by day); the checks and the statistics
   (:func:`~seeknal_spark.offline.write_stats.staged_stats`) run on the staged files.
2. The staged files move into the table's partition directories (invisible until committed).
3. Optimistic concurrency, as Delta's own writers do: the write is planned against snapshot ``v`` (which days hold
   data, which stored rows survive, see :mod:`~seeknal_spark.offline.plan`) and committed as version ``v + 1``
   with no automatic retries. When another writer committed first, its commits are read: if they touched none of
   this write's days the same actions are committed on the new snapshot (state merged from it); if they did, the
   surviving stored rows are planned again; a commit of the same run id ends the write as skipped.

Until the commit nothing is visible; on failure every file this writer created is deleted. On S3 each delta-rs
commit is made holding a :func:`~seeknal_spark.offline.writer_lease.portable_commit` marker: while a native
(Delta JVM) writer holds the table's writer lease the write refuses with ConcurrentWriteError (its commit could be
overwritten by Delta's S3 LogStore); portable writers never wait for each other.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Set, Tuple

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake.transaction import AddAction

from seeknal_spark import storage
from seeknal_spark.errors import ConcurrentWriteError, DataError, LabelExistsError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.cleanup import WriterHeartbeat
from seeknal_spark.offline.frames import utc_date
from seeknal_spark.offline.layout import PARTITION_COL, SEQ_COL, STAGING_DIR, data_file_name
from seeknal_spark.offline.parquet_stats import file_stats_json
from seeknal_spark.offline.plan import DayPlan, kept_rows, plan_days
from seeknal_spark.offline.reader import read_live_files, scan_files
from seeknal_spark.offline.state import GroupState, WriteInfo, encode_commit_metadata
from seeknal_spark.offline.write_stats import staged_stats
from seeknal_spark.offline.writer_lease import portable_commit, refuse_if_native_writer
from seeknal_spark.offline.writer import WriteRequest, WriteResult, check_keys, iso, key_problem, run_app_id

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, DataFrameReader
    from pyspark.sql.types import StructType

__all__ = ["write_portable", "MAX_ATTEMPTS"]

log = logging.getLogger(__name__)

MAX_RECORDS_PER_FILE = 2_000_000
_BAD_ROW = "seeknal_spark key check failed for row "
MAX_ATTEMPTS = 50  # commits lost to other writers before giving up with ConcurrentWriteError


@dataclass
class _Staged:
    """Files of one staged set (new rows, or kept rows of one plan), moved into the table when committed."""

    adds: List[AddAction] = field(default_factory=list)
    rows: Dict[dt.date, int] = field(default_factory=dict)
    paths: List[str] = field(default_factory=list)  # absolute paths created in the table

    @property
    def days(self) -> Set[dt.date]:
        return set(self.rows)


def write_portable(req: WriteRequest) -> WriteResult:
    """Write ``req`` through staged Parquet files and one delta-rs commit (see the module docstring)."""
    opts = req.storage_options
    table = delta_log.open_table(req.uri, storage_options=opts)
    if table is not None:
        delta_log.check_portable(table)  # e.g. deletion vectors: rewriting a day would resurrect deleted rows
    if req.run_id and table is not None and table.transaction_version(run_app_id(req.run_id)) is not None:
        log.info("run %s already committed to %s: skipping", req.run_id, req.uri)
        return _skipped(req, table)
    refuse_if_native_writer(req.uri, opts)  # a native writer holds the table (S3): refuse before any Spark job
    before = delta_log.read_state(table) if table is not None else None
    after = req.evolve(before)  # refuses a write that does not fit the stored definition before any Spark job
    writer_id = uuid.uuid4().hex
    fs, root = delta_log.filesystem(req.uri, opts)
    staging = f"{root}/{STAGING_DIR}/{writer_id}"
    created: List[str] = []
    committed = False
    heartbeat = WriterHeartbeat(staging, filesystem=fs).start()  # tells cleanup this writer is alive
    try:
        new, stats, check_results = _stage_new_rows(req, after, fs, root, writer_id,
                                                     table.version() + 1 if table is not None else 0)
        created += new.paths
        kept: Optional[_Staged] = None
        kept_plan: Optional[DayPlan] = None
        clash: List[dt.date] = []
        for attempt in range(MAX_ATTEMPTS):
            version = table.version() if table is not None else -1
            stored_days = _dates(table)  # one listing of the snapshot's live files per attempt
            plan = plan_days(req.mode, req.start, req.end, new.days, stored_days)
            if kept is None or kept_plan != plan or clash:  # the days it rewrites changed: plan them again
                _discard(fs, kept)
                kept = _stage_kept_rows(req, after, table, plan, new, fs, root, writer_id, attempt, version + 1)
                created += kept.paths
                kept_plan = plan
            final_days = (set(stored_days) - set(plan.replace)) | new.days | kept.days
            after = req.evolve(before).with_watermarks(
                [dt.date.fromisoformat(d) for d in (before.watermarks if before else ())], sorted(final_days))
            info = WriteInfo(mode=req.mode, start=iso(req.start), end=iso(req.end), rows=sum(new.rows.values()),
                             schema_version=after.schema_version, seq=version + 1,
                             partitions_written=tuple(d.isoformat() for d in sorted(new.days)), run_id=req.run_id,
                             label=req.label,
                             extra={"stats": stats, "retries": attempt,
                                    **({"checks": check_results} if check_results else {})})
            try:
                with portable_commit(req.uri, opts) as held:  # S3: refuses while a native writer holds the table
                    held.ensure_held()
                    delta_log.commit_files(
                        req.uri, delta_log.commit_schema_json(_columns(after)), new.adds + kept.adds,
                        version=version, replace_days=plan.replace, user_metadata=encode_commit_metadata(after, info),
                        app_txn=(run_app_id(req.run_id), 0) if req.run_id else None, storage_options=opts)
                committed = True
                break
            except delta_log.VersionTaken:
                pass
            table = delta_log.open_table(req.uri, storage_options=opts)
            assert table is not None  # someone committed a version we wanted: the table exists
            others = [delta_log.commit_actions(req.uri, v, opts) for v in range(version + 1, table.version() + 1)]
            if req.run_id and any(run_app_id(req.run_id) in c.app_ids for c in others):
                log.info("run %s was committed to %s by another writer: skipping", req.run_id, req.uri)
                return _skipped(req, table)
            if req.label and any(c.label == req.label for c in others):
                taken = next(c.version for c in others if c.label == req.label)
                raise LabelExistsError(
                    f"version label {req.label!r} of {req.uri} was just taken by Delta version {taken} (a concurrent "
                    "write); labels are unique per group: pick a new label. Nothing was written.",
                    label=req.label, delta_version=taken)
            clash = sorted(set(plan.touched) & set().union(*[c.days for c in others]))
            log.info("write to %s lost version %d to another writer%s; retrying on version %d", req.uri,
                     version + 1, f" (days {[d.isoformat() for d in clash]} changed: re-planning)" if clash else "",
                     table.version())
            before = delta_log.read_state(table)
        else:
            raise ConcurrentWriteError(
                f"gave up writing {req.uri} after {MAX_ATTEMPTS} attempts: other writers kept committing first "
                f"(latest version {table.version() if table is not None else None}); re-run the write")
    finally:
        heartbeat.stop()
        if not committed:
            for path in created:
                _quiet(fs.delete_file, path)
        _quiet(fs.delete_dir, staging)
    result_version = version + 1
    try:
        with portable_commit(req.uri, opts) as held:  # a metadata-only delta-rs commit: the same rule
            held.ensure_held()
            delta_log.set_properties(req.uri, after, opts)
    except Exception as exc:  # noqa: BLE001 - the data commit stands; its metadata holds the same state
        log.warning("could not refresh seeknal.* table properties of %s: %s", req.uri, exc)
    return WriteResult(result_version, sum(new.rows.values()), tuple(sorted(new.days)), after.schema_version,
                       checks=check_results, retries=attempt)


def _skipped(req: WriteRequest, table: object) -> WriteResult:
    state = delta_log.read_state(table)  # type: ignore[arg-type]
    return WriteResult(None, 0, (), state.schema_version if state else 0, skipped=True)


def _dates(table: Optional[object]) -> List[dt.date]:
    if table is None:
        return []
    return sorted({f.date for f in delta_log.live_files(table) if f.date is not None})  # type: ignore[arg-type]


def _columns(state: GroupState) -> List[Tuple[str, object]]:
    return ([(k, t) for k, t in state.key_types] + [(state.event_time_col, "timestamp")] + state.all_features()
            + [(PARTITION_COL, "date")])


def _stage_new_rows(req: WriteRequest, after: GroupState, fs: pafs.FileSystem, root: str,
                    writer_id: str, seq: int) -> Tuple[_Staged, Dict[str, object], Dict[str, object]]:
    """Write the new rows once (the key check rides on the same job), run the checks, compute the statistics from
    the staged files, move them into the table."""
    from pyspark.sql import functions as F

    ts, keys = after.event_time_col, list(after.join_keys)
    features = [f for f in req.df.columns if f not in keys and f != ts]
    rel = f"{STAGING_DIR}/{writer_id}/new"
    # One shuffle by day serves the file layout and the key check (a window over it needs no exchange of its own);
    # a row that fails it fails the job, and the checks below name it.
    out = req.df.withColumn(PARTITION_COL, utc_date(F.col(ts))).repartition(F.col(PARTITION_COL))
    refused = F.raise_error(F.concat(F.lit(_BAD_ROW), F.to_json(F.struct(*[F.col(c) for c in keys + [ts]]))))
    out = out.withColumn(ts, F.when(key_problem(out, keys, ts, PARTITION_COL), refused).otherwise(F.col(ts)))
    try:
        _write_parquet(out, _uri(req.uri, rel), req, repartition=False)
    except Exception as exc:  # noqa: BLE001 - only the key check's own failure is translated
        if _BAD_ROW not in str(exc):
            raise
        _refuse_keys(req, keys, ts, str(exc))
    from pyspark.sql.types import DateType, StructField, StructType

    schema = StructType(req.df.schema.fields + [StructField(PARTITION_COL, DateType())])
    staged = _scan_staged(req, fs, root, rel, schema).select(*req.df.columns)
    check_results: Dict[str, object] = {}
    for name, check in req.checks.items():
        check_results[name] = check(staged)
    stats = staged_stats(staged, features, keys + [ts])
    moved = _move(fs, root, f"{root}/{rel}", writer_id, "n", seq)
    return moved, stats, check_results


def _refuse_keys(req: WriteRequest, keys: List[str], ts: str, failure: str) -> None:
    """A row failed the key check while staging: run the checks on the input to say which (user checks first, so
    validation reports what it finds, then the key check's own message), else name the row Spark reported."""
    for check in req.checks.values():
        check(req.df)
    check_keys(req.df, keys, ts)
    example = failure.split(_BAD_ROW, 1)[1].split("\n", 1)[0][:500]
    raise DataError(f"a row of this write has a null join key or event time, or the keys and event time of another "
                    f"row (e.g. {example}); fix those rows before writing. Nothing was written.")


def _stage_kept_rows(req: WriteRequest, after: GroupState, table: Optional[object], plan: DayPlan, new: _Staged,
                     fs: pafs.FileSystem, root: str, writer_id: str, attempt: int, seq: int) -> _Staged:
    """Write the stored rows of ``plan.rewrite`` days that survive this write; nothing when no day is rewritten."""
    if table is None or not plan.rewrite:
        return _Staged()
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, StructField, StructType

    spark = req.df.sparkSession
    days = set(plan.rewrite)
    files = [f for f in delta_log.live_files(table, min(days), max(days)) if f.date in days]  # type: ignore[arg-type]
    stored = read_live_files(spark, table, files, with_seq=True)  # type: ignore[arg-type]
    new_paths = [_uri(req.uri, a.path) for a in new.adds
                 if dt.date.fromisoformat(a.partition_values[PARTITION_COL]) in days]
    schema = StructType(req.df.schema.fields + [StructField(PARTITION_COL, DateType())])
    replaced = (scan_files(_read(req), schema, new_paths) if new_paths
                else spark.createDataFrame([], schema)).select(*req.df.columns)
    ts = after.event_time_col
    kept = kept_rows(stored, replaced, list(after.join_keys), ts, req.mode, req.start, req.end, seq_col=SEQ_COL)
    rel = f"{STAGING_DIR}/{writer_id}/kept{attempt}"
    _write_parquet(kept.withColumn(PARTITION_COL, utc_date(F.col(ts))), _uri(req.uri, rel), req)
    return _move(fs, root, f"{root}/{rel}", writer_id, f"k{attempt}", seq)


def _scan_staged(req: WriteRequest, fs: pafs.FileSystem, root: str, rel: str, schema: "StructType") -> "DataFrame":
    """The rows staged under ``rel``: a local table's files by name (listed here, see ``scan_files``), else the
    directory (one listing job)."""
    if storage.is_local(req.uri):
        infos = fs.get_file_info(pafs.FileSelector(f"{root}/{rel}", recursive=True, allow_not_found=True))
        names = sorted(i.path[len(root) + 1:] for i in infos
                       if i.type == pafs.FileType.File and i.base_name.endswith(".parquet"))
        if names:
            return scan_files(_read(req), schema, [_uri(req.uri, n) for n in names])
    return _read(req).schema(schema).parquet(_uri(req.uri, rel))


def _uri(table_uri: str, rel: str) -> str:
    """The URI Spark reads/writes (``s3a://`` for S3 tables)."""
    return storage.hadoop_uri(f"{table_uri.rstrip('/')}/{rel}")


def _read(req: WriteRequest) -> "DataFrameReader":
    """A Parquet reader with this table's per-read S3 options (the session is never reconfigured)."""
    return req.df.sparkSession.read.options(**storage.hadoop_options(req.storage_options))


def _write_parquet(df: "DataFrame", path: str, req: WriteRequest, repartition: bool = True) -> None:
    from pyspark.sql import functions as F

    # One shuffle so each date lands in few files instead of one file per task and date.
    ((df.repartition(F.col(PARTITION_COL)) if repartition else df).write.mode("error")
     .options(**storage.hadoop_options(req.storage_options))
     .option("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
     .option("compression", "snappy")
     .option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
     .partitionBy(PARTITION_COL)
     .parquet(path))


def _move(fs: pafs.FileSystem, root: str, staging: str, writer_id: str, tag: str, seq: int) -> _Staged:
    """Move staged files into ``_event_date=<day>/`` of the table and build their Delta add actions."""
    out = _Staged()
    now_ms = int(time.time() * 1000)
    try:
        infos = fs.get_file_info(pafs.FileSelector(staging, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return out
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
            continue
        parts = dict(p.split("=", 1) for p in info.path[len(staging) + 1:].split("/")[:-1])
        day = parts[PARTITION_COL]
        rel = f"{PARTITION_COL}={day}/{data_file_name(seq, f'{writer_id}{tag}-{info.base_name}')}"
        target = f"{root}/{rel}"
        fs.create_dir(f"{root}/{PARTITION_COL}={day}", recursive=True)
        fs.move(info.path, target)
        out.paths.append(target)
        with fs.open_input_file(target) as handle:
            meta = pq.read_metadata(handle)
        if meta.num_rows == 0:
            continue
        date = dt.date.fromisoformat(day)
        out.rows[date] = out.rows.get(date, 0) + meta.num_rows
        out.adds.append(AddAction(rel, info.size, {PARTITION_COL: day}, now_ms, True, file_stats_json(meta)))
    return out


def _discard(fs: pafs.FileSystem, staged: Optional[_Staged]) -> None:
    if staged is not None:
        for path in staged.paths:
            _quiet(fs.delete_file, path)


def _quiet(fn, path: str) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(path)
    except (FileNotFoundError, OSError):
        pass
