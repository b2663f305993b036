"""One opened version of an online table: its tables loaded into the chosen index (memory, DuckDB or mmap).

:class:`~seeknal_spark.serving.online.OnlineFeatures` is the API; this module holds what it serves from: per-table
key indexes and row fetchers (``_Table``), the opened file and its metadata (``Snapshot``), and the retrying open
of a version (``open_snapshot``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from operator import itemgetter
from typing import Any, Dict, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple

from seeknal_spark.errors import DefinitionError, StoreError
from seeknal_spark.serving.arrow_columns import NUMPY_DTYPES, column_values, fast_numeric, numpy_of
from seeknal_spark.serving.export import read_metadata
from seeknal_spark.serving.location import LocalFile, Location
from seeknal_spark.serving.manifest import ChecksumError
from seeknal_spark.sqltypes import FLOAT_TYPES, INTEGER_TYPES, quote_ident

__all__ = ["INDEX_MODES", "Snapshot", "open_snapshot", "missing_key", "has_key", "key_type_ok", "connect_readonly",
           "column_values", "KeyLookup"]

INDEX_MODES = ("memory", "duckdb", "mmap")


def connect_readonly(path: str) -> Any:
    import duckdb

    con = duckdb.connect(path, read_only=True)
    con.execute("SET TimeZone='UTC'")
    return con


def key_type_ok(value: Any, duckdb_type: str) -> bool:
    if value is None:
        return True
    if duckdb_type in INTEGER_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if duckdb_type in FLOAT_TYPES:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if duckdb_type == "VARCHAR":
        return isinstance(value, str)
    if duckdb_type == "BOOLEAN":
        return isinstance(value, bool)
    if duckdb_type == "DATE":
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if duckdb_type.startswith("TIMESTAMP"):
        return isinstance(value, dt.datetime)
    if duckdb_type.startswith("DECIMAL"):
        return isinstance(value, (int, decimal.Decimal))
    if duckdb_type == "BLOB":
        return isinstance(value, (bytes, bytearray))
    return True


def _exact_key_types(duckdb_type: str) -> Optional[frozenset]:
    """Python types accepted as they are for a join key of ``duckdb_type`` (fast check; None: check each value).

    Exact types, not ``isinstance``: ``True`` and ``1.0`` hash and compare equal to ``1``, so a dict lookup would
    find user 1 for them; they are refused like the DuckDB index refuses them.
    """
    none = type(None)
    if duckdb_type in INTEGER_TYPES:
        return frozenset({int, none})
    if duckdb_type in FLOAT_TYPES:
        return frozenset({float, int, none})
    if duckdb_type == "VARCHAR":
        return frozenset({str, none})
    if duckdb_type == "BOOLEAN":
        return frozenset({bool, none})
    return None


class _Table:
    """One online table (one join-key set) of a snapshot."""

    def __init__(self, meta: Dict[str, Any]) -> None:
        self.name: str = meta["table"]
        self.keys: Tuple[str, ...] = tuple(meta["join_keys"])
        self.key_types: Dict[str, str] = {k["name"]: k["duckdb_type"] for k in meta["key_types"]}
        self.exact_types = [_exact_key_types(self.key_types[k]) for k in self.keys]
        self.features: List[str] = [f["name"] for f in meta["features"]]
        self.rows: int = meta["rows"]
        self.index: Optional[Dict[Any, int]] = None  # key (tuple for composite keys) -> row number
        self.blocks: List[Tuple[Tuple[int, ...], Any]] = []  # (feature positions, 2-D numpy array, row-major)
        self.objcols: List[Tuple[int, list]] = []  # (feature position, Python values)
        self.simple = False
        self._sql: Dict[Tuple[int, ...], str] = {}

    def load(self, con: Any) -> None:
        """Load the table: a dict from key to row number, null-free numeric features as row-major numpy blocks
        (one per dtype; a row becomes Python values with one ``tolist()``), other features as Python lists."""
        import numpy as np

        arrow = con.sql(f"SELECT * FROM {quote_ident(self.name)}").to_arrow_table()
        key_cols = [column_values(arrow.column(k)) for k in self.keys]
        keys: Iterable[Any] = key_cols[0] if len(key_cols) == 1 else zip(*key_cols)
        self.index = dict(zip(keys, range(arrow.num_rows)))
        blocks: Dict[str, List[int]] = {}
        for pos, name in enumerate(self.features):
            column = arrow.column(name)
            if fast_numeric(column):
                blocks.setdefault(str(column.type), []).append(pos)
            else:
                self.objcols.append((pos, column_values(column)))
        n = arrow.num_rows
        for kind, positions in blocks.items():
            dtype = bool if kind == "bool" else np.dtype(NUMPY_DTYPES[kind])
            block = np.empty((n, len(positions)), dtype=dtype)  # row-major: a row is contiguous
            for j, pos in enumerate(positions):
                start = 0
                for chunk in arrow.column(self.features[pos]).chunks:  # copied once, straight from Arrow
                    block[start:start + len(chunk), j] = numpy_of(chunk)
                    start += len(chunk)
            self.blocks.append((tuple(positions), block))
        self.simple = (len(self.blocks) == 1 and not self.objcols
                       and self.blocks[0][0] == tuple(range(len(self.features))))

    def load_mapped(self, con: Any, mapped: Any) -> None:
        """Serve from the mapped sidecar ``mapped`` (see ``mmap_index.attach``)."""
        from seeknal_spark.serving.mmap_index import attach

        attach(self, con, mapped)

    def row(self, i: int) -> list:
        """Feature values (table order) of row ``i``."""
        if self.simple:
            return self.blocks[0][1][i].tolist()
        values: list = [None] * len(self.features)
        for positions, array in self.blocks:
            for p, v in zip(positions, array[i].tolist()):
                values[p] = v
        for p, column in self.objcols:
            values[p] = column[i]
        return values

    def fetch(self, idx: List[int]) -> List[list]:
        """Feature values of several rows (vectorized through numpy for larger batches)."""
        if len(idx) < 8:
            return [self.row(i) for i in idx]
        import numpy as np

        sel = np.fromiter(idx, dtype=np.int64, count=len(idx))
        if self.simple:
            return self.blocks[0][1][sel].tolist()
        out: List[list] = [[None] * len(self.features) for _ in idx]
        for positions, array in self.blocks:
            for values, part in zip(out, array[sel].tolist()):
                for p, v in zip(positions, part):
                    values[p] = v
        for p, column in self.objcols:
            for values, i in zip(out, idx):
                values[p] = column[i]
        return out

    def bad_key(self, key: Any) -> Optional[str]:
        values = (key,) if len(self.keys) == 1 else key
        for name, value in zip(self.keys, values):
            if not key_type_ok(value, self.key_types[name]):
                return (f"join key {name!r} is stored as {self.key_types[name]} but the request gives "
                        f"{type(value).__name__} {value!r}; pass a value of the stored type")
        return None

    def check_single(self, values: List[Any]) -> None:
        """Raise DefinitionError for the first value of a single join key that does not have the stored type."""
        exact = self.exact_types[0]
        if exact is not None and exact.issuperset(map(type, values)):
            return
        for value in values:
            problem = self.bad_key(value)
            if problem:
                raise DefinitionError(problem)

    def query_sql(self, positions: Tuple[int, ...]) -> str:
        sql = self._sql.get(positions)
        if sql is None:
            cols = ", ".join(quote_ident(self.features[p]) for p in positions) or "1"
            where = " AND ".join(f"{quote_ident(k)} = ?" for k in self.keys)
            sql = self._sql[positions] = f"SELECT {cols} FROM {quote_ident(self.name)} WHERE {where}"
        return sql

    def batch_sql(self, positions: Tuple[int, ...]) -> str:
        cols = ", ".join(f"t.{quote_ident(self.features[p])}" for p in positions)
        unnest = ", ".join(f"unnest(CAST(${i + 1} AS {self.key_types[k]}[])) AS {quote_ident(k)}"
                           for i, k in enumerate(self.keys))
        n = len(self.keys) + 1
        on = " AND ".join(f"q.{quote_ident(k)} = t.{quote_ident(k)}" for k in self.keys)
        return (f"SELECT q.__pos{', ' + cols if cols else ''} FROM (SELECT {unnest}, unnest(range(${n})) AS __pos) q "
                f"LEFT JOIN {quote_ident(self.name)} t ON {on} ORDER BY q.__pos")


class Snapshot:
    """One published version, loaded and ready to serve."""

    def __init__(self, path: str, manifest: Dict[str, Any], index: str) -> None:
        self.path = path
        self.manifest = manifest
        self.mode = index
        con = connect_readonly(path)
        try:
            self.metadata = read_metadata(con)
            self.tables = [_Table(t) for t in self.metadata["tables"]]
            if index == "memory":
                for table in self.tables:
                    table.load(con)
            elif index == "mmap":
                from seeknal_spark.serving.mmap_index import MappedFile, ensure_sidecar

                sidecar = ensure_sidecar(path, con.cursor, self.metadata["tables"], str(manifest["sha256"]))
                self.mapped = MappedFile(sidecar)
                for table in self.tables:
                    table.load_mapped(con, self.mapped)
        except BaseException:
            con.close()
            raise
        if index in ("memory", "mmap"):
            con.close()
            self.con = None
        else:
            self.con = con
        self.feature_table: Dict[str, Tuple[int, int]] = {}
        for ti, table in enumerate(self.tables):
            for fi, name in enumerate(table.features):
                self.feature_table[name] = (ti, fi)
        self.feature_names = [f for t in self.tables for f in t.features]
        self.join_keys = list(dict.fromkeys(k for t in self.tables for k in t.keys))
        self._plans: Dict[Optional[Tuple[str, ...]], list] = {}
        self._local = threading.local()

    def plan(self, feature_names: Optional[Sequence[str]]) -> list:
        """Per table: (table, keys, positions, output names, picker, null row) for the requested features."""
        cache_key = None if feature_names is None else tuple(feature_names)
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        if feature_names is None:
            wanted: Dict[int, List[int]] = {ti: list(range(len(t.features))) for ti, t in enumerate(self.tables)}
        else:
            if isinstance(feature_names, str):
                raise DefinitionError("feature_names must be a list of names, not a string")
            wanted = {}
            for name in feature_names:
                if name not in self.feature_table:
                    raise DefinitionError(f"unknown feature {name!r}; this online table serves "
                                          f"{self.feature_names}")
                ti, fi = self.feature_table[name]
                wanted.setdefault(ti, []).append(fi)
        plan = []
        for ti, positions in wanted.items():
            table = self.tables[ti]
            names = tuple(table.features[p] for p in positions)
            full = positions == list(range(len(table.features)))
            picker = None if full else (itemgetter(*positions) if len(positions) > 1
                                        else (lambda row, p=positions[0]: (row[p],)))
            plan.append((table, table.keys, tuple(positions), names, picker, (None,) * len(names)))
        if len(self._plans) < 256:
            self._plans[cache_key] = plan
        return plan

    def cursor(self) -> Any:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
            cur.execute("SET TimeZone='UTC'")
        return cur

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None


_OPEN_ATTEMPTS = 5


def open_snapshot(location: Location, version: Optional[int], verify: bool, index: str,
                   manifest: Optional[Dict[str, Any]] = None) -> Snapshot:
    """Fetch and open a version; when following the current version, a file that vanished or cannot be opened
    because a publish moved the pointer on (and pruned it, ``keep=0``) is retried with the new pointer.

    Every failure is a StoreError (never a raw ``duckdb`` error); a checksum mismatch is not retried.
    """
    import duckdb

    follow = version is None and not isinstance(location, LocalFile)
    failure: Optional[BaseException] = None
    for _ in range(_OPEN_ATTEMPTS):
        if manifest is None and follow:
            manifest = location.current_manifest()
        try:
            used, path = location.fetch(version, verify, manifest=manifest)
            return Snapshot(path, used, index)
        except ChecksumError:
            raise
        except (StoreError, duckdb.Error) as exc:
            failure = exc
        if not follow or manifest is None:
            break
        fresh = location.current_manifest()
        if (fresh["sha256"], fresh["file"]) == (manifest["sha256"], manifest["file"]):
            break  # the pointer did not move: a real failure, not a race with a publish
        manifest = fresh
    if isinstance(failure, StoreError):
        raise failure
    raise StoreError(f"cannot open the online file of {location.describe()}: {failure}; the file is corrupted or "
                     "unreadable: open with verify=True to check it, then republish or restore it") from failure


def missing_key(kd: Any, key: str, keys: Sequence[str]) -> DefinitionError:
    if not isinstance(kd, Mapping):
        return DefinitionError(f"each key must be a dict of join keys {list(keys)}, got {kd!r}")
    return DefinitionError(f"key {dict(kd)!r} lacks join key {key!r}; this online table needs {list(keys)}")


def has_key(kd: Any, key: str) -> bool:
    """Whether the request ``kd`` holds join key ``key`` (False for anything that is not a mapping)."""
    try:
        return key in kd
    except TypeError:
        return False


class KeyLookup(Protocol):
    """How an index answers ``get_features``: (snapshot, plan, key dicts) -> one row dict per key, in order.

    ``serving/index_rows.py``: the in-process index (``index="memory"`` or ``"mmap"``);
    ``serving/duckdb_rows.py``: DuckDB's primary-key index (``index="duckdb"``).
    """

    def __call__(self, snap: "Snapshot", plan: list, keys: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        ...
