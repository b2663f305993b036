"""Type names: Spark's ``simpleString`` of a Delta/Spark type JSON (``"long"`` -> ``"bigint"``), without pyspark.

The one place that names a stored type in messages, manifests and online metadata.
"""

from __future__ import annotations

from typing import Any

from seeknal_spark.errors import SchemaError

__all__ = ["type_name", "DELTA_TO_SPARK", "SPARK_TO_DELTA"]

# the integer types, the only simple types whose Delta and Spark SQL names differ
DELTA_TO_SPARK = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}
SPARK_TO_DELTA = {spark: delta for delta, spark in DELTA_TO_SPARK.items()}


def type_name(type_json: Any, delta_names: bool = False) -> str:
    """Spark's ``simpleString`` of a Delta/Spark type JSON, without pyspark (``"long"`` -> ``"bigint"``).

    With ``delta_names`` the Delta spelling is kept (``"long"``, ``"array<double>"``), as online metadata records it.
    """
    if isinstance(type_json, str):
        return type_json if delta_names else DELTA_TO_SPARK.get(type_json, type_json.replace(" ", ""))
    kind = type_json.get("type") if isinstance(type_json, dict) else None
    if kind == "array":
        return f"array<{type_name(type_json['elementType'], delta_names)}>"
    if kind == "map":
        return f"map<{type_name(type_json['keyType'], delta_names)},{type_name(type_json['valueType'], delta_names)}>"
    if kind == "struct":
        return "struct<" + ",".join(f"{f['name']}:{type_name(f['type'], delta_names)}"
                                    for f in type_json["fields"]) + ">"
    raise SchemaError(f"unknown Delta type {type_json!r}")
