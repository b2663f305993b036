"""Online serving: publish the latest row per key from the offline store and look it up without Spark.

Oracles are plain Python loops over the raw rows written (latest row per key at as_of, ties to the later write,
TTL inclusive at as_of - ttl).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
    OfflineStoreEnum,
)
from seeknal_spark.errors import DefinitionError, StoreError
from seeknal_spark.serving import (
    ChecksumError,
    OnlineFeatures,
    ServingSource,
    list_online_versions,
    publish_online_table,
)
from tests.support.oracle import latest_as_of

UTC = dt.timezone.utc
D1 = dt.datetime(2024, 3, 1, tzinfo=UTC)


def t(day: int, hour: int = 0, minute: int = 0, micro: int = 0) -> dt.datetime:
    return D1 + dt.timedelta(days=day - 1, hours=hour, minutes=minute, microseconds=micro)


# (write number, user_id, ts, amount, orders, tier, visits) ; visits is added by write 3 (schema version 2)
WRITES = [
    [(1, t(1, 10), 1.0, 1, "a"), (1, t(2, 10), 2.0, 2, "a"), (1, t(3, 10), 3.0, 3, "b"),
     (2, t(1, 12), 5.0, 1, None), (2, t(1, 6), None, 9, "x"),
     (3, t(2, 0), 7.5, 4, "c"), (4, t(3, 23, 59, 999_999), 0.25, 7, "d")],
    [(2, t(1, 12), 50.0, 10, "z"), (5, t(2, 5), 8.0, 8, "e")],  # (2, day1 12:00) ties with write 1
    [(1, t(4, 8), 4.0, 4, "b", 40), (3, t(2, 0), 70.5, 40, "cc", 41)],  # (3, day2 00:00) ties with write 1
]
KEYS = [1, 2, 3, 4, 5, 6]
FEATURES = ["amount", "orders", "tier", "visits"]


def oracle(as_of, start=None, ttl=None, features=FEATURES, out=None):
    """Latest row per key with start <= ts <= as_of, ties to the later write; TTL keeps ts >= as_of - ttl."""
    out = out or {f: f for f in features}
    written = [(write_no, row) for write_no, rows in enumerate(WRITES) for row in rows]
    result = []
    for key in KEYS:
        hit = latest_as_of(written, lambda w: w[1][0] == key, lambda w: w[1][1], as_of, start=start, ttl=ttl,
                           rank=lambda w: w[0])
        values = dict(zip(FEATURES, list(hit[1][2:]) + [None] * 4)) if hit else {}
        result.append({"user_id": key, **{out[f]: values.get(f) for f in features}})
    return result


def _schema(with_visits: bool):
    from pyspark.sql.types import (DoubleType, IntegerType, LongType, StringType, StructField, StructType,
                                   TimestampType)

    fields = [StructField("user_id", LongType()), StructField("ts", TimestampType()),
              StructField("amount", DoubleType()), StructField("orders", LongType()),
              StructField("tier", StringType())]
    if with_visits:
        fields.append(StructField("visits", IntegerType()))
    return StructType(fields)


@pytest.fixture(scope="module")
def offline(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("serving_offline")
    store = OfflineStore(kind=OfflineStoreEnum.FILE, name="t", value=FeatureStoreFileOutput(path=str(root)))
    mat = Materialization(event_time_col="ts",
                          offline_materialization=OfflineMaterialization(store=store, mode="append"))
    user = Entity(name="user", join_keys=["user_id"])
    fg = FeatureGroup("user_spend", entity=user, materialization=mat, project="shop")
    for i, rows in enumerate(WRITES):
        df = spark.createDataFrame([tuple(r) for r in rows], _schema(i == 2))
        fg.set_dataframe(df).write()
    # a second group with the same key, and one with a different key
    fg2 = FeatureGroup("user_profile", entity=user, materialization=mat, project="shop")
    fg2.set_dataframe(spark.createDataFrame([(1, t(1), "gold"), (6, t(1), "iron")],
                                            "user_id long, ts timestamp, level string")).write()
    store_ent = Entity(name="store", join_keys=["store_id", "region"])
    fg3 = FeatureGroup("store_stats", entity=store_ent, materialization=mat, project="shop")
    fg3.set_dataframe(spark.createDataFrame([("s1", "eu", t(1), 3.5), ("s1", "us", t(2), 4.5)],
                                            "store_id string, region string, ts timestamp, rating double")).write()
    return {"spend": fg, "profile": fg2, "store": fg3, "root": root}


def spend_source(offline, features=None, ttl=None):
    return ServingSource.from_feature_group(offline["spend"], features=features, ttl=ttl)


def lookup(table, keys=KEYS, feature_names=None):
    return table.get_features(keys=[{"user_id": k} for k in keys], feature_names=feature_names)


@pytest.mark.parametrize("as_of", [t(0, 12), t(1, 11), t(1, 12), t(2, 10), t(3, 12), t(5)])
def test_latest_row_per_key_matches_oracle(offline, tmp_path, as_of):
    table = publish_online_table([spend_source(offline)], "spend", as_of=as_of, store_root=str(tmp_path))
    assert lookup(table) == oracle(as_of)
    assert lookup(table, keys=KEYS * 3) == oracle(as_of) * 3  # batch path (vectorized from 8 keys on)
    assert table.as_of == as_of


def test_default_as_of_is_now_and_serves_all_latest_values(offline, tmp_path):
    before = dt.datetime.now(UTC)
    table = publish_online_table(spend_source(offline), "spend", store_root=str(tmp_path))
    assert before <= table.as_of <= dt.datetime.now(UTC)
    served = lookup(table)
    assert served == oracle(table.as_of)
    # ties: the later write wins; the feature added by schema version 2 is null in older rows
    assert served[1] == {"user_id": 2, "amount": 50.0, "orders": 10, "tier": "z", "visits": None}
    assert served[2] == {"user_id": 3, "amount": 70.5, "orders": 40, "tier": "cc", "visits": 41}


def test_range_serves_latest_within_range(offline, tmp_path):
    table = publish_online_table(spend_source(offline), "spend", start=t(2), end=t(3, 12), store_root=str(tmp_path))
    assert lookup(table) == oracle(t(3, 12), start=t(2))
    assert table.metadata["start"] == t(2).isoformat()


@pytest.mark.parametrize("as_of,ttl", [(t(3, 12), dt.timedelta(days=1)), (t(3), dt.timedelta(days=1)),
                                       (t(4, 9), dt.timedelta(hours=1)), (t(2), dt.timedelta(0))])
def test_ttl_drops_keys_whose_latest_row_is_too_old(offline, tmp_path, as_of, ttl):
    table = publish_online_table(spend_source(offline, ttl=ttl), "spend", as_of=as_of, store_root=str(tmp_path))
    expected = oracle(as_of, ttl=ttl)
    assert lookup(table) == expected
    assert any(r["amount"] is None and r["orders"] is None for r in expected[:5])  # the TTL did drop something


def test_feature_subset_renames_and_request_order(offline, tmp_path):
    src = spend_source(offline, features=[("amount", "spend"), "tier"])
    table = publish_online_table(src, "spend", as_of=t(3, 12), store_root=str(tmp_path))
    exp = oracle(t(3, 12), features=["amount", "tier"], out={"amount": "spend", "tier": "tier"})
    assert table.feature_names == ["spend", "tier"]
    assert lookup(table, keys=[5, 1, 6, 1]) == [exp[4], exp[0], exp[5], exp[0]]
    assert lookup(table, keys=[1, 2], feature_names=["tier"]) == [{"user_id": 1, "tier": "b"},
                                                                   {"user_id": 2, "tier": "z"}]


def test_several_sources_same_and_different_keys(offline, tmp_path):
    sources = [spend_source(offline, features=["amount"]),
               ServingSource.from_feature_group(offline["profile"]),
               ServingSource.from_feature_group(offline["store"])]
    table = publish_online_table(sources, "mixed", as_of=t(5), store_root=str(tmp_path))
    assert [tb["join_keys"] for tb in table.metadata["tables"]] == [["user_id"], ["store_id", "region"]]
    got = table.get_features(keys=[{"user_id": 1, "store_id": "s1", "region": "us"},
                                   {"user_id": 6, "store_id": "s1", "region": "eu"},
                                   {"user_id": 7, "store_id": "s2", "region": "eu"}])
    assert got == [
        {"user_id": 1, "amount": 4.0, "level": "gold", "store_id": "s1", "region": "us", "rating": 4.5},
        {"user_id": 6, "amount": None, "level": "iron", "store_id": "s1", "region": "eu", "rating": 3.5},
        {"user_id": 7, "amount": None, "level": None, "store_id": "s2", "region": "eu", "rating": None},
    ]
    # only the keys of the tables whose features are asked for are needed
    assert table.get_features(keys=[{"store_id": "s1", "region": "eu"}], feature_names=["rating"]) == [
        {"store_id": "s1", "region": "eu", "rating": 3.5}]
    with pytest.raises(DefinitionError, match="lacks join key 'region'"):
        table.get_features(keys=[{"user_id": 1, "store_id": "s1"}])
    meta = table.metadata
    assert [(s["group"]["project"], s["group"]["name"]) for s in meta["sources"]] == [
        ("shop", "user_spend"), ("shop", "user_profile"), ("shop", "store_stats")]
    assert meta["sources"][0]["delta_version"] == offline["spend"].delta_version
    assert meta["sources"][0]["schema_version"] == 2
    assert table.feature_types() == {"amount": "double", "level": "string", "rating": "double"}


def test_duckdb_index_mode_serves_the_same(offline, tmp_path):
    publish_online_table(spend_source(offline), "spend", as_of=t(3, 12), store_root=str(tmp_path))
    mem = OnlineFeatures.open("spend", store_root=str(tmp_path))
    ddb = OnlineFeatures.open("spend", store_root=str(tmp_path), index="duckdb")
    assert lookup(ddb) == lookup(mem) == oracle(t(3, 12))
    assert lookup(ddb, keys=[4]) == lookup(mem, keys=[4])
    assert lookup(ddb, keys=[3, 1], feature_names=["tier"]) == lookup(mem, keys=[3, 1], feature_names=["tier"])
    # a key value never reaches SQL as text
    assert ddb.get_features(keys=[{"user_id": 1}], feature_names=["tier"]) == [{"user_id": 1, "tier": "b"}]
    with pytest.raises(DefinitionError, match="user_id"):
        ddb.get_features(keys=[{"user_id": "1 OR 1=1"}])
    ddb.close()


def test_republish_serves_new_values_and_refresh(offline, tmp_path, spark):
    root = str(tmp_path)
    src = spend_source(offline)
    first = publish_online_table(src, "spend", as_of=t(2, 10), store_root=root)
    reader = OnlineFeatures.open("spend", store_root=root)
    assert reader.refresh() is False
    second = publish_online_table(src, "spend", as_of=t(5), store_root=root)
    assert second.version == first.version + 1
    assert lookup(reader) == oracle(t(2, 10))  # still the version it opened
    assert reader.refresh() is True and reader.version == second.version
    assert lookup(reader) == oracle(t(5))


def test_new_offline_write_is_served_after_republish(tmp_path, spark):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(tmp_path / "off")))
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store,
                                                                                              mode="append"))
    fg = FeatureGroup("g", entity=Entity("e", ["k"]), materialization=mat)
    fg.set_dataframe(spark.createDataFrame([(1, t(1), 1.0)], "k long, ts timestamp, v double")).write()
    src = ServingSource.from_feature_group(fg)
    table = publish_online_table(src, "g", store_root=str(tmp_path / "on"))
    assert table.get_features(keys=[{"k": 1}]) == [{"k": 1, "v": 1.0}]
    fg.set_dataframe(spark.createDataFrame([(1, t(2), 2.0), (2, t(2), 3.0)], "k long, ts timestamp, v double")).write()
    assert table.refresh() is False  # nothing republished yet
    publish_online_table(src, "g", store_root=str(tmp_path / "on"))
    assert table.refresh() is True
    assert table.get_features(keys=[{"k": 1}, {"k": 2}]) == [{"k": 1, "v": 2.0}, {"k": 2, "v": 3.0}]


def _files(directory):
    return sorted(n for n in os.listdir(directory) if not n.startswith(".publish"))


def test_failed_publish_keeps_previous_version(offline, tmp_path, monkeypatch):
    root = str(tmp_path)
    good = publish_online_table(spend_source(offline), "spend", as_of=t(2, 10), store_root=root)
    before = _files(tmp_path / "spend")
    with pytest.raises(DefinitionError, match="'nope' is not in feature group shop/user_spend"):
        publish_online_table([spend_source(offline), spend_source(offline, features=["nope"])], "spend",
                             store_root=root)
    assert _files(tmp_path / "spend") == before  # no temp or partial files left

    from seeknal_spark.serving import publish as publish_mod

    real = publish_mod.write_json_atomic

    def fail_on_pointer(path, data):
        if path.endswith("CURRENT.json"):
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(publish_mod, "write_json_atomic", fail_on_pointer)
    with pytest.raises(OSError, match="disk full"):
        publish_online_table(spend_source(offline), "spend", as_of=t(5), store_root=root)
    assert _files(tmp_path / "spend") == before
    reopened = OnlineFeatures.open("spend", store_root=root)
    assert reopened.version == good.version and lookup(reopened) == oracle(t(2, 10))


def test_version_retention(offline, tmp_path):
    root = str(tmp_path)
    for as_of in (t(1, 11), t(2, 10), t(3, 12), t(5)):
        publish_online_table(spend_source(offline), "spend", as_of=as_of, store_root=root, keep=1)
    versions = list_online_versions("spend", store_root=root)
    assert [(v["version"], v["current"]) for v in versions] == [(3, False), (4, True)]
    assert len([n for n in os.listdir(tmp_path / "spend") if n.endswith(".duckdb")]) == 2
    old = OnlineFeatures.open("spend", store_root=root, version=3)
    assert lookup(old) == oracle(t(3, 12))
    with pytest.raises(StoreError, match="version 1 .* is not kept"):
        OnlineFeatures.open("spend", store_root=root, version=1)


def test_missing_and_corrupted_files(offline, tmp_path):
    root = str(tmp_path)
    with pytest.raises(StoreError, match="no online table 'spend'"):
        OnlineFeatures.open("spend", store_root=root)
    table = publish_online_table(spend_source(offline), "spend", as_of=t(5), store_root=root)
    with open(table.path, "r+b") as fh:
        fh.seek(os.path.getsize(table.path) // 2)
        fh.write(b"\x00garbage\x00")
    with pytest.raises(ChecksumError, match="corrupted"):
        OnlineFeatures.open("spend", store_root=root)
    with pytest.raises(ChecksumError):
        OnlineFeatures.open(str(tmp_path / "spend"))
    os.unlink(table.path)
    with pytest.raises(StoreError, match="missing"):
        OnlineFeatures.open("spend", store_root=root)


def test_bad_input_errors(offline, tmp_path):
    root = str(tmp_path)
    table = publish_online_table(spend_source(offline), "spend", as_of=t(5), store_root=root)
    with pytest.raises(DefinitionError, match="lacks join key 'user_id'"):
        table.get_features(keys=[{"userid": 1}])
    with pytest.raises(DefinitionError, match="unknown feature 'amont'"):
        table.get_features(keys=[{"user_id": 1}], feature_names=["amont"])
    with pytest.raises(DefinitionError, match="stored as BIGINT .* str '1'"):
        table.get_features(keys=[{"user_id": "1"}])
    with pytest.raises(DefinitionError, match="not a valid name"):
        publish_online_table(spend_source(offline), "../escape", store_root=root)
    with pytest.raises(DefinitionError, match="not a valid name"):
        OnlineFeatures.open("..", store_root=root)
    with pytest.raises(DefinitionError, match="join key name"):
        publish_online_table(spend_source(offline, features=[("amount", "user_id")]), "x", store_root=root)
    with pytest.raises(DefinitionError, match="two lookups serve a feature named 'amount'"):
        publish_online_table([spend_source(offline), spend_source(offline)], "x", store_root=root)
    with pytest.raises(DefinitionError, match="empty time range"):
        publish_online_table(spend_source(offline), "x", start=t(3), end=t(2), store_root=root)
    with pytest.raises(StoreError, match="no Delta table"):
        publish_online_table(ServingSource(str(tmp_path / "none"), "p", "g", ["k"], "ts"), "x", store_root=root)
    assert table.get_features(keys=[{"user_id": 999}, {"user_id": None}]) == [
        {"user_id": 999, "amount": None, "orders": None, "tier": None, "visits": None},
        {"user_id": None, "amount": None, "orders": None, "tier": None, "visits": None}]


def test_serving_without_pyspark_in_another_process(offline, tmp_path):
    publish_online_table(spend_source(offline), "spend", as_of=t(5), store_root=str(tmp_path))
    code = textwrap.dedent(f"""
        import sys
        import seeknal_spark
        from seeknal_spark.serving import OnlineFeatures
        table = OnlineFeatures.open("spend", store_root={str(tmp_path)!r})
        print(table.get_features(keys=[{{"user_id": 1}}]))
        assert "pyspark" not in sys.modules, sorted(m for m in sys.modules if "pyspark" in m)
        assert "py4j" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "'amount': 4.0" in out.stdout
