"""The Spark engine of training sets: the spine's time column, then one point-in-time pass per key set.

:class:`~seeknal_spark.retrieval.historical.HistoricalFeatures` decides what to retrieve; this module computes it on
Spark (:mod:`~seeknal_spark.retrieval.asof` holds the windowed as-of pass itself); the single-machine twin is
:mod:`~seeknal_spark.retrieval.duckdb_engine`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from seeknal_spark.errors import DataError, SchemaError
from seeknal_spark.retrieval.asof import INTERVAL_MAX_SPINE_ROWS, FeatureSide, asof_pass, interval_pass, qcol
from seeknal_spark.retrieval.columns import spine_columns
from seeknal_spark.retrieval.lookup import ResolvedLookup, apply_fill_nulls
from seeknal_spark.retrieval.spine import key_type, require_spine_columns
from seeknal_spark.timeutil import duration_micros, from_micros

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType

    from seeknal_spark.retrieval.historical import HistoricalFeatures

__all__ = ["spine_micros", "retrieve"]

_SPINE_T = "__sk_spine_t"
_MICROS_PER_DAY = 86_400_000_000
_NO_ROWS = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)  # read bound that prunes every partition


def spine_micros(df: "DataFrame", date_col: str) -> "Column":
    """Microseconds since the epoch of the spine's ``date_col``, independent of the session time zone.

    A TIMESTAMP is an instant; a DATE is midnight UTC of that day (features stamped later that day are not
    visible, which keeps same-day information out of a label dated by day); a TIMESTAMP_NTZ is read as UTC
    wall time, like naive datetimes everywhere in seeknal_spark.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    data_type = df.schema[date_col].dataType
    col = qcol(date_col)
    if isinstance(data_type, TimestampType):
        return F.unix_micros(col)
    if isinstance(data_type, DateType):
        return F.unix_date(col).cast("long") * F.lit(_MICROS_PER_DAY)
    if isinstance(data_type, TimestampNTZType):
        # Wall-clock parts (time-zone free for TIMESTAMP_NTZ); F.timestamp_diff does not exist before Spark 4.0.
        seconds = F.extract(F.lit("SECOND"), col) * F.lit(1_000_000)  # decimal(8,6): exact microseconds
        return (F.unix_date(col.cast("date")).cast("long") * F.lit(_MICROS_PER_DAY)
                + F.hour(col).cast("long") * F.lit(3_600_000_000) + F.minute(col).cast("long") * F.lit(60_000_000)
                + seconds.cast("long"))
    raise SchemaError(f"spine column {date_col!r} has type {data_type.simpleString()}; date_col must be a "
                      f"timestamp or a date (cast it, e.g. F.to_timestamp(F.col({date_col!r})))")


def retrieve(hist: "HistoricalFeatures", spine: "DataFrame", date_col: str, keep_cols: Sequence[str],
              resolved: List[ResolvedLookup],
              bounds: Tuple[Optional[dt.datetime], Optional[dt.datetime]] = (None, None)
              ) -> Tuple["DataFrame", Dict[str, Any], List[Tuple[str, str]]]:
    """The training set, the spine's fingerprint (rows + sha256) and the spine columns used with their types.

    ``bounds``: only feature rows with event time in [start, end] are used (both optional)."""
    from pyspark.sql import functions as F

    from seeknal_spark.retrieval.manifest import fingerprint_aggregates, fingerprint_totals, spine_fingerprint

    from seeknal_spark.offline.layout import SEQ_COL
    from seeknal_spark.offline.reader import read_table

    require_spine_columns(spine, [date_col], "date_col", "pass date_col= the name of the spine's time column")
    require_spine_columns(spine, list(keep_cols), "keep_cols", "keep_cols must name columns of the spine")
    for r in resolved:
        require_spine_columns(spine, list(r.join_keys), f"join key(s) of feature group {r.name!r}",
                 "the spine must hold the join keys of every lookup's entity")
    base_cols = spine_columns(resolved, date_col, keep_cols)
    outputs = [o for r in resolved for o in r.output_names]

    frame = spine.select(*[qcol(c) for c in base_cols], spine_micros(spine, date_col).alias(_SPINE_T))
    frame_types = {f.name: f.dataType for f in frame.schema.fields}
    passes: Dict[Tuple[str, ...], List[ResolvedLookup]] = {}
    for r in resolved:
        passes.setdefault(tuple(sorted(r.join_keys)), []).append(r)
    key_sets = list(passes)
    # One job over the spine: per key of the first key set, then in total (the fingerprint's sums are exact, so
    # grouping does not change it); the largest group says which as-of pass fits (see retrieval.asof).
    per_key = frame.groupBy(*[qcol(k) for k in key_sets[0]]).agg(
        F.min(_SPINE_T).alias("lo"), F.max(_SPINE_T).alias("hi"),
        F.count(F.when(F.col(_SPINE_T).isNull(), 1)).alias("nulls"), F.count(F.lit(1)).alias("rows"),
        *fingerprint_aggregates(frame_types, base_cols))
    stats = per_key.agg(F.min("lo").alias("lo"), F.max("hi").alias("hi"), F.sum("nulls").alias("nulls"),
                        F.max("rows").alias("most"), *fingerprint_totals()).collect()[0]
    spine_types = [(c, frame_types[c].simpleString()) for c in base_cols]
    fingerprint = spine_fingerprint(stats, spine_types)
    if stats["nulls"]:
        raise DataError(f"spine column {date_col!r} is null in {stats['nulls']} row(s); every spine row needs a "
                        "time: drop or fill those rows")
    most = {key_sets[0]: stats["most"] or 0}  # the most spine rows of one key, per key set
    for key_set in key_sets[1:]:
        most[key_set] = frame.groupBy(*[qcol(k) for k in key_set]).count().agg(F.max("count")).collect()[0][0] or 0
    lo = from_micros(stats["lo"]) if stats["lo"] is not None else None
    hi = from_micros(stats["hi"]) if stats["hi"] is not None else _NO_ROWS

    session = spine.sparkSession
    for key_set, group in passes.items():
        sides: List[FeatureSide] = []
        stored_types: Dict[str, List[Tuple[str, "DataType"]]] = {k: [] for k in key_set}
        for r in group:
            # Rows older than (earliest spine time - TTL) can never be within TTL of any spine row; without a
            # TTL the as-of row may be arbitrarily old, so there is no lower bound.
            low, high = _lower_bound(lo, r.ttl), hi
            low = bounds[0] if low is None or (bounds[0] is not None and bounds[0] > low) else low
            high = bounds[1] if bounds[1] is not None and bounds[1] < high else high
            rows = read_table(session, r.table_path, r.event_time_col, version=r.delta_version,
                              start=low, end=high, with_seq=True, storage_options=r.storage_options)
            for k in key_set:
                stored_types[k].append((f"feature group {r.name!r}", rows.schema[k].dataType))
            sides.append(FeatureSide(df=rows, keys=list(key_set), event_time_col=r.event_time_col,
                                     seq_col=SEQ_COL, features=list(r.features), outputs=list(r.output_names),
                                     ttl_micros=duration_micros(r.ttl)))
        types = [key_type(frame_types[k], stored_types[k], k) for k in key_set]
        as_of = interval_pass if most[key_set] <= INTERVAL_MAX_SPINE_ROWS else asof_pass
        frame = as_of(frame, list(key_set), _SPINE_T, types, sides)
    result = frame.select(*[qcol(c) for c in base_cols], *[qcol(o) for o in outputs])
    return apply_fill_nulls(result, hist.fill_nulls, outputs), fingerprint, spine_types


def _lower_bound(lo: Optional[dt.datetime], ttl: Optional[dt.timedelta]) -> Optional[dt.datetime]:
    if lo is None or ttl is None:
        return None
    try:
        return lo - ttl
    except OverflowError:
        return None

