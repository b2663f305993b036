"""Online lookups through DuckDB (``index="duckdb"``): the keys of a request go to the file's primary-key index
in one query per table. One of the two ``KeyLookup`` s (``serving/snapshot.py``); the other is
``serving/index_rows.py``."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from seeknal_spark.errors import DefinitionError, StoreError
from seeknal_spark.serving.snapshot import Snapshot, has_key, key_type_ok, missing_key

__all__ = ["duckdb_rows"]


def duckdb_rows(snap: Snapshot, plan: list, keys: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """One dict per key dict (join keys and the planned features, null when the key is unknown), in order."""
    import duckdb

    cur = snap.cursor()
    rows: List[Dict[str, Any]] = [{} for _ in keys]
    for table, knames, positions, names, _, nulls in plan:
        columns = []
        for kd, row in zip(keys, rows):
            for k in knames:
                if not has_key(kd, k):
                    raise missing_key(kd, k, snap.join_keys)
                row[k] = kd[k]
        for k in knames:
            values = [kd[k] for kd in keys]
            for value in values:
                if not key_type_ok(value, table.key_types[k]):
                    raise DefinitionError(f"join key {k!r} is stored as {table.key_types[k]} but the request "
                                          f"gives {type(value).__name__} {value!r}; pass a value of the stored type")
            columns.append(values)
        try:
            if len(keys) == 1:
                found = cur.execute(table.query_sql(positions), [c[0] for c in columns]).fetchall()
                results = [found[0] if found else nulls]
            else:
                found = cur.execute(table.batch_sql(positions), columns + [len(keys)]).fetchall()
                results = [tuple(r[1:]) for r in found]
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            raise DefinitionError(f"lookup in online table failed for keys {knames}: {exc}") from exc
        except duckdb.Error as exc:  # I/O errors, checksum failures of blocks: the file, not the request
            raise StoreError(f"online file {snap.path} could not be read ({exc}); it is corrupted or "
                             "unreadable: open with verify=True to check it, then republish or restore it") from exc
        for row, vals in zip(rows, results):
            row.update(zip(names, vals))
    return rows

