"""Mapping of Delta (Spark ``DataType.jsonValue()``) types to DuckDB types, and SQL identifier quoting.

The online file stores every column with the DuckDB type matching the offline Delta type, so a served value has
the same type as the offline value (training-serving parity).
"""

from __future__ import annotations

import re
from typing import Any, Optional

from seeknal_spark.typenames import type_name
from seeknal_spark.errors import SchemaError

__all__ = ["quote_ident", "duckdb_type", "INTEGER_TYPES", "FLOAT_TYPES"]

_PRIMITIVE = {
    "boolean": "BOOLEAN",
    "byte": "TINYINT",
    "short": "SMALLINT",
    "integer": "INTEGER",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "binary": "BLOB",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",  # Delta timestamp = UTC instant
    "timestamp_ntz": "TIMESTAMP",
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_VARCHAR_N = re.compile(r"^(varchar|char)\(\d+\)$")

INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT"})
FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE"})


def quote_ident(name: str) -> str:
    """A SQL identifier in double quotes (embedded quotes doubled), so any column name is safe in SQL text."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise SchemaError(f"column name {name!r} cannot be used in the online table")
    return '"' + name.replace('"', '""') + '"'


def duckdb_type(delta_type: Any, what: str = "column") -> str:
    """DuckDB type for a Delta/Spark type (``"long"``, ``"decimal(10,2)"``, or an array/map/struct dict)."""
    if isinstance(delta_type, str):
        if delta_type in _PRIMITIVE:
            return _PRIMITIVE[delta_type]
        match = _DECIMAL.match(delta_type)
        if match:
            return f"DECIMAL({match.group(1)},{match.group(2)})"
        if _VARCHAR_N.match(delta_type):
            return "VARCHAR"
    elif isinstance(delta_type, dict):
        kind = delta_type.get("type")
        if kind == "array":
            return f"{duckdb_type(delta_type['elementType'], what)}[]"
        if kind == "map":
            return f"MAP({duckdb_type(delta_type['keyType'], what)}, {duckdb_type(delta_type['valueType'], what)})"
        if kind == "struct":
            fields = ", ".join(f"{quote_ident(f['name'])} {duckdb_type(f['type'], what)}"
                               for f in delta_type.get("fields", []))
            return f"STRUCT({fields})"
    raise SchemaError(f"{what} has type {delta_type!r}, which the online store cannot serve; "
                      "cast it to a numeric, string, boolean, date, timestamp, decimal or array/map/struct type")


def type_label(delta_type: Any) -> Optional[str]:
    """A short readable form of a Delta type for metadata (``"long"``, ``"array<double>"``)."""
    try:
        return type_name(delta_type, delta_names=True)
    except SchemaError:
        return str(delta_type)
