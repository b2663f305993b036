"""The portable write's single-pass key check and its sampled statistics (no timing: behaviour only)."""

from __future__ import annotations

import datetime as dt
import math
import os

import pytest
from deltalake import DeltaTable

from seeknal_spark import DataError, Entity, FeatureGroup, Materialization, OfflineMaterialization
from tests.support.commits import write_info


def _group(store, name="g"):
    return FeatureGroup(name, entity=Entity("user", ["user_id"]), project="test", materialization=Materialization(
        "event_time", offline_materialization=OfflineMaterialization(store=store, mode="append")))


def test_duplicates_in_different_input_partitions_and_far_apart_are_refused(any_spark, store):
    # Many rows per day and key; the duplicate pair sits in different input partitions, far apart in input order.
    rows = [(u, dt.datetime(2024, 1, 1 + d, h), float(u * 1000 + d * 24 + h)) for u in range(40) for d in range(3)
            for h in range(24)]
    rows.append((7, dt.datetime(2024, 1, 2, 5), -1.0))  # same user and time as an earlier row, another value
    df = any_spark.createDataFrame(rows, "user_id long, event_time timestamp, x double").repartition(5)
    fg = _group(store)
    with pytest.raises(DataError, match=r"duplicate rows .*user_id=7.*2 rows"):
        fg.set_dataframe(df).write()
    assert not os.path.exists(os.path.join(fg.table_path, "_delta_log"))  # nothing committed
    leftovers = [f for _, _, files in os.walk(fg.table_path) for f in files if f.endswith(".parquet")]
    assert leftovers == []


def test_same_time_for_different_keys_and_same_key_at_other_times_are_accepted(spark, store):
    t = dt.datetime(2024, 1, 1, 12)
    rows = [(u, t, 1.0) for u in range(50)] + [(1, t + dt.timedelta(microseconds=1), 2.0),
                                              (1, t - dt.timedelta(days=1), 3.0)]
    fg = _group(store)
    result = fg.set_dataframe(spark.createDataFrame(rows, "user_id long, event_time timestamp, x double")).write()
    assert result.rows == len(rows)
    assert DeltaTable(fg.table_path).to_pyarrow_table().num_rows == len(rows)


def test_null_key_after_the_shuffle_is_refused_with_its_own_message(spark, store):
    rows = [(u, dt.datetime(2024, 1, 1 + u % 3, 1), 1.0) for u in range(30)] + [(None, dt.datetime(2024, 1, 2), 5.0)]
    fg = _group(store)
    with pytest.raises(DataError, match="join key 'user_id' is null"):
        fg.set_dataframe(spark.createDataFrame(rows, "user_id long, event_time timestamp, x double")).write()


def test_quantiles_of_large_writes_come_from_a_uniform_sample_moments_from_every_row(spark, store, monkeypatch):
    from pyspark.sql import functions as F

    from seeknal_spark.offline import write_stats

    monkeypatch.setattr(write_stats, "QUANTILE_SAMPLE_ROWS", 10_000)  # 60k rows: about a sixth is sampled
    n = 60_000
    df = spark.range(n).select((F.col("id") % 1000).alias("user_id"),
                               F.timestamp_seconds(F.lit(1_704_067_200) + F.col("id")).alias("event_time"),
                               (F.col("id") % 6000).cast("double").alias("x"))
    fg = _group(store)
    fg.set_dataframe(df).write()
    info = [write_info(h) for h in DeltaTable(fg.table_path).history() if write_info(h)][0]
    x = info["stats"]["x"]
    values = sorted(float(i % 6000) for i in range(n))  # oracle: plain Python
    mean = sum(values) / n
    stddev = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    assert x["count"] == n and x["null_count"] == 0
    assert x["min"] == 0.0 and x["max"] == 5999.0
    assert x["mean"] == pytest.approx(mean) and x["stddev"] == pytest.approx(stddev)  # every row, exact
    for q, got in x["quantiles"].items():
        exact = values[max(0, math.ceil(float(q) * n) - 1)]
        assert got in values and abs(got - exact) <= 0.03 * 6000, (q, got, exact)  # sampled: within 3% of range
    # Deterministic: the same rows give the same sample.
    again = _group(store, "g2")
    again.set_dataframe(df).write()
    info2 = [write_info(h) for h in DeltaTable(again.table_path).history() if write_info(h)][0]
    assert info2["stats"]["x"]["quantiles"] == x["quantiles"]
