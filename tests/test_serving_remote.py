"""Online serving: training-serving type parity with the offline store, and publishing through a real S3 endpoint."""

from __future__ import annotations

import datetime as dt
import decimal
import os

import pytest

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
)
from seeknal_spark.errors import StoreError
from seeknal_spark.serving import ChecksumError, OnlineFeatures, ServingSource, publish_online_table
from tests.support.s3 import make_bucket

UTC = dt.timezone.utc


def _group(root, name, keys=("k",)):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store,
                                                                                              mode="append"))
    return FeatureGroup(name, entity=Entity("e", list(keys)), materialization=mat)


def test_served_values_and_types_equal_offline_values(tmp_path, spark):
    from pyspark.sql import functions as F

    base = dt.datetime(2024, 5, 1)
    rows = [(k, base + dt.timedelta(hours=h), k * 10 + h) for k in range(1, 6) for h in range(3)]
    df = spark.createDataFrame(rows, "k long, ts timestamp, n long").select(
        "k", "ts",
        F.col("n").cast("int").alias("i"), F.col("n").alias("l"), (F.col("n") / 3).alias("d"),
        (F.col("n") / 7).cast("float").alias("f"), F.concat(F.lit("s"), F.col("n").cast("string")).alias("s"),
        (F.col("n") % 2 == 0).alias("b"), F.date_add(F.lit("2024-01-01").cast("date"), F.col("n").cast("int")).alias("dd"),
        (F.col("n") / 4).cast("decimal(10,2)").alias("dec"),
        (F.col("ts") + F.expr("INTERVAL 90 SECONDS")).alias("seen"),
        F.array(F.col("n").cast("double"), F.lit(None).cast("double")).alias("arr"),
        F.create_map(F.lit("n"), F.col("n")).alias("m"),
        F.struct(F.col("n").alias("x"), F.lit("y").alias("y")).alias("st"),
        F.when(F.col("n") % 3 == 0, F.lit(None)).otherwise(F.col("n") * 1.5).alias("maybe"),
    )
    fg = _group(tmp_path / "off", "types")
    fg.set_dataframe(df).write()
    offline = fg.to_dataframe().collect()  # what a training set reads from the offline store
    latest = {}
    for row in offline:
        if row["k"] not in latest or row["ts"] > latest[row["k"]]["ts"]:
            latest[row["k"]] = row
    features = [c for c in df.columns if c not in ("k", "ts")]
    for index in ("memory", "duckdb"):
        table = publish_online_table(ServingSource.from_feature_group(fg), "types", index=index,
                                     store_root=str(tmp_path / "on"))
        served = table.get_features(keys=[{"k": k} for k in sorted(latest)] * 2)  # >= 8 keys: batch path
        assert served[:5] == served[5:] == table.get_features(keys=[{"k": k} for k in sorted(latest)])
        assert len(served) == 10
        for got in served:
            want = latest[got["k"]]
            for f in features:
                value, expected = got[f], want[f]
                if f == "seen":  # Spark returns naive local time; serving returns an aware UTC datetime
                    assert value == expected.astimezone(UTC), f
                    continue
                if f == "st":
                    expected = expected.asDict()
                assert value == expected, (f, value, expected)
                assert type(value) is type(expected), (f, type(value), type(expected))
        assert isinstance(served[0]["dec"], decimal.Decimal)
        assert table.feature_types()["dec"] == "decimal(10,2)"
        assert table.feature_types()["f"] == "float"


# -- S3 ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bucket(s3_endpoint):
    return make_bucket(s3_endpoint, "online")


@pytest.fixture(scope="module")
def small_group(tmp_path_factory, spark):
    fg = _group(tmp_path_factory.mktemp("s3_off"), "clicks", keys=("user",))
    fg.set_dataframe(spark.createDataFrame([("a", dt.datetime(2024, 1, 1), 1), ("b", dt.datetime(2024, 1, 1), 2)],
                                           "user string, ts timestamp, clicks long")).write()
    return fg


def test_s3_round_trip_verify_and_refresh(s3_endpoint, bucket, small_group, tmp_path, spark):
    s3 = s3_endpoint.options
    src = ServingSource.from_feature_group(small_group)
    published = publish_online_table(src, "clicks", target=f"s3://{bucket}/prod", storage_options=s3,
                                     cache_dir=str(tmp_path / "publisher_cache"), keep=1)
    assert published.location == f"s3://{bucket}/prod/clicks"
    from seeknal_spark.serving.remote import list_keys

    client = s3_endpoint.client()
    keys = sorted(list_keys(client, bucket, "prod/clicks/"))
    assert keys[0] == "prod/clicks/CURRENT.json" and len(keys) == 3

    # another process/host: empty cache, downloads and verifies
    reader_cache = tmp_path / "reader_cache"
    reader = OnlineFeatures.open(f"s3://{bucket}/prod/clicks", storage_options=s3, cache_dir=str(reader_cache))
    assert reader.get_features(keys=[{"user": "b"}, {"user": "zz"}]) == [
        {"user": "b", "clicks": 2}, {"user": "zz", "clicks": None}]
    assert os.listdir(reader_cache) == [f"{reader.sha256}.duckdb"]
    assert reader.refresh() is False

    # new offline data, republish: the reader picks it up on refresh
    small_group.set_dataframe(spark.createDataFrame([("a", dt.datetime(2024, 1, 2), 10)],
                                                    "user string, ts timestamp, clicks long")).write()
    publish_online_table(src, "clicks", target=f"s3://{bucket}/prod", storage_options=s3,
                         cache_dir=str(tmp_path / "publisher_cache"), keep=1)
    publish_online_table(src, "clicks", target=f"s3://{bucket}/prod", storage_options=s3,
                         cache_dir=str(tmp_path / "publisher_cache"), keep=1)
    assert reader.refresh() is True and reader.version == 3
    assert reader.get_features(keys=[{"user": "a"}]) == [{"user": "a", "clicks": 10}]
    names = sorted(k.rsplit("/", 1)[-1] for k in list_keys(client, bucket, "prod/clicks/"))
    assert [n[:7] for n in names] == ["CURRENT", "v000002", "v000002", "v000003", "v000003"]  # keep=1

    # a corrupted cached copy is detected and downloaded again; a corrupted upload is refused
    cached = os.path.join(reader_cache, f"{reader.sha256}.duckdb")
    with open(cached, "r+b") as fh:
        fh.write(b"junk")
    again = OnlineFeatures.open(f"s3://{bucket}/prod/clicks", storage_options=s3, cache_dir=str(reader_cache))
    assert again.get_features(keys=[{"user": "a"}]) == [{"user": "a", "clicks": 10}]
    remote_file = next(k for k in list_keys(client, bucket, "prod/clicks/")
                       if k.endswith(".duckdb") and "v000003" in k)
    client.put_object(Bucket=bucket, Key=remote_file, Body=b"not a duckdb file")
    with pytest.raises(ChecksumError):
        OnlineFeatures.open(f"s3://{bucket}/prod/clicks", storage_options=s3,
                            cache_dir=str(tmp_path / "fresh_cache"))
    assert not [n for n in os.listdir(tmp_path / "fresh_cache") if not n.startswith(".")]  # nothing cached


def test_s3_missing_table_is_a_clear_error(s3_endpoint, bucket, tmp_path):
    s3 = s3_endpoint.options
    with pytest.raises(StoreError, match=f"no online table at s3://{bucket}/none/t"):
        OnlineFeatures.open(f"s3://{bucket}/none/t", storage_options=s3, cache_dir=str(tmp_path))
