"""Publishing online tables: build a new DuckDB file, then switch the pointer atomically; keep older versions.

A publish never changes the file being served: it writes ``.tmp-<id>.duckdb``, fsyncs it, renames it to
``v<version>-<id>.duckdb``, writes its manifest, and only then replaces ``CURRENT.json`` (``os.replace``). If
anything fails before that switch, the new files are removed and the previous version keeps serving.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from seeknal_spark.definitions import check_name
from seeknal_spark.errors import DefinitionError, StoreError
from seeknal_spark.serving.export import export_sources, write_metadata
from seeknal_spark.serving.location import LocalDir, default_cache_dir
from seeknal_spark.serving.manifest import (
    POINTER,
    fsync_dir,
    fsync_file,
    parse_version,
    sha256_file,
    version_file_name,
    write_json_atomic,
)
from seeknal_spark.serving.online import OnlineFeatures
from seeknal_spark.storage import is_s3, s3_client, split_s3
from seeknal_spark.serving.source import ServingSource
from seeknal_spark.timeutil import TimeLike, check_range, to_utc

__all__ = ["publish_online_table", "list_online_versions"]


def _bounds(as_of: Optional[TimeLike], start: Optional[TimeLike], end: Optional[TimeLike]):
    start_t, end_t = to_utc(start, "feature_start_time"), to_utc(end, "feature_end_time")
    as_of_t = to_utc(as_of, "as_of")
    if as_of_t is None:
        as_of_t = end_t if end_t is not None else dt.datetime.now(dt.timezone.utc)
    upper = min(as_of_t, end_t) if end_t is not None else as_of_t
    check_range(start_t, upper, end_name="feature_end_time / as_of")
    return as_of_t, start_t, upper


def build_file(sources: Sequence[ServingSource], work_dir: str, *, name: str, version: int, as_of: dt.datetime,
               upper: dt.datetime, start: Optional[dt.datetime]) -> Dict[str, Any]:
    """Build a complete online file in ``work_dir`` (temp name); returns its manifest (with ``tmp_path``)."""
    import duckdb

    tmp = os.path.join(work_dir, f".tmp-{uuid.uuid4().hex}.duckdb")
    con = duckdb.connect(tmp)
    try:
        meta = export_sources(con, sources, upper=upper, as_of=as_of, start=start)
        meta.update(name=name, version=version, created_at=dt.datetime.now(dt.timezone.utc).isoformat())
        write_metadata(con, meta)
        con.execute("CHECKPOINT")
        con.close()
        fsync_file(tmp)
        meta.update(sha256=sha256_file(tmp), size=os.path.getsize(tmp))
        meta["tmp_path"] = tmp
        return meta
    except BaseException:
        with contextlib.suppress(Exception):
            con.close()
        for path in (tmp, tmp + ".wal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise


@contextlib.contextmanager
def _dir_lock(directory: str) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(os.path.join(directory, ".publish.lock"), "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _versions(names: Sequence[str]) -> Dict[int, List[str]]:
    found: Dict[int, List[str]] = {}
    for name in names:
        version = parse_version(name)
        if version is not None:
            found.setdefault(version, []).append(name)
    return found


def _to_prune(names: Sequence[str], current: int, keep: int) -> List[str]:
    versions = _versions(names)
    older = sorted((v for v in versions if v < current), reverse=True)
    return [n for v in older[keep:] for n in versions[v]]


def _manifest(meta: Dict[str, Any], file_name: str) -> Dict[str, Any]:
    manifest = {k: v for k, v in meta.items() if k != "tmp_path"}
    manifest["file"] = file_name
    return manifest


def _publish_local(sources, directory: str, name: str, keep: int, as_of, start, upper) -> None:
    os.makedirs(directory, exist_ok=True)
    with _dir_lock(directory):
        names = os.listdir(directory)
        current = None
        if os.path.isfile(os.path.join(directory, POINTER)):
            current = LocalDir(directory).current_manifest()["version"]
        version = max([*_versions(names), int(current or 0)]) + 1
        meta = build_file(sources, directory, name=name, version=version, as_of=as_of, upper=upper, start=start)
        ident = uuid.uuid4().hex[:12]
        file_name = version_file_name(version, ident, "duckdb")
        final = os.path.join(directory, file_name)
        sidecar = os.path.join(directory, version_file_name(version, ident, "json"))
        manifest = _manifest(meta, file_name)
        try:
            os.replace(meta["tmp_path"], final)
            write_json_atomic(sidecar, manifest)
            write_json_atomic(os.path.join(directory, POINTER), manifest)  # the switch
        except BaseException:
            for path in (meta["tmp_path"], final, sidecar):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            raise
        for stale in _to_prune(os.listdir(directory), version, keep):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, stale))
        fsync_dir(directory)


_MAX_CLAIMS = 1000


def _claims_prefix(prefix: str, name: str) -> str:
    """Where version claims of table ``name`` live: beside the tables (a dot cannot start a table name)."""
    return f"{prefix}/.claims/{name}" if prefix else f".claims/{name}"


def _claim_version(client: Any, bucket: str, claims_at: str, names: Sequence[str], claims: Sequence[str]) -> int:
    """Reserve the next version number with a conditional create (``If-None-Match: *``) of
    ``<prefix>/.claims/<name>/v<version>``: two publishers can never both get the same number."""
    from seeknal_spark.serving import remote

    taken = [int(c[1:]) for c in claims if c[:1] == "v" and c[1:].isdigit()]
    version = max(list(_versions(names)) + taken + [0]) + 1
    for _ in range(_MAX_CLAIMS):
        try:
            remote.create_json(client, {"version": version, "pid": os.getpid(), "claimed_at":
                                        dt.datetime.now(dt.timezone.utc).isoformat()},
                               bucket, f"{claims_at}/v{version:06d}")
            return version
        except remote.PreconditionFailed:
            version += 1
    raise StoreError(f"could not reserve a version in s3://{bucket}/{claims_at} after {_MAX_CLAIMS} attempts")


def _switch_pointer(client: Any, bucket: str, base: str, manifest: Dict[str, Any]) -> bool:
    """Point CURRENT.json at ``manifest`` unless a newer version is already current (compare-and-swap on the
    pointer's ETag, so a slower publisher never moves the pointer back). Returns whether it switched."""
    from seeknal_spark.serving import remote
    from seeknal_spark.serving.manifest import load_manifest

    key = f"{base}/{POINTER}"
    for _ in range(_MAX_CLAIMS):
        text, etag = remote.get_json_etag(client, bucket, key)
        if text is not None and etag is not None:
            try:
                current = int(load_manifest(text, f"s3://{bucket}/{key}")["version"])
            except StoreError:
                current = -1  # a broken pointer is replaced
            if current > manifest["version"]:
                return False
        try:
            remote.replace_json(client, manifest, bucket, key, etag if text is not None else None)
            return True
        except remote.PreconditionFailed:
            continue
    raise StoreError(f"could not switch s3://{bucket}/{key}: it keeps changing")


def _publish_s3(sources, target: str, name: str, keep: int, as_of, start, upper,
                storage_options: Optional[Mapping[str, str]], cache_dir: Optional[str]) -> str:
    from seeknal_spark.serving import remote

    bucket, prefix = split_s3(target)
    base = f"{prefix}/{name}" if prefix else name
    client = s3_client(storage_options)
    claims_at = _claims_prefix(prefix, name)
    names = [k.rsplit("/", 1)[-1] for k in remote.list_keys(client, bucket, base + "/")]
    claims = [k.rsplit("/", 1)[-1] for k in remote.list_keys(client, bucket, claims_at + "/")]
    version = _claim_version(client, bucket, claims_at, names, claims)
    cache = os.path.abspath(cache_dir or default_cache_dir())
    os.makedirs(cache, exist_ok=True)
    meta = build_file(sources, cache, name=name, version=version, as_of=as_of, upper=upper, start=start)
    ident = uuid.uuid4().hex[:12]
    file_name = version_file_name(version, ident, "duckdb")
    manifest = _manifest(meta, file_name)
    try:
        remote.put_file(client, meta["tmp_path"], bucket, f"{base}/{file_name}")
        remote.put_json(client, manifest, bucket, f"{base}/{version_file_name(version, ident, 'json')}")
        _switch_pointer(client, bucket, base, manifest)  # the switch (conditional PUT)
        os.replace(meta["tmp_path"], os.path.join(cache, f"{manifest['sha256']}.duckdb"))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(meta["tmp_path"])
    names = [k.rsplit("/", 1)[-1] for k in remote.list_keys(client, bucket, base + "/")]
    stale = _to_prune(names, version, keep)
    if stale:
        pruned = sorted({v for v in map(parse_version, stale) if v is not None})
        remote.delete_keys(client, bucket, [f"{base}/{n}" for n in stale]
                           + [f"{claims_at}/v{v:06d}" for v in pruned if f"v{v:06d}" in claims])
    return f"s3://{bucket}/{base}"


def publish_online_table(sources: Union[ServingSource, Sequence[ServingSource]], name: str, *,
                         as_of: Optional[TimeLike] = None, start: Optional[TimeLike] = None,
                         end: Optional[TimeLike] = None, store_root: Optional[str] = None,
                         target: Optional[str] = None, keep: int = 3,
                         storage_options: Optional[Mapping[str, str]] = None, cache_dir: Optional[str] = None,
                         index: str = "memory") -> OnlineFeatures:
    """Export the latest row per key of each source into a new version of online table ``name`` and serve it.

    Args:
        sources: the lookups to serve (one ``ServingSource`` per feature group).
        name: online table name (letters, digits, ``_``, ``-``); becomes a directory of the online store.
        as_of: serve rows with event time <= as_of (default: ``end``, else now); TTLs count back from it.
        start: serve only rows with event time >= start.
        end: serve only rows with event time <= end.
        store_root: local online store root (default ``config.default_online_store_path()``).
        target: ``"s3://bucket/prefix"`` to publish to S3 (as ``<prefix>/<name>/``) instead of the local store.
        keep: how many older versions to keep besides the current one.
        storage_options: S3 settings for ``target`` (``AWS_ENDPOINT_URL``, credentials, ``AWS_REGION``).
        cache_dir: local cache of S3 files (default ``<online store>/.s3_cache``).
        index: lookup mode of the returned table (see ``OnlineFeatures.open``).

    Returns:
        The published table, opened and ready to serve.

    Example:
        >>> src = ServingSource.from_feature_group(FeatureGroup("user_spend").get_or_create())  # doctest: +SKIP
        >>> table = publish_online_table([src], "user_features")                                # doctest: +SKIP
        >>> table.get_features(keys=[{"user_id": 1}])                                          # doctest: +SKIP
    """
    check_name(name, "online table name")
    sources = [sources] if isinstance(sources, ServingSource) else list(sources)
    for src in sources:
        if not isinstance(src, ServingSource):
            raise DefinitionError(f"publish_online_table takes ServingSource objects, got {type(src).__name__}")
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
        raise DefinitionError(f"keep must be a non-negative integer, got {keep!r}")
    as_of_t, start_t, upper = _bounds(as_of, start, end)
    if target is not None and is_s3(target):
        uri = _publish_s3(sources, target, name, keep, as_of_t, start_t, upper, storage_options, cache_dir)
        return OnlineFeatures.open(uri, storage_options=storage_options, cache_dir=cache_dir, index=index)
    root = target or store_root
    if root is None:
        from seeknal_spark.config import default_online_store_path

        root = default_online_store_path()
    directory = os.path.join(os.path.abspath(root), name)
    _publish_local(sources, directory, name, keep, as_of_t, start_t, upper)
    return OnlineFeatures.open(directory, index=index)


def list_online_versions(name_or_path: str, *, store_root: Optional[str] = None) -> List[Dict[str, Any]]:
    """Manifests of the kept versions of a local online table, oldest first (``current`` marks the served one)."""
    from seeknal_spark.serving.location import resolve_location

    location = resolve_location(name_or_path, store_root=store_root)
    if not isinstance(location, LocalDir):
        raise DefinitionError("list_online_versions works on a local online table name or directory")
    current = location.current_manifest()["version"]
    out = []
    for version in sorted(_versions(os.listdir(location.directory))):
        manifest = location.version_manifest(version)
        out.append({"version": version, "file": manifest["file"], "sha256": manifest["sha256"],
                    "as_of": manifest.get("as_of"), "created_at": manifest.get("created_at"),
                    "current": version == current})
    return out
