"""Spines: checking them, finding their time column, and ``HistoricalFeatures.to_dataframe(spine_df=...)``.

``hist.to_dataframe(spine_df=labels)`` is the point-in-time join of
``hist.using_spine(labels, date_col, keep_cols).to_dataframe_with_spine()`` in one call, as the parity guide
writes it. A pandas spine gives a pandas result with one row per spine row, in the spine's order and index, whose
join-key and time columns have the spine's dtypes, so ``labels.merge(result, on=[keys..., date_col])`` pairs every
label with its features.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

from seeknal_spark.errors import DefinitionError, SchemaError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType

    from seeknal_spark.retrieval.historical import HistoricalFeatures

__all__ = ["key_type", "require_spine_columns", "infer_date_col", "spine_to_dataframe"]

_ROW = "__sk_spine_row"


def key_type(spine_type: "DataType", stored: Sequence[Tuple[str, "DataType"]], key: str) -> "DataType":
    """The type keys are compared in: the stored type; numeric spine keys are cast to it, others must match."""
    from pyspark.sql.types import NumericType

    target = stored[0][1]
    for name, data_type in list(stored) + [("the spine", spine_type)]:
        same = data_type.simpleString() == target.simpleString()
        if not same and not (isinstance(data_type, NumericType) and isinstance(target, NumericType)):
            raise SchemaError(f"join key {key!r} is {data_type.simpleString()} in {name} but "
                              f"{target.simpleString()} in {stored[0][0]}; cast it to {target.simpleString()}")
    return target


def require_spine_columns(spine: "DataFrame", columns: Sequence[str], what: str, hint: str) -> None:
    """Raise SchemaError naming the columns of ``columns`` the spine lacks."""
    missing = [c for c in columns if c not in spine.columns]
    if missing:
        raise SchemaError(f"the spine has no column(s) {missing} ({what}); spine columns: {spine.columns}; {hint}")


def infer_date_col(spine: "DataFrame", keys: Sequence[str], ignore: Sequence[str] = ()) -> str:
    """The spine's only timestamp/date column besides ``keys``; DefinitionError naming the candidates otherwise."""
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    skip = set(keys) | set(ignore)
    candidates = [f.name for f in spine.schema.fields if f.name not in skip
                  and isinstance(f.dataType, (TimestampType, TimestampNTZType, DateType))]
    if len(candidates) == 1:
        return candidates[0]
    columns = [f"{f.name}: {f.dataType.simpleString()}" for f in spine.schema.fields if f.name not in ignore]
    if not candidates:
        raise DefinitionError(f"the spine has no timestamp or date column besides the join keys {list(keys)} "
                              f"(columns: {columns}); add the time of each row and pass date_col=")
    raise DefinitionError(f"the spine has several timestamp/date columns {candidates}; pass date_col= naming the "
                          "one features are taken as of")


def _is_pandas(data: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return isinstance(data, pd.DataFrame)


def spine_to_dataframe(hist: "HistoricalFeatures", spine: Any, date_col: Optional[str],
                       keep_cols: Optional[Union[str, Sequence[str]]],
                       bounds: Tuple[Optional[dt.datetime], Optional[dt.datetime]],
                       spark: Optional["SparkSession"] = None) -> Any:
    """``hist.to_dataframe(spine_df=...)``: one row per spine row with its keys, ``date_col``, ``keep_cols`` and the
    features as of ``date_col``, using feature rows with event time in ``bounds`` only (both optional).

    Spark spine -> Spark DataFrame (lazy, as ``to_dataframe_with_spine``); pandas spine -> pandas DataFrame
    aligned with the spine (same order and index; key and time columns keep the spine's dtypes).
    """
    from seeknal_spark.offline.frames import to_spark
    from seeknal_spark.retrieval.spark_engine import retrieve as _retrieve

    keep: List[str] = [keep_cols] if isinstance(keep_cols, str) else list(keep_cols or [])
    pandas_spine = _is_pandas(spine)
    if pandas_spine:
        if _ROW in spine.columns:
            raise SchemaError(f"spine column {_ROW!r} is reserved by seeknal_spark; rename it")
        frame = to_spark(spine.reset_index(drop=True).assign(**{_ROW: range(len(spine))}), spark)
    else:
        frame = to_spark(spine, spark)
    resolved = hist.resolve()
    keys: List[str] = []
    for r in resolved:
        keys += [k for k in r.join_keys if k not in keys]
    if date_col is None:
        date_col = infer_date_col(frame, keys, ignore=[_ROW])
    df = _retrieve(hist, frame, date_col, keep + ([_ROW] if pandas_spine else []), resolved, bounds)[0]
    if not pandas_spine:
        return df
    return _to_pandas_like(df, spine)


def _to_pandas_like(df: "DataFrame", spine: Any) -> Any:
    """The Spark result as pandas, in the spine's row order and index, spine columns with the spine's dtypes.

    Timestamps travel as UTC microseconds, so the session time zone does not shift them.
    """
    import pandas as pd
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    from seeknal_spark.retrieval.asof import qcol

    spine_cols = set(spine.columns)
    micros = {f.name for f in df.schema.fields
              if f.name in spine_cols and isinstance(f.dataType, TimestampType)}
    ntz = {f.name for f in df.schema.fields if f.name in spine_cols and isinstance(f.dataType, TimestampNTZType)}
    out = df.select(*[F.unix_micros(qcol(c)).alias(c) if c in micros else qcol(c) for c in df.columns]).toPandas()
    out = out.sort_values(_ROW, kind="stable").drop(columns=[_ROW])
    out.index = spine.index
    for name in [c for c in out.columns if c in spine_cols]:
        want = spine[name].dtype
        if name in micros:
            values = pd.to_datetime(out[name], unit="us", utc=True)
            tz = getattr(want, "tz", None)
            values = values.dt.tz_convert(tz) if tz is not None else values.dt.tz_localize(None)
            out[name] = values.astype(want) if pd.api.types.is_datetime64_any_dtype(want) else values
        elif name not in ntz and out[name].dtype != want:
            try:
                out[name] = out[name].astype(want)
            except (TypeError, ValueError):
                pass  # keep Spark's conversion (e.g. a nullable column pandas cannot hold in the spine's dtype)
    return out
