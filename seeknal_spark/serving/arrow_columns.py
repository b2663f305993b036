"""Python values of Arrow columns, for the in-memory and memory-mapped indexes of an online table."""

from __future__ import annotations

from typing import Any

__all__ = ["NUMPY_DTYPES", "column_values", "fast_numeric", "numpy_of"]

_NUMERIC_ARROW = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float", "double",
                  "bool")
NUMPY_DTYPES = {"int8": "i1", "int16": "i2", "int32": "i4", "int64": "i8", "uint8": "u1", "uint16": "u2",
                 "uint32": "u4", "uint64": "u8", "float": "f4", "double": "f8"}


def numpy_of(column: Any) -> Any:
    """A null-free numeric/bool Arrow column as a numpy array, read from the Arrow buffers.

    (pyarrow's own ``to_numpy`` imports pandas, which costs about a second at open; this does not.)
    """
    import numpy as np

    arr = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    kind = str(arr.type)
    data = arr.buffers()[1]
    if kind == "bool":
        if data is None:
            return np.zeros(0, dtype=bool)
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        return bits[arr.offset: arr.offset + len(arr)].astype(bool)
    dtype = np.dtype(NUMPY_DTYPES[kind])
    if data is None:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def fast_numeric(column: Any) -> bool:
    return str(column.type) in _NUMERIC_ARROW and column.null_count == 0


def column_values(column: Any) -> list:
    """Python values of an Arrow column (fast path through numpy for null-free numeric columns)."""
    if fast_numeric(column):
        return numpy_of(column).tolist()
    import pyarrow as pa

    if pa.types.is_map(column.type):  # Arrow gives [(k, v), ...]; Spark and Python callers expect a dict
        return [None if v is None else dict(v) for v in column.to_pylist()]
    return column.to_pylist()
