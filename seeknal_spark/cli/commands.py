"""The commands behind ``seeknal-spark``: materialize, backfill, training-set, publish-online.

Each logs one line per step (with the run id) to the ``seeknal_spark.jobs`` logger and returns a summary dict;
errors are raised, never turned into exit codes here (``seeknal_spark.cli`` maps them).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from seeknal_spark.cli.spec import GroupSpec, UsageError, check_range, chunk_run_id, plan_chunks

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["job_session", "materialize", "backfill", "training_set", "publish_online", "already_committed"]

log = logging.getLogger("seeknal_spark.jobs")


def _iso(value: Optional[dt.datetime]) -> str:
    return value.isoformat() if value is not None else "-"


def job_session() -> "SparkSession":
    """The active session (notebook, tests), else the one spark-submit configured, else a local one from conf/."""
    from seeknal_spark.session import active_session, local_session

    session = active_session()
    if session is not None:
        return session
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # launched by spark-submit: keep its configuration as is
        from pyspark.sql import SparkSession

        return SparkSession.builder.appName("seeknal-spark").getOrCreate()
    return local_session(app_name="seeknal-spark")


def already_committed(table_path: str, run_id: str) -> bool:
    """True when a write with ``run_id`` is recorded in the table's Delta log (idempotent retries)."""
    from seeknal_spark.offline.metadata import table_metadata
    from seeknal_spark.offline.metadata_spark import session_or_none
    from seeknal_spark.offline.writer import run_app_id

    try:
        return table_metadata(table_path, session_or_none()).run_version(run_app_id(run_id)) is not None
    except Exception as exc:  # noqa: BLE001 - unreadable here (e.g. a catalog path): let the write decide
        log.debug("cannot read transactions of %s: %s", table_path, exc)
        return False


def _write(spec: GroupSpec, start: Optional[dt.datetime], end: Optional[dt.datetime], mode: str, run_id: str,
           store: Optional[str], spark: "SparkSession") -> Any:
    group = spec.feature_group(store)
    features = list(spec.transform.features) if spec.transform.features is not None else None
    group.set_dataframe(spec.transform.compute(start, end, spark)).set_features(features)
    return group.write(start, end, mode=mode, run_id=run_id)


def materialize(spec: GroupSpec, start: Optional[dt.datetime], end: Optional[dt.datetime], *, run_id: str,
                mode: Optional[str] = None, store: Optional[str] = None, dry_run: bool = False) -> Dict[str, Any]:
    """Compute the group for [start, end] and write that range as one Delta commit (skipped if run_id is done)."""
    check_range(start, end)
    mode = mode or spec.mode or spec.transform.mode
    table = spec.feature_group(store).table_path
    log.info("run=%s step=plan materialize %s [%s, %s] mode=%s table=%s (from %s)", run_id, spec.label,
             _iso(start), _iso(end), mode, table, spec.origin)
    if dry_run:
        log.info("run=%s step=dry-run definition and arguments are valid; nothing computed or written", run_id)
        return {"status": "dry-run", "table": table}
    if already_committed(table, run_id):
        log.info("run=%s step=skip already committed to %s; nothing written", run_id, table)
        return {"status": "skipped", "table": table, "rows": 0}
    result = _write(spec, start, end, mode, run_id, store, job_session())
    if result.skipped:
        log.info("run=%s step=skip already committed to %s; nothing written", run_id, table)
        return {"status": "skipped", "table": table, "rows": 0}
    log.info("run=%s step=write %d rows committed as Delta version %s (%d partitions, schema v%d)", run_id,
             result.rows, result.version, len(result.partitions), result.schema_version)
    return {"status": "written", "table": table, "rows": result.rows, "version": result.version}


def backfill(spec: GroupSpec, start: dt.datetime, end: dt.datetime, chunk: dt.timedelta, *, run_id: str,
             mode: Optional[str] = None, store: Optional[str] = None, dry_run: bool = False) -> Dict[str, Any]:
    """Materialize [start, end] chunk by chunk, one commit per chunk; chunks already committed are skipped."""
    chunks = plan_chunks(start, end, chunk)
    mode = mode or spec.mode or spec.transform.mode
    table = spec.feature_group(store).table_path
    log.info("run=%s step=plan backfill %s [%s, %s] in %d chunk(s) of %s mode=%s table=%s", run_id, spec.label,
             _iso(start), _iso(end), len(chunks), chunk, mode, table)
    if dry_run:
        for i, (lo, hi) in enumerate(chunks, 1):
            log.info("run=%s step=dry-run chunk %d of %d [%s, %s] run id %s", run_id, i, len(chunks), _iso(lo),
                     _iso(hi), chunk_run_id(run_id, lo, hi))
        return {"status": "dry-run", "chunks": len(chunks), "table": table}
    spark = None
    written = skipped = rows = 0
    started = time.monotonic()

    def progress(i: int, lo: dt.datetime, hi: dt.datetime, what: str) -> None:
        log.info("run=%s step=chunk %d of %d [%s, %s] %s; progress %d/%d chunks, %d rows, elapsed %.1fs", run_id, i,
                 len(chunks), _iso(lo), _iso(hi), what, i, len(chunks), rows, time.monotonic() - started)

    for i, (lo, hi) in enumerate(chunks, 1):
        cid = chunk_run_id(run_id, lo, hi)
        if already_committed(table, cid):
            skipped += 1
            progress(i, lo, hi, "already committed, skipped")
            continue
        spark = spark or job_session()
        result = _write(spec, lo, hi, mode, cid, store, spark)
        if result.skipped:
            skipped += 1
            progress(i, lo, hi, "already committed, skipped")
            continue
        written += 1
        rows += result.rows
        progress(i, lo, hi, f"{result.rows} rows written (Delta version {result.version})")
    log.info("run=%s step=done backfill %s: %d chunk(s) written, %d skipped, %d rows in %.1fs", run_id, spec.label,
             written, skipped, rows, time.monotonic() - started)
    return {"status": "done", "chunks": len(chunks), "written": written, "skipped": skipped, "rows": rows,
            "table": table}


def _file_format(path: str, fmt: Optional[str]) -> str:
    if fmt:
        return fmt
    lower = path.rstrip("/").lower()
    for ext in ("csv", "json"):
        if lower.endswith("." + ext):
            return ext
    return "parquet"


def read_spine(spark: "SparkSession", path: str, fmt: Optional[str] = None) -> "DataFrame":
    fmt = _file_format(path, fmt)
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    return reader.load(path)


def write_output(df: "DataFrame", path: str, fmt: Optional[str] = None) -> None:
    """Write ``df`` to ``path``; on local paths into a temporary directory first, then swapped in."""
    fmt = _file_format(path, fmt)
    if "://" in path and not path.startswith("file:"):
        writer = df.write.mode("overwrite").format(fmt)
        (writer.option("header", "true") if fmt == "csv" else writer).save(path)
        return
    target = os.path.abspath(path[5:] if path.startswith("file:") else path)
    tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    writer = df.write.mode("error").format(fmt)
    (writer.option("header", "true") if fmt == "csv" else writer).save(tmp)
    old = f"{target}.old-{uuid.uuid4().hex[:8]}"
    if os.path.exists(target):
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def training_set(specs: Sequence[GroupSpec], spine: str, date_col: str, output: str, *, run_id: str,
                 keep_cols: Sequence[str] = (), ttl: Optional[dt.timedelta] = None, fill_nulls: Sequence[Any] = (),
                 store: Optional[str] = None, spine_format: Optional[str] = None,
                 output_format: Optional[str] = None, dry_run: bool = False) -> Dict[str, Any]:
    """Point-in-time join of the groups' features onto the spine file; written to ``output``."""
    names = ", ".join(s.label for s in specs)
    log.info("run=%s step=plan training-set spine=%s date_col=%s groups=[%s] ttl=%s output=%s", run_id, spine,
             date_col, names, ttl, output)
    if "://" not in spine and not os.path.exists(spine):
        raise UsageError(f"spine file {spine!r} does not exist")
    if dry_run:
        log.info("run=%s step=dry-run definitions and arguments are valid; nothing computed or written", run_id)
        return {"status": "dry-run"}
    from seeknal_spark.retrieval import FeatureLookup, HistoricalFeatures

    lookups = [FeatureLookup(source=s.feature_group(store).get_or_create(), ttl=ttl) for s in specs]
    spark = job_session()
    spine_df = read_spine(spark, spine, spine_format)
    log.info("run=%s step=read spine with columns %s", run_id, spine_df.columns)
    result = (HistoricalFeatures(lookups=lookups, fill_nulls=list(fill_nulls))
              .using_spine(spine_df, date_col=date_col, keep_cols=list(keep_cols)).to_dataframe_with_spine())
    write_output(result, output, output_format)
    rows = read_spine(spark, output, output_format).count()
    log.info("run=%s step=write %d rows with columns %s to %s", run_id, rows, result.columns, output)
    return {"status": "written", "rows": rows, "output": output, "columns": result.columns}


def publish_online(specs: Sequence[GroupSpec], name: str, *, run_id: str, as_of: Optional[dt.datetime] = None,
                   start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
                   ttl: Optional[dt.timedelta] = None, store: Optional[str] = None, online_root: Optional[str] = None,
                   target: Optional[str] = None, keep: int = 3, dry_run: bool = False) -> Dict[str, Any]:
    """Publish the latest value per key of the groups as a new version of online table ``name`` (no Spark)."""
    from seeknal_spark.definitions import check_name

    check_name(name, "online table name")
    check_range(start, end)
    log.info("run=%s step=plan publish-online %s from [%s] as_of=%s start=%s end=%s to %s", run_id, name,
             ", ".join(s.label for s in specs), _iso(as_of), _iso(start), _iso(end), target or online_root or
             "the default online store")
    if dry_run:
        log.info("run=%s step=dry-run definitions and arguments are valid; nothing published", run_id)
        return {"status": "dry-run"}
    from seeknal_spark.serving import ServingSource, publish_online_table

    sources: List[Any] = [ServingSource.from_feature_group(s.feature_group(store).get_or_create(), ttl=ttl)
                          for s in specs]
    table = publish_online_table(sources, name, as_of=as_of, start=start, end=end, store_root=online_root,
                                 target=target, keep=keep, index="duckdb")  # no 1M-key dict just to log
    try:
        keys = len(table)
        log.info("run=%s step=publish online table %s version %d: %d keys, features %s at %s", run_id, name,
                 table.version, keys, table.feature_names, table.location)
        return {"status": "published", "version": table.version, "keys": keys, "location": table.location}
    finally:
        table.close()
