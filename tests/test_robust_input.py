"""Hostile but fair input to the offline store (issue 12): far years, odd column names, NaN keys, odd names."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re

import pytest

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
)
from seeknal_spark.errors import DataError, DefinitionError, SchemaError

UTC = dt.timezone.utc
DELTA_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def _group(root, name="g", key="k", mode="append"):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store, mode=mode))
    return FeatureGroup(name, entity=Entity("e", [key]), materialization=mat)


def _stats(table_path):
    out = []
    for path in sorted(glob.glob(os.path.join(table_path, "_delta_log", "*.json"))):
        with open(path) as fh:
            for line in fh:
                action = json.loads(line)
                if "add" in action:
                    out.append((action["add"]["path"], json.loads(action["add"]["stats"])))
    return out


def test_utc_date_keeps_the_last_microsecond_of_a_day_in_that_day(spark, tz):
    from pyspark.sql import functions as F

    from seeknal_spark.offline.frames import utc_date

    tz("America/New_York")  # the session time zone must not matter
    years = [1000, 1969, 1970, 2255, 2328, 2400, 5000, 9998, 9999]
    instants = [dt.datetime(y, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) for y in years]
    instants += [dt.datetime(y, 1, 1, tzinfo=UTC) for y in years]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(instants)], "i int, ts timestamp")
    got = {r["i"]: r["d"] for r in df.select("i", utc_date(F.col("ts")).alias("d").cast("string").alias("d")).collect()}
    for i, t in enumerate(instants):
        assert got[i] == f"{t.year:04d}-{t.month:02d}-{t.day:02d}", (t, got[i])


def test_far_years_write_read_and_overwrite(tmp_path, spark):
    fg = _group(tmp_path / "off", "far")
    last = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    rows = [(1, dt.datetime(999, 3, 1, 12, 0, 0, 1500), 1.0), (2, last, 2.0),
            (3, dt.datetime(2500, 12, 31, 23, 59, 59, 999999), 3.0)]
    result = fg.set_dataframe(spark.createDataFrame(rows, "k long, ts timestamp, x double")).write()
    assert result.partitions == (dt.date(999, 3, 1), dt.date(2500, 12, 31), dt.date(9999, 12, 31))
    for path, stats in _stats(fg.table_path):
        day = path.split("/")[0].split("=")[1]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day), path
        for bound in ("minValues", "maxValues"):
            if "ts" in stats[bound]:
                assert DELTA_TS.fullmatch(stats[bound]["ts"]), stats
    pre_1000 = [s for p, s in _stats(fg.table_path) if p.startswith("_event_date=0999-03-01/")]
    assert pre_1000[0]["minValues"]["ts"] == "0999-03-01T12:00:00.001Z"
    assert pre_1000[0]["maxValues"]["ts"] == "0999-03-01T12:00:00.002Z"  # rounded up, never down
    # an overwrite of part of the last day keeps that day's other rows (boundary rows are rewritten)
    fg.set_dataframe(spark.createDataFrame([(4, dt.datetime(9999, 12, 31, 23), 4.0)], "k long, ts timestamp, x double"))
    fg.write(feature_start_time="9999-12-31T22:00:00", feature_end_time="9999-12-31T23:30:00", mode="overwrite")
    stored = sorted((r["k"], r["x"]) for r in fg.to_dataframe().collect())
    assert stored == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    late = fg.to_dataframe("9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999").collect()
    assert [(r["k"], r["x"]) for r in late] == [(2, 2.0)]


def test_timeutil_far_years():
    from seeknal_spark.timeutil import from_micros, to_micros, to_utc

    for value in (dt.datetime(1, 1, 1, tzinfo=UTC), dt.datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                  dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)):
        assert from_micros(to_micros(value)) == value
    assert to_utc("0999-03-01T12:00:00") == dt.datetime(999, 3, 1, 12, tzinfo=UTC)
    with pytest.raises(DefinitionError, match="9999-12-31T23:00:00-05:00.*outside the years"):
        to_utc(dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))))


@pytest.mark.parametrize("bad", ["a.b", "a`b", "a\nb"])
def test_odd_column_names_are_refused_with_the_column_named(tmp_path, spark, bad):
    df = spark.createDataFrame([(1, dt.datetime(2024, 1, 1), 1.0)], "k long, ts timestamp, x double")
    df = df.withColumnRenamed("x", bad)
    fg = _group(tmp_path / "off")
    with pytest.raises(SchemaError, match=re.escape(repr(bad)) + ".*withColumnRenamed"):
        fg.set_dataframe(df).write()
    assert not os.path.exists(fg.table_path)
    with pytest.raises(SchemaError, match=re.escape(repr(bad))):
        fg.validate(df)


def test_odd_key_and_duplicated_column_names_are_refused(tmp_path, spark):
    df = spark.createDataFrame([(1, dt.datetime(2024, 1, 1), 1.0)], "k long, ts timestamp, x double")
    fg = _group(tmp_path / "off", key="user.id")
    with pytest.raises(SchemaError, match=r"'user.id' contains a dot"):
        fg.set_dataframe(df.withColumnRenamed("k", "user.id")).write()
    dup = df.join(spark.createDataFrame([(1, 2.0)], "k long, x double"), "k")  # two columns named x
    fg = _group(tmp_path / "off")
    with pytest.raises(SchemaError, match=r"2 columns named 'x'"):
        fg.set_dataframe(dup).write()
    with pytest.raises(SchemaError, match=r"2 columns named 'x'"):
        fg.set_dataframe(dup).set_features(["x"]).write()
    assert not os.path.exists(fg.table_path)
    # a duplicated column that is not written is no problem
    extra = spark.createDataFrame([(1, dt.datetime(2024, 1, 1), 1.0, 2, 3)], ["k", "ts", "x", "z", "z"])
    assert fg.set_dataframe(extra).set_features(["x"]).write().rows == 1


def test_nan_join_key_is_refused_at_write(tmp_path, spark):
    rows = [(1.0, dt.datetime(2024, 1, 1), 1.0), (float("nan"), dt.datetime(2024, 1, 1), 2.0)]
    fg = _group(tmp_path / "off", key="score")
    df = spark.createDataFrame(rows, "score double, ts timestamp, x double")
    with pytest.raises(DataError, match="join key 'score' is NaN"):
        fg.set_dataframe(df).write()
    assert not os.path.exists(os.path.join(fg.table_path, "_delta_log"))
    assert fg.set_dataframe(df.where("not isnan(score)")).write().rows == 1


@pytest.mark.parametrize("name", ["users\n", "us\ters", "a\x00b", "x\r", "\nx"])
def test_names_with_newlines_or_control_characters_are_refused(tmp_path, name):
    from seeknal_spark.definitions import check_name
    from seeknal_spark.serving.location import resolve_location

    with pytest.raises(DefinitionError, match="not a valid name"):
        check_name(name, "feature group name")
    with pytest.raises(DefinitionError, match="feature group name"):
        _group(tmp_path, name=name)
    with pytest.raises(DefinitionError, match="project"):
        FeatureGroup("ok", project=name)
    with pytest.raises(DefinitionError, match="online table name"):
        resolve_location(name, store_root=str(tmp_path))
    with pytest.raises(DefinitionError, match="entity name"):
        Entity(name, ["k"])
