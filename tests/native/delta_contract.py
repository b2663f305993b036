"""The native (Delta-JVM) path keeps the portable path's contract: same rows, same metadata, interop both ways.

Run in a Delta-JVM pytest process by tests/test_native_delta.py (file name outside ``test_*`` on purpose: the main
process, whose JVM has no Delta jars, must not collect it).
"""

from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable as RsTable

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
)
from seeknal_spark.errors import UnsupportedTableError
from seeknal_spark.offline.metadata_deltars import DeltaRsMetadata
from seeknal_spark.offline.metadata_spark import SparkDeltaMetadata

UTC = dt.timezone.utc
USER = Entity("user", ["user_id"])
SCHEMA = "user_id long, event_time timestamp, amount double, cat string"
SCHEMA2 = "user_id long, event_time timestamp, amount double, cat string, score double"


def t(day, hour=0):
    return dt.datetime(2024, 1, day, hour, tzinfo=UTC)


def group(root, name="spend", mode="append"):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    m = Materialization("event_time", offline_materialization=OfflineMaterialization(store=store, mode=mode))
    return FeatureGroup(name, entity=USER, materialization=m, project="test")


class Oracle:
    """What the table must hold: one row per (user_id, event_time); plain Python, no library code."""

    def __init__(self):
        self.rows = {}
        self.features = ["amount", "cat"]

    def write(self, rows, mode, start=None, end=None, features=("amount", "cat")):
        for f in features:
            if f not in self.features:
                self.features.append(f)
        if mode == "overwrite":
            for key in list(self.rows):
                if (start is None or key[1] >= start) and (end is None or key[1] <= end):
                    del self.rows[key]
        for row in rows:
            if (start is None or row[1] >= start) and (end is None or row[1] <= end):
                self.rows[(row[0], row[1])] = dict(zip(features, row[2:]))

    def expected(self):
        return sorted((k[0], k[1]) + tuple(v.get(f) for f in self.features) for k, v in self.rows.items())


def rows_of(df, features):
    out = []
    for r in df.collect():
        ts = r["event_time"]
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        out.append((r["user_id"], ts) + tuple(r[f] for f in features))
    return sorted(out)


def plain_delta_rows(spark, fg, features):
    """The table read by Delta's own Spark reader, no seeknal code (no dedup, no filters)."""
    return rows_of(spark.read.format("delta").load(fg.table_path), features)


def plain_rs_rows(fg, features):
    """The table read by delta-rs (another Delta engine), no seeknal code."""
    out = []
    for r in RsTable(fg.table_path).to_pyarrow_table().to_pylist():
        out.append((r["user_id"], r["event_time"].astimezone(UTC)) + tuple(r.get(f) for f in features))
    return sorted(out)


def day_rows(days, users=(1, 2), hours=(0, 12), base=0.0):
    return [(u, t(d, h), base + u * 100 + d + h / 100, f"c{u}") for u in users for d in days for h in hours]


STEPS = [
    # (rows, schema, mode, start, end)
    (day_rows([1, 2, 3]), SCHEMA, "overwrite", None, None),
    ([(1, t(2, 12), -1.0, "tie"), (3, t(4, 0), 7.0, "new")], SCHEMA, "append", None, None),   # a tie + a new day
    (day_rows([2, 3], base=0.5), SCHEMA, "overwrite", t(2, 6), t(3, 6)),                  # partial boundary days
    ([(2, t(3, 12), 1.5, "v2", 0.25), (4, t(5, 0), 2.5, "v2", None)], SCHEMA2, "append", None, None),  # new feature
]


def run_steps(spark, fg, steps):
    results = []
    for rows, schema, mode, start, end in steps:
        fg.set_dataframe(spark.createDataFrame(rows, schema))
        if schema == SCHEMA2:
            fg.set_features(["amount", "cat", "score"])
        results.append(fg.write(start, end, mode=mode))
    return results


def test_contract_same_rows_as_the_portable_path(delta_spark, portable, tmp_path):
    from seeknal_spark.retrieval.historical import HistoricalFeatures
    from seeknal_spark.retrieval.lookup import FeatureLookup

    oracle = Oracle()
    for rows, schema, mode, start, end in STEPS:
        oracle.write(rows, mode, start, end, ("amount", "cat", "score") if schema == SCHEMA2 else ("amount", "cat"))
    want = oracle.expected()
    features = oracle.features

    native = group(tmp_path / "native").set_validation(None)  # built-in expectations, recorded in the commits
    native_results = run_steps(delta_spark, native, STEPS)
    with portable:
        port = group(tmp_path / "portable").set_validation(None)
        portable_results = run_steps(delta_spark, port, STEPS)
    assert [(r.rows, r.partitions, r.schema_version) for r in native_results] == \
        [(r.rows, r.partitions, r.schema_version) for r in portable_results]
    assert [r.version for r in native_results] == [0, 1, 2, 3]

    # The table itself holds exactly the oracle's rows, for every reader (no seeknal code involved).
    assert plain_delta_rows(delta_spark, native, features) == want
    assert plain_rs_rows(native, features) == want
    assert plain_delta_rows(delta_spark, port, features) == want
    # Through the library, on each path.
    assert rows_of(native.to_dataframe(), features) == want
    with portable:
        assert rows_of(port.to_dataframe(), features) == want
    # Time travel: version 1 (after the tie) on both.
    v1 = Oracle()
    for rows, schema, mode, start, end in STEPS[:2]:
        v1.write(rows, mode, start, end)
    assert rows_of(native.to_dataframe(version=1), ["amount", "cat"]) == v1.expected()
    assert native.offline_watermarks == [dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4, 5)]
    with portable:
        assert port.offline_watermarks == native.offline_watermarks

    # Point-in-time training rows and served rows are the same on both paths.
    spine_rows = [(u, t(d, h)) for u in (1, 2, 3, 4, 5) for d in (1, 2, 3, 4, 5, 6) for h in (1, 13)]

    def training_and_served(fg, out):
        spine = delta_spark.createDataFrame(spine_rows, "user_id long, at timestamp")
        hist = HistoricalFeatures(lookups=[FeatureLookup(source=fg, prefix="f_")])
        training = sorted(tuple(r) for r in hist.using_spine(spine, date_col="at").to_dataframe_with_spine()
                          .select("user_id", "at", "f_amount", "f_cat", "f_score").collect())
        table = hist.using_latest().serve(name="latest", store_root=str(out))
        served = sorted(tuple(r[n] for n in ["user_id"] + table.feature_names)
                        for r in table.get_features(keys=[{"user_id": k} for k in (1, 2, 3, 4, 5)]))
        return training, served

    native_training, native_served = training_and_served(native, tmp_path / "online_native")
    with portable:
        port_training, port_served = training_and_served(port, tmp_path / "online_portable")
    assert native_training == port_training
    assert native_served == port_served
    # And they are right: the latest row per user, from the oracle.
    latest = {}
    for row in want:
        latest[row[0]] = row
    assert native_served == sorted([(u, r[2], r[3], r[4]) for u, r in latest.items()] + [(5, None, None, None)])

    # Both engines read the same commit records from each table, and both paths record the same metadata.
    check_commit_metadata(delta_spark, native, port)


def test_interop_portable_table_written_by_the_jvm_and_back(delta_spark, portable, tmp_path):
    for first_native in (False, True):
        oracle = Oracle()
        fg = group(tmp_path / f"interop_{first_native}")
        for i, (rows, schema, mode, start, end) in enumerate(STEPS[:3]):
            native_turn = (i % 2 == 0) == first_native
            fg.set_dataframe(delta_spark.createDataFrame(rows, schema))
            if native_turn:
                fg.write(start, end, mode=mode)
            else:
                with portable:
                    fg.write(start, end, mode=mode)
            oracle.write(rows, mode, start, end)
            want = oracle.expected()
            assert rows_of(fg.to_dataframe(), ["amount", "cat"]) == want, (first_native, i)
            with portable:
                assert rows_of(fg.to_dataframe(), ["amount", "cat"]) == want, (first_native, i)
            assert plain_rs_rows(fg, ["amount", "cat"]) == want
            assert plain_delta_rows(delta_spark, fg, ["amount", "cat"]) == want
        assert len([c for c in DeltaRsMetadata(fg.table_path).commits() if c.write]) == 3


def test_one_row_per_keys_and_event_time_after_a_rewrite(delta_spark, tmp_path):
    fg = group(tmp_path)
    fg.set_dataframe(delta_spark.createDataFrame(day_rows([1, 2]), SCHEMA)).write()
    later = [(1, t(1, 12), 5.0, "later"), (2, t(2, 0), 6.0, "later")]
    fg.set_dataframe(delta_spark.createDataFrame(later, SCHEMA)).write(mode="append")
    table = delta_spark.read.format("delta").load(fg.table_path)
    counts = [tuple(r) for r in table.groupBy("user_id", "event_time").count().where("count > 1").collect()]
    assert counts == []
    got = {(r[0], r[1]): (r[2], r[3]) for r in plain_delta_rows(delta_spark, fg, ["amount", "cat"])}
    assert len(got) == 8
    assert got[(1, t(1, 12))] == (5.0, "later") and got[(2, t(2, 0))] == (6.0, "later")
    assert got[(1, t(1, 0))] == (101.0, "c1")
    # Appending a new day rewrites nothing: the commit adds files of that day only and removes none.
    fg.set_dataframe(delta_spark.createDataFrame(day_rows([9]), SCHEMA)).write(mode="append")
    entry = [h for h in RsTable(fg.table_path).history() if h["version"] == 2][0]
    metrics = entry["operationMetrics"]
    assert int(metrics.get("numRemovedFiles", 0)) == 0 and int(metrics["numOutputRows"]) == 4


def test_run_id_is_idempotent_on_both_paths(delta_spark, portable, tmp_path):
    fg = group(tmp_path)
    fg.set_dataframe(delta_spark.createDataFrame(day_rows([1]), SCHEMA))
    first = fg.write(run_id="run-1")
    again = fg.write(run_id="run-1")
    assert not first.skipped and again.skipped and again.version is None
    assert fg.delta_version == first.version
    with portable:  # the portable path sees the JVM's run (Delta txn action)
        assert fg.write(run_id="run-1").skipped
        second = fg.set_dataframe(delta_spark.createDataFrame(day_rows([2]), SCHEMA)).write(run_id="run-2")
        assert not second.skipped
    version = fg.delta_version
    assert fg.write(run_id="run-2").skipped  # and the JVM path sees the portable run
    assert RsTable(fg.table_path).transaction_version("seeknal-run:run-1") == 0
    assert fg.delta_version == version
    assert rows_of(fg.to_dataframe(), ["amount"]) == sorted((r[0], r[1], r[2]) for r in day_rows([1, 2]))


def _rounded(stats):
    """Write statistics with mean and stddev rounded to 12 significant digits."""
    return {feature: {k: (float(f"{v:.12g}") if k in ("mean", "stddev") and v is not None else v)
                      for k, v in entry.items()} for feature, entry in stats.items()}


def _comparable(record):
    write = {k: v for k, v in (record.write or {}).items() if k not in ("write_id", "engine")}
    return record.version, record.state, write


def check_commit_metadata(delta_spark, native, port):
    from seeknal_spark.validation import validation_history

    # Both engines read the same records from each table.
    for fg in (native, port):
        by_rs = [_comparable(c) for c in DeltaRsMetadata(fg.table_path).commits() if c.write]
        by_spark = [_comparable(c) for c in SparkDeltaMetadata(delta_spark, fg.table_path).commits() if c.write]
        assert by_rs == by_spark and len(by_rs) == 4
        assert SparkDeltaMetadata(delta_spark, fg.table_path).state() == DeltaRsMetadata(fg.table_path).state()
        assert SparkDeltaMetadata(delta_spark, fg.table_path).dates() == DeltaRsMetadata(fg.table_path).dates()
        assert [v.outcome.success for v in validation_history(fg.table_path, spark=delta_spark)] == [True] * 4

    # Both paths record the same state and write information for the same writes.
    native_commits = [c for c in DeltaRsMetadata(native.table_path).commits() if c.write]
    port_commits = [c for c in DeltaRsMetadata(port.table_path).commits() if c.write]
    for a, b in zip(native_commits, port_commits):
        assert a.state == b.state
        for key in ("mode", "start", "end", "rows", "schema_version", "partitions_written", "run_id"):
            assert a.write[key] == b.write[key], key
        assert a.write["seq"] == a.version  # the committed version
        # The same rule on both paths: counts, min, max and quantiles are exact; a float mean/stddev depends on
        # the order Spark sums the rows in (the staged files vs the checkpoint), so it agrees to 1e-12.
        assert _rounded(a.write["stats"]) == _rounded(b.write["stats"])
        assert a.write["checks"]["validation"]["success"] == b.write["checks"]["validation"]["success"]
    last = native_commits[0]
    assert last.state.schema_version == 2 and last.state.watermarks == tuple(
        f"2024-01-0{d}" for d in (1, 2, 3, 4, 5))
    assert last.write["stats"]["score"]["count"] == 1 and last.write["stats"]["amount"]["max"] == 2.5


def test_deletion_vectors_read_on_the_jvm_refused_by_the_portable_path(delta_spark, portable, tmp_path):
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    fg = group(tmp_path)
    fg.set_dataframe(delta_spark.createDataFrame(day_rows([1, 2], users=(1, 2, 3)), SCHEMA)).write()
    # What Databricks does to new tables, then a DELETE: Delta marks the rows deleted in a deletion vector.
    delta_spark.sql(f"ALTER TABLE delta.`{fg.table_path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = true)")
    DeltaTable.forPath(delta_spark, fg.table_path).delete(F.col("user_id") == 2)
    assert "deletionVectors" in (RsTable(fg.table_path).protocol().reader_features or [])
    last = DeltaTable.forPath(delta_spark, fg.table_path).history(1).first()
    assert last["operation"] == "DELETE" and int(last["operationMetrics"]["numDeletionVectorsAdded"]) > 0

    want = sorted((u, ts, a, c) for u, ts, a, c in day_rows([1, 2], users=(1, 3)))
    assert rows_of(fg.to_dataframe(), ["amount", "cat"]) == want
    assert fg.offline_watermarks == [dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2)]
    # The JVM path keeps writing to it: a tie on a day holding deletion vectors.
    fg.set_dataframe(delta_spark.createDataFrame([(3, t(1, 0), -3.0, "tie")], SCHEMA)).write(mode="append")
    want = sorted([r for r in want if (r[0], r[1]) != (3, t(1, 0))] + [(3, t(1, 0), -3.0, "tie")])
    assert rows_of(fg.to_dataframe(), ["amount", "cat"]) == want
    assert plain_delta_rows(delta_spark, fg, ["amount", "cat"]) == want

    with portable:
        with pytest.raises(UnsupportedTableError, match="deletionVectors") as err:
            fg.to_dataframe().collect()
        assert "Delta Lake installed" in str(err.value)  # says what to do


def test_a_commit_landing_while_a_write_is_planned_is_kept(delta_spark, tmp_path):
    fg = group(tmp_path)
    oracle = Oracle()
    first = day_rows([1])
    fg.set_dataframe(delta_spark.createDataFrame(first, SCHEMA)).write()
    oracle.write(first, "append")
    other = group(tmp_path)  # another writer of the same table
    theirs = [(7, t(1, 6), 7.0, "other"), (1, t(1, 0), 9.0, "other")]

    def meanwhile(staged):  # runs after this write read the table, before it commits
        other.set_dataframe(delta_spark.createDataFrame(theirs, SCHEMA)).write(mode="append")
        oracle.write(theirs, "append")

    mine = [(1, t(1, 0), -1.0, "mine"), (2, t(1, 12), -2.0, "mine")]
    result = fg.add_check("meanwhile", meanwhile).set_dataframe(
        delta_spark.createDataFrame(mine, SCHEMA)).write(mode="append")
    oracle.write(mine, "append")
    assert result.retries == 1 and result.version == 2  # planned again on the other writer's commit
    assert plain_delta_rows(delta_spark, fg, ["amount", "cat"]) == oracle.expected()


def test_serve_on_the_jvm_honours_deletion_vectors(delta_spark, tmp_path):
    """hist.serve / using_latest().serve on a Delta-JVM session read through Delta's reader: rows deleted through
    deletion vectors stay deleted online (DuckDB reading the raw Parquet files would serve them again)."""
    from seeknal_spark.retrieval.historical import HistoricalFeatures
    from seeknal_spark.retrieval.lookup import FeatureLookup

    users = (1, 2, 3, 4, 5)  # 5 is never written
    rows = day_rows([1, 2, 3], users=(1, 2, 3, 4))
    fg = group(tmp_path / "offline")
    fg.set_dataframe(delta_spark.createDataFrame(rows, SCHEMA)).write()
    path = fg.table_path
    delta_spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = true)")
    cut = int(t(2).timestamp()) * 1_000_000
    delta_spark.sql(f"DELETE FROM delta.`{path}` WHERE user_id = 2 OR "
                    f"(user_id = 3 AND event_time >= timestamp_micros({cut}))")
    last = delta_spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()
    assert last["operation"] == "DELETE" and int(last["operationMetrics"]["numDeletionVectorsAdded"]) > 0
    assert "deletionVectors" in (RsTable(path).protocol().reader_features or [])
    survivors = [r for r in rows if not (r[0] == 2 or (r[0] == 3 and r[1] >= t(2)))]

    def oracle(kept, start=None, end=None, ttl=None, as_of=None):
        """Per user: (user, amount, cat) of its latest row with start <= event time <= end (TTL: >= as_of - ttl)."""
        lower = start
        if ttl is not None:
            lower = as_of - ttl if lower is None else max(lower, as_of - ttl)
        latest = {}
        for u, ts, amount, cat in kept:
            if (lower is None or ts >= lower) and (end is None or ts <= end):
                if u not in latest or ts > latest[u][0]:
                    latest[u] = (ts, amount, cat)
        return [(u,) + (latest[u][1:] if u in latest else (None, None)) for u in users]

    def served(table):
        got = table.get_features(keys=[{"user_id": u} for u in users])
        return [(r["user_id"], r["amount"], r["cat"]) for r in got]

    # A time range and a TTL: as of t(2, 12), one day back (user 3's surviving t(1, 12) row sits on the bound).
    start, end, ttl = t(1, 6), t(2, 12), dt.timedelta(days=1)
    hist = HistoricalFeatures(lookups=[FeatureLookup(source=fg, ttl=ttl)])
    want = oracle(survivors, start, end, ttl, as_of=end)
    assert want != oracle(rows, start, end, ttl, as_of=end)  # the deleted rows would change the answer
    assert want[2] == (3, 301.12, "c3")
    ranged = hist.serve("dv_range", start, end, store_root=str(tmp_path / "online"))
    assert served(ranged) == want
    assert ranged.metadata["sources"][0]["delta_version"] == last["version"]  # the DELETE's snapshot

    latest = HistoricalFeatures(lookups=[FeatureLookup(source=fg)]).using_latest().serve(
        "dv_latest", store_root=str(tmp_path / "online"))
    want = oracle(survivors)
    assert want != oracle(rows)
    assert served(latest) == want
    # Same table layout and types as the file export: BIGINT key, DOUBLE and VARCHAR features.
    table = latest.metadata["tables"][0]
    assert [(k["name"], k["duckdb_type"]) for k in table["key_types"]] == [("user_id", "BIGINT")]
    assert [(f["name"], f["duckdb_type"]) for f in table["features"]] == [("amount", "DOUBLE"), ("cat", "VARCHAR")]
    assert table["rows"] == 3  # users 1, 3, 4
