"""Parity of a training manifest with an online table, and online/offline skew at the table's as-of time."""

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
from seeknal_spark import ParityError, SkewReport, check_skew, validate_parity
from seeknal_spark.retrieval import FeatureLookup, HistoricalFeatures
from seeknal_spark.serving import OnlineFeatures, ServingSource, publish_online_table
from tests.support.oracle import latest_as_of

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, tzinfo=UTC)
H = dt.timedelta(hours=1)
AS_OF = T0 + 30 * H
KEYS = list(range(1, 11))
SPEND = "user_id long, ts timestamp, amount double, n int"


def _group(spark, root, name, rows, schema, entity="user"):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    fg = FeatureGroup(name, entity=Entity(entity, ["user_id"]),
                      materialization=Materialization(event_time_col="ts", offline_materialization=
                                                      OfflineMaterialization(store=store, mode="append")))
    fg.set_dataframe(spark.createDataFrame(rows, schema)).write()
    return fg


def _spend_rows():
    # key k has rows at k, k+8, k+16 hours: the as-of row at AS_OF (30h) is the one at k+16 hours
    return [(k, T0 + (k + 8 * i) * H, float(k * 100 + i), i) for k in KEYS for i in range(3)]


@pytest.fixture
def setup(spark, tmp_path):
    spend = _group(spark, tmp_path / "off", "spend", _spend_rows(), SPEND)
    profile = _group(spark, tmp_path / "off", "profile", [(k, T0 + k * H, f"seg{k % 3}") for k in KEYS[::2]],
                     "user_id long, ts timestamp, segment string")
    hist = HistoricalFeatures([FeatureLookup(source=spend, prefix="s_", ttl=dt.timedelta(hours=20)),
                               FeatureLookup(source=profile, rename={"segment": "seg"})])
    spine = spark.createDataFrame([(k, AS_OF) for k in KEYS], "user_id long, at timestamp")
    bound = hist.using_spine(spine, date_col="at")
    bound.to_dataframe_with_spine()
    return {"spend": spend, "profile": profile, "hist": hist, "manifest": bound.manifest(), "root": tmp_path}


def test_parity_of_a_table_published_from_the_training_lookups(setup, tmp_path):
    table = setup["hist"].serve("train_match", feature_end_time=AS_OF, store_root=str(tmp_path / "online"))
    assert validate_parity(setup["manifest"], table) is None
    # by name too; and Delta versions equal here since nothing was written in between
    validate_parity(setup["manifest"], "train_match", store_root=str(tmp_path / "online"), check_delta_versions=True)


def test_resolved_lookups_manifest_and_online_metadata_record_one_spec(setup, tmp_path):
    """One vocabulary: the spec a lookup resolves to is what the manifest and the online metadata read back as
    (same group, features with stored/output names and types, TTL in microseconds, Delta and schema version)."""
    from seeknal_spark.vocabulary import LookupSpec

    resolved = [r.spec for r in setup["hist"].resolve()]
    assert resolved[0].ttl_micros == 20 * 3600 * 1_000_000 and resolved[1].ttl_micros is None
    assert [f.output_name for f in resolved[0].features] == ["s_amount", "s_n"]
    assert [(f.stored_name, f.output_name, f.type) for f in resolved[1].features] == [("segment", "seg", "string")]
    assert [LookupSpec.from_dict(e) for e in setup["manifest"]["lookups"]] == resolved
    assert [LookupSpec.from_dict(s.to_dict()) for s in resolved] == resolved
    table = setup["hist"].serve("spec_match", feature_end_time=AS_OF, store_root=str(tmp_path / "online"))
    online = [LookupSpec.from_dict(s) for s in table.metadata["sources"]]
    assert [s.group for s in online] == [s.group for s in resolved]
    assert [s.features for s in online] == [s.features for s in resolved]
    assert [(s.ttl_micros, s.delta_version, s.schema_version) for s in online] == \
        [(s.ttl_micros, s.delta_version, s.schema_version) for s in resolved]


def test_parity_lists_every_difference(setup, spark, tmp_path):
    spend = setup["spend"]
    # the group moves on: a new feature (schema v2); the table is published from the group, not the lookups
    spend.set_dataframe(spark.createDataFrame([(1, T0 + 40 * H, 1.0, 1, "x")], SPEND + ", tag string")).write()
    table = publish_online_table([ServingSource.from_feature_group(spend)], "drifted", as_of=AS_OF,
                                 store_root=str(tmp_path / "online"))
    with pytest.raises(ParityError) as err:
        validate_parity(setup["manifest"], table)
    diffs = err.value.differences
    assert "features trained on but not served: ['s_amount', 's_n', 'seg']" in diffs
    assert "features served but not trained on: ['amount', 'n', 'tag']" in diffs
    assert "default/spend: schema version 1 in training, 2 online" in diffs
    assert "default/spend: TTL 72000.0 s in training, None s online" in diffs
    assert "feature group default/profile is not a source of the online table" in diffs
    assert len(diffs) == 5, diffs
    assert "5 difference(s)" in str(err.value)

    # same names, but a different order, type and group (a look-alike group in another store)
    other = _group(spark, tmp_path / "other", "spend", [(k, T0, 1.0, 1.5) for k in KEYS],
                   "user_id long, ts timestamp, amount double, n float")
    profile = setup["profile"]
    swapped = publish_online_table(
        [ServingSource.from_feature_group(profile, features=[("segment", "seg")]),
         ServingSource.from_feature_group(other, features=[("n", "s_n"), ("amount", "s_amount")],
                                          ttl=dt.timedelta(hours=20))],
        "swapped", as_of=AS_OF, store_root=str(tmp_path / "online"))
    with pytest.raises(ParityError) as err:
        validate_parity(setup["manifest"], swapped)
    diffs = err.value.differences
    assert "feature order differs: trained ['s_amount', 's_n', 'seg'], served ['seg', 's_n', 's_amount']" in diffs
    assert "feature 's_n': type integer in training, float online" in diffs
    assert f"default/spend: table {spend.table_path} in training, {other.table_path} online" in diffs
    assert len(diffs) == 3, diffs


def _offline_as_of(rows, key, as_of, ttl):
    """Oracle: the latest raw row of ``key`` with as_of - ttl <= ts <= as_of (later list entries win ties)."""
    return latest_as_of(rows, lambda row: row[0] == key, lambda row: row[1], as_of, ttl=ttl)


def test_no_skew_after_publishing_then_skew_after_an_overwrite(setup, spark, tmp_path):
    hist, spend = setup["hist"], setup["spend"]
    table = hist.serve("skew", feature_end_time=AS_OF, store_root=str(tmp_path / "online"))
    report = check_skew(table, hist, spark=spark)
    assert isinstance(report, SkewReport)
    assert report.keys_checked == len(KEYS)
    assert set(report.features) == {"s_amount", "s_n", "seg"}
    assert all(f.checked == len(KEYS) and f.mismatches == 0 for f in report.features.values())
    assert not report.has_skew

    # the offline store changes underneath without republishing: rows in [18h, 22h] get new amounts
    rows = _spend_rows()
    lo, hi = T0 + 18 * H, T0 + 22 * H
    rewritten = [(k, ts, -amount, n) for k, ts, amount, n in rows if lo <= ts <= hi]
    spend.set_dataframe(spark.createDataFrame(rewritten, SPEND)).write(
        feature_start_time=lo, feature_end_time=hi, mode="overwrite")
    current = [r for r in rows if not lo <= r[1] <= hi] + rewritten
    ttl = dt.timedelta(hours=20)
    changed = sorted(k for k in KEYS if _offline_as_of(current, k, AS_OF, ttl) in rewritten)
    assert changed  # keys whose as-of row was rewritten

    report = check_skew(table, hist, spark=spark)
    assert report.has_skew and report.mismatched_features == ["s_amount"]
    amount = report.features["s_amount"]
    assert amount.mismatches == len(changed)
    assert sorted(k["user_id"] for k in amount.example_keys) == changed[:5]
    key, online, offline = amount.examples[0]
    assert online == -offline == _offline_as_of(rows, key["user_id"], AS_OF, ttl)[2]
    assert report.features["s_n"].mismatches == 0 and report.features["seg"].mismatches == 0
    assert "s_amount: %d/%d mismatched" % (len(changed), len(KEYS)) in str(report)

    # explicit keys (one absent online and offline) and a sample size
    some = check_skew(table, hist, sample_keys=[{"user_id": changed[0]}, {"user_id": 999}], spark=spark)
    assert some.keys_checked == 2 and some.features["s_amount"].mismatches == 1
    assert check_skew(table, hist, sample_keys=3, spark=spark).keys_checked == 3
    # the lookups themselves (a list) work like the HistoricalFeatures built from them
    by_lookups = check_skew(table, list(hist.lookups), sample_keys=[{"user_id": changed[0]}], spark=spark)
    assert by_lookups.features["s_amount"].mismatches == 1


def test_skew_of_a_table_published_at_another_as_of(setup, spark, tmp_path):
    hist = setup["hist"]
    table = hist.serve("later", feature_end_time=T0 + 12 * H, store_root=str(tmp_path / "online"))
    # the check uses the table's own as-of time (12h: older rows than at 30h or now), so there is no skew
    assert not check_skew(table, hist, spark=spark).has_skew
    reopened = OnlineFeatures.open("later", store_root=str(tmp_path / "online"))
    assert reopened.as_of == T0 + 12 * H
