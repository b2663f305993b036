"""Another engine sees the library's rows: DuckDB's delta extension (delta-kernel, not delta-rs) reads a feature
group's table, at its latest version and at an older one, and finds exactly the rows ``to_dataframe`` returns."""

from __future__ import annotations

import datetime as dt

from deltalake import DeltaTable

from seeknal_spark import (Entity, FeatureGroup, FeatureStoreFileOutput, Materialization, OfflineMaterialization,
                           OfflineStore, OfflineStoreEnum)
from tests.support.independent import multiset, read_delta, spark_rows

UTC = dt.timezone.utc


def ts(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2024, 3, day, hour, tzinfo=UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "+00:00"


def test_independent_reader_sees_the_library_rows_after_a_partial_day_overwrite(spark, tmp_path):
    store = OfflineStore(kind=OfflineStoreEnum.FILE, name="ind", value=FeatureStoreFileOutput(path=str(tmp_path)))
    mat = Materialization(event_time_col="ts",
                          offline_materialization=OfflineMaterialization(store=store, mode="append"))
    fg = FeatureGroup("spend", entity=Entity(name="user", join_keys=["user_id"]), materialization=mat, project="p")
    schema = "user_id long, ts timestamp, amount double, tier string"
    first = [(1, ts(1, 9), 1.0, "a"), (1, ts(2, 3), 2.0, "a"), (2, ts(2, 12), 3.0, None), (2, ts(2, 20), 4.0, "b"),
             (3, ts(3, 8), 5.0, "c")]
    fg.set_dataframe(spark.createDataFrame(first, schema)).write()
    v1 = DeltaTable(fg.table_path).version()
    # Overwrite part of day 2 only: rows of day 2 outside [06:00, 18:00] stay.
    second = [(2, ts(2, 12), 30.0, "x"), (4, ts(2, 7), 7.0, "d")]
    fg.set_dataframe(spark.createDataFrame(second, schema)).write(
        feature_start_time=ts(2, 6), feature_end_time=ts(2, 18), mode="overwrite")

    expected = [(1, ts(1, 9), 1.0, "a"), (1, ts(2, 3), 2.0, "a"), (2, ts(2, 20), 4.0, "b"), (3, ts(3, 8), 5.0, "c"),
                (2, ts(2, 12), 30.0, "x"), (4, ts(2, 7), 7.0, "d")]
    columns = ["user_id", "ts", "amount", "tier"]
    oracle = multiset([dict(zip(columns, (k, iso(t), a, tier))) for k, t, a, tier in expected])
    library = multiset(spark_rows(fg.to_dataframe()))
    assert library == oracle
    independent = read_delta(fg.table_path)
    assert set(independent[0]) >= set(columns)
    assert multiset(independent, columns) == library
    # The partition column agrees with the event time's UTC date in the other engine too.
    assert sorted({(r["ts"][:10], r["_event_date"]) for r in independent if "_event_date" in r}) == sorted(
        {(iso(t)[:10], iso(t)[:10]) for _, t, _, _ in expected})
    # Time travel: the first write's version, as both read it.
    old = multiset(read_delta(fg.table_path, version=v1), columns)
    assert old == multiset(spark_rows(fg.to_dataframe(version=v1)))
    assert old == multiset([dict(zip(columns, (k, iso(t), a, tier))) for k, t, a, tier in first])
