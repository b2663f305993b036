"""Spark's ``xxhash64`` computed with numpy, so a training set built without Spark gets the same spine fingerprint.

Spark hashes a row of columns by chaining: the seed starts at 42 and each non-null value is hashed with the
previous result as its seed (a null leaves it unchanged); an array hashes its elements the same way. Values are
hashed as Spark stores them: booleans, bytes, shorts, ints and dates (days) as 4-byte ints; longs, timestamps
(microseconds) and decimals of precision <= 18 (unscaled) as 8-byte longs; floats and doubles by their IEEE bits
(``-0.0`` as ``0.0``, every NaN as the canonical NaN); strings (UTF-8) and binaries by their bytes. Every step is
XXH64 over the little-endian bytes, vectorised over rows (strings in groups of equal byte length).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["SEED", "xxhash64_columns", "hash_column", "hash_bools"]

SEED = 42
_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
_U32 = np.uint64(0xFFFFFFFF)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _fmix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * _P2
    h = h ^ (h >> np.uint64(29))
    h = h * _P3
    return h ^ (h >> np.uint64(32))


def _hash_int(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """XXH64 of 4-byte ints (``values`` as uint64 holding the 32-bit pattern) with per-row seeds."""
    h = seed + _P5 + np.uint64(4)
    h = h ^ ((values & _U32) * _P1)
    h = _rotl(h, 23) * _P2 + _P3
    return _fmix(h)


def _round(acc: np.ndarray, lane: np.ndarray) -> np.ndarray:
    return _rotl(acc + lane * _P2, 31) * _P1


def _hash_long(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    h = seed + _P5 + np.uint64(8)
    h = h ^ _round(np.zeros_like(values), values)
    h = _rotl(h, 27) * _P1 + _P4
    return _fmix(h)


def _hash_bytes(data: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """XXH64 of rows of equal byte length: ``data`` is (rows, length) uint8, ``seed`` (rows,) uint64."""
    n, length = data.shape
    pos = 0
    if length >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed.copy()
        v4 = seed - _P1
        while pos <= length - 32:
            lanes = np.ascontiguousarray(data[:, pos:pos + 32]).view("<u8")
            v1, v2 = _round(v1, lanes[:, 0]), _round(v2, lanes[:, 1])
            v3, v4 = _round(v3, lanes[:, 2]), _round(v4, lanes[:, 3])
            pos += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        for v in (v1, v2, v3, v4):
            h = (h ^ _round(np.zeros_like(v), v)) * _P1 + _P4
    else:
        h = seed + _P5
    h = h + np.uint64(length)
    while pos <= length - 8:
        k = np.ascontiguousarray(data[:, pos:pos + 8]).view("<u8")[:, 0]
        h = _rotl(h ^ _round(np.zeros_like(k), k), 27) * _P1 + _P4
        pos += 8
    if pos <= length - 4:
        k = np.ascontiguousarray(data[:, pos:pos + 4]).view("<u4")[:, 0].astype(np.uint64)
        h = _rotl(h ^ (k * _P1), 23) * _P2 + _P3
        pos += 4
    while pos < length:
        h = _rotl(h ^ (data[:, pos].astype(np.uint64) * _P5), 11) * _P1
        pos += 1
    return _fmix(h)


def _hash_binary(values: List[Optional[bytes]], seed: np.ndarray) -> np.ndarray:
    out = seed.copy()
    by_len: Dict[int, List[int]] = {}
    for i, v in enumerate(values):
        if v is not None:
            by_len.setdefault(len(v), []).append(i)
    for length, rows in by_len.items():
        idx = np.asarray(rows, dtype=np.int64)
        joined = b"".join(values[i] for i in rows)  # type: ignore[misc]
        data = np.frombuffer(joined, dtype=np.uint8).reshape(len(rows), length) if length else \
            np.zeros((len(rows), 0), dtype=np.uint8)
        out[idx] = _hash_bytes(data, seed[idx])
    return out


def hash_column(column: Any, spark_type: str, seed: np.ndarray) -> np.ndarray:
    """The seeds after hashing one Arrow column of Spark type ``spark_type`` (simple string) into them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if spark_type in ("string", "binary"):
        values = arr.to_pylist()
        if spark_type == "string":
            values = [None if v is None else v.encode("utf-8") for v in values]
        return _hash_binary(values, seed)
    if spark_type == "boolean":
        bits = np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.uint64)
        return np.where(valid, _hash_int(bits, seed), seed)
    if spark_type in ("tinyint", "smallint", "int", "date"):
        raw = arr.cast(pa.int32()) if spark_type != "date" else arr.cast(pa.date32()).view(pa.int32())
        ints = np.asarray(raw.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int32)
        return np.where(valid, _hash_int(ints.view(np.uint32).astype(np.uint64), seed), seed)
    if spark_type in ("bigint", "timestamp", "timestamp_ntz"):
        if spark_type != "bigint":
            unit = arr.type.unit if pa.types.is_timestamp(arr.type) else "us"
            micros = arr.cast(pa.timestamp(unit)).view(pa.int64())
            if unit == "ns":  # Spark keeps microseconds: truncated toward minus infinity
                micros = pc.divide(pc.subtract(micros, pc.if_else(pc.less(micros, 0), 999, 0)), 1000)
            elif unit in ("s", "ms"):
                micros = pc.multiply(micros, 1_000_000 if unit == "s" else 1_000)
            arr = micros
        longs = np.asarray(arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        return np.where(valid, _hash_long(longs.view(np.uint64), seed), seed)
    if spark_type in ("float", "double"):
        ftype = np.float32 if spark_type == "float" else np.float64
        vals = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=ftype)
        vals = np.where(vals == 0, ftype(0), vals)  # -0.0 hashes as 0.0
        vals = np.where(np.isnan(vals), ftype("nan"), vals)
        if spark_type == "float":
            bits = vals.view(np.uint32).astype(np.uint64)
            bits = np.where(np.isnan(vals), np.uint64(0x7FC00000), bits)
            return np.where(valid, _hash_int(bits, seed), seed)
        bits = np.where(np.isnan(vals), np.uint64(0x7FF8000000000000), vals.view(np.uint64))
        return np.where(valid, _hash_long(bits, seed), seed)
    if spark_type.startswith("decimal("):
        precision, scale = (int(x) for x in spark_type[8:-1].split(","))
        if precision <= 18:
            unscaled = [0 if v is None else int(v.scaleb(scale)) for v in arr.to_pylist()]
            longs = np.asarray(unscaled, dtype=np.int64).view(np.uint64)
            return np.where(valid, _hash_long(longs, seed), seed)
    raise TypeError(f"no Spark-compatible hash for type {spark_type}")


def hash_bools(flags: Sequence[np.ndarray], seed: np.ndarray) -> np.ndarray:
    """The seeds after hashing an ``array(flags...)`` of non-null booleans into them."""
    h = seed
    for f in flags:
        h = _hash_int(np.asarray(f, dtype=np.uint64), h)
    return h


def xxhash64_columns(columns: Sequence[Any], types: Sequence[str], rows: int) -> np.ndarray:
    """Spark's ``xxhash64(columns..., array(isnull flags...))`` per row, as uint64."""
    with np.errstate(over="ignore"):
        h = np.full(rows, SEED, dtype=np.uint64)
        flags = []
        for column, spark_type in zip(columns, types):
            h = hash_column(column, spark_type, h)
            flags.append(np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool))
        return hash_bools(flags, h)
