"""The single-writer rule of Delta's JVM writer on S3, enforced with a lease object in the table directory.

Delta Lake's default LogStore for S3 (``S3SingleDriverLogStore``) makes a commit atomic only within one Spark
driver: it checks that ``_delta_log/<n>.json`` does not exist yet and then writes it, so two drivers committing
the same version to S3 can both succeed and one commit silently replaces the other (a lost write). Delta's own
answer is the ``S3DynamoDBLogStore`` (``io.delta:delta-storage-s3-dynamodb`` plus a DynamoDB table), a session
setting only the user can make; Databricks commits through its own service. Everywhere else the native writer
(:mod:`seeknal_spark.offline.write_native`) takes this lease for the whole write, so a second native writer of the
same table fails fast with :class:`~seeknal_spark.errors.ConcurrentWriteError` instead of racing.

The lease is the S3 object ``<table>/_seeknal_writer_lease.json`` (a ``_`` name: Delta readers and VACUUM ignore
it), written with S3 conditional requests through boto3:

- **acquire**: create it with ``If-None-Match: *`` (exactly one creator wins);
- **heartbeat**: a daemon thread rewrites it every ``ttl / 4`` with ``If-Match`` on its last ETag; a lost
  condition means another writer took it over, and the write refuses to commit (:meth:`WriterLease.ensure_held`);
- **expiry**: a lease is stale when the S3 server says it was last written more than ``ttl`` seconds ago (its
  ``Last-Modified`` against the ``Date`` of the same response: one clock, the server's, so client clock skew plays
  no part). A stale lease (its writer crashed or was killed) is taken over with ``If-Match`` on its ETag, so of
  several writers finding it stale exactly one wins;
- **release**: a conditional delete (``If-Match``) at the end of the write.

``ttl`` is ``$SEEKNAL_WRITER_LEASE_SECONDS`` (default 60): after a crash the table is writable again ``ttl``
seconds after the last heartbeat. Like every lease it assumes a writer is not frozen longer than ``ttl`` between
its last check and its commit (the check runs right before Delta's commit command starts).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Dict, Mapping, Optional, Tuple

from seeknal_spark.errors import ConcurrentWriteError, DefinitionError
from seeknal_spark.storage import split_s3, store_error

__all__ = ["WriterLease", "LEASE_NAME", "lease_seconds", "SINGLE_WRITER_RULE"]

log = logging.getLogger(__name__)

LEASE_NAME = "_seeknal_writer_lease.json"
DEFAULT_TTL = 60.0
SINGLE_WRITER_RULE = ("Delta's JVM writer on S3 (S3SingleDriverLogStore) is safe for one writer at a time, so "
                      "seeknal_spark lets one native writer per table hold a lease; run writes of a table one "
                      "after another, use the portable path (delta-rs, conditional commits) for concurrent "
                      "writers, or configure Delta's S3DynamoDBLogStore in the session")
_CONFLICT_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
_MISSING_CODES = ("NoSuchKey", "404", "NotFound")


def lease_seconds() -> float:
    """``$SEEKNAL_WRITER_LEASE_SECONDS`` (default 60): how long a lease lives without a heartbeat."""
    raw = os.environ.get("SEEKNAL_WRITER_LEASE_SECONDS")
    if not raw:
        return DEFAULT_TTL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DefinitionError(f"SEEKNAL_WRITER_LEASE_SECONDS={raw!r} is not a positive number of seconds")
    return value


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class WriterLease:
    """One writer's lease on an S3 table (a context manager: acquire on enter, release on exit).

    Example:
        >>> with WriterLease("s3://bucket/store/proj/group", {"AWS_REGION": "eu-west-1"}) as lease:  # doctest: +SKIP
        ...     lease.ensure_held()          # right before committing
    """

    def __init__(self, table_uri: str, storage_options: Optional[Mapping[str, str]] = None,
                 ttl: Optional[float] = None, client: Any = None) -> None:
        self.table_uri = table_uri
        self.bucket, prefix = split_s3(table_uri)
        self.key = f"{prefix}/{LEASE_NAME}" if prefix else LEASE_NAME
        self.ttl = float(ttl) if ttl is not None else lease_seconds()
        self._options = storage_options
        if client is None:
            from seeknal_spark.storage import s3_client

            client = s3_client(storage_options)
        self._client = client
        self.owner = uuid.uuid4().hex
        self._etag: Optional[str] = None
        self._renewed = 0.0  # time.monotonic() before the last successful write of the lease
        self._lost: Optional[str] = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- S3 calls ----------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "table": self.table_uri, "ttl_seconds": self.ttl,
                           "written_at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode("utf-8")

    def _put(self, **condition: str) -> None:
        """Write the lease under ``condition`` (remembering its ETag); _ConditionLost when the condition fails."""
        started = time.monotonic()
        try:
            out = self._client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(),
                                          ContentType="application/json", **condition)
        except Exception as exc:  # noqa: BLE001 - classified below
            if _code(exc) in _CONFLICT_CODES or (condition.get("IfMatch") and _code(exc) in _MISSING_CODES):
                raise _ConditionLost() from exc
            raise store_error(exc, self.table_uri, "write the writer lease (S3 conditional writes, If-None-Match "
                                                   "and If-Match, are required)", self._options) from exc
        self._etag, self._renewed = out.get("ETag"), started

    def _read(self) -> Tuple[Optional[Dict[str, Any]], Optional[str], Optional[float]]:
        """(holder, ETag, age in seconds by the server's clock) of the current lease; Nones when there is none."""
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:  # noqa: BLE001 - classified below
            if _code(exc) in _MISSING_CODES:
                return None, None, None
            raise store_error(exc, self.table_uri, "read the writer lease", self._options) from exc
        try:
            holder = json.loads(obj["Body"].read().decode("utf-8"))
        except ValueError:
            holder = {}
        date = obj.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        modified = obj.get("LastModified")
        age = None
        if date and modified is not None:
            age = (email.utils.parsedate_to_datetime(date) - modified).total_seconds()
        return holder, obj.get("ETag"), age

    # -- the lease ---------------------------------------------------------------------------------------------
    def acquire(self) -> "WriterLease":
        """Take the lease; ConcurrentWriteError (naming the table, the holder and the rule) when it is held."""
        for _ in range(3):  # the holder may release between our create and our read
            try:
                self._put(IfNoneMatch="*")
                break
            except _ConditionLost:
                pass
            holder, etag, age = self._read()
            if holder is None:
                continue
            if age is None or age <= self.ttl:
                who = f"host {holder.get('host')!r} pid {holder.get('pid')}" if holder else "another writer"
                raise ConcurrentWriteError(
                    f"another native writer ({who}) is writing {self.table_uri} (its lease "
                    f"{LEASE_NAME} was renewed {age if age is not None else '?'} s ago). {SINGLE_WRITER_RULE}. "
                    f"Re-run this write when it is done; a crashed writer's lease expires {self.ttl:g} s after its "
                    "last heartbeat. Nothing was written.")
            try:  # stale: its writer stopped heartbeating; exactly one taker wins
                self._put(IfMatch=etag)
                log.warning("took over the stale writer lease of %s (last renewed %.0f s ago by %s)",
                            self.table_uri, age, holder.get("host"))
                break
            except _ConditionLost:
                continue
        else:
            raise ConcurrentWriteError(f"could not take the writer lease of {self.table_uri}: other writers keep "
                                       f"taking it. {SINGLE_WRITER_RULE}. Nothing was written.")
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"seeknal-lease-{self.owner[:8]}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            with self._lock:
                if self._lost or self._stop.is_set():
                    return
                try:
                    self._put(IfMatch=self._etag or "")
                except _ConditionLost:
                    self._lost = "another writer took over this write's lease (its heartbeat was late)"
                    return
                except Exception as exc:  # noqa: BLE001 - retried at the next beat; ensure_held decides
                    log.warning("writer lease heartbeat of %s failed (retrying): %s", self.table_uri, exc)

    def ensure_held(self) -> None:
        """Raise ConcurrentWriteError unless this writer still holds the lease (call right before committing)."""
        with self._lock:
            lost = self._lost
            if lost is None and time.monotonic() - self._renewed > self.ttl:
                lost = f"its heartbeat has not reached S3 for more than {self.ttl:g} s"
        if lost is not None:
            raise ConcurrentWriteError(f"this write no longer holds the writer lease of {self.table_uri}: {lost}. "
                                       f"{SINGLE_WRITER_RULE}. Nothing was written; re-run the write.")

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still this writer's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._lost or self._etag is None:
                return
            try:
                self._client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self._etag)
            except Exception as exc:  # noqa: BLE001 - an unreleased lease only expires later
                if _code(exc) not in _CONFLICT_CODES + _MISSING_CODES:
                    log.warning("could not release the writer lease of %s (it expires in %g s): %s",
                                self.table_uri, self.ttl, exc)
            self._etag = None

    def __enter__(self) -> "WriterLease":
        return self.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


class _ConditionLost(Exception):
    """A conditional lease write found the object changed (or gone)."""
