"""S3 transport for online tables (boto3, imported lazily).

Layout under ``s3://bucket/prefix/<name>/``: ``v<version>-<id>.duckdb``, its manifest ``v<version>-<id>.json``, and
the pointer ``CURRENT.json`` (uploaded last; an S3 PUT replaces an object atomically, so readers see either the
old or the new pointer, and the file it names is already there).

Connection settings come from ``storage_options`` (the keys delta-rs uses: ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``) or else boto3's usual
environment variables and configuration files (``AWS_ENDPOINT_URL`` included).
"""

from __future__ import annotations

import json
from typing import Any, List, Mapping, Optional, Tuple

from seeknal_spark.errors import StoreError
from seeknal_spark.storage import store_error

__all__ = ["put_file", "put_json", "get_text", "download", "list_keys",
           "delete_keys", "create_json", "get_json_etag", "replace_json", "PreconditionFailed"]


class PreconditionFailed(StoreError):
    """A conditional S3 write lost: the object exists (create) or changed since it was read (replace)."""


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _is_missing(exc: Exception) -> bool:
    return _code(exc) in ("404", "NoSuchKey", "NotFound")


def _store_error(exc: Exception, bucket: str, what: str) -> StoreError:
    """A StoreError for a failed S3 call (the rule of :func:`seeknal_spark.storage.store_error`)."""
    return store_error(exc, f"s3://{bucket}", what)


def put_file(client: Any, path: str, bucket: str, key: str) -> None:
    try:
        client.upload_file(path, bucket, key)
    except Exception as exc:
        raise _store_error(exc, bucket, f"upload s3://{bucket}/{key}") from exc


def _json_body(data: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(data), sort_keys=True, indent=1).encode("utf-8")


def put_json(client: Any, data: Mapping[str, Any], bucket: str, key: str) -> None:
    try:
        client.put_object(Bucket=bucket, Key=key, Body=_json_body(data), ContentType="application/json")
    except Exception as exc:
        raise _store_error(exc, bucket, f"write s3://{bucket}/{key}") from exc


def _conditional_put(client: Any, bucket: str, key: str, data: Mapping[str, Any], **condition: str) -> None:
    try:
        client.put_object(Bucket=bucket, Key=key, Body=_json_body(data), ContentType="application/json",
                          **condition)
    except Exception as exc:
        if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
            raise PreconditionFailed(f"s3://{bucket}/{key} was written by another publisher") from exc
        raise _store_error(exc, bucket, f"write s3://{bucket}/{key} conditionally (S3 conditional writes, "
                                        "If-None-Match / If-Match, are required)") from exc


def create_json(client: Any, data: Mapping[str, Any], bucket: str, key: str) -> None:
    """Create the object only if it does not exist (``If-None-Match: *``); PreconditionFailed if it does."""
    _conditional_put(client, bucket, key, data, IfNoneMatch="*")


def replace_json(client: Any, data: Mapping[str, Any], bucket: str, key: str, etag: Optional[str]) -> None:
    """Replace the object only if it still has ``etag`` (create it only if absent when ``etag`` is None)."""
    if etag is None:
        _conditional_put(client, bucket, key, data, IfNoneMatch="*")
    else:
        _conditional_put(client, bucket, key, data, IfMatch=etag)


def get_json_etag(client: Any, bucket: str, key: str) -> Tuple[Optional[str], Optional[str]]:
    """(text, ETag) of an object, (None, None) when it does not exist."""
    try:
        obj = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _is_missing(exc):
            return None, None
        raise _store_error(exc, bucket, f"read s3://{bucket}/{key}") from exc
    return obj["Body"].read().decode("utf-8"), obj.get("ETag")


def get_text(client: Any, bucket: str, key: str) -> Optional[str]:
    """The object's text, or None when it does not exist."""
    return get_json_etag(client, bucket, key)[0]


def download(client: Any, bucket: str, key: str, dest: str) -> None:
    try:
        client.download_file(bucket, key, dest)
    except Exception as exc:
        if _is_missing(exc):
            raise StoreError(f"online file s3://{bucket}/{key} is missing; republish the online table") from exc
        raise _store_error(exc, bucket, f"download s3://{bucket}/{key}") from exc


def list_keys(client: Any, bucket: str, prefix: str) -> List[str]:
    keys: List[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", ()))
    except Exception as exc:
        raise _store_error(exc, bucket, f"list s3://{bucket}/{prefix}") from exc
    return keys


def delete_keys(client: Any, bucket: str, keys: List[str]) -> None:
    try:
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
    except Exception as exc:
        raise _store_error(exc, bucket, f"delete objects in s3://{bucket}") from exc
