"""OnlineFeatures: serve the latest feature values of a published online table, in-process, without Spark.

At open, the file's checksum is verified and (with ``index="memory"``, the default) every table is loaded into a
Python dict from key to feature tuple, so a lookup is a dict access: no SQL, no parsing, no per-call allocation
beyond the result dicts. ``index="duckdb"`` keeps the file open instead and looks keys up with parameterized
queries against the primary-key index (less memory, slower per key). ``index="mmap"`` maps a sidecar index file
shared by every process serving the version (``serving/mmap_index.py``): no load at open, one copy in memory.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence

from seeknal_spark.errors import DefinitionError, ParityError
from seeknal_spark.serving.location import Location, resolve_location
from seeknal_spark.serving.duckdb_rows import duckdb_rows
from seeknal_spark.serving.index_rows import index_rows
from seeknal_spark.serving.snapshot import INDEX_MODES, KeyLookup, open_snapshot
from seeknal_spark.serving.spec_parity import parity_differences
from seeknal_spark.vocabulary.manifest_file import load_manifest

__all__ = ["OnlineFeatures"]


class OnlineFeatures:
    """A published online table: fast, Spark-free lookups of the latest feature values per entity key.

    Example:
        >>> table = OnlineFeatures.open("user_features")                       # doctest: +SKIP
        >>> table.get_features(keys=[{"user_id": 1}, {"user_id": 2}])         # doctest: +SKIP
        [{'user_id': 1, 'amount_7d': 12.5, 'orders_7d': 3}, {'user_id': 2, 'amount_7d': None, 'orders_7d': None}]
        >>> table.refresh()                                                    # doctest: +SKIP
        False
    """

    def __init__(self, location: Location, index: str = "memory", verify: bool = True,
                 version: Optional[int] = None) -> None:
        if index not in INDEX_MODES:
            raise DefinitionError(f"index {index!r} is not one of {INDEX_MODES}")
        self._location = location
        self._index = index
        self._verify = verify
        self._pinned = version
        self._lock = threading.Lock()
        self._snap = open_snapshot(location, version, verify, index)

    @classmethod
    def open(cls, name_or_path: str, *, store_root: Optional[str] = None, index: str = "memory",
             storage_options: Optional[Mapping[str, str]] = None, cache_dir: Optional[str] = None,
             verify: bool = True, version: Optional[int] = None) -> "OnlineFeatures":
        """Open a published online table by name (in ``store_root``), directory path, or ``s3://`` URI.

        Args:
            name_or_path: table name, a directory holding ``CURRENT.json``, or ``s3://bucket/prefix/<name>``.
            store_root: online store root for names (default ``config.default_online_store_path()``).
            index: ``"memory"`` (dict index loaded at open; fastest), ``"duckdb"`` (queries the file) or
                ``"mmap"`` (a sidecar index mapped from disk, shared by every process serving the version).
            storage_options: S3 settings (``AWS_ENDPOINT_URL``, credentials, ``AWS_REGION``).
            cache_dir: where S3 files are cached (default ``<online store>/.s3_cache``).
            verify: check the file's sha256 against the published manifest (always done after a download).
            version: open a retained older version instead of the current one (refresh() then keeps it).
        """
        location = resolve_location(name_or_path, store_root=store_root, storage_options=storage_options,
                                    cache_dir=cache_dir)
        return cls(location, index=index, verify=verify, version=version)

    # -- description -------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self._snap.manifest.get("name"))

    @property
    def version(self) -> int:
        return int(self._snap.manifest["version"])

    @property
    def sha256(self) -> str:
        return str(self._snap.manifest["sha256"])

    @property
    def path(self) -> str:
        """Local path of the DuckDB file being served."""
        return self._snap.path

    @property
    def location(self) -> str:
        return self._location.describe()

    @property
    def metadata(self) -> Dict[str, Any]:
        """What the file records: sources (Delta and schema versions), tables, features with types, as-of time."""
        return dict(self._snap.metadata)

    @property
    def as_of(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self._snap.metadata["as_of"])

    @property
    def feature_names(self) -> List[str]:
        return list(self._snap.feature_names)

    @property
    def join_keys(self) -> List[str]:
        return list(self._snap.join_keys)

    def feature_types(self) -> Dict[str, str]:
        """Feature name -> offline (Delta/Spark) type, e.g. ``{"amount": "double"}``."""
        return {f["name"]: f["offline_type"] for t in self._snap.metadata["tables"] for f in t["features"]}

    def __len__(self) -> int:
        return sum(t.rows for t in self._snap.tables)

    # -- serving -------------------------------------------------------------------------------------------------
    def get_features(self, keys: Sequence[Mapping[str, Any]],
                     feature_names: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """One dict per requested key, in request order: its join keys and features (null when unknown).

        Args:
            keys: dicts holding the join keys of every table whose features are requested.
            feature_names: subset of features to return (default: all), in this order per table.

        A join-key value must have the stored type (``int`` for integer keys, ``str`` for strings, ...): ``True``
        or ``1.0`` for an integer key raise DefinitionError naming the key, the value and the stored type, with
        either index (in Python they compare equal to ``1``, so treating them as ``1`` would serve user 1's
        features for a malformed request).
        """
        snap = self._snap
        plan = snap.plan(feature_names)
        if isinstance(keys, Mapping):
            keys = [keys]
        lookup: KeyLookup = duckdb_rows if snap.con is not None else index_rows
        return lookup(snap, plan, keys)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Switch to the newest published version if it changed; returns True when it did."""
        if self._pinned is not None:
            return False
        with self._lock:
            manifest = self._location.current_manifest()
            if manifest["sha256"] == self._snap.manifest["sha256"]:
                return False
            old, self._snap = self._snap, open_snapshot(self._location, None, self._verify, self._index, manifest)
            if old.con is None:
                old.close()
            return True

    def validate_parity(self, manifest: Any, *, check_delta_versions: bool = False) -> None:
        """Raise ParityError unless this table serves what the training manifest records (names, order, types,
        sources, schema versions; Delta versions too when asked)."""
        diffs = parity_differences(load_manifest(manifest), self.metadata, check_delta_versions=check_delta_versions)
        if diffs:
            raise ParityError(f"{self.name!r} (version {self.version})", diffs)

    def close(self) -> None:
        self._snap.close()

    def __enter__(self) -> "OnlineFeatures":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"OnlineFeatures(name={self.name!r}, version={self.version}, features={self.feature_names}, "
                f"keys={self.join_keys}, index={self._index!r})")

