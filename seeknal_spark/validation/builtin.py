"""Built-in expectations derived from a feature group's definition (no suite needed).

- every join key and the event-time column are not null;
- the event time lies inside the written range [start, end] (checked on UTC microseconds, so the result does not
  depend on ``spark.sql.session.timeZone``);
- every feature has its registered Spark type.

Each carries ``meta["seeknal"]`` naming the built-in check and the user-facing column.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["EVENT_MICROS_COL", "builtin_expectations", "spark_type_name"]

# Helper column added to the validated frame: the event time as UTC microseconds since the epoch.
EVENT_MICROS_COL = "__seeknal_event_time_us"


def spark_type_name(type_json: Any) -> str:
    """GX's name for a Spark type given as ``DataType.jsonValue()`` (``"double"`` -> ``"DoubleType"``)."""
    from pyspark.sql.types import _parse_datatype_json_value

    return type(_parse_datatype_json_value(type_json)).__name__


def _meta(check: str, column: str, **extra: Any) -> Dict[str, Any]:
    return {"seeknal": {"builtin": check, "column": column, **extra}}


def builtin_expectations(join_keys: Sequence[str], event_time_col: str,
                         feature_types: Sequence[Tuple[str, Any]], start: Optional[dt.datetime] = None,
                         end: Optional[dt.datetime] = None) -> List[Dict[str, Any]]:
    """Expectation configurations (GX JSON form) for a group's keys, event time and feature types.

    The range check reads :data:`EVENT_MICROS_COL`, which the runner adds to the validated frame when it is needed.
    """
    from seeknal_spark.timeutil import to_micros

    out: List[Dict[str, Any]] = []
    for key in join_keys:
        out.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": key},
                    "meta": _meta("join_key_not_null", key)})
    out.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": event_time_col},
                "meta": _meta("event_time_not_null", event_time_col)})
    if start is not None or end is not None:
        kwargs: Dict[str, Any] = {"column": EVENT_MICROS_COL}
        if start is not None:
            kwargs["min_value"] = to_micros(start)
        if end is not None:
            kwargs["max_value"] = to_micros(end)
        out.append({"type": "expect_column_values_to_be_between", "kwargs": kwargs,
                    "meta": _meta("event_time_in_range", event_time_col, unit="utc_micros",
                                  start=start.isoformat() if start else None,
                                  end=end.isoformat() if end else None)})
    for name, type_json in feature_types:
        out.append({"type": "expect_column_values_to_be_of_type",
                    "kwargs": {"column": name, "type_": spark_type_name(type_json)},
                    "meta": _meta("feature_type", name)})
    return out


def needs_event_micros(expectations: Sequence[Dict[str, Any]]) -> bool:
    return any(e.get("kwargs", {}).get("column") == EVENT_MICROS_COL for e in expectations)
