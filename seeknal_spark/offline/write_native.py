"""The native write path: Spark's own Delta writer, on sessions with Delta's JVM side (Databricks, --packages).

Same guarantees as the portable path, with Delta doing the commit:

- the transformation's rows are computed once (``localCheckpoint``: a lost block fails the write instead of
  recomputing other rows), the checks, the key rules and the write statistics
  (:func:`~seeknal_spark.offline.write_stats.staged_stats`, the portable path's rule) run on exactly those rows;
- :mod:`seeknal_spark.offline.plan` decides the days the commit changes; the rewritten days' surviving stored rows
  are written again with the new ones, and ``replaceWhere`` on ``_event_date IN (<those days>)`` swaps them in one
  commit, so the table holds one row per (join keys, event time) and Delta's conflict checker sees every day this
  write read (a concurrent change there raises :class:`~seeknal_spark.errors.ConcurrentWriteError`);
- ``userMetadata`` carries the same commit metadata as the portable path
  (:func:`~seeknal_spark.offline.state.encode_commit_metadata`), ``txnAppId``/``txnVersion`` make run ids
  idempotent, ``mergeSchema`` adds new features; the first write creates the table partitioned by ``_event_date``.

Sessions that take this path (:func:`seeknal_spark.session.has_delta_jvm`): Databricks runtimes as they are; other
clusters with Delta's jars (``--packages io.delta:delta-spark_2.13:<v>`` or ``--jars`` of Maven-resolved
``delta-spark``/``delta-storage`` jars matching the Spark line) and
``spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension``,
``spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog``, plus the ``delta-spark``
Python package of the same Delta line (``delta.tables``).

On S3 (``s3://`` tables, hadoop-aws in the session) Spark writes ``s3a://`` with the store's ``fs.s3a.*`` options
per write (:func:`seeknal_spark.storage.hadoop_options`). Delta's default S3 LogStore is safe for one driver at a
time only, so unless the session uses a multi-writer LogStore (``S3DynamoDBLogStore``) or runs on Databricks, the
write holds the table's writer lease (:mod:`seeknal_spark.offline.writer_lease`) from planning to commit: a second
native writer of the table gets :class:`~seeknal_spark.errors.ConcurrentWriteError` naming the table and the rule,
portable writers refuse to commit while it is held, and taking it waits for running portable commits to end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from seeknal_spark import storage
from seeknal_spark.errors import ConcurrentWriteError
from seeknal_spark.offline.frames import utc_date
from seeknal_spark.offline.layout import PARTITION_COL, SEQ_COL, SEQ_FILE_PATTERN
from seeknal_spark.offline.metadata_spark import SparkDeltaMetadata
from seeknal_spark.offline.plan import DayPlan, kept_rows, plan_days
from seeknal_spark.offline.state import GroupState, WriteInfo, encode_commit_metadata
from seeknal_spark.offline.write_stats import staged_stats
from seeknal_spark.offline.writer import WriteRequest, WriteResult, check_keys, iso, run_app_id

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["write_native", "replace_where", "MAX_ATTEMPTS", "needs_writer_lease"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 50  # plans outdated by other writers' commits before giving up with ConcurrentWriteError

# Delta's commit-conflict exceptions (delta.exceptions), by class name and by Spark error class (Connect).
_CONFLICTS = ("ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
              "ConcurrentTransactionException", "ConcurrentWriteException", "MetadataChangedException",
              "ProtocolChangedException", "DeltaConcurrentModificationException")
_CONFLICT_CLASSES = ("DELTA_CONCURRENT_", "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED")
# Session settings naming Delta's LogStore for S3 paths; a DynamoDB-backed one is safe for several writers.
_LOG_STORE_KEYS = ("spark.delta.logStore.s3a.impl", "spark.delta.logStore.s3.impl", "spark.delta.logStore.class")


def replace_where(days: Sequence[dt.date]) -> str:
    """The ``replaceWhere`` predicate of a day plan. The dates are the writer's own ``datetime.date`` values."""
    if not all(type(d) is dt.date for d in days):  # noqa: E721 - exactly dates: nothing else reaches the SQL text
        raise TypeError(f"replace_where takes datetime.date values, got {days!r}")
    return f"`{PARTITION_COL}` IN ({', '.join(f'DATE {d.isoformat()!r}' for d in days)})"


def needs_writer_lease(spark: "SparkSession", uri: str) -> bool:
    """True when a native write of ``uri`` must hold the writer lease: an S3 table, and neither a multi-writer
    LogStore (``S3DynamoDBLogStore``) configured in the session nor a Databricks runtime."""
    if not storage.is_s3(uri):
        return False
    for key in _LOG_STORE_KEYS + ("spark.databricks.clusterUsageTags.sparkVersion",):
        try:
            value = spark.conf.get(key, None) or ""
        except Exception:  # noqa: BLE001 - Connect raises for unknown keys on some versions
            value = ""
        if value and (key.startswith("spark.databricks") or "DynamoDB" in value):
            return False
    return True


def write_native(req: WriteRequest) -> WriteResult:
    """Write ``req`` as one commit of Spark's Delta writer (only on sessions with Delta's JVM side)."""
    spark = req.df.sparkSession
    lease: Any = contextlib.nullcontext()
    if needs_writer_lease(spark, req.uri):
        from seeknal_spark.offline.writer_lease import WriterLease

        lease = WriterLease(req.uri, req.storage_options)
    with lease as held:
        return _write(req, spark, held.ensure_held if held is not None else None)


def _write(req: WriteRequest, spark: "SparkSession", ensure_held: Optional[Callable[[], None]]) -> WriteResult:
    from pyspark.sql import functions as F

    meta = SparkDeltaMetadata(spark, req.uri, req.storage_options)
    version = meta.latest_version()
    if req.run_id and version is not None and meta.run_version(run_app_id(req.run_id)) is not None:
        log.info("run %s already committed to %s: skipping", req.run_id, req.uri)
        state = meta.state(version)
        return WriteResult(None, 0, (), state.schema_version if state else 0, skipped=True)
    before = meta.state(version) if version is not None else None
    after = req.evolve(before)
    ts, keys = after.event_time_col, list(after.join_keys)
    features = [f for f, _ in after.all_features() if f in req.df.columns]

    # Computed once; the checks, the statistics and the commit all see these very rows.
    staged = req.df.localCheckpoint(eager=True)
    rows = staged.count()
    check_results: Dict[str, object] = {}
    for name, check in req.checks.items():  # user checks first, so validation reports what it finds
        check_results[name] = check(staged)
    check_keys(staged, keys, ts)
    stats = staged_stats(staged, features, keys + [ts])  # the portable path's rule, on the checkpointed rows
    new = staged.withColumn(PARTITION_COL, utc_date(F.col(ts)))
    new_days = sorted(r[0] for r in new.select(PARTITION_COL).distinct().collect())

    for attempt in range(MAX_ATTEMPTS):
        if attempt:  # another writer committed since the plan was made: plan again on its snapshot
            version = meta.latest_version()
            if req.run_id and meta.run_version(run_app_id(req.run_id)) is not None:
                return WriteResult(None, 0, (), after.schema_version, skipped=True, retries=attempt)
            if req.label:  # a concurrent commit may have taken this write's version label
                from seeknal_spark.offline.labels import ensure_label_free

                ensure_label_free(meta, req.label, req.run_id)
            after = req.evolve(meta.state(version))
        result = _plan_and_commit(req, meta, version, after, staged, new, new_days, rows, stats, check_results,
                                  attempt, ensure_held)
        if result is not None:
            return result
    raise ConcurrentWriteError(f"{MAX_ATTEMPTS} other commits landed on {req.uri} while this write was planned; "
                               "re-run the write when the table is quieter. Nothing was written.")


def _plan_and_commit(req: WriteRequest, meta: SparkDeltaMetadata, version: Optional[int], after: GroupState,
                     staged: "DataFrame", new: "DataFrame", new_days: List[dt.date], rows: int,
                     stats: Dict[str, object], check_results: Dict[str, object],
                     attempt: int, ensure_held: Optional[Callable[[], None]] = None) -> Optional[WriteResult]:
    """Plan against ``version`` and commit; None when the table moved on before Delta's transaction started."""
    ts, keys = after.event_time_col, list(after.join_keys)
    stored_days = meta.dates(version) if version is not None else []  # from the log's file list: no data read
    plan = plan_days(req.mode, req.start, req.end, new_days, stored_days)
    out = new
    kept_days: List[dt.date] = []
    if plan.rewrite:
        kept = _kept(meta, version, plan, staged, keys, ts, req)
        out = new.unionByName(kept)
        kept_days = _surviving_days(kept, plan, new_days)
    # The exact days holding data after this commit (also heals marks left stale by other writers).
    marks = (set(stored_days) - set(plan.replace)) | set(new_days) | set(kept_days)
    after = replace(after, watermarks=tuple(sorted(d.isoformat() for d in marks)))
    seq = 0 if version is None else version + 1
    write_id = uuid.uuid4().hex
    info = WriteInfo(mode=req.mode, start=iso(req.start), end=iso(req.end), rows=rows,
                     schema_version=after.schema_version, seq=seq,
                     partitions_written=tuple(d.isoformat() for d in new_days), run_id=req.run_id,
                     label=req.label, extra={"stats": stats, "write_id": write_id, "engine": "delta-spark",
                            **({"checks": check_results} if check_results else {})})
    writer = (out.write.format("delta").options(**meta.options).partitionBy(PARTITION_COL)
              .option("userMetadata", encode_commit_metadata(after, info)).option("mergeSchema", "true"))
    if req.run_id:
        writer = writer.option("txnAppId", run_app_id(req.run_id)).option("txnVersion", "0")
    if version is not None and plan.touched:
        writer = writer.mode("overwrite").option("replaceWhere", replace_where(plan.touched))
    else:
        writer = writer.mode("append")  # a new table, or nothing to replace (an empty append)
    # Delta's transaction starts from the latest snapshot when the write starts, and checks conflicts from there:
    # the plan must be of that snapshot. A commit in between sends the write back to planning (the window left is
    # the few milliseconds between this check and the start of Delta's write command).
    if meta.latest_version() != version:
        return None
    if ensure_held is not None:  # S3 without a multi-writer LogStore: only the lease holder may commit
        ensure_held()
    try:
        writer.save(meta.path)
    except Exception as exc:  # noqa: BLE001 - only Delta's commit conflicts are translated
        if _is_conflict(exc):
            raise ConcurrentWriteError(
                f"another writer committed a conflicting change to {req.uri} while this write ran "
                f"(days {[d.isoformat() for d in plan.touched]}); re-run the write. Nothing was written. "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        raise
    committed = _committed_version(meta, write_id)
    if committed is None:
        # Delta skips a write whose txnAppId/txnVersion is already recorded (a concurrent or old run).
        log.info("run %s already committed to %s (Delta skipped the write)", req.run_id, req.uri)
        return WriteResult(None, 0, (), after.schema_version, skipped=True, retries=attempt)
    if committed != seq:
        log.warning("a concurrent commit landed before this write on %s (planned version %s, committed %s); "
                    "the recorded watermarks may miss its days until the next write", req.uri, seq, committed)
    return WriteResult(committed, rows, tuple(new_days), after.schema_version, checks=check_results,
                       retries=attempt)


def _kept(meta: SparkDeltaMetadata, version: Optional[int], plan: DayPlan, staged: "DataFrame",
          keys: List[str], ts: str, req: WriteRequest) -> "DataFrame":
    """The stored rows of the rewritten days that survive, read at the planned version (with ``_event_date``)."""
    from pyspark.sql import functions as F

    stored = meta.snapshot(version).where(F.col(PARTITION_COL).isin(list(plan.rewrite)))
    # Files written by seeknal_spark 0.1 carry their write's sequence number in their names (ties: later wins).
    seq = F.regexp_extract(F.col("_metadata.file_name"), SEQ_FILE_PATTERN, 1)
    stored = stored.withColumn(SEQ_COL, F.when(seq == "", F.lit(0)).otherwise(seq).cast("long"))
    kept = kept_rows(stored, staged, keys, ts, req.mode, req.start, req.end, seq_col=SEQ_COL)
    return kept.withColumn(PARTITION_COL, utc_date(F.col(ts)))


def _surviving_days(kept: "DataFrame", plan: DayPlan, new_days: List[dt.date]) -> List[dt.date]:
    """Rewritten days that still hold stored rows. Days with new rows hold data anyway: only the others are read
    (an overwrite range's boundary days)."""
    from pyspark.sql import functions as F

    unknown = [d for d in plan.rewrite if d not in set(new_days)]
    if not unknown:
        return list(plan.rewrite)
    found = {r[0] for r in kept.where(F.col(PARTITION_COL).isin(unknown)).select(PARTITION_COL).distinct().collect()}
    return sorted(found | (set(plan.rewrite) - set(unknown)))


def _committed_version(meta: SparkDeltaMetadata, write_id: str) -> Optional[int]:
    """The version of the commit carrying ``write_id`` among the newest few, or None (Delta skipped it)."""
    for record in meta.commits(limit=20):
        if record.write is not None and record.write.get("write_id") == write_id:
            return record.version
    return None


def _is_conflict(exc: BaseException) -> bool:
    seen: Optional[BaseException] = exc
    while seen is not None:
        names = {cls.__name__ for cls in type(seen).__mro__}
        if names & set(_CONFLICTS):
            return True
        text = str(seen)
        if any(name in text for name in _CONFLICTS) or any(c in text for c in _CONFLICT_CLASSES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
