"""Training sets on one machine: the point-in-time join in DuckDB over the same Delta snapshots (no Spark).

``HistoricalFeatures(..., engine="duckdb")`` (or ``using_spine(...).to_pandas_with_spine()`` /
``to_arrow_with_spine()``) builds the training set from a pandas or Arrow spine with the rules of the Spark engine
(``retrieval/asof.py``):

* the live Parquet files of each group's resolved Delta version are read (delta-rs lists them, pruned by
  partition date exactly as the Spark reader prunes), columns a file lacks read as null;
* per spine row, the feature row with the same keys and the latest event time ``<=`` the spine time is taken
  (inclusive); among rows with the same keys and event time the one from the later write (larger write sequence
  number in the file name) wins: DuckDB's ``ASOF LEFT JOIN`` runs on the ordering key ``(event time, write rank)``
  packed into one HUGEINT, so ties never depend on scan order;
* the whole matched row is taken, so a stored null stays that row's value; a TTL nulls the row when
  ``spine time - event time > ttl``; fills are applied last, in order, as ``apply_fill_nulls`` does;
* every spine row yields one output row, in spine order (duplicates kept).

The spine fingerprint is Spark's (``spark_hash``), so the manifest equals the Spark engine's and either engine
can rebuild a training set from a manifest written by the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from seeknal_spark.typenames import SPARK_TO_DELTA, type_name
from seeknal_spark.errors import DataError, DefinitionError, SchemaError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.layout import local_path
from seeknal_spark.retrieval.lookup import fill_targets
from seeknal_spark.sqltypes import duckdb_type, quote_ident as q
from seeknal_spark.storage import fs_path, is_s3

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from seeknal_spark.retrieval.historical import HistoricalFeatures
    from seeknal_spark.retrieval.lookup import ResolvedLookup

__all__ = ["build_training_set", "spine_to_arrow"]

_RID, _T = "__sk_rid", "__sk_t"
_MICROS_PER_DAY = 86_400_000_000
_NO_ROWS_US = -62_135_596_800_000_000  # 0001-01-01T00:00Z: a read bound that prunes every partition
_SEQ_BITS = 32  # write ranks live in the low bits of the as-of ordering key
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")


def spine_to_arrow(spine: Any) -> "pa.Table":
    """An Arrow table of a pandas DataFrame or Arrow table; naive pandas datetimes are taken as UTC (as the
    Spark engine's ``to_spark`` does)."""
    import pyarrow as pa

    if isinstance(spine, pa.Table):
        return spine
    if isinstance(spine, pa.RecordBatch):
        return pa.Table.from_batches([spine])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(spine, pd.DataFrame):
        from seeknal_spark.timeutil import pandas_utc

        frame = pandas_utc(spine)
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise SchemaError(f"the duckdb engine takes a pandas DataFrame or an Arrow table as spine, got "
                      f"{type(spine).__name__}; for a Spark DataFrame use engine='spark' (the default)")


def _spark_type(arrow_type: "pa.DataType", column: str) -> str:
    """The Spark simple type string Spark gives a column of this Arrow type (as in ``createDataFrame``)."""
    import pyarrow as pa

    simple = {pa.bool_(): "boolean", pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "int",
              pa.int64(): "bigint", pa.uint8(): "smallint", pa.uint16(): "int", pa.uint32(): "bigint",
              pa.float32(): "float", pa.float64(): "double", pa.string(): "string", pa.large_string(): "string",
              pa.binary(): "binary", pa.large_binary(): "binary", pa.date32(): "date", pa.date64(): "date"}
    if arrow_type in simple:
        return simple[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "timestamp" if arrow_type.tz is not None else "timestamp_ntz"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    raise SchemaError(f"spine column {column!r} has Arrow type {arrow_type}, which the duckdb engine does not take; "
                      "cast it to a number, string, boolean, date or timestamp (or use engine='spark')")


def _time_micros(column: Any, spark_type: str, date_col: str) -> Any:
    """Spine times as int64 microseconds since the epoch (UTC), as ``historical.spine_micros`` defines them."""
    import numpy as np
    import pyarrow as pa

    arr = column.combine_chunks()
    if spark_type in ("timestamp", "timestamp_ntz"):
        unit = arr.type.unit
        raw = np.asarray(arr.view(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        if unit == "ns":
            return np.floor_divide(raw, 1000)
        return raw * {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
    if spark_type == "date":
        days = np.asarray(arr.cast(pa.date32()).view(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False))
        return days.astype(np.int64) * _MICROS_PER_DAY
    raise SchemaError(f"spine column {date_col!r} has type {spark_type}; date_col must be a timestamp or a date "
                      f"(cast it, e.g. pd.to_datetime(spine[{date_col!r}], utc=True))")


def _as_spark_column(column: Any, spark_type: str) -> Any:
    """Spine timestamps at Spark's precision (microseconds), so the result's spine columns equal Spark's."""
    import pyarrow as pa

    if spark_type in ("timestamp", "timestamp_ntz") and column.type.unit == "ns":
        return column.cast(pa.timestamp("us", tz=column.type.tz), safe=False)
    return column


def _fingerprint(table: "pa.Table", spine_types: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    from seeknal_spark.retrieval.manifest import spine_fingerprint
    from seeknal_spark.retrieval.spark_hash import xxhash64_columns

    names = [c for c, _ in spine_types]
    try:
        h = xxhash64_columns([table.column(c) for c in names], [t for _, t in spine_types], table.num_rows)
    except TypeError as exc:
        raise SchemaError(f"the duckdb engine cannot fingerprint the spine columns {spine_types}: {exc}; use "
                          "engine='spark' for such spines") from None
    row = {"__sk_fp_rows": table.num_rows, "__sk_fp_hi": int((h >> 32).sum(dtype="uint64")),
           "__sk_fp_lo": int((h & 0xFFFFFFFF).sum(dtype="uint64"))}
    return spine_fingerprint(row, spine_types)  # type: ignore[arg-type]


def _key_cast(spine_type: str, stored: Sequence[Tuple[str, str]], key: str) -> str:
    """The stored Spark type keys are compared in; the same rule (and message) as historical._key_type."""
    target = stored[0][1]
    numeric = lambda t: t in _NUMERIC or t.startswith("decimal(")  # noqa: E731
    for name, data_type in list(stored) + [("the spine", spine_type)]:
        if data_type != target and not (numeric(data_type) and numeric(target)):
            raise SchemaError(f"join key {key!r} is {data_type} in {name} but {target} in {stored[0][0]}; "
                              f"cast it to {target}")
    return target


def _duck(spark_type: str, what: str) -> str:
    return duckdb_type(SPARK_TO_DELTA.get(spark_type, spark_type), what)


def _feature_sql(con: Any, r: "ResolvedLookup", j: int, keys: Sequence[str], key_types: Sequence[str],
                 lo_us: Optional[int], hi_us: int, params: Dict[str, Any]) -> str:
    """The SELECT of lookup ``j``'s stored rows: cast keys, ordering key, event time and features."""
    from seeknal_spark.offline.layout import PARTITION_COL
    from seeknal_spark.timeutil import from_micros, utc_date

    table = delta_log.open_table(r.table_path, r.delta_version, r.storage_options)
    if table is None:  # resolve() found it a moment ago
        raise DefinitionError(f"feature group {r.name!r}: no Delta table at {r.table_path}")
    delta_log.check_portable(table)
    files = delta_log.live_files(table, utc_date(from_micros(lo_us)) if lo_us is not None else None,
                                 utc_date(from_micros(hi_us)))
    seqs = sorted({f.seq if f.seq is not None else 0 for f in files})
    rank = {s: i for i, s in enumerate(seqs)}
    feats = [(f, _duck(type_name(t), f"feature {f!r} of {r.name!r}")) for f, t in r.feature_types]
    cols = [f"CAST({q(k)} AS {_duck(t, f'join key {k!r}')}) AS __sk_k{i}" for i, (k, t) in
            enumerate(zip(keys, key_types))]
    et = q(r.event_time_col)
    if not files:
        nulls = [f"CAST(NULL AS {_duck(t, k)}) AS __sk_k{i}" for i, (k, t) in enumerate(zip(keys, key_types))]
        nulls += ["CAST(NULL AS HUGEINT) AS __sk_o", "CAST(NULL AS BIGINT) AS __sk_et"]
        nulls += [f"CAST(NULL AS {t}) AS __sk_f{i}" for i, (_, t) in enumerate(feats)]
        return f"SELECT {', '.join(nulls)} WHERE false"
    if is_s3(r.table_path):  # no DuckDB extension download: pyarrow reads the S3 files, DuckDB scans the rows
        con.register(f"__sk_s3_{j}", delta_log.read_files_arrow(table, files, "__sk_file"))
        paths, scan, scan_params = [fs_path(f.uri) for f in files], f"__sk_s3_{j}", {}
    else:
        paths = params[f"files{j}"] = [local_path(f.uri) for f in files]
        scan = f"read_parquet($files{j}, hive_partitioning=false, union_by_name=true, filename='__sk_file')"
        scan_params = {f"files{j}": paths}
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}", scan_params).fetchall()} - {PARTITION_COL}
    for col in list(keys) + [r.event_time_col]:
        if col not in present:
            raise SchemaError(f"column {col!r} of feature group {r.name!r} is missing from its data files "
                              f"({r.table_path})")
    values = [f"CAST({q(f) if f in present else 'NULL'} AS {t}) AS __sk_f{i}" for i, (f, t) in enumerate(feats)]
    # one rank per write: a join on the file name (a handful of files) instead of parsing names per row
    if len(seqs) == 1:
        rank_sql, join = "0", ""
    else:
        rank_sql = "__sk_w.__sk_rank"
        params[f"paths{j}"] = paths
        params[f"ranks{j}"] = [rank[f.seq if f.seq is not None else 0] for f in files]
        join = (f" JOIN (SELECT unnest($paths{j}) AS __sk_path, unnest($ranks{j}) AS __sk_rank) __sk_w "
                "ON __sk_w.__sk_path = __sk_file")
    where = [f"epoch_us({et}) <= {int(hi_us)}"] + ([f"epoch_us({et}) >= {int(lo_us)}"] if lo_us is not None else [])
    return (f"SELECT {', '.join(cols)}, "
            f"(CAST(epoch_us({et}) AS HUGEINT) << {_SEQ_BITS}) + {rank_sql} AS __sk_o, epoch_us({et}) AS __sk_et"
            f"{''.join(', ' + v for v in values)} FROM {scan}{join} WHERE {' AND '.join(where)}")


def _fills(hist: "HistoricalFeatures", outputs: Sequence[Tuple[str, str]], params: Dict[str, Any]
           ) -> Dict[str, str]:
    """Per output column, the SQL of its fill value (apply_fill_nulls's rules: first matching fill wins)."""
    names = [o for o, _ in outputs]
    types = dict(outputs)
    out: Dict[str, str] = {}
    for n, fill in enumerate(hist.fill_nulls):
        params[f"fill{n}"] = fill.value
        for column in fill_targets(fill, names, types):
            if column not in out:
                out[column] = (f"TRY_CAST(TRY_CAST($fill{n} AS {_duck(fill.type_name, repr(fill))}) AS "
                               f"{_duck(types[column], column)})")
    return out


def build_training_set(hist: "HistoricalFeatures", spine: Any, date_col: str, keep_cols: Sequence[str],
                       resolved: List["ResolvedLookup"], threads: Optional[int] = None
                       ) -> Tuple["pa.Table", Dict[str, Any], List[Tuple[str, str]]]:
    """The training set as an Arrow table, the spine fingerprint and the spine columns with their Spark types."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    from seeknal_spark.retrieval.columns import spine_columns
    from seeknal_spark.timeutil import duration_micros, from_micros

    table = spine_to_arrow(spine)
    columns = table.column_names
    for wanted, what, hint in [([date_col], "date_col", "pass date_col= the name of the spine's time column"),
                               (list(keep_cols), "keep_cols", "keep_cols must name columns of the spine")] + [
            (list(r.join_keys), f"join key(s) of feature group {r.name!r}",
             "the spine must hold the join keys of every lookup's entity") for r in resolved]:
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise SchemaError(f"the spine has no column(s) {missing} ({what}); spine columns: {columns}; {hint}")
    base_cols = spine_columns(resolved, date_col, keep_cols)
    outputs = [(o, type_name(t)) for r in resolved for (_, t), o in zip(r.feature_types, r.output_names)]
    spine_types = [(c, _spark_type(table.schema.field(c).type, c)) for c in base_cols]
    types = dict(spine_types)
    fingerprint = _fingerprint(table, spine_types)
    nulls = table.column(date_col).null_count
    if nulls:
        raise DataError(f"spine column {date_col!r} is null in {nulls} row(s); every spine row needs a "
                        "time: drop or fill those rows")
    micros = _time_micros(table.column(date_col), types[date_col], date_col)
    frame = pa.table([_as_spark_column(table.column(c), types[c]) for c in base_cols] + [pa.array(np.arange(table.num_rows, dtype=np.int64)),
                                                             pa.array(micros, pa.int64())],
                     names=[f"__sk_c{i}" for i in range(len(base_cols))] + [_RID, _T])
    lo = int(micros.min()) if len(micros) else None
    hi = int(micros.max()) if len(micros) else _NO_ROWS_US  # an empty spine reads nothing

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.register("__sk_spine", frame)
        params: Dict[str, Any] = {}
        spine_sel = [f"__sk_c{i}" for i in range(len(base_cols))] + [_RID, _T]
        joins, selects = [], []
        passes: Dict[Tuple[str, ...], List[ResolvedLookup]] = {}
        for r in resolved:
            passes.setdefault(tuple(sorted(r.join_keys)), []).append(r)
        j = 0
        for p, (key_set, group) in enumerate(passes.items()):
            stored = {k: [(f"feature group {r.name!r}", type_name(dict(r.key_types)[k])) for r in group]
                      for k in key_set}
            key_types = [_key_cast(types[k], stored[k], k) for k in key_set]
            for i, (k, t) in enumerate(zip(key_set, key_types)):
                src = f"__sk_c{base_cols.index(k)}"
                if types[k] in ("float", "double") and t in ("tinyint", "smallint", "int", "bigint"):
                    src = f"trunc({src})"  # Spark casts fractional keys toward zero
                spine_sel.append(f"TRY_CAST({src} AS {_duck(t, f'join key {k!r}')}) AS __sk_p{p}k{i}")
            for r in group:
                ttl = r.ttl
                lower = None
                if lo is not None and ttl is not None:
                    lower = lo - duration_micros(ttl)
                try:
                    from_micros(lower) if lower is not None else None
                except (OverflowError, ValueError):
                    lower = None
                sql = _feature_sql(con, r, j, key_set, key_types, lower, hi, params)
                on = " AND ".join(f"s.__sk_p{p}k{i} = f{j}.__sk_k{i}" for i in range(len(key_set)))
                joins.append(f"ASOF LEFT JOIN ({sql}) f{j} ON {on} AND s.__sk_o >= f{j}.__sk_o")
                live = f"f{j}.__sk_o IS NOT NULL"
                if ttl is not None:
                    ttl_us = duration_micros(ttl)
                    live += f" AND s.{_T} - f{j}.__sk_et <= {int(ttl_us)}"
                for i, out in enumerate(r.output_names):
                    selects.append((out, f"CASE WHEN {live} THEN f{j}.__sk_f{i} END"))
                j += 1
        fills = _fills(hist, outputs, params)
        out_sql = [f"s.__sk_c{i} AS {q(c)}" for i, c in enumerate(base_cols)]
        out_sql += [f"coalesce({expr}, {fills[o]}) AS {q(o)}" if o in fills else f"{expr} AS {q(o)}"
                    for o, expr in selects]
        sql = (f"SELECT {', '.join(out_sql)} FROM (SELECT {', '.join(spine_sel)}, "
               f"(CAST({_T} AS HUGEINT) << {_SEQ_BITS}) + {2 ** _SEQ_BITS - 1} AS __sk_o FROM __sk_spine) s "
               f"{' '.join(joins)} ORDER BY s.{_RID}")
        result = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()
    return result, fingerprint, spine_types
