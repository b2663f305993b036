"""The guides' retrieval calls: default time ranges on HistoricalFeatures, and to_dataframe(spine_df=...)."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from seeknal_spark import (
    DefinitionError,
    Entity,
    FeatureGroup,
    FeatureLookup,
    FeatureStoreFileOutput,
    HistoricalFeatures,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
)
from tests.support.oracle import latest_as_of

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
DAY = dt.timedelta(days=1)
CUSTOMERS = [f"CUST{i:03d}" for i in range(1, 9)]


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """customer_spend: 8 customers, daily rows over 60 days with gaps; raw rows kept for the oracles."""
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(tmp_path_factory.mktemp("spine_api"))))
    mat = Materialization(event_time_col="event_time",
                          offline_materialization=OfflineMaterialization(store=store, mode="append"))
    fg = FeatureGroup("customer_spend", entity=Entity("customer", ["customer_id"]), materialization=mat)
    rng = random.Random(11)
    raw = [(c, T0 - 10 * DAY + d * DAY + dt.timedelta(hours=rng.randrange(24)), round(rng.uniform(0, 50), 2),
            rng.randrange(10))
           for c in CUSTOMERS for d in sorted(rng.sample(range(70), 25))]
    fg.set_dataframe(spark.createDataFrame(raw, "customer_id string, event_time timestamp, spend double, visits int"))
    fg.write()
    return fg, raw


def _as_of(raw, customer, at, start=None, end=None):
    """Oracle: (spend, visits) of the latest raw row of ``customer`` with event time <= at and within [start, end]."""
    best = latest_as_of(raw, lambda row: row[0] == customer, lambda row: row[1], min(at, end) if end else at,
                        start=start)
    return (None, None) if best is None else best[2:]


def _label_df(rng_seed=3, n=40, tz=None):
    rng = random.Random(rng_seed)
    times = [dt.datetime(2024, 1, 1) + dt.timedelta(hours=rng.randrange(-20 * 24, 70 * 24)) for _ in range(n)]
    frame = pd.DataFrame({"customer_id": [rng.choice(CUSTOMERS + ["CUST999"]) for _ in range(n)],
                          "prediction_time": pd.to_datetime(times),
                          "churn": [rng.randrange(2) for _ in range(n)]})
    if tz is not None:
        frame["prediction_time"] = frame["prediction_time"].dt.tz_localize("UTC").dt.tz_convert(tz)
    return frame


def test_parity_guide_pandas_spine_merges_with_its_labels(world):
    fg, raw = world
    label_df = _label_df()
    hist = HistoricalFeatures(lookups=[FeatureLookup(source=fg)], feature_start_time=dt.datetime(2024, 1, 1))
    training_df = hist.to_dataframe(spine_df=label_df, feature_start_time=dt.datetime(2024, 1, 1))
    assert isinstance(training_df, pd.DataFrame)
    assert list(training_df.columns) == ["customer_id", "prediction_time", "spend", "visits"]
    assert training_df["prediction_time"].dtype == label_df["prediction_time"].dtype
    assert list(training_df.index) == list(label_df.index)
    assert list(training_df["customer_id"]) == list(label_df["customer_id"])  # aligned row for row

    training_data = label_df.merge(training_df, on=["customer_id", "prediction_time"])   # as the guide does
    dups = label_df.duplicated(["customer_id", "prediction_time"], keep=False).sum()
    assert dups == 0 and len(training_data) == len(label_df)
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    for row in training_data.itertuples():
        at = row.prediction_time.to_pydatetime().replace(tzinfo=UTC)
        spend, visits = _as_of(raw, row.customer_id, at, start=start)
        assert (None if pd.isna(row.spend) else row.spend) == spend, row
        assert (None if pd.isna(row.visits) else int(row.visits)) == visits, row
    # the start bound matters: some labels see an older row without it
    unbounded = hist.to_dataframe(spine_df=label_df, feature_start_time=T0 - 30 * DAY)
    assert unbounded["spend"].notna().sum() > training_df["spend"].notna().sum()


def test_timezone_aware_pandas_spine_keeps_its_zone(world, spark, tz):
    fg, raw = world
    tz("America/New_York")  # the session time zone must not shift the times handed back
    label_df = _label_df(rng_seed=5, n=20, tz="Asia/Tokyo")
    got = HistoricalFeatures([FeatureLookup(source=fg)]).to_dataframe(spine_df=label_df, keep_cols=["churn"])
    assert got["prediction_time"].dtype == label_df["prediction_time"].dtype
    assert list(got["churn"]) == list(label_df["churn"])
    merged = label_df.merge(got.drop(columns=["churn"]), on=["customer_id", "prediction_time"])
    assert len(merged) == len(label_df)
    for row in merged.itertuples():
        spend, _ = _as_of(raw, row.customer_id, row.prediction_time.to_pydatetime().astimezone(UTC))
        assert (None if pd.isna(row.spend) else row.spend) == spend


def test_spark_spine_equals_using_spine_row_for_row(world, spark):
    fg, _ = world
    label_df = _label_df(rng_seed=8, n=50)
    spine = spark.createDataFrame(label_df.assign(
        prediction_time=label_df["prediction_time"].dt.tz_localize("UTC")))
    hist = HistoricalFeatures([FeatureLookup(source=fg, ttl=dt.timedelta(days=5), prefix="c_")])
    direct = hist.to_dataframe(spine_df=spine, date_col="prediction_time", keep_cols=["churn"])
    bound = hist.using_spine(spine, date_col="prediction_time", keep_cols=["churn"]).to_dataframe_with_spine()
    assert direct.columns == bound.columns == ["customer_id", "prediction_time", "churn", "c_spend", "c_visits"]
    assertDataFrameEqual(direct, bound)
    assert direct.count() == 50


def test_date_col_is_inferred_only_when_unambiguous(world, spark):
    fg, _ = world
    hist = HistoricalFeatures([FeatureLookup(source=fg)])
    one = spark.createDataFrame([("CUST001", T0 + 3 * DAY, 1)], "customer_id string, at timestamp, y int")
    got = hist.to_dataframe(spine_df=one)
    assert got.columns == ["customer_id", "at", "spend", "visits"]
    two = spark.createDataFrame([("CUST001", T0, T0, 1)], "customer_id string, at timestamp, seen timestamp, y int")
    with pytest.raises(DefinitionError, match=r"several timestamp/date columns \['at', 'seen'\]; pass date_col="):
        hist.to_dataframe(spine_df=two)
    assert hist.to_dataframe(spine_df=two, date_col="seen").columns == ["customer_id", "seen", "spend", "visits"]
    none = spark.createDataFrame([("CUST001", 1)], "customer_id string, y int")
    with pytest.raises(DefinitionError, match="no timestamp or date column besides the join keys"):
        hist.to_dataframe(spine_df=none)
    with pytest.raises(DefinitionError, match="needs spine_df="):
        hist.to_dataframe(date_col="at")


def test_default_time_range_and_explicit_arguments_win(world, spark, tmp_path):
    fg, raw = world
    lo, hi = T0 + 5 * DAY, T0 + 20 * DAY
    hist = HistoricalFeatures([FeatureLookup(source=fg)], feature_start_time=lo, feature_end_time=hi)

    def stored_keys(frame):
        return sorted((r["customer_id"], r["event_time"]) for r in frame.collect())

    def oracle(start, end):
        return sorted((c, ts.replace(tzinfo=None)) for c, ts, _, _ in raw if start <= ts <= end)

    assert stored_keys(hist.to_dataframe()) == oracle(lo, hi)
    assert stored_keys(hist.to_dataframe(feature_start_time=T0)) == oracle(T0, hi)           # explicit start wins
    assert stored_keys(hist.to_dataframe(feature_end_time=T0 + 30 * DAY)) == oracle(lo, T0 + 30 * DAY)
    with pytest.raises(DefinitionError, match="empty time range"):
        HistoricalFeatures([FeatureLookup(source=fg)], feature_start_time=hi, feature_end_time=lo)

    served = hist.serve("defaults", store_root=str(tmp_path))        # the default end bounds the served rows
    assert served.metadata["end"] == hi.isoformat()
    got = {r["customer_id"]: r["spend"] for r in served.get_features(keys=[{"customer_id": c} for c in CUSTOMERS])}
    assert got == {c: _as_of(raw, c, hi, start=lo)[0] for c in CUSTOMERS}
    later = hist.serve("explicit", feature_end_time=T0 + 30 * DAY, store_root=str(tmp_path))
    assert later.metadata["end"] == (T0 + 30 * DAY).isoformat()
    latest = hist.using_latest().serve("latest", store_root=str(tmp_path))   # latest ignores the defaults
    assert latest.metadata["start"] is None
    now = dt.datetime.now(UTC)
    got = {r["customer_id"]: r["spend"] for r in latest.get_features(keys=[{"customer_id": c} for c in CUSTOMERS])}
    assert got == {c: _as_of(raw, c, now)[0] for c in CUSTOMERS}
