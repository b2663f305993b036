"""Session-final check (this module runs last): every Delta table the suite wrote reads the same in another engine.

Walks the session's pytest base temp for ``_delta_log`` directories and compares, table by table, the row
multiset of DuckDB's delta extension (delta-kernel, not delta-rs; tests/support/independent.py) with the library's
own read: ``seeknal_spark.offline.reader.read_table`` on the portable path for feature-group tables (their event
time column is a table property), delta-rs's snapshot for other tables. Tables that cannot be compared by design
are listed in ``BY_DESIGN`` with the reason.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Dict, List, Optional

from tests.support.independent import json_safe, multiset, read_delta_many, spark_rows

# glob on the table path relative to the base temp -> why it is not compared
BY_DESIGN: Dict[str, str] = {}


def _tables(root: Path) -> List[Path]:
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        if "_delta_log" in dirnames:
            log = Path(dirpath) / "_delta_log"
            if any(p.suffix == ".json" or p.name.endswith(".checkpoint.parquet") for p in log.iterdir()):
                found.append(Path(dirpath))
            dirnames[:] = [d for d in dirnames if d != "_delta_log"]
    return sorted(found)


def _by_design(rel: str) -> Optional[str]:
    return next((why for pattern, why in BY_DESIGN.items() if fnmatch.fnmatch(rel, pattern)), None)


def _library_rows(spark, path: Path):
    from deltalake import DeltaTable
    from seeknal_spark.offline.reader import read_table

    table = DeltaTable(str(path))
    event_time_col = table.metadata().configuration.get("seeknal.event_time_col")
    if event_time_col:
        df = read_table(spark, str(path), event_time_col)
        return spark_rows(df), "read_table"
    import pyarrow as pa

    data = pa.table(table.to_pyarrow_table())
    ntz = {f.name for f in data.schema if pa.types.is_timestamp(f.type) and f.type.tz is None}
    return [{k: json_safe(v, ntz=k in ntz) for k, v in row.items()} for row in data.to_pylist()], "delta-rs"


def test_every_table_the_suite_wrote_reads_the_same_in_an_independent_reader(spark, tmp_path_factory):
    root = tmp_path_factory.getbasetemp()
    tables = [t for t in _tables(root) if not _by_design(str(t.relative_to(root)))]
    if not tables:
        return  # a targeted run that wrote no table
    independent = read_delta_many([{"path": str(t)} for t in tables])
    mismatches = []
    for table in tables:
        rel = str(table.relative_to(root))
        theirs = independent[f"{table}@None"]
        try:
            ours, how = _library_rows(spark, table)
        except Exception as exc:  # noqa: BLE001 - reported with the table's name below
            mismatches.append(f"{rel}: library read failed: {type(exc).__name__}: {exc}"[:400])
            continue
        if "error" in theirs:
            mismatches.append(f"{rel}: independent reader failed: {theirs['error']}"[:400])
            continue
        columns = sorted(ours[0]) if ours else None
        if multiset(theirs["rows"], columns) != multiset(ours, columns):
            mismatches.append(f"{rel} ({how}): {len(theirs['rows'])} rows independently vs {len(ours)} by the "
                              f"library; first independent-only row: "
                              f"{sorted(set(multiset(theirs['rows'], columns)) - set(multiset(ours, columns)))[:1]}")
    assert mismatches == [], f"{len(mismatches)} of {len(tables)} tables differ:\n" + "\n".join(mismatches)
