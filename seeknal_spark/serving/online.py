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

from seeknal_spark.errors import DefinitionError, ParityError, StoreError
from seeknal_spark.serving.location import Location, resolve_location
from seeknal_spark.serving.snapshot import INDEX_MODES, Snapshot, key_type_ok, missing_key, open_snapshot
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
        if snap.con is not None:
            return self._get_duckdb(snap, plan, keys)
        n = len(keys)
        per_table = []
        for table, knames, _, names, picker, nulls in plan:
            index = table.index
            single = len(knames) == 1
            k0 = knames[0]
            key_values: List[Any] = []
            hit_pos: List[int] = []
            hit_idx: List[int] = []
            if single and len(keys) > 1:
                try:  # fast path for a single join key; errors are reported by the loop below
                    key_values = [kd[k0] for kd in keys]
                    many = getattr(index, "get_many", None)  # the mmap index searches a batch at once
                    found = many(key_values) if many is not None else list(map(index.get, key_values))
                except (KeyError, TypeError):
                    key_values = []
                else:
                    table.check_single(key_values)  # also on hits: True / 1.0 would find key 1
                    for j, i in enumerate(found):
                        if i is not None:
                            hit_pos.append(j)
                            hit_idx.append(i)
            for j, kd in enumerate(keys if not key_values else ()):
                try:
                    key = kd[k0] if single else tuple([kd[k] for k in knames])
                except (KeyError, TypeError):
                    raise missing_key(kd, next((k for k in knames if not _has(kd, k)), k0),
                                       snap.join_keys) from None
                problem = table.bad_key(key)  # before the lookup: True / 1.0 would find key 1
                if problem:
                    raise DefinitionError(problem)
                try:
                    i = index.get(key)
                except TypeError:
                    raise DefinitionError(f"key {dict(kd)!r} has an unhashable join-key value") from None
                if i is not None:
                    hit_pos.append(j)
                    hit_idx.append(i)
                key_values.append(key)
            values: List[Any] = [nulls] * n
            if hit_idx:
                fetched = table.fetch(hit_idx)
                if picker is not None:
                    fetched = [picker(v) for v in fetched]
                for j, v in zip(hit_pos, fetched):
                    values[j] = v
            per_table.append((knames, single, names, key_values, values))
        if len(per_table) == 1 and per_table[0][1]:
            knames, _, names, key_values, values = per_table[0]
            columns = (knames[0],) + names
            return [dict(zip(columns, (k, *v))) for k, v in zip(key_values, values)]
        out = []
        for j in range(n):
            row: Dict[str, Any] = {}
            for knames, single, names, key_values, values in per_table:
                if single:
                    row[knames[0]] = key_values[j]
                else:
                    row.update(zip(knames, key_values[j]))
                row.update(zip(names, values[j]))
            out.append(row)
        return out

    def _get_duckdb(self, snap: Snapshot, plan: list, keys: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        import duckdb

        cur = snap.cursor()
        rows: List[Dict[str, Any]] = [{} for _ in keys]
        for table, knames, positions, names, _, nulls in plan:
            columns = []
            for kd, row in zip(keys, rows):
                for k in knames:
                    if not _has(kd, k):
                        raise missing_key(kd, k, snap.join_keys)
                    row[k] = kd[k]
            for k in knames:
                values = [kd[k] for kd in keys]
                for value in values:
                    if not key_type_ok(value, table.key_types[k]):
                        raise DefinitionError(f"join key {k!r} is stored as {table.key_types[k]} but the request "
                                              f"gives {type(value).__name__} {value!r}; pass a value of the stored type")
                columns.append(values)
            try:
                if len(keys) == 1:
                    found = cur.execute(table.query_sql(positions), [c[0] for c in columns]).fetchall()
                    results = [found[0] if found else nulls]
                else:
                    found = cur.execute(table.batch_sql(positions), columns + [len(keys)]).fetchall()
                    results = [tuple(r[1:]) for r in found]
            except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
                raise DefinitionError(f"lookup in online table failed for keys {knames}: {exc}") from exc
            except duckdb.Error as exc:  # I/O errors, checksum failures of blocks: the file, not the request
                raise StoreError(f"online file {snap.path} could not be read ({exc}); it is corrupted or "
                                 "unreadable: open with verify=True to check it, then republish or restore it") from exc
            for row, vals in zip(rows, results):
                row.update(zip(names, vals))
        return rows

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


def _has(kd: Any, key: str) -> bool:
    try:
        return key in kd
    except TypeError:
        return False
