"""A memory-mapped index for online tables, shared by every process serving the same published version.

``OnlineFeatures.open(..., index="mmap")`` serves from a sidecar file ``<version file>.idx`` written next to the
DuckDB file (at publish time by ``serve(..., index="mmap")``, else by the first process that opens the version;
written to a temporary name and renamed, so readers never see half a file). The sidecar holds, per table, the rows
sorted by key:

* keys: one integer key as a sorted int64 array (``numpy.searchsorted``); one string key as sorted UTF-8 bytes
  (offsets + data, binary search); other key shapes are indexed by a Python dict built at open (not shared);
* null-free numeric features as row-major blocks (one per dtype, as the memory index keeps them);
* nullable numerics as values + validity, strings as offsets + data + validity; other types (dates, timestamps,
  decimals, nested) are loaded into Python lists at open (not shared).

Every process maps the same file read-only, so the operating system keeps one copy of the pages in its cache
for all of them; opening costs a header read, not a load.
"""

from __future__ import annotations

import json
import os
import struct
import uuid
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from seeknal_spark.errors import StoreError
from seeknal_spark.serving.arrow_columns import column_values
from seeknal_spark.sqltypes import INTEGER_TYPES, quote_ident

__all__ = ["sidecar_path", "ensure_sidecar", "attach", "MappedFile", "SortedIntIndex", "SortedBytesIndex"]

MAGIC = b"SKIDX001"
_ALIGN = 64
_NUMERIC = {"int8": "i1", "int16": "i2", "int32": "i4", "int64": "i8", "uint8": "u1", "uint16": "u2",
            "uint32": "u4", "uint64": "u8", "float": "f4", "double": "f8", "bool": "?"}


def sidecar_path(duckdb_path: str) -> str:
    """The index file of a published DuckDB file (``v000003-ab12.duckdb`` -> ``v000003-ab12.idx``)."""
    base = duckdb_path[:-len(".duckdb")] if duckdb_path.endswith(".duckdb") else duckdb_path
    return base + ".idx"


class _Writer:
    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.pos = 0

    def array(self, arr: np.ndarray) -> List[Any]:
        pad = (-self.pos) % _ALIGN
        self.fh.write(b"\0" * pad)
        self.pos += pad
        data = np.ascontiguousarray(arr)
        entry = [self.pos, data.dtype.str, list(data.shape)]
        self.fh.write(data.tobytes())
        self.pos += data.nbytes
        return entry


def _strings(column: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets int64 [n + 1], UTF-8 bytes, validity) of an Arrow string column."""
    import pyarrow as pa

    arr = column.combine_chunks().cast(pa.large_string())
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    arr = arr.fill_null("")
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    start = int(offsets[0])
    return offsets - start, data[start:int(offsets[-1])], valid


def _build(con: Any, tables: List[Dict[str, Any]], sha256: str, fh: Any) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    header: Dict[str, Any] = {"sha256": sha256, "tables": {}}
    body = _Writer(fh)
    for meta in tables:
        keys = list(meta["join_keys"])
        kinds = {k["name"]: k["duckdb_type"] for k in meta["key_types"]}
        arrow = con.sql(f"SELECT * FROM {quote_ident(meta['table'])}").to_arrow_table()
        entry: Dict[str, Any] = {"rows": arrow.num_rows, "columns": {}, "blocks": []}
        if len(keys) == 1 and kinds[keys[0]] in INTEGER_TYPES:
            order = pc.sort_indices(arrow.column(keys[0]))
            arrow = arrow.take(order)
            entry["key"] = ["int", body.array(np.asarray(arrow.column(keys[0]).to_numpy(), dtype=np.int64))]
        elif len(keys) == 1 and kinds[keys[0]] == "VARCHAR":
            order = pc.sort_indices(arrow.column(keys[0]).cast(pa.binary()))  # byte order, as searched
            arrow = arrow.take(order)
            offsets, data, _ = _strings(arrow.column(keys[0]))
            entry["key"] = ["str", body.array(offsets), body.array(data)]
        else:
            entry["key"] = ["dict"]
        blocks: Dict[str, List[int]] = {}
        for pos, f in enumerate(meta["features"]):
            column = arrow.column(f["name"])
            kind = str(column.type)
            if kind in _NUMERIC and column.null_count == 0:
                blocks.setdefault(kind, []).append(pos)
            elif kind in _NUMERIC:
                values = column.fill_null(False if kind == "bool" else 0).to_numpy()
                valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
                entry["columns"][str(pos)] = ["num", body.array(np.asarray(values)), body.array(valid)]
            elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                offsets, data, valid = _strings(column)
                entry["columns"][str(pos)] = ["str", body.array(offsets), body.array(data), body.array(valid)]
        for kind, positions in blocks.items():
            block = np.empty((arrow.num_rows, len(positions)), dtype=np.dtype(_NUMERIC[kind]))
            for j, pos in enumerate(positions):
                block[:, j] = arrow.column(meta["features"][pos]["name"]).to_numpy()
            entry["blocks"].append([positions, body.array(block)])
        header["tables"][meta["table"]] = entry
    head = json.dumps(header).encode("utf-8")
    fh.write(b"\0" * ((-body.pos) % _ALIGN))
    fh.write(head)
    fh.write(struct.pack("<Q", len(head)) + MAGIC)  # trailer: the header is found from the end


def ensure_sidecar(path: str, con_factory: Any, tables: List[Dict[str, Any]], sha256: str) -> str:
    """The sidecar of the DuckDB file ``path`` for the published version with checksum ``sha256``; built (and
    renamed into place atomically) when missing or stale. ``con_factory()`` opens the DuckDB file."""
    target = sidecar_path(path)
    try:
        if MappedFile(target).header["sha256"] == sha256:
            return target
    except (OSError, StoreError, ValueError, KeyError):
        pass
    tmp = f"{target}.tmp-{uuid.uuid4().hex}"
    con = con_factory()
    try:
        with open(tmp, "wb") as fh:
            _build(con, tables, sha256, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        con.close()
    return target


class MappedFile:
    """A sidecar mapped read-only; ``array(entry)`` gives a zero-copy numpy view of one stored array."""

    def __init__(self, path: str) -> None:
        size = os.path.getsize(path)
        if size < 16:
            raise StoreError(f"{path} is not a seeknal online index (too short)")
        self.map = np.memmap(path, dtype=np.uint8, mode="r")
        trailer = bytes(self.map[size - 16:])
        if trailer[8:] != MAGIC:
            raise StoreError(f"{path} is not a seeknal online index (bad trailer)")
        (length,) = struct.unpack("<Q", trailer[:8])
        self.header = json.loads(bytes(self.map[size - 16 - length:size - 16]).decode("utf-8"))

    def array(self, entry: List[Any]) -> np.ndarray:
        offset, dtype, shape = entry
        count = int(np.prod(shape)) if shape else 1
        return np.frombuffer(self.map, dtype=np.dtype(dtype), count=count, offset=offset).reshape(shape)


class SortedIntIndex:
    """``get(key)`` -> row number, by binary search in a sorted (mapped) int64 array."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        self.n = len(keys)

    def get(self, key: Any) -> Optional[int]:
        if type(key) is not int:
            if not isinstance(key, (int, np.integer)) or isinstance(key, bool):
                return None
            key = int(key)
        if not -(2 ** 63) <= key < 2 ** 63:
            return None
        i = int(self.keys.searchsorted(key))
        return i if i < self.n and self.keys[i] == key else None


    def get_many(self, keys: List[Any]) -> List[Optional[int]]:
        """``get`` for many keys at once (one vectorized search); falls back per key for non-int values."""
        if not all(type(k) is int for k in keys):
            return [self.get(k) for k in keys]
        try:
            want = np.fromiter(keys, dtype=np.int64, count=len(keys))
        except OverflowError:
            return [self.get(k) for k in keys]
        pos = self.keys.searchsorted(want)
        clipped = np.minimum(pos, self.n - 1) if self.n else pos
        hit = (pos < self.n) & (self.keys[clipped] == want) if self.n else np.zeros(len(keys), dtype=bool)
        return [int(p) if h else None for p, h in zip(pos.tolist(), hit.tolist())]


class SortedBytesIndex:
    """``get(key)`` -> row number, by binary search over sorted UTF-8 strings (offsets + data, mapped)."""

    def __init__(self, offsets: np.ndarray, data: np.ndarray) -> None:
        self.offsets = offsets
        self.data = data
        self.n = len(offsets) - 1

    def _at(self, i: int) -> bytes:
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes()

    def get(self, key: Any) -> Optional[int]:
        if not isinstance(key, str):
            return None
        want = key.encode("utf-8")
        lo, hi = 0, self.n
        while lo < hi:
            mid = (lo + hi) // 2
            if self._at(mid) < want:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < self.n and self._at(lo) == want else None


class NullableColumn:
    """``column[i]``: a nullable numeric value (None where null) from mapped values + validity."""

    def __init__(self, values: np.ndarray, valid: np.ndarray) -> None:
        self.values, self.valid = values, valid

    def __getitem__(self, i: int) -> Any:
        return self.values[i].item() if self.valid[i] else None


class StringColumn:
    """``column[i]``: a nullable string from mapped offsets + UTF-8 data + validity."""

    def __init__(self, offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> None:
        self.offsets, self.data, self.valid = offsets, data, valid

    def __getitem__(self, i: int) -> Any:
        if not self.valid[i]:
            return None
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")


def attach(table: Any, con: Any, mapped: MappedFile) -> None:
    """Point an online ``_Table`` at the mapped sidecar: key index and feature columns are views of the file;
    columns the sidecar does not hold are read from DuckDB (``con``) into Python lists, in the sidecar's row order."""
    from typing import Iterable

    entry = mapped.header["tables"][table.name]
    kind = entry["key"][0]
    if kind == "int":
        table.index = SortedIntIndex(mapped.array(entry["key"][1]))
    elif kind == "str":
        table.index = SortedBytesIndex(mapped.array(entry["key"][1]), mapped.array(entry["key"][2]))
    table.blocks = [(tuple(pos), mapped.array(arr)) for pos, arr in entry["blocks"]]
    held = {p for pos, _ in entry["blocks"] for p in pos}
    for pos, spec in entry["columns"].items():
        arrays = [mapped.array(a) for a in spec[1:]]
        column = NullableColumn(*arrays) if spec[0] == "num" else StringColumn(*arrays)
        table.objcols.append((int(pos), column))
        held.add(int(pos))
    rest = [p for p in range(len(table.features)) if p not in held]
    if rest or kind == "dict":
        order = "" if kind == "dict" else f" ORDER BY {quote_ident(table.keys[0])}"
        cols = [table.features[p] for p in rest] + (list(table.keys) if kind == "dict" else [])
        arrow = con.sql(f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {quote_ident(table.name)}"
                        f"{order}").to_arrow_table()
        for p in rest:
            table.objcols.append((p, column_values(arrow.column(table.features[p]))))
        if kind == "dict":
            key_cols = [column_values(arrow.column(k)) for k in table.keys]
            keys: Iterable[Any] = key_cols[0] if len(key_cols) == 1 else zip(*key_cols)
            table.index = dict(zip(keys, range(arrow.num_rows)))
    table.simple = (len(table.blocks) == 1 and not table.objcols
                    and table.blocks[0][0] == tuple(range(len(table.features))))
