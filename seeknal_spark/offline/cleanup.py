"""Removing what dead writers left behind, without ever touching a live writer's files.

A portable write stages its Parquet files in ``<table>/_staging/<id>/``, moves them into ``_event_date=<day>/`` and
then commits them. A writer killed on the way (``kill -9``, a lost node) leaves the staging directory, and possibly
moved files that no Delta version references. Nothing reads them, but they use space forever.

A live writer proves it is alive with a heartbeat: :class:`WriterHeartbeat` rewrites
``<table>/_staging/<id>/_heartbeat`` every ``interval`` seconds from a daemon thread (a killed process stops
beating). :func:`remove_leftovers` removes

- a staging directory whose heartbeat is stale (older than 3 beats), or absent for 3 beats, and whose newest file
  is older than ``older_than``;
- a data file under ``_event_date=*/`` that no version kept in the Delta log references (time travel to every
  kept version keeps working), older than ``older_than`` and older than the start of every live writer (a live
  writer's moved-but-uncommitted files were written after it started).

Hosts' clocks must agree within a few heartbeat intervals. Writers that do not beat (Spark's own Delta writer)
are protected by ``older_than`` only, as with Delta's VACUUM: choose it longer than the longest write.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Set
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs

from seeknal_spark.errors import DefinitionError, StoreError
from seeknal_spark.offline.delta_log import filesystem as uri_filesystem
from seeknal_spark.offline.layout import PARTITION_COL, STAGING_DIR

__all__ = ["HEARTBEAT_FILE", "WriterHeartbeat", "remove_leftovers", "vacuum_table", "default_interval"]

log = logging.getLogger(__name__)

HEARTBEAT_FILE = "_heartbeat"
INTERVAL_ENV = "SEEKNAL_WRITER_HEARTBEAT_SECONDS"
STALE_BEATS = 3  # a heartbeat older than this many intervals belongs to a dead writer
START_SKEW = 300.0  # seconds: files older than a live writer's start minus this cannot be that writer's


def default_interval() -> float:
    """Heartbeat interval in seconds: ``$SEEKNAL_WRITER_HEARTBEAT_SECONDS``, else 10."""
    raw = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(raw) if raw else 10.0
    except ValueError:
        raise DefinitionError(f"{INTERVAL_ENV}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise DefinitionError(f"{INTERVAL_ENV}={raw!r} must be positive")
    return value


class WriterHeartbeat:
    """Context manager: keeps ``<staging dir>/_heartbeat`` fresh while a write is running.

    Example:
        >>> with WriterHeartbeat("/store/proj/group/_staging/3f2a..."):   # doctest: +SKIP
        ...     stage_and_commit()
    """

    def __init__(self, staging_dir: str, interval: Optional[float] = None,
                 filesystem: Optional[pafs.FileSystem] = None) -> None:
        if filesystem is None:
            filesystem, staging_dir = uri_filesystem(staging_dir)
        self.fs = filesystem
        self.directory = staging_dir.rstrip("/")
        self.path = f"{self.directory}/{HEARTBEAT_FILE}"
        self.interval = default_interval() if interval is None else float(interval)
        if not self.interval > 0:
            raise DefinitionError(f"heartbeat interval must be positive, got {interval!r}")
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def beat(self) -> None:
        """Write the heartbeat now (its modification time is what readers judge)."""
        body = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": self.started,
                           "interval": self.interval, "beat": time.time()}).encode("utf-8")
        with self.fs.open_output_stream(self.path) as out:
            out.write(body)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - a missed beat must not kill the write
                log.warning("could not refresh writer heartbeat %s: %s", self.path, exc)

    def start(self) -> "WriterHeartbeat":
        """Create the staging directory, beat once, then keep beating from a daemon thread."""
        self.fs.create_dir(self.directory, recursive=True)
        self.beat()
        self._thread = threading.Thread(target=self._run, name="seeknal-writer-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating (the file stays until the writer removes its staging directory)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> "WriterHeartbeat":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass(frozen=True)
class _Staging:
    path: str
    newest: float  # newest modification time of anything inside (seconds since the epoch)
    live: bool
    started: Optional[float]


def _mtime(info: pafs.FileInfo) -> float:
    return info.mtime.timestamp() if info.mtime is not None else time.time()  # unknown: treat as new


def _read_heartbeat(fs: pafs.FileSystem, path: str) -> Dict[str, Any]:
    try:
        with fs.open_input_stream(path) as fh:
            data = json.loads(fh.read().decode("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _stagings(fs: pafs.FileSystem, root: str, now: float) -> List[_Staging]:
    base = f"{root}/{STAGING_DIR}"
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    out = []
    for entry in fs.get_file_info(pafs.FileSelector(base, recursive=False)):
        if entry.type != pafs.FileType.Directory:
            continue
        infos = fs.get_file_info(pafs.FileSelector(entry.path, recursive=True, allow_not_found=True))
        times = [i.mtime.timestamp() for i in infos + [entry] if i.mtime is not None]
        newest = max(times) if times else 0.0  # object stores have no directory times
        beat = next((i for i in infos if i.path.rstrip("/") == f"{entry.path}/{HEARTBEAT_FILE}"), None)
        live, started = False, None
        if beat is not None:
            data = _read_heartbeat(fs, beat.path)
            try:
                interval = float(data.get("interval", 0)) or default_interval()
            except (TypeError, ValueError):
                interval = default_interval()
            live = now - _mtime(beat) < STALE_BEATS * interval
            started = data.get("started") if isinstance(data.get("started"), (int, float)) else _mtime(beat)
        out.append(_Staging(entry.path, newest, live, started))
    return out


def referenced_files(table_uri: str, storage_options: Optional[Mapping[str, str]] = None) -> Set[str]:
    """Paths (relative to the table root) of the data files of every version the Delta log still holds."""
    from seeknal_spark.offline import delta_log

    table = delta_log.open_table(table_uri, storage_options=storage_options)
    if table is None:
        return set()
    latest = table.version()
    versions = sorted({int(h["version"]) for h in table.history() if "version" in h} | {latest})
    paths: Set[str] = set()
    for version in versions:
        try:
            table.load_as_version(version)
        except Exception:  # noqa: BLE001 - versions whose commit files were cleaned up are not kept
            continue
        for path in pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist():
            paths.update((path, unquote(path)))  # the log may hold URL-encoded paths
    return paths


def remove_leftovers(table_uri: str, older_than: dt.timedelta, *, dry_run: bool = False,
                     storage_options: Optional[Mapping[str, str]] = None) -> List[str]:
    """Remove dead writers' staging directories and never-committed data files; returns what was (or would be,
    with ``dry_run``) removed, as paths relative to the table root, sorted.

    A staging directory with a live heartbeat is never removed, whatever ``older_than`` is.
    """
    if not isinstance(older_than, dt.timedelta) or older_than < dt.timedelta(0):
        raise DefinitionError(f"older_than must be a non-negative datetime.timedelta, got {older_than!r}")
    from seeknal_spark.offline import delta_log

    fs, root = uri_filesystem(table_uri, storage_options)
    root = root.rstrip("/")
    now = time.time()
    cutoff = now - older_than.total_seconds()
    removed: List[str] = []
    stagings = _stagings(fs, root, now)
    # A directory without a heartbeat may be a writer between creating it and its first beat: give it 3 beats.
    unbeaten_cutoff = min(cutoff, now - STALE_BEATS * default_interval())
    for staging in stagings:
        if not staging.live and staging.newest <= (cutoff if staging.started is not None else unbeaten_cutoff):
            removed.append(staging.path[len(root) + 1:])
            if not dry_run:
                fs.delete_dir(staging.path)
    live_starts = [s.started for s in stagings if s.live and s.started is not None]
    if live_starts:
        cutoff = min(cutoff, min(live_starts) - START_SKEW)
    if delta_log.open_table(table_uri, storage_options=storage_options) is None:
        return sorted(removed)  # no table: every data file would look unreferenced; remove none
    referenced = referenced_files(table_uri, storage_options)
    for entry in fs.get_file_info(pafs.FileSelector(root, recursive=False)):
        if entry.type != pafs.FileType.Directory or not entry.base_name.startswith(f"{PARTITION_COL}="):
            continue
        for info in fs.get_file_info(pafs.FileSelector(entry.path, recursive=True)):
            rel = info.path[len(root) + 1:]
            if (info.type != pafs.FileType.File or info.base_name.startswith((".", "_")) or rel in referenced
                    or _mtime(info) > cutoff):
                continue  # hidden files (e.g. Hadoop .crc) are left alone, as Delta's VACUUM does
            removed.append(rel)
            if not dry_run:
                fs.delete_file(info.path)
    return sorted(removed)


def vacuum_table(table_uri: str, retention: dt.timedelta, dry_run: bool = False,
                 storage_options: Optional[Mapping[str, str]] = None) -> Dict[str, List[str]]:
    """``remove_leftovers`` then Delta VACUUM (files no longer referenced by the latest version, older than
    ``retention``: time travel to versions older than ``retention`` stops working)."""
    from seeknal_spark.offline import delta_log

    if not isinstance(retention, dt.timedelta) or retention < dt.timedelta(0):
        raise DefinitionError(f"retention must be a non-negative datetime.timedelta, got {retention!r}")
    table = delta_log.open_table(table_uri, storage_options=storage_options)
    if table is None:
        raise StoreError(f"there is no Delta table at {table_uri} to vacuum")
    leftovers = remove_leftovers(table_uri, retention, dry_run=dry_run, storage_options=storage_options)
    hours = math.ceil(retention.total_seconds() / 3600)  # never keep less than asked
    vacuumed = table.vacuum(retention_hours=hours, dry_run=dry_run, enforce_retention_duration=False)
    return {"removed_leftovers": leftovers, "vacuumed": sorted(vacuumed)}
