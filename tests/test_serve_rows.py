"""collect_arrow (retrieval/serve_rows.py): the rows Spark computes for an online publish reach the export as Arrow
with their exact values and types, on both pyspark lines (toArrow() on >= 4.0, toPandas() on 3.5).

The publish itself on a Delta-JVM session is tested in tests/native/delta_contract.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa

UTC = dt.timezone.utc
SCHEMA = ("k long, ts timestamp, n int, big long, m map<string,double>, a array<double>, "
          "s struct<i:int,t:string>, d decimal(10,2), day date, name string")
ROWS = [
    (1, dt.datetime(2024, 3, 10, 6, 30, 0, 123456, tzinfo=UTC), None, 9007199254740993, {"a": 1.5}, [1.5, None],
     (1, "x"), Decimal("1.25"), dt.date(2024, 3, 10), "s"),
    (-2, dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 3, None, None, None, None, None, None, None),
]


def expected_rows():
    """The same rows as Arrow returns them (plain Python, no library code): maps as (key, value) pairs, structs
    as dicts, timestamps as UTC instants."""
    out = []
    for k, ts, n, big, m, a, s, d, day, name in ROWS:
        out.append({"k": k, "ts": ts, "n": n, "big": big, "m": None if m is None else list(m.items()), "a": a,
                    "s": None if s is None else {"i": s[0], "t": s[1]}, "d": d, "day": day, "name": name})
    return out


def modes():
    """Both conversions where pyspark has toArrow(); only the pandas one on pyspark 3.5."""
    from pyspark.sql import DataFrame

    return (True, False) if hasattr(DataFrame, "toArrow") else (True,)


def test_collect_arrow_keeps_values_and_types_in_any_session_time_zone(spark, tz):
    from seeknal_spark.retrieval.serve_rows import collect_arrow

    tz("America/New_York")  # pandas would hand back naive New York wall times
    df = spark.createDataFrame(ROWS, SCHEMA)
    for via_pandas in modes():
        table = collect_arrow(df, via_pandas=via_pandas)
        assert table.column_names == ["k", "ts", "n", "big", "m", "a", "s", "d", "day", "name"], via_pandas
        types = {f.name: f.type for f in table.schema}
        assert types["k"] == pa.int64() and types["big"] == pa.int64() and types["n"] == pa.int32(), via_pandas
        assert types["ts"] == pa.timestamp("us", tz="UTC"), via_pandas
        assert types["d"] == pa.decimal128(10, 2) and types["day"] == pa.date32(), via_pandas
        assert pa.types.is_map(types["m"]) and pa.types.is_struct(types["s"]), via_pandas
        got = sorted(table.to_pylist(), key=lambda r: r["k"])
        assert got == sorted(expected_rows(), key=lambda r: r["k"]), via_pandas  # 2^53 + 1 stays exact

        empty = collect_arrow(df.where("k > 100"), via_pandas=via_pandas)
        assert empty.num_rows == 0 and empty.schema.names == table.schema.names, via_pandas
        assert {f.name: f.type for f in empty.schema}["ts"] == pa.timestamp("us", tz="UTC"), via_pandas
