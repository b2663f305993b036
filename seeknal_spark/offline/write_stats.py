"""Per-feature statistics observed while a write runs (no second scan).

The expressions ride on the write's own Spark job through ``DataFrame.observe``; the values are recorded in the
commit metadata (``seeknal.write`` -> ``stats``) and read back by monitoring.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Dict, List, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame

__all__ = ["QUANTILES", "stat_columns", "stats_from_metrics"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_NUMERIC = ("byte", "short", "integer", "long", "float", "double")


def is_numeric_type(type_json: Any) -> bool:
    """True for a Spark/Delta type JSON value of a number (integers, floats, decimals)."""
    return isinstance(type_json, str) and (type_json in _NUMERIC or type_json.startswith("decimal"))


def stat_columns(df: "DataFrame", features: Sequence[str]) -> List["Column"]:
    """Aggregate expressions for ``observe``: count, nulls; min, max, mean, stddev, quantiles for numbers."""
    from pyspark.sql import functions as F

    types = {f.name: f.dataType.jsonValue() for f in df.schema.fields}
    cols: List["Column"] = [F.count(F.lit(1)).alias("__rows")]
    for i, name in enumerate(features):
        c = F.col(name)
        cols.append(F.sum(c.isNull().cast("long")).alias(f"{i}__nulls"))
        if is_numeric_type(types[name]):
            x = c.cast("double")
            cols += [F.min(x).alias(f"{i}__min"), F.max(x).alias(f"{i}__max"), F.avg(x).alias(f"{i}__mean"),
                     F.stddev(x).alias(f"{i}__stddev"),
                     # As a JSON string: Spark 3.5's Observation.get returns arrays as py4j objects, not lists.
                     F.to_json(F.percentile_approx(x, list(QUANTILES), 1000)).alias(f"{i}__quantiles")]
    return cols


def _quantile_list(value: Any) -> Any:
    """The observed quantiles (a JSON array string, see ``stat_columns``) as a list; None when absent."""
    if isinstance(value, str):
        return json.loads(value)  # Spark writes NaN/Infinity as bare tokens, which json accepts
    if value is None or isinstance(value, (list, tuple)):
        return list(value) if value is not None else None
    raise TypeError(f"observed quantiles of type {type(value).__name__} (expected a JSON array string)")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def stats_from_metrics(metrics: Dict[str, Any], features: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Turn observed metrics into ``{feature: {"count", "null_count", "min", "max", "mean", "stddev", ...}}``."""
    rows = int(metrics.get("__rows") or 0)
    out: Dict[str, Dict[str, Any]] = {}
    for i, name in enumerate(features):
        nulls = int(metrics.get(f"{i}__nulls") or 0)
        entry: Dict[str, Any] = {"count": rows - nulls, "null_count": nulls}
        if f"{i}__min" in metrics:
            entry.update({k: _clean(metrics.get(f"{i}__{k}")) for k in ("min", "max", "mean", "stddev")})
            quantiles = _clean(_quantile_list(metrics.get(f"{i}__quantiles")))
            entry["quantiles"] = dict(zip([str(q) for q in QUANTILES], quantiles)) if quantiles else None
        out[name] = entry
    return out
