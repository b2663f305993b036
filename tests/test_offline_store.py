"""The offline store: FeatureGroup writes Delta tables; delta-rs reads them back independently."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from tests.support.commits import write_info
from seeknal_spark import (
    DataError,
    DefinitionError,
    Entity,
    FeatureGroup,
    Materialization,
    OfflineMaterialization,
    SchemaError,
    StoreError,
)

UTC = dt.timezone.utc
USER = Entity("user", ["user_id"])
SCHEMA = "user_id long, event_time timestamp, amount double, cat string"


def group(store, name="spend", entity=USER, event_time_col="event_time", mode="overwrite"):
    m = Materialization(event_time_col, offline_materialization=OfflineMaterialization(store=store, mode=mode))
    return FeatureGroup(name, entity=entity, materialization=m, project="test")


def rows_days(days, users=(1, 2), hours=(0, 12), base=0.0):
    return [(u, dt.datetime(2024, 1, d, h), base + u * 100 + d + h / 100, f"c{u}")
            for u in users for d in days for h in hours]


def stored(fg, version=None):
    """Rows of the table read with delta-rs (not our reader), as sorted plain tuples."""
    table = DeltaTable(fg.table_path, version=version) if version is not None else DeltaTable(fg.table_path)
    out = []
    for r in table.to_pyarrow_table().to_pylist():
        out.append((r["user_id"], r["event_time"].astimezone(UTC).replace(tzinfo=None), r["amount"], r["cat"]))
    return sorted(out)


def as_tuples(rows):
    return sorted((u, t, a, c) for u, t, a, c in rows)


def test_write_round_trip_on_classic_and_connect(any_spark, store):
    fg = group(store)
    data = rows_days([1, 2, 3])
    result = fg.set_dataframe(any_spark.createDataFrame(data, SCHEMA)).write()
    assert result.version == 0 and result.rows == len(data) and result.schema_version == 1
    assert stored(fg) == as_tuples(data)
    table = DeltaTable(fg.table_path)
    assert table.metadata().partition_columns == ["_event_date"]
    assert {a["_event_date"] for a in table.to_pyarrow_table(columns=["_event_date"]).to_pylist()} == {
        dt.date(2024, 1, d) for d in (1, 2, 3)}
    assert fg.offline_watermarks == [dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    props = table.metadata().configuration
    assert props["seeknal.schema_version"] == "1"
    assert json.loads(props["seeknal.join_keys"]) == ["user_id"]
    assert json.loads(props["seeknal.features"]) == {"amount": "double", "cat": "string"}
    assert json.loads(props["seeknal.watermarks"]) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    commit = [h for h in table.history() if h["version"] == 0][0]
    info = write_info(commit)
    assert info["rows"] == len(data) and info["schema_version"] == 1
    # Per-file statistics let readers skip files.
    actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    assert all(n > 0 for n in actions["num_records"])
    assert min(actions["min.amount"]) == min(r[2] for r in data)
    # Our own reader returns the same rows.
    back = fg.to_dataframe(spark=any_spark).orderBy("user_id", "event_time").collect()
    assert [(r.user_id, r.event_time.replace(tzinfo=None) if r.event_time.tzinfo is None else r.event_time, r.amount)
            for r in back][:1] != []
    assert len(back) == len(data)


def test_overwrite_of_partial_day_range_keeps_the_rest_of_that_day(spark, store):
    fg = group(store)
    fg.set_dataframe(spark.createDataFrame(rows_days([1, 2, 3], hours=(0, 6, 12, 18)), SCHEMA)).write()
    start, end = dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 3, 6)
    new = [(1, dt.datetime(2024, 1, 2, 9), -1.0, "new"), (3, dt.datetime(2024, 1, 1, 12), -2.0, "new")]
    outside = [(9, dt.datetime(2024, 1, 3, 7), -3.0, "outside")]  # filtered out: after end
    fg.set_dataframe(spark.createDataFrame(new + outside, SCHEMA)).write(start, end)
    expected = [r for r in rows_days([1, 2, 3], hours=(0, 6, 12, 18)) if not start <= r[1] <= end] + new
    assert stored(fg) == as_tuples(expected)
    assert fg.offline_watermarks == [dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)]


def test_overwrite_that_empties_a_day_drops_its_watermark_and_append_adds(spark, store):
    fg = group(store)
    fg.set_dataframe(spark.createDataFrame(rows_days([1, 2, 3]), SCHEMA)).write()
    fg.set_dataframe(spark.createDataFrame([], SCHEMA)).write(dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 23, 59))
    assert fg.offline_watermarks == [dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 3)]
    tie = [(1, dt.datetime(2024, 1, 1, 0), 5.0, "again")]
    fg.set_dataframe(spark.createDataFrame(tie, SCHEMA)).write(mode="append")
    # One row per (keys, event time) in the table itself: the appended row replaces the stored one.
    kept = [r for r in rows_days([1, 2, 3]) if r[1].day != 2 and (r[0], r[1]) != (1, dt.datetime(2024, 1, 1, 0))]
    assert stored(fg) == as_tuples(kept + tie)


def test_overwrite_without_bounds_replaces_everything(spark, store):
    fg = group(store)
    fg.set_dataframe(spark.createDataFrame(rows_days([1, 2]), SCHEMA)).write()
    fg.set_dataframe(spark.createDataFrame(rows_days([5], users=(7,)), SCHEMA)).write()
    assert stored(fg) == as_tuples(rows_days([5], users=(7,)))
    assert fg.offline_watermarks == [dt.datetime(2024, 1, 5, tzinfo=UTC)]


def test_adding_a_feature_creates_a_new_schema_version_and_old_rows_read_null(spark, store):
    fg = group(store)
    fg.set_dataframe(spark.createDataFrame(rows_days([1]), SCHEMA)).write()
    extra = spark.createDataFrame([(1, dt.datetime(2024, 1, 2), 1.0, "x", 7)], SCHEMA + ", visits int")
    result = fg.set_dataframe(extra).set_features(None).write(mode="append")
    assert result.schema_version == 2 and fg.schema_version == 2
    assert fg.describe_versions() == [
        {"version": 1, "features": {"amount": "double", "cat": "string"}},
        {"version": 2, "features": {"amount": "double", "cat": "string", "visits": "int"}},
    ]
    visits = {(r["user_id"], r["event_time"].day): r["visits"]
              for r in DeltaTable(fg.table_path).to_pyarrow_table().to_pylist()}
    assert visits[(1, 2)] == 7 and visits[(1, 1)] is None and visits[(2, 1)] is None
    history = DeltaTable(fg.table_path).history()
    written = [write_info(h)["schema_version"] for h in history if write_info(h)]
    assert sorted(written) == [1, 2]


def test_changing_a_feature_type_is_refused_and_writes_nothing(spark, store):
    fg = group(store)
    fg.set_dataframe(spark.createDataFrame(rows_days([1]), SCHEMA)).write()
    version = DeltaTable(fg.table_path).version()
    bad = spark.createDataFrame([(1, dt.datetime(2024, 1, 2), "1.0", "x")], "user_id long, event_time timestamp, "
                                "amount string, cat string")
    with pytest.raises(SchemaError, match=r"'amount'.*double.*string"):
        fg.set_dataframe(bad).write(mode="append")
    assert DeltaTable(fg.table_path).version() == version


@pytest.mark.parametrize("rows, message", [
    ([(1, dt.datetime(2024, 1, 1), 1.0, "a"), (1, dt.datetime(2024, 1, 1), 2.0, "b")], r"duplicate.*user_id=1"),
    ([(None, dt.datetime(2024, 1, 1), 1.0, "a")], r"join key 'user_id' is null"),
    ([(1, None, 1.0, "a")], r"event-time column 'event_time' is null"),
])
def test_bad_rows_are_refused_and_nothing_is_written(spark, store, rows, message):
    fg = group(store)
    fg.set_dataframe(spark.createDataFrame(rows_days([5]), SCHEMA)).write()
    before = DeltaTable(fg.table_path)
    with pytest.raises(DataError, match=message):
        fg.set_dataframe(spark.createDataFrame(rows, SCHEMA)).write(mode="append")
    after = DeltaTable(fg.table_path)
    assert after.version() == before.version() and stored(fg) == as_tuples(rows_days([5]))
    assert not list(Path(fg.table_path, "_staging").glob("*"))
    files_on_disk = {str(p.relative_to(fg.table_path)) for p in Path(fg.table_path).glob("_event_date=*/*.parquet")}
    assert files_on_disk == {a for a in pa.table(after.get_add_actions(flatten=True)).to_pydict()["path"]}


def test_bad_input_gets_a_clear_error(spark, store):
    df = spark.createDataFrame(rows_days([1]), SCHEMA)
    with pytest.raises(SchemaError, match="event_ts"):
        group(store, event_time_col="event_ts").set_dataframe(df).write()
    with pytest.raises(SchemaError, match="account_id"):
        group(store, entity=Entity("acct", ["account_id"])).set_dataframe(df).write()
    with pytest.raises(SchemaError, match="nope"):
        group(store).set_dataframe(df).set_features(["amount", "nope"]).write()
    with pytest.raises(SchemaError, match="'cat' has type string"):
        group(store, event_time_col="cat").set_dataframe(df).write()
    with pytest.raises(DefinitionError, match="empty time range"):
        group(store).set_dataframe(df).write("2024-02-01", "2024-01-01")
    with pytest.raises(DefinitionError, match="not a valid name"):
        FeatureGroup("../escape", entity=USER, materialization=Materialization("event_time"))
    with pytest.raises(StoreError, match="never been written"):
        group(store, name="absent").to_dataframe(spark=spark)
    assert not Path(store.root()).exists() or not any(Path(store.root()).rglob("*.parquet"))


def test_a_write_failing_mid_job_leaves_the_previous_version_readable(spark, store):
    from pyspark.sql import functions as F

    fg = group(store)
    fg.set_dataframe(spark.createDataFrame(rows_days([1, 2]), SCHEMA)).write()
    version = DeltaTable(fg.table_path).version()
    # A row-level failure inside the Spark job (raise_error on executors; fails with ANSI mode off, as on 3.5).
    failing = spark.createDataFrame(rows_days([1, 2], base=1.0), SCHEMA).withColumn(
        "amount", F.when(F.col("user_id") == 2, F.raise_error(F.lit("row-level failure")))
        .otherwise(F.col("amount")))
    with pytest.raises(Exception):
        fg.set_dataframe(failing).write()
    # A failure after the files were staged (a check rejecting the write) must not leak files either.
    def reject(staged):
        raise RuntimeError("rejected by check")
    fg.set_dataframe(spark.createDataFrame(rows_days([1, 2], base=2.0), SCHEMA)).add_check("reject", reject)
    with pytest.raises(RuntimeError, match="rejected by check"):
        fg.write()
    assert DeltaTable(fg.table_path).version() == version
    assert stored(fg) == as_tuples(rows_days([1, 2]))
    assert not list(Path(fg.table_path, "_staging").glob("*"))


def test_get_or_create_rebuilds_the_group_from_the_log_in_a_fresh_process(spark, store):
    fg = group(store)
    fg.description = "spend per user"
    fg.set_dataframe(spark.createDataFrame(rows_days([1, 3]), SCHEMA)).write()
    script = (
        "import json, sys\n"
        "from seeknal_spark import *\n"
        f"store = OfflineStore(value=FeatureStoreFileOutput(path={store.root()!r}))\n"
        "g = FeatureGroup('spend', project='test', store=store).get_or_create()\n"
        "print(json.dumps({'keys': list(g.entity.join_keys), 'features': g.features, 'version': g.schema_version,\n"
        "  'desc': g.description, 'marks': [m.isoformat() for m in g.offline_watermarks],\n"
        "  'spark': 'pyspark' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ})
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"keys": ["user_id"], "features": ["amount", "cat"], "version": 1, "desc": "spend per user",
                   "marks": ["2024-01-01T00:00:00+00:00", "2024-01-03T00:00:00+00:00"], "spark": False}


def test_results_do_not_depend_on_the_session_time_zone(spark, store, tz):
    data = [(1, dt.datetime(2024, 1, 1, 23, 30), 1.0, "late"), (1, dt.datetime(2024, 1, 2, 0, 30), 2.0, "early")]
    utc_group = group(store, name="utc")
    utc_group.set_dataframe(spark.createDataFrame(data, SCHEMA)).write()
    tz("America/Los_Angeles")
    la_group = group(store, name="la")
    # Python datetimes are instants once converted to UTC: build the same instants under another session zone.
    frame = spark.createDataFrame([(u, t.replace(tzinfo=UTC), a, c) for u, t, a, c in data], SCHEMA)
    la_group.set_dataframe(frame).write(dt.datetime(2024, 1, 1, 23), dt.datetime(2024, 1, 2, 1))
    assert stored(la_group) == stored(utc_group) == as_tuples(data)
    assert la_group.offline_watermarks == utc_group.offline_watermarks == [
        dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 2, tzinfo=UTC)]


def test_pandas_input_with_naive_times_is_utc_and_date_event_times_are_midnight(spark, store):
    import pandas as pd

    pdf = pd.DataFrame({"user_id": [1, 2], "event_time": pd.to_datetime(["2024-03-01 01:00", "2024-03-02 23:00"]),
                        "amount": [1.5, 2.5], "cat": ["a", "b"]})
    fg = group(store)
    fg.set_dataframe(pdf, spark=spark).write()
    assert stored(fg) == [(1, dt.datetime(2024, 3, 1, 1), 1.5, "a"), (2, dt.datetime(2024, 3, 2, 23), 2.5, "b")]
    daily = spark.createDataFrame([(1, dt.date(2024, 3, 5), 3.0, "d")], "user_id long, day date, amount double, "
                                  "cat string")
    day_group = group(store, name="daily", event_time_col="day")
    day_group.set_dataframe(daily).write()
    row = DeltaTable(day_group.table_path).to_pyarrow_table().to_pylist()[0]
    assert row["day"] == dt.datetime(2024, 3, 5, tzinfo=UTC)


def test_run_id_makes_a_write_idempotent(spark, store):
    fg = group(store, mode="append")
    df = spark.createDataFrame(rows_days([1]), SCHEMA)
    first = fg.set_dataframe(df).write(run_id="2024-01-01T00:00:00")
    again = fg.write(run_id="2024-01-01T00:00:00")
    assert not first.skipped and again.skipped
    assert DeltaTable(fg.table_path).transaction_version("seeknal-run:2024-01-01T00:00:00") == 0
    assert stored(fg) == as_tuples(rows_days([1]))
    fg.set_dataframe(spark.createDataFrame(rows_days([2]), SCHEMA)).write(run_id="next")
    assert len(stored(fg)) == len(rows_days([1, 2]))


def test_transformation_runs_by_reference(spark, store):
    from seeknal_spark import load_reference

    transform = load_reference("tests.fixtures.transforms:user_orders")
    result = transform.materialize("2024-01-02", "2024-01-03T23:59:59", spark=spark, store=store)
    assert result.rows == 4
    fg = transform.feature_group(store).get_or_create()
    assert fg.features == ["amount", "amount_x2"] and fg.description.startswith("Order amount")
    with pytest.raises(DefinitionError, match="package.module:name"):
        load_reference("no_colon")


def test_a_table_with_deletion_vectors_is_refused_with_a_clear_error(spark, store, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    from seeknal_spark import UnsupportedTableError
    from seeknal_spark.offline.reader import read_table

    path = str(tmp_path / "dv")
    write_deltalake(path, pa.table({"k": [1], "t": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us", "UTC"))}),
                    configuration={"delta.enableDeletionVectors": "true"})
    with pytest.raises(UnsupportedTableError, match="deletionVectors"):
        read_table(spark, path, "t")


def test_each_write_records_feature_statistics_from_the_write_job(any_spark, store):
    import statistics

    fg = group(store)
    data = rows_days([1, 2, 3, 4], users=(1, 2, 3)) + [(9, dt.datetime(2024, 1, 1, 5), None, None)]
    fg.set_dataframe(any_spark.createDataFrame(data, SCHEMA)).write()
    info = [write_info(h) for h in DeltaTable(fg.table_path).history() if write_info(h)][0]
    amounts = [r[2] for r in data if r[2] is not None]
    amount = info["stats"]["amount"]
    assert amount["count"] == len(amounts) and amount["null_count"] == 1
    assert amount["min"] == min(amounts) and amount["max"] == max(amounts)
    assert amount["mean"] == pytest.approx(statistics.mean(amounts))
    assert amount["stddev"] == pytest.approx(statistics.stdev(amounts))
    median = sorted(amounts)[(len(amounts) - 1) // 2]
    assert amount["quantiles"]["0.5"] == pytest.approx(median)
    assert info["stats"]["cat"] == {"count": len(data) - 1, "null_count": 1}


def test_reader_tags_rows_with_the_write_sequence_both_ways(spark, store, monkeypatch):
    from seeknal_spark.offline import reader

    fg = group(store, mode="append")
    fg.set_dataframe(spark.createDataFrame(rows_days([1]), SCHEMA)).write()
    later = [(1, dt.datetime(2024, 1, 2, 0), -1.0, "later")]  # a new day: day 1's files stay as written
    fg.set_dataframe(spark.createDataFrame(later, SCHEMA)).write()

    def tagged():
        df = reader.read_table(spark, fg.table_path, "event_time", with_seq=True)
        return sorted((r.user_id, r.event_time, r.amount, r._seq) for r in df.collect())

    per_write_scans = tagged()  # one scan per write, sequence number as a literal
    monkeypatch.setattr(reader, "MAX_SEQ_SCANS", 0)
    assert tagged() == per_write_scans  # parsed from each row's file name
    seqs = {amount: seq for _, _, amount, seq in per_write_scans}
    assert seqs[-1.0] > seqs[101.0] and len(per_write_scans) == len(rows_days([1])) + 1
