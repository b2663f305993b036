"""An independent Delta reader for tests: DuckDB's delta extension (delta-kernel based, not delta-rs).

It runs in its own cached venv (scripts/envs.py ``duckdelta``: the ``duckdb`` version the extension wheel pins,
plus ``duckdb-extension-delta``), in a child process, so it shares no code or library versions with seeknal_spark::

    from tests.support.independent import read_delta, spark_rows, multiset

    assert multiset(read_delta(path)) == multiset(spark_rows(fg.to_dataframe()))

Rows come back as JSON-safe dicts: TIMESTAMP (with time zone) as a UTC ISO string, TIMESTAMP_NTZ as a naive ISO
string, DATE as ISO, DECIMAL as str, bytes as hex, NaN as the string "NaN". ``spark_rows`` puts Spark rows in the
same form.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import subprocess
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from tests.support.venvs import venv_python

__all__ = ["read_delta", "read_delta_many", "spark_rows", "multiset", "json_safe"]

_CHILD = r'''
import datetime as dt, decimal, glob, json, math, os, sys
import duckdb, duckdb_extension_delta

def safe(v):
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            return v.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat() + "+00:00"
        return v.isoformat()
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, dict):
        return {str(k): safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [safe(x) for x in v]
    return v

ext = glob.glob(os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions", "*",
                             "delta.duckdb_extension"))
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute(f"LOAD '{ext[0]}'")
out = {}
for request in json.loads(sys.stdin.read()):
    path, version = request["path"], request.get("version")
    try:
        if version is None:
            cur = con.execute("SELECT * FROM delta_scan(?)", [path])
        else:
            cur = con.execute("SELECT * FROM delta_scan(?, version => ?)", [path, int(version)])
        names = [d[0] for d in cur.description]
        out[path + "@" + str(version)] = {"rows": [dict(zip(names, map(safe, r))) for r in cur.fetchall()]}
    except Exception as exc:
        out[path + "@" + str(version)] = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(out))
'''


def read_delta_many(requests: Sequence[Mapping[str, Any]], timeout: float = 900) -> Dict[str, Dict[str, Any]]:
    """Read several tables in one child: ``[{"path": p, "version": v?}]`` -> ``{"p@v": {"rows"|"error": ...}}``."""
    python = venv_python("duckdelta")
    done = subprocess.run([python, "-c", _CHILD], input=json.dumps(list(requests)), capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"independent Delta reader failed (exit {done.returncode}): {done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_delta(path: str, version: Optional[int] = None) -> List[Dict[str, Any]]:
    """The rows of the Delta table at ``path`` (latest, or ``version``) as DuckDB's delta extension reads them."""
    result = read_delta_many([{"path": str(path), "version": version}])[f"{path}@{version}"]
    if "error" in result:
        raise RuntimeError(f"independent reader could not read {path} (version {version}): {result['error']}")
    return result["rows"]


def json_safe(value: Any, ntz: bool = False) -> Any:
    """One Spark value in the reader's JSON-safe form (``ntz``: the value is a TIMESTAMP_NTZ)."""
    if isinstance(value, dt.datetime):
        if ntz:
            return value.isoformat()
        # pyspark returns TIMESTAMP values as naive local time of this process (or aware when configured)
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat() + "+00:00"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "asDict"):
        return [json_safe(v) for v in value]
    if hasattr(value, "asDict"):
        return {k: json_safe(v) for k, v in value.asDict().items()}
    return value


def spark_rows(df) -> List[Dict[str, Any]]:
    """A Spark DataFrame's rows as JSON-safe dicts (the form ``read_delta`` returns)."""
    from pyspark.sql.types import TimestampNTZType

    ntz = {f.name for f in df.schema.fields if isinstance(f.dataType, TimestampNTZType)}
    return [{k: json_safe(v, ntz=k in ntz) for k, v in row.asDict().items()} for row in df.collect()]


def multiset(rows: Sequence[Mapping[str, Any]], columns: Union[None, Sequence[str]] = None) -> List[str]:
    """Rows as a sorted list of canonical JSON strings (optionally only ``columns``): compare with ``==``."""
    picked = [{c: r.get(c) for c in columns} if columns is not None else dict(r) for r in rows]
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in picked)
