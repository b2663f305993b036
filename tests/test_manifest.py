"""Reproducible training sets (manifests, Delta time travel, spine fingerprints) and pinned schema versions."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from deltalake import DeltaTable

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
)
from seeknal_spark.errors import DefinitionError
from seeknal_spark.retrieval import FeatureLookup, FillNull, HistoricalFeatures
from seeknal_spark.retrieval.manifest import ManifestError, SpineMismatchError
from tests.support.commits import write_info

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, tzinfo=UTC)
H = dt.timedelta(hours=1)
SPEND = "user_id long, ts timestamp, amount double, n int"
SPEND_V2 = "user_id long, ts timestamp, amount double, n int, tag string"
SPINE_ROWS = [(k, T0 + dt.timedelta(hours=h), f"y{k}{h}") for k in range(1, 7) for h in (5, 20, 45)] + [
    (9, T0 + 30 * H, "none"), (2, T0 + 20 * H, "dup")]  # a key without features, a repeated (key, time)


def _rows(df):
    """Exact row list in a canonical order (NaN-safe, None-safe)."""
    return sorted((tuple(r) for r in df.collect()), key=lambda t: tuple(
        (v is None, "" if v is None else (str(v) if not isinstance(v, float) or not math.isnan(v) else "nan"))
        for v in t))


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest_off")
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store,
                                                                                              mode="append"))
    user = Entity("user", ["user_id"])
    spend = FeatureGroup("spend", entity=user, materialization=mat)
    first = [(k, T0 + i * 8 * H + k * H, None if (k + i) % 5 == 0 else float(k * 10 + i), k + i)
             for k in range(1, 7) for i in range(5)]
    spend.set_dataframe(spark.createDataFrame(first, SPEND)).write()
    profile = FeatureGroup("profile", entity=user, materialization=mat)
    profile.set_dataframe(spark.createDataFrame([(k, T0 + k * 3 * H, f"seg{k % 2}") for k in range(1, 7)],
                                                "user_id long, ts timestamp, segment string")).write()
    return {"spend": spend, "profile": profile, "root": root, "first": first}


def _hist(world, spend_kwargs=None):
    return HistoricalFeatures(
        lookups=[FeatureLookup(source=world["spend"], ttl=dt.timedelta(hours=30), prefix="s_",
                               **(spend_kwargs or {})),
                 FeatureLookup(source=world["profile"], rename={"segment": "seg"})],
        fill_nulls=[FillNull(-1.0, "double"), FillNull("unknown", "string", columns=["seg"])])


def _spine(spark):
    return spark.createDataFrame(SPINE_ROWS, "user_id long, at timestamp, label string")


def test_rebuild_from_manifest_after_new_writes_is_identical(world, spark, tmp_path):
    spend, profile = world["spend"], world["profile"]
    path = tmp_path / "sets" / "train.json"
    bound = _hist(world).using_spine(_spine(spark), date_col="at", keep_cols=["label"])
    first_df = bound.to_dataframe_with_spine(manifest_path=str(path))
    first = _rows(first_df)
    first_cols = first_df.columns
    versions_then = {"spend": DeltaTable(spend.table_path).version(),
                     "profile": DeltaTable(profile.table_path).version()}
    manifest = json.loads(path.read_text())
    assert manifest == bound.manifest()
    assert len(first) == len(SPINE_ROWS)
    assert any(r[3] not in (None, -1.0) for r in first)  # real feature values, not only fills

    # later writes: a new feature (schema v2) and an overwrite of a range with changed values, plus new rows
    changed = [(k, T0 + i * 8 * H + k * H, 1000.0 + k, 500 + i, "new") for k in range(1, 7) for i in range(3)]
    spend.set_dataframe(spark.createDataFrame(changed, SPEND_V2)).write(
        feature_start_time=T0, feature_end_time=T0 + 24 * H, mode="overwrite")
    spend.set_dataframe(spark.createDataFrame([(k, T0 + 19 * H, 7.0, 7, "late") for k in range(1, 7)],
                                              SPEND_V2)).write()
    profile.set_dataframe(spark.createDataFrame([(k, T0 + 4 * H, "moved") for k in range(1, 7)],
                                                "user_id long, ts timestamp, segment string")).write()
    assert spend.schema_version == 2

    # the current data really changed the result (so the comparison below can fail) ...
    now = _hist(world).using_spine(_spine(spark), date_col="at", keep_cols=["label"]).to_dataframe_with_spine()
    assert "s_tag" in now.columns and _rows(now.drop("s_tag")) != first
    # ... yet the manifest rebuilds exactly the first result, from a freshly created spine DataFrame
    again_hist = HistoricalFeatures.from_manifest(str(path))
    again = again_hist.using_spine(_spine(spark)).to_dataframe_with_spine()
    assert again.columns == first_cols
    assert again.dtypes == first_df.dtypes
    assert _rows(again) == first
    # the dict form works too, and pandas spines fingerprint like Spark spines with the same values
    pdf = _spine(spark).toPandas()
    from_dict = HistoricalFeatures.from_manifest(manifest).using_spine(pdf, spark=spark).to_dataframe_with_spine()
    assert _rows(from_dict) == first
    # a manifest written by the previous format (group.table_path, features as name/output) still rebuilds
    old = json.loads(json.dumps(manifest))
    old["format_version"] = 1
    for entry in old["lookups"]:
        entry["group"]["table_path"] = entry["group"].pop("table_uri")
        entry["features"] = [{"name": f["stored_name"], "output": f["output_name"], "type": f["type"]}
                             for f in entry["features"]]
    from_old = HistoricalFeatures.from_manifest(old).using_spine(_spine(spark)).to_dataframe_with_spine()
    assert _rows(from_old) == first

    # the manifest describes what was read
    by_name = {e["group"]["name"]: e for e in manifest["lookups"]}
    assert by_name["spend"]["delta_version"] == versions_then["spend"]
    assert by_name["profile"]["delta_version"] == versions_then["profile"]
    assert by_name["spend"]["schema_version"] == 1
    assert by_name["spend"]["group"]["table_uri"] == spend.table_path
    assert by_name["spend"]["features"] == [
        {"stored_name": "amount", "output_name": "s_amount", "type": "double"},
        {"stored_name": "n", "output_name": "s_n", "type": "integer"}]
    assert by_name["spend"]["ttl_micros"] == 30 * 3600 * 10**6
    assert by_name["profile"]["rename"] == {"segment": "seg"}
    assert [f["name"] for f in manifest["features"]] == ["s_amount", "s_n", "seg"]
    assert manifest["fill_nulls"][1] == {"value": "unknown", "value_is_text": False, "type": "string",
                                         "columns": ["seg"]}
    assert manifest["spine"]["rows"] == len(SPINE_ROWS)
    assert [c["name"] for c in manifest["output_columns"]] == first_cols


def test_rebuild_refuses_a_different_spine(world, spark):
    bound = _hist(world).using_spine(_spine(spark), date_col="at", keep_cols=["label"])
    bound.to_dataframe_with_spine()
    hist = HistoricalFeatures.from_manifest(bound.manifest())
    # same row count, one value changed
    changed = [(k, t, "other" if (k, lab) == (3, "y320") else lab) for k, t, lab in SPINE_ROWS]
    with pytest.raises(SpineMismatchError, match="fingerprint"):
        hist.using_spine(spark.createDataFrame(changed, "user_id long, at timestamp, label string")
                         ).to_dataframe_with_spine()
    # a null moved between columns changes the fingerprint too
    nulls_a = spark.createDataFrame([(1, T0, None)] + SPINE_ROWS[1:], "user_id long, at timestamp, label string")
    with pytest.raises(SpineMismatchError):
        hist.using_spine(nulls_a).to_dataframe_with_spine()
    with pytest.raises(SpineMismatchError, match=f"{len(SPINE_ROWS) - 1} row"):
        hist.using_spine(spark.createDataFrame(SPINE_ROWS[:-1], "user_id long, at timestamp, label string")
                         ).to_dataframe_with_spine()
    with pytest.raises(SpineMismatchError, match="columns"):
        hist.using_spine(_spine(spark), keep_cols=[]).to_dataframe_with_spine()
    # row order and partitioning do not matter, nor does the session time zone
    shuffled = spark.createDataFrame(list(reversed(SPINE_ROWS)), "user_id long, at timestamp, label string")
    assert hist.using_spine(shuffled.repartition(3)).to_dataframe_with_spine().count() == len(SPINE_ROWS)


def test_fingerprint_ignores_session_time_zone(world, spark, tz):
    bound = _hist(world).using_spine(_spine(spark), date_col="at", keep_cols=["label"])
    bound.to_dataframe_with_spine()
    utc = bound.manifest()["spine"]["fingerprint"]
    tz("America/Los_Angeles")
    other = _hist(world).using_spine(_spine(spark), date_col="at", keep_cols=["label"])
    other.to_dataframe_with_spine()
    assert other.manifest()["spine"]["fingerprint"] == utc


def test_manifest_errors(world, spark, tmp_path):
    bound = _hist(world).using_spine(_spine(spark), date_col="at")
    with pytest.raises(DefinitionError, match="to_dataframe_with_spine"):
        bound.manifest()
    bound.to_dataframe_with_spine()
    manifest = bound.manifest()
    bad = dict(manifest, lookups=[dict(manifest["lookups"][0], delta_version=999)] + manifest["lookups"][1:])
    with pytest.raises(Exception, match="no version 999"):
        HistoricalFeatures.from_manifest(bad).using_spine(_spine(spark)).to_dataframe_with_spine()
    renamed = json.loads(json.dumps(manifest))
    renamed["lookups"][0]["features"][0]["type"] = "long"
    with pytest.raises(ManifestError, match="no longer match"):
        HistoricalFeatures.from_manifest(renamed).using_spine(_spine(spark)).to_dataframe_with_spine()
    (tmp_path / "x.json").write_text("{\"format\": \"other\"}")
    with pytest.raises(ManifestError, match="not a seeknal training-set manifest"):
        HistoricalFeatures.from_manifest(str(tmp_path / "x.json"))
    with pytest.raises(ManifestError, match="cannot read"):
        HistoricalFeatures.from_manifest(str(tmp_path / "missing.json"))


def test_pinned_schema_version(spark, tmp_path):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(tmp_path / "off")))
    fg = FeatureGroup("pinned", entity=Entity("user", ["user_id"]),
                      materialization=Materialization(event_time_col="ts", offline_materialization=
                                                      OfflineMaterialization(store=store, mode="append")))
    fg.set_dataframe(spark.createDataFrame([(k, T0 + k * H, float(k), k) for k in range(1, 4)], SPEND)).write()
    fg.set_dataframe(spark.createDataFrame([(k, T0 + 10 * H + k * H, float(-k), 10 * k, f"t{k}")
                                            for k in range(1, 4)], SPEND_V2)).write()
    spine = spark.createDataFrame([(k, T0 + 20 * H) for k in range(1, 5)], "user_id long, at timestamp")

    v1 = HistoricalFeatures([FeatureLookup(source=fg, schema_version=1)]).using_spine(spine, date_col="at")
    df1 = v1.to_dataframe_with_spine()
    assert df1.dtypes == [("user_id", "bigint"), ("at", "timestamp"), ("amount", "double"), ("n", "int")]
    # values are the latest rows (written under v2) restricted to v1's features
    assert _rows(df1.drop("at")) == [(k, float(-k), 10 * k) for k in range(1, 4)] + [(4, None, None)]
    assert v1.manifest()["lookups"][0]["schema_version"] == 1
    assert v1.manifest()["lookups"][0]["schema_version_pinned"] is True
    df2 = HistoricalFeatures([FeatureLookup(source=fg, schema_version=2)]).using_spine(
        spine, date_col="at").to_dataframe_with_spine()
    assert df2.columns == ["user_id", "at", "amount", "n", "tag"]
    latest = HistoricalFeatures([FeatureLookup(source=fg)]).using_spine(spine, date_col="at")
    latest.to_dataframe_with_spine()
    assert latest.manifest()["lookups"][0]["schema_version"] == 2

    with pytest.raises(DefinitionError, match=r"schema_version=3 does not exist.*\[1, 2\]"):
        FeatureLookup(source=fg, schema_version=3).resolve()
    with pytest.raises(DefinitionError, match=r"schema version 1 has no feature\(s\) \['tag'\]"):
        FeatureLookup(source=fg, features=["tag"], schema_version=1).resolve()
    with pytest.raises(DefinitionError, match="schema_version must be an integer"):
        FeatureLookup(source=fg, schema_version=0)
    # a pinned Delta version reads the table as it was then: schema v1 only, first write's rows
    old = HistoricalFeatures([FeatureLookup(source=fg, delta_version=fg_first_version(fg))]).using_spine(
        spine, date_col="at").to_dataframe_with_spine()
    assert old.columns == ["user_id", "at", "amount", "n"]
    assert _rows(old.drop("at")) == [(k, float(k), k) for k in range(1, 4)] + [(4, None, None)]


def fg_first_version(fg) -> int:
    """The Delta version of the group's first data commit, read from the log with delta-rs."""
    history = DeltaTable(fg.table_path).history()
    writes = sorted(int(h["version"]) for h in history if write_info(h))
    return writes[0]


def test_manifest_and_fingerprint_on_spark_connect(world, spark, connect_spark, monkeypatch):
    classic = _hist(world).using_spine(_spine(spark), date_col="at", keep_cols=["label"])
    want = _rows(classic.to_dataframe_with_spine())
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    remote = _hist(world).using_spine(_spine(connect_spark), date_col="at", keep_cols=["label"])
    got = _rows(remote.to_dataframe_with_spine())
    assert got == want
    assert remote.manifest()["spine"] == classic.manifest()["spine"]
    rebuilt = HistoricalFeatures.from_manifest(classic.manifest()).using_spine(_spine(connect_spark))
    assert _rows(rebuilt.to_dataframe_with_spine()) == want
