"""Manifests of published online files: checksum, atomic local writes, version file names.

A published version is a DuckDB file ``v<version:06d>-<id>.duckdb`` with a sidecar manifest
``v<version:06d>-<id>.json`` (metadata + sha256 + size of the file); the pointer ``CURRENT.json`` holds a copy of
the manifest of the version being served and is switched atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Dict, Optional

from seeknal_spark.atomic import fsync_dir, fsync_file, write_json_atomic
from seeknal_spark.errors import StoreError

__all__ = ["POINTER", "ChecksumError", "sha256_file", "verify_file", "version_file_name", "parse_version",
           "write_json_atomic", "fsync_dir", "fsync_file", "load_manifest"]

POINTER = "CURRENT.json"
_VERSION_FILE = re.compile(r"v(\d{6,})-([0-9a-f]+)\.(duckdb|json|idx)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ChecksumError(StoreError):
    """An online file does not match the checksum recorded when it was published (corrupted or replaced)."""


def sha256_file(path: str, chunk: int = 4 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str, manifest: Dict[str, Any]) -> None:
    """Raise ChecksumError unless ``path`` has the sha256 recorded in ``manifest``."""
    if not os.path.isfile(path):
        raise StoreError(f"online file {path} is missing; republish the online table "
                         f"{manifest.get('name')!r}")
    actual = sha256_file(path)
    if actual != manifest["sha256"]:
        raise ChecksumError(f"online file {path} is corrupted: sha256 {actual} does not match the published "
                            f"{manifest['sha256']} (version {manifest.get('version')}); republish the online "
                            "table or restore the file")


def version_file_name(version: int, ident: str, ext: str) -> str:
    return f"v{version:06d}-{ident}.{ext}"


def parse_version(file_name: str) -> Optional[int]:
    """The version number of a published file name, or None for other files."""
    match = _VERSION_FILE.fullmatch(file_name.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


def load_manifest(text: str, where: str) -> Dict[str, Any]:
    """Parse a pointer or manifest and validate every field that later becomes part of a path.

    Anyone able to write the pointer (e.g. an S3 prefix) must not be able to make a reader open or delete a file
    outside the table: ``sha256`` must be 64 lowercase hex characters (it names the cache file), ``version`` a
    non-negative integer and ``file`` a plain ``v<version>-<id>.duckdb`` name of that same version.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"online table pointer {where} is not valid JSON ({exc}); republish the table") from exc
    if not isinstance(data, dict):
        raise StoreError(f"online table pointer {where} is not a JSON object; republish the table")
    for key in ("file", "sha256", "version"):
        if key not in data:
            raise StoreError(f"online table pointer {where} lacks {key!r}; republish the table")
    version, sha, file_name = data["version"], data["sha256"], data["file"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise StoreError(f"online table pointer {where} has an invalid version {version!r} (expected a "
                         "non-negative integer); the pointer was tampered with or corrupted: republish the table")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise StoreError(f"online table pointer {where} has an invalid sha256 {sha!r} (expected 64 lowercase hex "
                         "characters); the pointer was tampered with or corrupted: republish the table")
    if (not isinstance(file_name, str) or not file_name.endswith(".duckdb")
            or parse_version(file_name) != version or "/" in file_name or "\\" in file_name):
        raise StoreError(f"online table pointer {where} names an unexpected file {file_name!r} (expected "
                         f"v{version:06d}-<id>.duckdb); republish the table")
    return data
