"""Where a store lives and how each client reaches it: local paths and S3, one rule per concern (no Spark here).

Users write ``s3://bucket/prefix``; each client gets the form it needs:

- Spark/Hadoop reads and writes ``s3a://`` (:func:`hadoop_uri`) with the hadoop-aws jars in the session
  (``python scripts/jars.py s3-hadoop350``); connection settings go **per read/write** as ``fs.s3a.*`` options
  (:func:`hadoop_options`, for ``spark.read.options(**o)`` / ``df.write.options(**o)``); the session is never
  reconfigured. Spark redacts option values whose keys match ``spark.redaction.regex`` (secret, token,
  access.key) in plans and the UI. Hadoop caches one S3A file system per bucket and JVM: the first settings
  used for a bucket in a session are the ones it keeps.
- delta-rs, pyarrow and boto3 use ``s3://`` (:func:`object_store_uri`) and the delta-rs/object_store keys
  (:func:`delta_rs_options`, :func:`filesystem`).

Storage options are the delta-rs keys, case-insensitive: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``. Without them every client
uses the standard AWS chain (environment variables, profile, instance role). Secrets never appear in a repr or
an error message (:class:`StorageOptions`, :func:`redact`, :func:`store_error`).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from seeknal_spark.errors import DefinitionError, StoreError

__all__ = ["StorageOptions", "s3_client", "as_options", "is_s3", "hadoop_uri", "object_store_uri", "split_s3", "fs_path", "bucket_of",
           "hadoop_options", "delta_rs_options", "filesystem", "redact", "store_error", "check_bucket",
           "SECRET_KEYS"]

SECRET_KEYS = frozenset({"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"})
_S3_SCHEMES = ("s3://", "s3a://", "s3n://")
_TRUE = ("1", "true", "yes", "on")


class StorageOptions(Mapping[str, str]):
    """Immutable storage options with upper-cased keys; its repr and str never show credentials."""

    __slots__ = ("_items",)

    def __init__(self, options: Optional[Mapping[str, Any]] = None) -> None:
        items: Dict[str, str] = {}
        for key, value in (options or {}).items():
            if value is None:
                continue
            if not isinstance(key, str) or not key:
                raise DefinitionError(f"storage option names must be non-empty strings, not {key!r}")
            items[key.upper()] = str(value)
        object.__setattr__(self, "_items", items)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("StorageOptions is immutable")

    def __reduce__(self) -> Tuple[Any, ...]:  # copy, deepcopy and pickle rebuild through __init__
        return (StorageOptions, (dict(self._items),))

    def __getitem__(self, key: str) -> str:
        return self._items[key.upper()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.upper() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == {str(k).upper(): str(v) for k, v in other.items()}

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items.items())))

    def __repr__(self) -> str:
        shown = {k: ("***" if k in SECRET_KEYS else v) for k, v in sorted(self._items.items())}
        return f"StorageOptions({shown!r})"

    __str__ = __repr__

    def secrets(self) -> Tuple[str, ...]:
        """The credential values (what must never be printed)."""
        return tuple(v for k, v in self._items.items() if k in SECRET_KEYS and v)


def as_options(options: Optional[Mapping[str, Any]]) -> StorageOptions:
    """``options`` as :class:`StorageOptions` (None -> empty)."""
    return options if isinstance(options, StorageOptions) else StorageOptions(options)


def is_s3(uri: Any) -> bool:
    """True for ``s3://``, ``s3a://`` and ``s3n://`` URIs."""
    return isinstance(uri, str) and uri.startswith(_S3_SCHEMES)


def is_local(uri: str) -> bool:
    """True for a local path or a ``file:`` URI (a file system whose file statuses cost microseconds)."""
    from urllib.parse import urlparse

    return urlparse(uri).scheme in ("", "file")


def hadoop_uri(uri: str) -> str:
    """The URI Spark/Hadoop reads: ``s3://b/p`` -> ``s3a://b/p`` (other URIs unchanged)."""
    return "s3a://" + uri.split("://", 1)[1] if is_s3(uri) else uri


def object_store_uri(uri: str) -> str:
    """The URI delta-rs, pyarrow and boto3 read: ``s3a://b/p`` -> ``s3://b/p`` (other URIs unchanged)."""
    return "s3://" + uri.split("://", 1)[1] if is_s3(uri) else uri


def split_s3(uri: str) -> Tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")`` (no trailing slash); refuses bad buckets and ``..``."""
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    if len(bucket) < 3:
        raise DefinitionError(f"S3 URI {uri!r} has no valid bucket name (3 or more characters)")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise DefinitionError(f"S3 URI {uri!r} may not contain '.' or '..' path segments")
    return bucket, "/".join(parts)


def fs_path(uri: str) -> str:
    """The path pyarrow's S3 file system names an S3 object by: ``bucket/key`` (other URIs unchanged)."""
    return "/".join(p for p in split_s3(uri) if p) if is_s3(uri) else uri


def bucket_of(uri: str) -> Optional[str]:
    """The bucket of an S3 URI, None for other URIs."""
    return uri.split("://", 1)[1].partition("/")[0] if is_s3(uri) else None


# Connection settings (never credentials) taken from the environment under the explicit options, so every
# client (Hadoop included, which reads no AWS_ENDPOINT_URL itself) reaches the same endpoint.
_ENV_SETTINGS = (("AWS_ENDPOINT_URL", ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")),
                 ("AWS_REGION", ("AWS_REGION", "AWS_DEFAULT_REGION")), ("AWS_ALLOW_HTTP", ("AWS_ALLOW_HTTP",)))


def _effective(options: Optional[Mapping[str, Any]]) -> StorageOptions:
    """Explicit options over the environment's endpoint, region and AWS_ALLOW_HTTP (credentials: each
    client's own chain)."""
    import os

    merged: Dict[str, str] = {}
    for key, names in _ENV_SETTINGS:
        value = next((os.environ[n] for n in names if os.environ.get(n)), None)
        if value:
            merged[key] = value
    merged.update(as_options(options))
    return StorageOptions(merged)


def _endpoint(opts: StorageOptions) -> Optional[str]:
    return opts.get("AWS_ENDPOINT_URL") or opts.get("AWS_ENDPOINT") or opts.get("ENDPOINT_URL")


def _allow_http(opts: StorageOptions) -> bool:
    endpoint = _endpoint(opts) or ""
    return opts.get("AWS_ALLOW_HTTP", "").lower() in _TRUE or endpoint.startswith("http://")


def hadoop_options(options: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """Per-operation ``fs.s3a.*`` options for Spark's DataFrameReader/Writer from delta-rs-style options.

    Endpoint (with path-style access, as custom endpoints need), TLS from ``AWS_ALLOW_HTTP`` or the endpoint's
    scheme, region, and explicit credentials with the matching provider (temporary ones with a session token).
    Without options, the environment's ``AWS_ENDPOINT_URL``/``AWS_REGION``/``AWS_ALLOW_HTTP`` apply and
    hadoop-aws uses its default credential chain (environment, profile, instance role).
    """
    opts = _effective(options)
    out: Dict[str, str] = {}
    endpoint = _endpoint(opts)
    if endpoint:
        out["fs.s3a.endpoint"] = endpoint
        out["fs.s3a.path.style.access"] = "true"
        out["fs.s3a.connection.ssl.enabled"] = "false" if _allow_http(opts) else "true"
    region = opts.get("AWS_REGION") or opts.get("AWS_DEFAULT_REGION") or ("us-east-1" if endpoint else None)
    if region:
        out["fs.s3a.endpoint.region"] = region
    key, secret, token = (opts.get("AWS_ACCESS_KEY_ID"), opts.get("AWS_SECRET_ACCESS_KEY"),
                          opts.get("AWS_SESSION_TOKEN"))
    if key and secret:
        out["fs.s3a.access.key"] = key
        out["fs.s3a.secret.key"] = secret
        if token:
            out["fs.s3a.session.token"] = token
            out["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        else:
            out["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return out


def delta_rs_options(uri: str, options: Optional[Mapping[str, Any]]) -> Optional[Dict[str, str]]:
    """Storage options for delta-rs on ``uri`` (None for local tables without options).

    On S3 this adds ``conditional_put=etag`` unless given: delta-rs then commits ``_delta_log/<n>.json`` with an
    S3 conditional write (``If-None-Match``), so several writers on the same table are safe without a lock
    table (two writers of the same version: one wins, the other sees the version taken). ``AWS_ALLOW_HTTP`` is
    set for ``http://`` endpoints.
    """
    opts = as_options(options)
    if not is_s3(uri):
        return dict(opts) or None
    out = dict(opts)
    out.setdefault("CONDITIONAL_PUT", "etag")
    if _allow_http(opts):
        out["AWS_ALLOW_HTTP"] = "true"
    return {k.lower() if k == "CONDITIONAL_PUT" else k: v for k, v in out.items()}


def filesystem(uri: str, options: Optional[Mapping[str, Any]] = None) -> Tuple[Any, str]:
    """The pyarrow file system of a URI and the path on it (local paths, ``file://`` and ``s3://``/``s3a://``)."""
    import pyarrow.fs as pafs

    if is_s3(uri):
        opts = _effective(options)
        bucket, prefix = split_s3(uri)
        path = f"{bucket}/{prefix}" if prefix else bucket
        if not opts:
            return pafs.FileSystem.from_uri(object_store_uri(uri))[0], path
        endpoint = _endpoint(opts)
        kwargs: Dict[str, Any] = {"allow_bucket_creation": False, "allow_bucket_deletion": False}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host.rstrip("/") if host else scheme,
                          scheme=scheme if host else ("http" if _allow_http(opts) else "https"))
        region = opts.get("AWS_REGION") or opts.get("AWS_DEFAULT_REGION") or ("us-east-1" if endpoint else None)
        if region:
            kwargs["region"] = region
        elif not endpoint:  # AWS itself: the bucket's region, as FileSystem.from_uri finds it
            try:
                kwargs["region"] = pafs.resolve_s3_region(bucket)
            except OSError as exc:
                raise store_error(exc, uri, f"find the region of S3 bucket {bucket!r}", options) from None
        if opts.get("AWS_ACCESS_KEY_ID") and opts.get("AWS_SECRET_ACCESS_KEY"):
            kwargs.update(access_key=opts["AWS_ACCESS_KEY_ID"], secret_key=opts["AWS_SECRET_ACCESS_KEY"],
                          session_token=opts.get("AWS_SESSION_TOKEN"))
        return pafs.S3FileSystem(**kwargs), path
    if "://" in uri and not uri.startswith("file://"):
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), uri[len("file://"):] if uri.startswith("file://") else uri


def redact(text: str, options: Optional[Mapping[str, Any]] = None) -> str:
    """``text`` with every credential value of ``options`` replaced by ``***``."""
    for secret in sorted(as_options(options).secrets(), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


_MISSING = ("NoSuchBucket", "bucket does not exist", "The specified bucket does not exist")
_DENIED = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", " 403", "Forbidden", "ExpiredToken",
           "InvalidToken")


def s3_client(storage_options: Optional[Mapping[str, Any]] = None) -> Any:
    """A boto3 S3 client from delta-rs-style storage options over the environment's endpoint and region (the one
    builder of S3 clients: online publishing, the writer lease); credentials: the options, else boto3's chain."""
    import boto3

    opts = _effective(storage_options)
    kwargs: Dict[str, Any] = {}
    for arg, value in (("endpoint_url", _endpoint(opts)), ("region_name", opts.get("AWS_REGION")),
                       ("aws_access_key_id", opts.get("AWS_ACCESS_KEY_ID")),
                       ("aws_secret_access_key", opts.get("AWS_SECRET_ACCESS_KEY")),
                       ("aws_session_token", opts.get("AWS_SESSION_TOKEN"))):
        if value:
            kwargs[arg] = value
    return boto3.client("s3", **kwargs)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _missing_bucket(bucket: str, what: str) -> StoreError:
    return StoreError(f"S3 bucket {bucket!r} does not exist ({what}); check the bucket name in the s3:// URI, "
                      "the endpoint (AWS_ENDPOINT_URL) and the region/account of the credentials, or create it")


def check_bucket(uri: str, options: Optional[Mapping[str, Any]] = None, what: str = "") -> None:
    """Raise StoreError naming the bucket of an S3 ``uri`` when it does not exist or cannot be reached."""
    if not is_s3(uri):
        return
    import pyarrow.fs as pafs

    fs, path = filesystem(uri, options)
    bucket = path.split("/", 1)[0]
    what = what or f"reach {uri}"
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise store_error(exc, uri, what, options) from None
    if info.type == pafs.FileType.NotFound:
        raise _missing_bucket(bucket, what)


def store_error(exc: BaseException, uri: str, what: str,
                options: Optional[Mapping[str, Any]] = None) -> StoreError:
    """The StoreError for a failed storage call on ``uri``: a missing bucket or denied access is named with
    what to check (bucket name, credentials, endpoint, region); credentials are never included."""
    bucket = bucket_of(uri)
    text = f"{_code(exc)} {exc}"
    detail = redact(str(exc), options)
    if bucket and any(m in text for m in _MISSING):
        return _missing_bucket(bucket, what)
    if bucket and any(m in text for m in _DENIED):
        return StoreError(f"access to S3 bucket {bucket!r} was denied ({what}); check the credentials "
                          "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile or role), their permissions on the "
                          f"bucket, the endpoint (AWS_ENDPOINT_URL) and the region: {detail}")
    if isinstance(exc, StoreError):
        return exc if not as_options(options).secrets() else StoreError(redact(str(exc), options))
    return StoreError(f"cannot {what}: {detail}")
