"""Retrieval edge cases: partition pruning, TTL boundaries, time types, and clear errors for bad input."""

from __future__ import annotations

import datetime as dt
import glob
import os

import pandas as pd
import pytest

from seeknal_spark import (DataError, DefinitionError, Entity, FeatureGroup, FeatureStoreFileOutput, Materialization,
                           OfflineMaterialization, OfflineStore, SchemaError, StoreError)
from seeknal_spark.retrieval import FeatureLookup, FillNull, HistoricalFeatures

UTC = dt.timezone.utc
DAY1 = dt.datetime(2024, 3, 1, tzinfo=UTC)


def _day(n: int, hours: int = 12) -> dt.datetime:
    return DAY1 + dt.timedelta(days=n - 1, hours=hours)


@pytest.fixture(scope="module")
def daily(spark, tmp_path_factory):
    """Key 1 has one row at noon on each of days 1..10 (value = day number); key 2 only on day 1."""
    store = OfflineStore(name="edges", value=FeatureStoreFileOutput(path=str(tmp_path_factory.mktemp("edges"))))
    group = FeatureGroup("daily", entity=Entity("acct", ["acct_id"]),
                         materialization=Materialization(event_time_col="ts", offline_materialization=
                                                         OfflineMaterialization(store=store)))
    rows = [(1, _day(n), float(n)) for n in range(1, 11)] + [(2, _day(1), None)]
    group.set_dataframe(spark.createDataFrame(rows, "acct_id long, ts timestamp, value double")).write()
    never = FeatureGroup("never_written", entity=Entity("acct", ["acct_id"]),
                         materialization=Materialization(event_time_col="ts", offline_materialization=
                                                         OfflineMaterialization(store=store)))
    return {"group": group, "never": never}


def _values(df, time_col="t"):
    return sorted((r["acct_id"], r["value"]) for r in df.collect())


def _delete_day(group: FeatureGroup, day: dt.date) -> int:
    files = glob.glob(os.path.join(group.table_path, f"_event_date={day.isoformat()}", "*.parquet"))
    for path in files:
        os.remove(path)
    return len(files)


def test_partition_pruning_reads_only_the_needed_days(spark, tmp_path, daily):
    """With a TTL only [min(spine) - TTL, max(spine)] is read: deleting other days' files changes nothing."""
    import shutil

    group = FeatureGroup("daily", project="default",
                         materialization=Materialization(event_time_col="ts", offline_materialization=
                                                         OfflineMaterialization(store=OfflineStore(
                                                             value=FeatureStoreFileOutput(str(tmp_path))))))
    shutil.copytree(daily["group"].table_path, group.table_path)  # a private copy we may damage
    spine = pd.DataFrame([{"acct_id": 1, "t": _day(5, 0) + dt.timedelta(minutes=30)},
                          {"acct_id": 1, "t": _day(6, 18)}, {"acct_id": 2, "t": _day(5, 20)}])
    ttl_hist = HistoricalFeatures([FeatureLookup(source=group, ttl=dt.timedelta(days=1))])
    expected = [(1, 4.0), (1, 6.0), (2, None)]
    assert _values(ttl_hist.using_spine(spine, "t", spark=spark).to_dataframe_with_spine()) == expected

    assert _delete_day(group, dt.date(2024, 3, 2)) >= 1  # before min(spine) - TTL
    assert _delete_day(group, dt.date(2024, 3, 9)) >= 1  # after max(spine)
    assert _values(ttl_hist.using_spine(spine, "t", spark=spark).to_dataframe_with_spine()) == expected

    # without a TTL the as-of row may be arbitrarily old: early days are read (the deleted file is missed)
    open_hist = HistoricalFeatures([FeatureLookup(source=group)])
    with pytest.raises(Exception, match="(?i)(not exist|FileNotFound|not found)"):
        open_hist.using_spine(spine, "t", spark=spark).to_dataframe_with_spine().collect()


def test_ttl_boundary_is_inclusive(spark, daily):
    hist = HistoricalFeatures([FeatureLookup(source=daily["group"], ttl=dt.timedelta(hours=6))])
    spine = pd.DataFrame([{"acct_id": 1, "t": _day(3, 18)},  # exactly 6 h after day 3's row: still valid
                          {"acct_id": 1, "t": _day(3, 18) + dt.timedelta(microseconds=1)},  # 1 us too old
                          {"acct_id": 1, "t": _day(3, 12)},  # exactly at the row's time: counts
                          {"acct_id": 1, "t": _day(1, 11)}])  # before any row
    from pyspark.sql import functions as F

    df = hist.using_spine(spine, "t", spark=spark).to_dataframe_with_spine()
    got = sorted((r["m"], r["value"]) for r in df.select(F.unix_micros("t").alias("m"), "value").collect())
    start = int(_day(1, 11).timestamp()) * 1_000_000
    noon3, late3 = int(_day(3, 12).timestamp()) * 1_000_000, int(_day(3, 18).timestamp()) * 1_000_000
    assert got == [(start, None), (noon3, 3.0), (late3, 3.0), (late3 + 1, None)]


def test_timestamp_ntz_spine_is_utc_wall_time(spark, daily):
    spine = spark.createDataFrame([(1, dt.datetime(2024, 3, 4, 11, 59)), (1, dt.datetime(2024, 3, 4, 12, 0))],
                                  "acct_id long, t timestamp_ntz")
    df = HistoricalFeatures([FeatureLookup(source=daily["group"])]).using_spine(spine, "t") \
        .to_dataframe_with_spine()
    assert sorted(r["value"] for r in df.collect()) == [3.0, 4.0]


def test_spine_key_of_another_numeric_type_is_cast(spark, daily):
    spine = spark.createDataFrame([(1, _day(2))], "acct_id int, t timestamp")
    df = HistoricalFeatures([FeatureLookup(source=daily["group"])]).using_spine(spine, "t").to_dataframe_with_spine()
    assert [r["value"] for r in df.collect()] == [2.0]


# -- errors -----------------------------------------------------------------------------------------------------
def _spine(spark, **cols):
    base = {"acct_id": [1], "t": [_day(2)]}
    base.update(cols)
    return pd.DataFrame({k: v for k, v in base.items() if v is not None})


def _run(hist, spine, date_col="t", keep_cols=None, spark=None):
    return hist.using_spine(spine, date_col, keep_cols, spark=spark).to_dataframe_with_spine().collect()


def test_spine_missing_join_key_or_date(spark, daily):
    hist = HistoricalFeatures([FeatureLookup(source=daily["group"])])
    with pytest.raises(SchemaError, match="no column.*acct_id.*daily"):
        _run(hist, _spine(spark, acct_id=None, other=[1]), spark=spark)
    with pytest.raises(SchemaError, match="'when'"):
        _run(hist, _spine(spark), date_col="when", spark=spark)
    with pytest.raises(SchemaError, match="label"):
        _run(hist, _spine(spark), keep_cols=["label"], spark=spark)
    with pytest.raises(SchemaError, match="'t'.*string"):
        _run(hist, _spine(spark, t=["2024-03-02"]), spark=spark)
    with pytest.raises(SchemaError, match="acct_id.*string"):
        _run(hist, _spine(spark, acct_id=["1"]), spark=spark)


def test_null_spine_dates(spark, daily):
    hist = HistoricalFeatures([FeatureLookup(source=daily["group"])])
    spine = spark.createDataFrame([(1, _day(2)), (1, None), (2, None)], "acct_id long, t timestamp")
    with pytest.raises(DataError, match="'t' is null in 2 row"):
        _run(hist, spine)


def test_unknown_features_and_never_written_group(daily):
    with pytest.raises(DefinitionError, match="no feature.*'nope'.*value"):
        HistoricalFeatures([FeatureLookup(source=daily["group"], features=["value", "nope"])]).resolve()
    with pytest.raises(DefinitionError, match="rename.*'other'"):
        FeatureLookup(source=daily["group"], rename={"other": "x"}).resolve()
    with pytest.raises(StoreError, match="never_written.*never been written"):
        HistoricalFeatures([FeatureLookup(source=daily["never"])]).resolve()


def test_colliding_output_names(spark, daily):
    g = daily["group"]
    with pytest.raises(DefinitionError, match="'value'.*prefix"):
        HistoricalFeatures([FeatureLookup(source=g), FeatureLookup(source=g, ttl=dt.timedelta(days=1))]).resolve()
    ok = HistoricalFeatures([FeatureLookup(source=g), FeatureLookup(source=g, ttl=dt.timedelta(hours=1),
                                                                    prefix="fresh_")])
    rows = _run(ok, _spine(spark, t=[_day(2, 20)]), spark=spark)
    assert [(r["value"], r["fresh_value"]) for r in rows] == [(2.0, None)]
    clash = HistoricalFeatures([FeatureLookup(source=g, rename={"value": "label"})])
    with pytest.raises(DefinitionError, match="'label'.*collide"):
        _run(clash, _spine(spark, label=[1]), keep_cols=["label"], spark=spark)


def test_bad_definitions(daily):
    g = daily["group"]
    with pytest.raises(DefinitionError, match="ttl"):
        FeatureLookup(source=g, ttl=3600)
    with pytest.raises(DefinitionError, match="negative"):
        FeatureLookup(source=g, ttl=-dt.timedelta(hours=1))
    with pytest.raises(DefinitionError, match="FeatureGroup"):
        FeatureLookup(source="daily")
    with pytest.raises(DefinitionError, match="'numberish'"):
        FillNull(0, "numberish")
    with pytest.raises(DefinitionError, match="at least one"):
        HistoricalFeatures([])


def test_fill_null_on_unknown_column(spark, daily):
    hist = HistoricalFeatures([FeatureLookup(source=daily["group"])], fill_nulls=[FillNull(0, "double", ["nope"])])
    with pytest.raises(SchemaError, match="'nope'"):
        _run(hist, _spine(spark), spark=spark)


def test_to_dataframe_needs_one_key_set(spark, daily, tmp_path):
    other = FeatureGroup("other", entity=Entity("item", ["item_id"]),
                         materialization=Materialization(event_time_col="ts", offline_materialization=
                                                         OfflineMaterialization(store=OfflineStore(
                                                             value=FeatureStoreFileOutput(str(tmp_path))))))
    other.set_dataframe(spark.createDataFrame([(5, _day(1), 1)], "item_id long, ts timestamp, qty int")).write()
    hist = HistoricalFeatures([FeatureLookup(source=daily["group"]), FeatureLookup(source=other)])
    with pytest.raises(DefinitionError, match="same join keys.*using_spine"):
        hist.to_dataframe(spark=spark)
    with pytest.raises(DefinitionError, match="empty time range"):
        hist.to_dataframe(_day(3), _day(2), spark=spark)


# -- the DuckDB engine: same boundaries and the same errors (types and messages) ----------------------------------
def test_duckdb_engine_boundaries_and_key_casts(daily):
    hist = HistoricalFeatures([FeatureLookup(source=daily["group"], ttl=dt.timedelta(hours=6))], engine="duckdb")
    spine = pd.DataFrame([{"acct_id": 1, "t": _day(3, 18)}, {"acct_id": 1, "t": _day(3, 18) + dt.timedelta(microseconds=1)},
                          {"acct_id": 1, "t": _day(3, 12)}, {"acct_id": 1, "t": _day(1, 11)}])
    out = hist.using_spine(spine, "t").to_pandas_with_spine()
    assert [None if v != v else v for v in out["value"]] == [3.0, None, 3.0, None]  # NaN: pandas' null double
    import pyarrow as pa

    ntz = pa.table({"acct_id": [1, 1], "t": pa.array([dt.datetime(2024, 3, 4, 11, 59), dt.datetime(2024, 3, 4, 12)],
                                                      pa.timestamp("us"))})
    plain = HistoricalFeatures([FeatureLookup(source=daily["group"])], engine="duckdb")
    assert plain.using_spine(ntz, "t").to_arrow_with_spine().column("value").to_pylist() == [3.0, 4.0]
    ints = pa.table({"acct_id": pa.array([1, 2], pa.int32()), "t": pa.array([_day(2)] * 2, pa.timestamp("us", "UTC"))})
    got = plain.using_spine(ints, "t").to_arrow_with_spine()
    assert got.column("value").to_pylist() == [2.0, None] and got.schema.field("acct_id").type == pa.int32()


def test_duckdb_engine_errors(daily):
    hist = HistoricalFeatures([FeatureLookup(source=daily["group"])], engine="duckdb")

    def run(spine, date_col="t", keep_cols=None, h=hist):
        return h.using_spine(spine, date_col, keep_cols).to_dataframe_with_spine()

    with pytest.raises(SchemaError, match="no column.*acct_id.*daily"):
        run(_spine(None, acct_id=None, other=[1]))
    with pytest.raises(SchemaError, match="'when'"):
        run(_spine(None), date_col="when")
    with pytest.raises(SchemaError, match="label"):
        run(_spine(None), keep_cols=["label"])
    with pytest.raises(SchemaError, match="'t'.*string"):
        run(_spine(None, t=["2024-03-02"]))
    with pytest.raises(SchemaError, match="acct_id.*string"):
        run(_spine(None, acct_id=["1"]))
    with pytest.raises(DataError, match="'t' is null in 2 row"):
        run(pd.DataFrame({"acct_id": [1, 1, 2], "t": [_day(2), None, None]}))
    with pytest.raises(SchemaError, match="'nope'"):
        run(_spine(None), h=HistoricalFeatures([FeatureLookup(source=daily["group"])],
                                               fill_nulls=[FillNull(0, "double", ["nope"])], engine="duckdb"))
    with pytest.raises(SchemaError, match="pandas DataFrame or an Arrow table"):
        run([{"acct_id": 1}])
    with pytest.raises(DefinitionError, match="engine"):
        HistoricalFeatures([FeatureLookup(source=daily["group"])], engine="polars")
    clash = HistoricalFeatures([FeatureLookup(source=daily["group"], rename={"value": "label"})], engine="duckdb")
    with pytest.raises(DefinitionError, match="'label'.*collide"):  # the Spark engine's message, word for word
        run(_spine(None, label=[1]), keep_cols=["label"], h=clash)
