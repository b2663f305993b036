"""Export the latest row per key of Delta snapshots into a DuckDB lookup file (no Spark, no pandas).

For each source, DuckDB reads the live Parquet files of the table's current Delta version (or of the version the
source pins, e.g. a labelled one) and keeps, per key, the row with the largest event time in ``[lower, as_of]``;
ties on (keys, event time) go to the later write (the larger ``seq`` in the data file name). Sources with the same
join keys share one table (full outer join on the keys); each distinct key set gets its own table. Every column gets
the DuckDB type of its offline Delta type.

A source carrying a rows provider (``ServingSource.rows``, see ``offline/provided.py``) is read by that provider
instead (Delta's JVM reader on such sessions); the same query then runs over the Arrow rows it returns.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from seeknal_spark.errors import DefinitionError, SchemaError, StoreError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.layout import SEQ_FILE_PATTERN, local_path
from seeknal_spark.serving.source import ServingSource
from seeknal_spark.sqltypes import duckdb_type, quote_ident, type_label
from seeknal_spark.storage import is_s3
from seeknal_spark.timeutil import utc_date

__all__ = ["META_TABLE", "FORMAT_VERSION", "export_sources", "local_path", "write_metadata", "read_metadata"]

META_TABLE = "_seeknal_online"
FORMAT_VERSION = 2  # 2: sources spelled as vocabulary LookupSpecs
_FILE_COL = "__seeknal_file"
_SEQ_COL = "__seeknal_seq"
_TS_COL = "__seeknal_ts"
# Sequence number from the data file name: "<dir>/s<seq>-<name>.parquet" (offline/layout.py).
_SEQ_REGEX = r"(?:^|/)" + SEQ_FILE_PATTERN.lstrip("^") + r"[^/]*$"


@dataclass
class _Resolved:
    source: ServingSource
    delta_version: int
    schema_version: int
    key_types: List[Tuple[str, Any]]  # (key, delta type)
    features: List[Tuple[str, str, Any]]  # (stored, output, delta type)
    files: List[str]
    rows: Any = None  # a pyarrow Table from the source's rows provider (then ``files`` are only counted)


def _snapshot(source: ServingSource) -> Optional[Tuple[Any, int, Any]]:
    """(delta-rs table or None, Delta version, group state) of the snapshot to export; None: no table."""
    if source.rows is not None:
        snap = source.rows.snapshot(source)
        return None if snap is None else (None, snap.delta_version, snap.state)
    table = delta_log.open_table(source.table_uri, source.delta_version, source.storage_options)
    if table is None:
        return None
    delta_log.check_portable(table)
    return table, table.version(), delta_log.read_state(table)


def _resolve(source: ServingSource, lower: Optional[dt.datetime], upper: dt.datetime) -> _Resolved:
    found = _snapshot(source)
    label = f"{source.project}/{source.name}"
    if found is None:
        raise StoreError(f"feature group {label} has no Delta table at {source.table_uri}: write it before "
                         "publishing it online")
    table, version, state = found
    if state is None:
        raise StoreError(f"Delta table {source.table_uri} has no seeknal feature-group state; it was not written "
                         "by seeknal_spark")
    from seeknal_spark.offline.state import check_stored_definition

    check_stored_definition(label, state, source.join_keys, source.event_time_col, "the lookup")
    registered = dict(state.all_features())
    specs = source.features or tuple((n, n) for n in registered)
    features = []
    for stored, output in specs:
        if stored not in registered:
            raise DefinitionError(f"feature {stored!r} is not in feature group {label}; its features are "
                                  f"{sorted(registered)}")
        features.append((stored, output, registered[stored]))
    key_types = [tuple(kt) for kt in state.key_types]
    if source.rows is not None:
        got = source.rows.latest_rows(source, version, [s for s, _, _ in features], lower, upper)
        return _Resolved(source, version, state.schema_version, key_types, features, list(got.files), got.table)
    live = delta_log.live_files(table, utc_date(lower) if lower else None, utc_date(upper))
    if is_s3(source.table_uri):  # DuckDB reads no S3 without an extension: pyarrow reads, DuckDB scans the rows
        rows = delta_log.read_files_arrow(table, live, _FILE_COL) if live else None
        return _Resolved(source, version, state.schema_version, key_types, features, [f.uri for f in live], rows)
    return _Resolved(source, version, state.schema_version, key_types, features, [local_path(f.uri) for f in live])


def _source_sql(con: Any, res: _Resolved, temp_name: str, lower: Optional[dt.datetime],
                upper: dt.datetime) -> None:
    """Create temp table ``temp_name``: keys, event time, features (output names), latest row per key."""
    src = res.source
    keys = [k for k, _ in res.key_types]
    key_sel = [f"CAST({quote_ident(k)} AS {duckdb_type(t, f'join key {k!r}')}) AS {quote_ident(k)}"
               for k, t in res.key_types]
    ts = quote_ident(src.event_time_col)
    if res.rows is None and not res.files:
        cols = [f"CAST(NULL AS {duckdb_type(t)}) AS {quote_ident(k)}" for k, t in res.key_types]
        cols += [f"CAST(NULL AS TIMESTAMPTZ) AS {_TS_COL}"]
        cols += [f"CAST(NULL AS {duckdb_type(t)}) AS {quote_ident(o)}" for _, o, t in res.features]
        con.execute(f"CREATE TEMP TABLE {temp_name} AS SELECT {', '.join(cols)} WHERE false")
        return
    params: Dict[str, Any] = {"files": res.files}
    scan = f"read_parquet($files, hive_partitioning=false, union_by_name=true, filename='{_FILE_COL}')"
    if res.rows is not None:  # rows from the source's provider: the same query over them (no file names)
        params = {}
        con.register(f"{temp_name}_rows", res.rows)
        named = _FILE_COL in res.rows.column_names  # pyarrow-read S3 files carry their file names
        extra = "" if named else f", '' AS {_FILE_COL}"
        scan = f"(SELECT *{extra} FROM {temp_name}_rows)"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}", params).fetchall()}
    for col in keys + [src.event_time_col]:
        if col not in present:
            raise SchemaError(f"column {col!r} of feature group {src.project}/{src.name} is missing from its data "
                              f"files ({src.table_uri})")
    feat_sel = []
    for stored, output, delta_t in res.features:
        target = duckdb_type(delta_t, f"feature {stored!r} of {src.project}/{src.name}")
        # A feature added by a later schema version is absent from older files: it reads as null.
        value = f"CAST({quote_ident(stored)} AS {target})" if stored in present else f"CAST(NULL AS {target})"
        feat_sel.append(f"{value} AS {quote_ident(output)}")
    where = [f"{ts} <= $upper"] + [f"{quote_ident(k)} IS NOT NULL" for k in keys]
    params.update(upper=upper, seq_re=_SEQ_REGEX)
    if lower is not None:
        where.append(f"{ts} >= $lower")
        params["lower"] = lower
    order = f"{ts} DESC, {_SEQ_COL} DESC, {_FILE_COL} DESC"
    sql = (f"CREATE TEMP TABLE {temp_name} AS SELECT {', '.join(key_sel)}, "
           f"CAST({ts} AS TIMESTAMPTZ) AS {_TS_COL}, {', '.join(feat_sel) if feat_sel else 'NULL AS __none'} "
           f"FROM (SELECT *, coalesce(TRY_CAST(regexp_extract({_FILE_COL}, $seq_re, 1) AS BIGINT), -1) AS {_SEQ_COL} "
           f"FROM {scan} WHERE {' AND '.join(where)}) "
           f"QUALIFY row_number() OVER (PARTITION BY {', '.join(quote_ident(k) for k in keys)} ORDER BY {order}) = 1")
    con.execute(sql, params)
    if res.rows is not None:
        con.unregister(f"{temp_name}_rows")


def _check_names(resolved: Sequence[_Resolved]) -> None:
    all_keys = {k for r in resolved for k, _ in r.key_types}
    seen: Dict[str, str] = {}
    for r in resolved:
        label = f"{r.source.project}/{r.source.name}"
        for stored, output, _ in r.features:
            if output in all_keys:
                raise DefinitionError(f"feature {stored!r} of {label} is served as {output!r}, which is a join "
                                      "key name; rename it")
            if output in seen:
                raise DefinitionError(f"two lookups serve a feature named {output!r} ({seen[output]} and {label}); "
                                      "rename one of them")
            seen[output] = label


def export_sources(con: Any, sources: Sequence[ServingSource], *, upper: dt.datetime, as_of: dt.datetime,
                   start: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Write the online tables into the DuckDB connection ``con`` and return the file's metadata.

    ``upper`` bounds the event time from above (<=), ``start`` from below (>=); a source's TTL bounds it from
    below at ``as_of - ttl``.
    """
    if not sources:
        raise DefinitionError("publishing an online table needs at least one lookup (ServingSource)")
    con.execute("SET TimeZone='UTC'")
    resolved, bounds = [], []
    for src in sources:
        lower = start
        if src.ttl is not None:
            floor = as_of - src.ttl
            lower = floor if lower is None else max(lower, floor)
        resolved.append(_resolve(src, lower, upper))
        bounds.append(lower)
    _check_names(resolved)
    # group sources by join-key set (order of the first source with that set)
    groups: Dict[frozenset, List[int]] = {}
    for i, r in enumerate(resolved):
        groups.setdefault(frozenset(r.source.join_keys), []).append(i)
    tables = []
    for t_index, members in enumerate(groups.values()):
        first = resolved[members[0]]
        key_types = first.key_types
        for i in members[1:]:
            other = dict(resolved[i].key_types)
            for k, t in key_types:
                if other[k] != t:
                    raise SchemaError(f"join key {k!r} has type {type_label(t)} in {first.source.project}/"
                                      f"{first.source.name} but {type_label(other[k])} in "
                                      f"{resolved[i].source.project}/{resolved[i].source.name}; cast one of them")
        for i in members:
            _source_sql(con, resolved[i], f"__src_{i}", bounds[i], upper)
        table = f"features_{t_index}"
        keys = [k for k, _ in key_types]
        cols = [f"{quote_ident(k)} {duckdb_type(t)} NOT NULL" for k, t in key_types]
        feats = [(o, duckdb_type(dt_), dt_, s, i) for i in members for s, o, dt_ in resolved[i].features]
        cols += [f"{quote_ident(o)} {t}" for o, t, _, _, _ in feats]
        pk = ", ".join(quote_ident(k) for k in keys)
        con.execute(f"CREATE TABLE {quote_ident(table)} ({', '.join(cols)}, PRIMARY KEY ({pk}))")
        frm = f"__src_{members[0]}"
        for i in members[1:]:
            frm += f" FULL OUTER JOIN __src_{i} USING ({pk})"
        sel = [quote_ident(k) for k in keys] + [f"__src_{i}.{quote_ident(o)}" for o, _, _, _, i in feats]
        con.execute(f"INSERT INTO {quote_ident(table)} SELECT {', '.join(sel)} FROM {frm}")
        rows = con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0][0]
        tables.append({
            "table": table, "join_keys": keys,
            "key_types": [{"name": k, "offline_type": type_label(t), "duckdb_type": duckdb_type(t)}
                          for k, t in key_types],
            "features": [{"name": o, "stored_name": s, "offline_type": type_label(d), "duckdb_type": t,
                          "source": f"{resolved[i].source.project}/{resolved[i].source.name}"}
                         for o, t, d, s, i in feats],
            "rows": int(rows),
        })
    for i in range(len(resolved)):
        con.execute(f"DROP TABLE __src_{i}")
    meta = {
        "format": FORMAT_VERSION,
        "as_of": as_of.isoformat(),
        "start": start.isoformat() if start else None,
        "end": upper.isoformat(),
        "sources": [{**r.source.spec(r.features, r.delta_version, r.schema_version).to_dict(),
                     "files": len(r.files)} for r in resolved],
        "tables": tables,
    }
    return meta


def write_metadata(con: Any, meta: Dict[str, Any]) -> None:
    """Store the metadata JSON inside the online file (table ``_seeknal_online``)."""
    con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    con.execute(f"INSERT INTO {META_TABLE} VALUES ('metadata', ?)", [json.dumps(meta, sort_keys=True)])


def read_metadata(con: Any) -> Dict[str, Any]:
    try:
        rows = con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'metadata'").fetchall()
    except Exception as exc:  # duckdb.CatalogException
        raise StoreError(f"not a seeknal online table (no {META_TABLE} metadata): {exc}") from exc
    if not rows:
        raise StoreError(f"not a seeknal online table (empty {META_TABLE})")
    return json.loads(rows[0][0])
