"""Where a published online table lives: a local store directory, a single file, or an S3 prefix (cached locally)."""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Tuple

from seeknal_spark.definitions import check_name
from seeknal_spark.errors import StoreError
from seeknal_spark.serving.manifest import (
    POINTER,
    ChecksumError,
    load_manifest,
    parse_version,
    verify_file,
)

__all__ = ["Location", "LocalDir", "LocalFile", "S3Dir", "resolve_location", "default_cache_dir"]

CACHE_DIR_NAME = ".s3_cache"


def default_cache_dir() -> str:
    from seeknal_spark.config import default_online_store_path

    return os.path.join(default_online_store_path(), CACHE_DIR_NAME)


class Location:
    """Source of manifests and (local paths of) published files."""

    def current_manifest(self) -> Dict[str, Any]:
        raise NotImplementedError

    def version_manifest(self, version: int) -> Dict[str, Any]:
        raise NotImplementedError

    def fetch(self, version: Optional[int], verify: bool,
              manifest: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], str]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class LocalDir(Location):
    """``<store root>/<name>/`` with ``CURRENT.json`` and versioned files."""

    def __init__(self, directory: str, name: Optional[str] = None) -> None:
        self.directory = os.path.abspath(directory)
        self.name = name

    def describe(self) -> str:
        return self.directory

    def current_manifest(self) -> Dict[str, Any]:
        pointer = os.path.join(self.directory, POINTER)
        try:
            with open(pointer, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            what = f"online table {self.name!r}" if self.name else f"an online table at {self.directory}"
            raise StoreError(f"there is no {what} ({pointer} does not exist); publish it first") from None
        return load_manifest(text, pointer)

    def version_manifest(self, version: int) -> Dict[str, Any]:
        names = sorted(os.listdir(self.directory)) if os.path.isdir(self.directory) else []
        for name in names:
            if name.endswith(".json") and parse_version(name) == version:
                path = os.path.join(self.directory, name)
                with open(path, encoding="utf-8") as fh:
                    return load_manifest(fh.read(), path)
        kept = sorted({v for v in map(parse_version, names) if v is not None})
        raise StoreError(f"version {version} of online table {self.directory} is not kept; versions: {kept}")

    def fetch(self, version: Optional[int], verify: bool,
              manifest: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], str]:
        if manifest is None:
            manifest = self.current_manifest() if version is None else self.version_manifest(version)
        path = os.path.join(self.directory, manifest["file"])
        if verify:
            verify_file(path, manifest)
        elif not os.path.isfile(path):
            raise StoreError(f"online file {path} is missing; republish the online table")
        return manifest, path


class LocalFile(Location):
    """A single published ``.duckdb`` file, verified with its sidecar manifest ``<stem>.json``."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.sidecar = self.path[: -len(".duckdb")] + ".json"

    def describe(self) -> str:
        return self.path

    def current_manifest(self) -> Dict[str, Any]:
        try:
            with open(self.sidecar, encoding="utf-8") as fh:
                return load_manifest(fh.read(), self.sidecar)
        except FileNotFoundError:
            raise StoreError(f"online file {self.path} has no manifest {self.sidecar} to verify it against; "
                             "open the table's directory or name, or pass verify=False") from None

    def fetch(self, version: Optional[int], verify: bool,
              manifest: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], str]:
        if version is not None:
            raise StoreError("version= needs the table's directory or name, not a single file")
        if verify:
            manifest = manifest or self.current_manifest()
            verify_file(self.path, manifest)
        else:
            if not os.path.isfile(self.path):
                raise StoreError(f"online file {self.path} does not exist")
            manifest = manifest or {"file": os.path.basename(self.path), "sha256": "", "version": 0}
        return manifest, self.path


class S3Dir(Location):
    """``s3://bucket/prefix/<name>/``; files are downloaded to a content-addressed local cache and verified."""

    def __init__(self, uri: str, storage_options: Optional[Mapping[str, str]] = None,
                 cache_dir: Optional[str] = None) -> None:
        from seeknal_spark.storage import s3_client, split_s3

        self.bucket, self.base = split_s3(uri)
        if not self.base:
            raise StoreError(f"S3 URI {uri!r} must name the table's prefix: s3://bucket/<prefix>/<name>")
        self.client = s3_client(storage_options)
        self.cache_dir = os.path.abspath(cache_dir or default_cache_dir())

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.base}"

    def current_manifest(self) -> Dict[str, Any]:
        from seeknal_spark.serving.remote import get_text

        key = f"{self.base}/{POINTER}"
        text = get_text(self.client, self.bucket, key)
        if text is None:
            raise StoreError(f"there is no online table at {self.describe()} (s3://{self.bucket}/{key} does not "
                             "exist); publish it first")
        return load_manifest(text, f"s3://{self.bucket}/{key}")

    def version_manifest(self, version: int) -> Dict[str, Any]:
        from seeknal_spark.serving.remote import get_text, list_keys

        keys = list_keys(self.client, self.bucket, self.base + "/")
        for key in sorted(keys):
            if key.endswith(".json") and parse_version(key) == version:
                return load_manifest(get_text(self.client, self.bucket, key) or "", f"s3://{self.bucket}/{key}")
        kept = sorted({v for v in map(parse_version, keys) if v is not None})
        raise StoreError(f"version {version} of online table {self.describe()} is not kept; versions: {kept}")

    def cached_path(self, manifest: Dict[str, Any]) -> str:
        """The cache file of a manifest, named by its sha256 (validated again: it must not leave the cache)."""
        sha = manifest.get("sha256")
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise StoreError(f"online table {self.describe()} names an invalid sha256 {sha!r}; republish the table")
        return os.path.join(self.cache_dir, f"{sha}.duckdb")

    def fetch(self, version: Optional[int], verify: bool,
              manifest: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], str]:
        from seeknal_spark.serving.remote import download

        if manifest is None:
            manifest = self.current_manifest() if version is None else self.version_manifest(version)
        path = self.cached_path(manifest)
        if os.path.isfile(path):
            if not verify:
                return manifest, path
            try:
                verify_file(path, manifest)
                return manifest, path
            except ChecksumError:
                os.unlink(path)  # corrupted cache entry: download again
        os.makedirs(self.cache_dir, exist_ok=True)
        tmp = f"{path}.part-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            download(self.client, self.bucket, f"{self.base}/{manifest['file']}", tmp)
            verify_file(tmp, manifest)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return manifest, path


def resolve_location(name_or_path: str, *, store_root: Optional[str] = None,
                     storage_options: Optional[Mapping[str, str]] = None,
                     cache_dir: Optional[str] = None) -> Location:
    """Location for a table name, a directory or ``.duckdb`` path, or an ``s3://`` URI."""
    from seeknal_spark.storage import is_s3

    if not isinstance(name_or_path, (str, os.PathLike)):
        raise StoreError(f"online table {name_or_path!r} must be a name, a path or an s3:// URI")
    value = os.fspath(name_or_path)
    if is_s3(value):
        return S3Dir(value, storage_options, cache_dir)
    if "/" in value or os.sep in value or value.endswith(".duckdb"):
        if os.path.isdir(value):
            return LocalDir(value)
        if value.endswith(".duckdb"):
            return LocalFile(value)
        raise StoreError(f"online table path {value} does not exist")
    check_name(value, "online table name")
    if store_root is None:
        from seeknal_spark.config import default_online_store_path

        store_root = default_online_store_path()
    return LocalDir(os.path.join(store_root, value), name=value)
