"""The single-writer rule of Delta's JVM writer on S3, enforced with a lease object in the table directory, and
the rule that keeps portable (delta-rs) commits out of a native writer's way.

Delta Lake's default LogStore for S3 (``S3SingleDriverLogStore``) makes a commit atomic only within one Spark
driver: it lists ``_delta_log/`` to check that ``<n>.json`` does not exist yet and then writes it with Hadoop's
``create(path, overwrite=false)``, which on S3A (hadoop-aws 3.5 included) is a check followed by an
*unconditional* PUT. So two drivers committing the same version can both succeed and one commit silently replaces
the other (a lost write), and the same holds for a native writer and a portable one: the portable commit (an S3
conditional put, ``If-None-Match``) can land between the native writer's check and its PUT, which then overwrites
it. Delta's own answer is the ``S3DynamoDBLogStore`` (``io.delta:delta-storage-s3-dynamodb`` plus a DynamoDB
table), a session setting only the user can make; Databricks commits through its own service. Everywhere else:

- the native writer (:mod:`seeknal_spark.offline.write_native`) holds this module's :class:`WriterLease` for the
  whole write, so a second native writer of the same table fails fast with
  :class:`~seeknal_spark.errors.ConcurrentWriteError` instead of racing;
- a portable writer (:mod:`seeknal_spark.offline.write_portable`) holds a :class:`PortableCommit` marker across each
  delta-rs commit, and refuses (the same error) while another writer's fresh lease is held; after taking the
  lease, the native writer waits until no fresh marker is left before it plans and commits.

The lease is the S3 object ``<table>/_seeknal_writer_lease.json``, a marker ``<table>/_seeknal_portable_commits/
<id>.json`` (``_`` names: Delta readers and VACUUM ignore them), written with S3 conditional requests through boto3:

- **acquire**: create the lease with ``If-None-Match: *`` (exactly one creator wins); a marker has its own key;
- **heartbeat**: a daemon thread rewrites it every ``ttl / 4`` with ``If-Match`` on its last ETag; a lost
  condition means another writer took it over (or removed a stale marker), and the write refuses to commit
  (:meth:`WriterLease.ensure_held`);
- **expiry**: a lease or marker is stale when the S3 server says it was last written more than ``ttl`` seconds ago
  (its ``Last-Modified`` against the ``Date`` of the same response: one clock, the server's, so client clock skew
  plays no part). A stale lease (its writer crashed or was killed) is taken over with ``If-Match`` on its ETag, so
  of several writers finding it stale exactly one wins; stale markers are ignored and removed;
- **release**: a conditional delete (``If-Match``) at the end of the write; a marker (a key of its own writer) is
  deleted at the end of its commit.

Why a native and a portable commit never overlap: each writer first writes its own object (lease, marker) and then
reads the other kind (the marker listing, the lease); S3 is strongly consistent, so if the native writer's listing
missed a marker, that marker was written after the lease and the portable writer's read of the lease sees it.
Portable writers never wait for each other: each has its own marker, and their commits stay conditional puts.

``ttl`` is ``$SEEKNAL_WRITER_LEASE_SECONDS`` (default 60): after a crash the table is writable again ``ttl``
seconds after the last heartbeat. Like every lease it assumes a writer is not frozen longer than ``ttl`` between
its last check and its commit (the check runs right before the commit starts).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, ContextManager, Dict, List, Mapping, Optional, Tuple

from seeknal_spark.errors import ConcurrentWriteError, DefinitionError
from seeknal_spark.storage import split_s3, store_error

__all__ = ["WriterLease", "PortableCommit", "portable_commit", "refuse_if_native_writer", "LEASE_NAME",
           "COMMITS_DIR", "lease_seconds", "SINGLE_WRITER_RULE"]

log = logging.getLogger(__name__)

LEASE_NAME = "_seeknal_writer_lease.json"
COMMITS_DIR = "_seeknal_portable_commits"
DEFAULT_TTL = 60.0
_POLL = 0.25  # seconds between listings while a native writer waits for portable commits to finish
SINGLE_WRITER_RULE = ("Delta's JVM writer on S3 (S3SingleDriverLogStore) is safe for one writer at a time, so "
                      "seeknal_spark lets one native writer per table hold a lease, and portable (delta-rs) writers "
                      "do not commit while it is held; run native writes of a table one after another, use the "
                      "portable path (delta-rs, conditional commits) for concurrent writers, or configure Delta's "
                      "S3DynamoDBLogStore in the session")
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


class _Lease:
    """One writer's S3 object in a table directory: conditional writes, a heartbeat thread, a conditional release."""

    owner = ""  # set by the subclasses before this __init__ (a marker's key holds it)
    what = "writer lease"
    shared_key = True  # others may write this key: release it with If-Match on this writer's ETag

    def __init__(self, table_uri: str, name: str, storage_options: Optional[Mapping[str, str]] = None,
                 ttl: Optional[float] = None, client: Any = None) -> None:
        self.table_uri = table_uri
        self.bucket, self.prefix = split_s3(table_uri)
        self.key = self._key(name)
        self.ttl = float(ttl) if ttl is not None else lease_seconds()
        self._options = storage_options
        if client is None:
            from seeknal_spark.storage import s3_client

            client = s3_client(storage_options)
        self._client = client
        self._etag: Optional[str] = None
        self._renewed = 0.0  # time.monotonic() before the last successful write of the object
        self._lost: Optional[str] = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    # -- S3 calls ----------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "table": self.table_uri, "ttl_seconds": self.ttl,
                           "written_at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode("utf-8")

    def _put(self, **condition: str) -> None:
        """Write the object under ``condition`` (remembering its ETag); _ConditionLost when the condition fails."""
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

    def _read(self, key: str) -> Tuple[Optional[Dict[str, Any]], Optional[str], Optional[float]]:
        """(holder, ETag, age in seconds by the server's clock) of the object at ``key``; Nones when there is none."""
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - classified below
            if _code(exc) in _MISSING_CODES:
                return None, None, None
            raise store_error(exc, self.table_uri, "read the writer lease", self._options) from exc
        try:
            holder = json.loads(obj["Body"].read().decode("utf-8"))
        except ValueError:
            holder = {}
        return holder, obj.get("ETag"), _age(obj, obj.get("LastModified"))

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"seeknal-lease-{self.owner[:8]}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            with self._lock:
                if self._lost or self._stop.is_set():
                    return
                try:
                    self._put(IfMatch=self._etag or "")
                except _ConditionLost:
                    self._lost = (f"another writer took over or removed this write's {self.what} "
                                  "(its heartbeat was late)")
                    return
                except Exception as exc:  # noqa: BLE001 - retried at the next beat; ensure_held decides
                    log.warning("writer lease heartbeat of %s failed (retrying): %s", self.table_uri, exc)

    def ensure_held(self) -> None:
        """Raise ConcurrentWriteError unless this writer still holds its object (call right before committing)."""
        with self._lock:
            lost = self._lost
            if lost is None and time.monotonic() - self._renewed > self.ttl:
                lost = f"its heartbeat has not reached S3 for more than {self.ttl:g} s"
        if lost is not None:
            raise ConcurrentWriteError(f"this write no longer holds its {self.what} of {self.table_uri}: {lost}. "
                                       f"{SINGLE_WRITER_RULE}. Nothing was written; re-run the write.")

    def release(self) -> None:
        """Stop the heartbeat and delete the object if it is still this writer's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._lost or self._etag is None:
                return
            self._delete(self.key, self._etag if self.shared_key else None)
            self._etag = None

    def _delete(self, key: str, etag: Optional[str]) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key, **({"IfMatch": etag} if etag else {}))
        except Exception as exc:  # noqa: BLE001 - an object left behind only expires later
            if _code(exc) not in _CONFLICT_CODES + _MISSING_CODES:
                log.warning("could not delete %s of %s (it expires in %g s): %s", key, self.table_uri, self.ttl, exc)

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


class WriterLease(_Lease):
    """A native writer's lease on an S3 table (a context manager: acquire on enter, release on exit).

    Example:
        >>> with WriterLease("s3://bucket/store/proj/group", {"AWS_REGION": "eu-west-1"}) as lease:  # doctest: +SKIP
        ...     lease.ensure_held()          # right before committing
    """

    def __init__(self, table_uri: str, storage_options: Optional[Mapping[str, str]] = None,
                 ttl: Optional[float] = None, client: Any = None) -> None:
        self.owner = uuid.uuid4().hex
        super().__init__(table_uri, LEASE_NAME, storage_options, ttl, client)

    def acquire(self) -> "WriterLease":
        """Take the lease, then wait for running portable commits to end; ConcurrentWriteError (naming the table,
        the holder and the rule) when the lease is held."""
        for _ in range(3):  # the holder may release between our create and our read
            try:
                self._put(IfNoneMatch="*")
                break
            except _ConditionLost:
                pass
            holder, etag, age = self._read(self.key)
            if holder is None:
                continue
            if age is None or age <= self.ttl:
                raise ConcurrentWriteError(
                    f"another native writer ({_who(holder)}) is writing {self.table_uri} (its lease "
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
        self._start_heartbeat()
        try:
            self._wait_for_portable_commits()
        except BaseException:
            self.release()
            raise
        return self

    def _wait_for_portable_commits(self) -> None:
        """Return once no fresh portable commit marker is left (new ones see this lease and refuse)."""
        deadline = time.monotonic() + self.ttl
        waited = False
        while True:
            fresh = []
            for key, etag, age in self._markers():
                if age is not None and age > self.ttl:  # its writer died mid-commit
                    self._delete(key, etag)
                else:
                    fresh.append(key)
            if not fresh:
                return
            if time.monotonic() > deadline:
                raise ConcurrentWriteError(
                    f"portable writers kept committing to {self.table_uri} for {self.ttl:g} s after this native "
                    f"write took its writer lease ({len(fresh)} commit(s) running). {SINGLE_WRITER_RULE}. "
                    "Nothing was written; re-run the write.")
            if not waited:
                log.info("waiting for %d portable commit(s) to %s to finish", len(fresh), self.table_uri)
                waited = True
            time.sleep(_POLL)

    def _markers(self) -> List[Tuple[str, Optional[str], Optional[float]]]:
        """(key, ETag, age by the server's clock) of every portable commit marker of the table."""
        found = []
        token: Dict[str, str] = {}
        while True:
            try:
                page = self._client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(COMMITS_DIR) + "/",
                                                    **token)
            except Exception as exc:  # noqa: BLE001 - classified by store_error
                raise store_error(exc, self.table_uri, "list the portable commit markers", self._options) from exc
            for obj in page.get("Contents", ()):
                found.append((obj["Key"], obj.get("ETag"), _age(page, obj.get("LastModified"))))
            if not page.get("IsTruncated"):
                return found
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def __enter__(self) -> "WriterLease":
        return self.acquire()


class PortableCommit(_Lease):
    """A portable writer's marker, held across one delta-rs commit to an S3 table (a context manager).

    Refuses with ConcurrentWriteError while a native writer's fresh lease is held; native writers wait for it.
    """

    what = "portable commit marker"
    shared_key = False  # its own key: a plain delete releases it (also where S3 lacks conditional deletes)

    def __init__(self, table_uri: str, storage_options: Optional[Mapping[str, str]] = None,
                 ttl: Optional[float] = None, client: Any = None) -> None:
        self.owner = uuid.uuid4().hex
        super().__init__(table_uri, f"{COMMITS_DIR}/{self.owner}.json", storage_options, ttl, client)

    def acquire(self) -> "PortableCommit":
        """Write the marker, then refuse if a native writer holds a fresh lease (the marker is removed again)."""
        self._put(IfNoneMatch="*")
        self._start_heartbeat()
        try:
            _refuse_if_leased(self, self._read(self._key(LEASE_NAME)))
        except BaseException:
            self.release()
            raise
        return self

    def __enter__(self) -> "PortableCommit":
        return self.acquire()


class _NotS3:
    """What :func:`portable_commit` gives for tables that are not on S3: nothing to hold."""

    def ensure_held(self) -> None:
        return None


def portable_commit(table_uri: str, storage_options: Optional[Mapping[str, str]] = None) -> ContextManager[Any]:
    """The marker a portable writer holds across one delta-rs commit: a :class:`PortableCommit` on S3 tables (call
    its ``ensure_held()`` right before committing), nothing elsewhere (local commits are atomic renames)."""
    from seeknal_spark.storage import is_s3

    return PortableCommit(table_uri, storage_options) if is_s3(table_uri) else contextlib.nullcontext(_NotS3())


def refuse_if_native_writer(table_uri: str, storage_options: Optional[Mapping[str, str]] = None) -> None:
    """ConcurrentWriteError when a native writer holds a fresh lease on the S3 table ``table_uri`` (a portable
    write's early check, before any Spark job; :class:`PortableCommit` decides at the commit)."""
    from seeknal_spark.storage import is_s3

    if is_s3(table_uri):
        probe = _Lease(table_uri, LEASE_NAME, storage_options)
        _refuse_if_leased(probe, probe._read(probe.key))


def _refuse_if_leased(lease: _Lease, found: Tuple[Optional[Dict[str, Any]], Optional[str], Optional[float]]
                      ) -> None:
    holder, _, age = found
    if holder is not None and (age is None or age <= lease.ttl):
        raise ConcurrentWriteError(
            f"a native (Delta JVM) writer ({_who(holder)}) is writing {lease.table_uri} (its lease {LEASE_NAME} was "
            f"renewed {age if age is not None else '?'} s ago), and a portable commit could be overwritten by it. "
            f"{SINGLE_WRITER_RULE}. Re-run this write when it is done; a crashed writer's lease expires "
            f"{lease.ttl:g} s after its last heartbeat. Nothing was written.")


def _who(holder: Dict[str, Any]) -> str:
    return f"host {holder.get('host')!r} pid {holder.get('pid')}" if holder else "another writer"


def _age(response: Dict[str, Any], modified: Optional[dt.datetime]) -> Optional[float]:
    """Seconds since ``modified`` by the ``Date`` of the S3 response that reported it (None without either)."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date or modified is None:
        return None
    return (email.utils.parsedate_to_datetime(date) - modified).total_seconds()


class _ConditionLost(Exception):
    """A conditional lease write found the object changed (or gone)."""
