"""Training-serving parity: served features equal the point-in-time training set at the same time, same types."""

from __future__ import annotations

import datetime as dt

import pytest

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
)

import seeknal_spark.retrieval.historical as retrieval  # noqa: E402
import seeknal_spark.retrieval.lookup as lookup_mod  # noqa: E402

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def groups(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("parity_off")
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    mat = Materialization(event_time_col="ts",
                          offline_materialization=OfflineMaterialization(store=store, mode="append"))
    user = Entity("user", ["user_id"])
    spend = FeatureGroup("spend", entity=user, materialization=mat)
    h = dt.timedelta(hours=1)
    first = [(k, T0 + i * 7 * h + k * h, float(k * 10 + i), k + i, f"t{k}{i}")
             for k in range(1, 9) for i in range(4)]
    spend.set_dataframe(spark.createDataFrame(first, "user_id long, ts timestamp, amount double, n int, tag string"))
    spend.write()
    # a later write ties with (3, T0 + 3h) and (5, T0 + 12h + 5h): the later write must win on both sides
    second = [(3, T0 + 3 * h, -1.0, 99, "late"), (5, T0 + 12 * h + 5 * h, -2.0, 98, "late2")]
    spend.set_dataframe(spark.createDataFrame(second, "user_id long, ts timestamp, amount double, n int, tag string"))
    spend.write()
    profile = FeatureGroup("profile", entity=user, materialization=mat)
    profile.set_dataframe(spark.createDataFrame([(k, T0 + k * 2 * h, k % 3 == 0) for k in range(1, 9, 2)],
                                                "user_id long, ts timestamp, vip boolean")).write()
    return spend, profile


@pytest.mark.parametrize("as_of_hours,ttl_hours", [(4, None), (17, None), (30, 6), (12, 0), (40, 30)])
def test_served_equals_point_in_time_training_rows(groups, spark, tmp_path, as_of_hours, ttl_hours):
    spend, profile = groups
    ttl = None if ttl_hours is None else dt.timedelta(hours=ttl_hours)
    FeatureLookup, HistoricalFeatures = lookup_mod.FeatureLookup, retrieval.HistoricalFeatures
    hist = HistoricalFeatures(lookups=[FeatureLookup(source=spend, ttl=ttl, prefix="s_"),
                                       FeatureLookup(source=profile, rename={"vip": "is_vip"})])
    as_of = T0 + dt.timedelta(hours=as_of_hours)
    keys = list(range(0, 10))
    spine = spark.createDataFrame([(k, as_of) for k in keys], "user_id long, at timestamp")
    training = {r["user_id"]: r.asDict() for r in
                hist.using_spine(spine, date_col="at").to_dataframe_with_spine().collect()}

    table = hist.serve("parity", feature_end_time=as_of, store_root=str(tmp_path))  # the public API
    served = table.get_features(keys=[{"user_id": k} for k in keys])
    names = table.feature_names
    assert names == ["s_amount", "s_n", "s_tag", "is_vip"]
    non_null = 0
    for row in served:
        want = training[row["user_id"]]
        for name in names:
            assert row[name] == want[name], (row["user_id"], name, row[name], want[name])
            assert type(row[name]) is type(want[name]), name
            non_null += row[name] is not None
    assert non_null > 0


def test_using_latest_serves_each_keys_newest_row(groups, spark, tmp_path):
    spend, _ = groups
    hist = retrieval.HistoricalFeatures(lookups=[lookup_mod.FeatureLookup(source=spend)])
    table = hist.using_latest().serve(name="latest", store_root=str(tmp_path))
    now = dt.datetime.now(dt.timezone.utc)
    spine = spark.createDataFrame([(k, now) for k in range(10)], "user_id long, at timestamp")
    training = {r["user_id"]: r.asDict() for r in
                hist.using_spine(spine, date_col="at").to_dataframe_with_spine().collect()}
    for row in table.get_features(keys=[{"user_id": k} for k in range(10)]):
        assert {n: row[n] for n in table.feature_names} == {n: training[row["user_id"]][n]
                                                             for n in table.feature_names}
