"""Named feature versions: write(version=...) labels a commit; FeatureLookup(version=...) reads exactly it."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureLookup,
    FeatureStoreFileOutput,
    HistoricalFeatures,
    LabelExistsError,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
    VersionLabelError,
)
from tests.support.oracle import latest_as_of

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, tzinfo=UTC)
H = dt.timedelta(hours=1)
SCHEMA = "user_id long, ts timestamp, amount double"


def _group(tmp_path, name="spend"):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(tmp_path / "offline")))
    mat = Materialization(event_time_col="ts",
                          offline_materialization=OfflineMaterialization(store=store, mode="append"))
    return FeatureGroup(name, entity=Entity("user", ["user_id"]), materialization=mat)


def _rows(write_no, users=range(1, 6)):
    return [(u, T0 + (write_no * 10 + u) * H, float(write_no * 100 + u)) for u in users]


def _oracle_as_of(rows, user, at):
    """Latest (ts, amount) of ``user`` with ts <= at over plain tuples, later rows winning ties."""
    best = latest_as_of(rows, lambda row: row[0] == user, lambda row: row[1], at)
    return None if best is None else best[2]


@pytest.fixture(scope="module")
def labelled(spark, tmp_path_factory):
    """spend written three times: v1 (write 1), unlabelled (write 2, adds a feature), v2 (write 3)."""
    tmp = tmp_path_factory.mktemp("versions")
    fg = _group(tmp)
    raw = {}
    fg.set_dataframe(spark.createDataFrame(_rows(1), SCHEMA))
    r1 = fg.write(version="v1", run_id="run-1")
    raw["v1"] = list(_rows(1))
    fg.set_dataframe(spark.createDataFrame([(u, ts, a, u * 2) for u, ts, a in _rows(2)], SCHEMA + ", n long"))
    fg.write()
    fg.set_dataframe(spark.createDataFrame([(u, ts, a, u * 3) for u, ts, a in _rows(3)], SCHEMA + ", n long"))
    r3 = fg.write(version="v2")
    raw["all"] = list(_rows(1)) + list(_rows(2)) + list(_rows(3))
    return fg, r1, r3, raw, tmp


def test_versions_lists_labels_with_delta_and_schema_version_time_and_rows(labelled):
    fg, r1, r3, _, _ = labelled
    listed = fg.versions()
    assert [(v.label, v.delta_version, v.schema_version, v.rows, v.rows_written) for v in listed] == [
        ("v1", r1.version, 1, 5, 5), ("v2", r3.version, 2, 15, 5)]
    assert listed[0].run_id == "run-1" and listed[1].run_id is None
    assert listed[0].committed_at <= listed[1].committed_at <= dt.datetime.now(UTC)
    assert listed[0].committed_at.tzinfo is not None
    assert json.loads(json.dumps(listed[0].to_dict()))["label"] == "v1"


def test_label_is_recorded_in_the_commit_metadata(labelled):
    from deltalake import DeltaTable

    fg, r1, _, _, _ = labelled
    entry = [e for e in DeltaTable(fg.table_path).history() if e["version"] == r1.version][0]
    user = json.loads(entry.get("userMetadata") or "{}")  # both commit formats: userMetadata or top-level keys
    write = user.get("seeknal.write") or json.loads(entry["seeknal.write"])
    assert write["label"] == "v1"


def test_lookup_at_label_reads_that_commit_after_later_writes(labelled, spark):
    fg, _, _, raw, _ = labelled
    at = T0 + 100 * H
    spine = spark.createDataFrame([(u, at) for u in range(0, 7)], "user_id long, at timestamp")
    got = {r["user_id"]: r.asDict() for r in HistoricalFeatures([FeatureLookup(source=fg, version="v1")])
           .using_spine(spine, date_col="at").to_dataframe_with_spine().collect()}
    assert sorted(got) == list(range(0, 7))
    for u in range(0, 7):
        assert got[u]["amount"] == _oracle_as_of(raw["v1"], u, at)
        assert "n" not in got[u]  # schema version 1 had no feature n
    latest = {r["user_id"]: r["amount"] for r in HistoricalFeatures([FeatureLookup(source=fg)])
              .using_spine(spine, date_col="at").to_dataframe_with_spine().collect()}
    assert latest == {u: _oracle_as_of(raw["all"], u, at) for u in range(0, 7)}
    assert latest != {u: got[u]["amount"] for u in got}  # the later writes are visible without the label
    # the group's own reader takes a label too
    assert sorted(tuple(r) for r in fg.to_dataframe(version="v1").collect()) == sorted(
        (u, ts.replace(tzinfo=None), a) for u, ts, a in raw["v1"])


def test_manifest_and_online_metadata_record_the_label(labelled, spark, tmp_path):
    fg, r1, _, raw, _ = labelled
    hist = HistoricalFeatures([FeatureLookup(source=fg, version="v1")])
    spine = spark.createDataFrame([(u, T0 + 100 * H) for u in range(1, 6)], "user_id long, at timestamp")
    bound = hist.using_spine(spine, date_col="at")
    bound.to_dataframe_with_spine(manifest_path=str(tmp_path / "train.json"))
    entry = json.loads((tmp_path / "train.json").read_text())["lookups"][0]
    assert (entry["label"], entry["delta_version"]) == ("v1", r1.version)
    again = HistoricalFeatures.from_manifest(str(tmp_path / "train.json")).using_spine(spine)
    assert again.to_dataframe_with_spine().collect() == bound.to_dataframe_with_spine().collect()
    assert again.manifest()["lookups"][0]["label"] == "v1"

    online = hist.serve("labelled", store_root=str(tmp_path / "online"))
    source = online.metadata["sources"][0]
    assert (source["label"], source["delta_version"]) == ("v1", r1.version)
    served = {r["user_id"]: r["amount"] for r in online.get_features(keys=[{"user_id": u} for u in range(1, 6)])}
    assert served == {u: _oracle_as_of(raw["v1"], u, T0 + 1000 * H) for u in range(1, 6)}
    assert online.feature_names == ["amount"]
    online.validate_parity(str(tmp_path / "train.json"), check_delta_versions=True)
    unlabelled = HistoricalFeatures([FeatureLookup(source=fg)]).serve("latest", store_root=str(tmp_path / "online"))
    assert unlabelled.metadata["sources"][0]["label"] is None


def test_reusing_a_label_is_refused_and_writes_nothing(labelled, spark):
    fg, r1, _, _, _ = labelled
    before = fg.delta_version
    fg.set_dataframe(spark.createDataFrame([(u, ts, a, 0) for u, ts, a in _rows(4)], SCHEMA + ", n long"))
    with pytest.raises(LabelExistsError, match=r"'v1'.*Delta version " + str(r1.version)) as info:
        fg.write(version="v1")
    assert (info.value.label, info.value.delta_version) == ("v1", r1.version)
    with pytest.raises(LabelExistsError):  # another run id is another run
        fg.write(version="v1", run_id="run-2")
    assert fg.delta_version == before


def test_same_run_may_repeat_its_label(spark, tmp_path):
    fg = _group(tmp_path, "rerun")
    fg.set_dataframe(spark.createDataFrame(_rows(1), SCHEMA))
    first = fg.write(version="daily-2024-03-01", run_id="dag-run-7")
    before = fg.delta_version  # the data commit, then the seeknal.* table-properties commit
    again = fg.write(version="daily-2024-03-01", run_id="dag-run-7")  # an Airflow retry of the same run
    assert again.skipped and fg.delta_version == before
    assert [v.delta_version for v in fg.versions()] == [first.version]


def test_unknown_or_malformed_labels(labelled, spark):
    fg, r1, _, _, _ = labelled
    spine = spark.createDataFrame([(1, T0)], "user_id long, at timestamp")
    with pytest.raises(VersionLabelError, match=r"no version labelled 'v9'.*\['v1', 'v2'\]"):
        HistoricalFeatures([FeatureLookup(source=fg, version="v9")]).using_spine(spine, "at").to_dataframe_with_spine()
    with pytest.raises(VersionLabelError, match="not a valid version label"):
        FeatureLookup(source=fg, version="v 1")
    with pytest.raises(VersionLabelError, match="not a valid version label"):
        fg.write(version="")
    with pytest.raises(VersionLabelError, match="names Delta version"):
        FeatureLookup(source=fg, version="v1", delta_version=r1.version + 1).resolve()
    assert FeatureLookup(source=fg, version="v1", delta_version=r1.version).resolve().delta_version == r1.version


def test_labels_are_read_from_user_metadata_too():
    """Both write paths store the commit documents inside userMetadata; labels read them there."""
    from seeknal_spark.offline.metadata import CommitRecord
    from seeknal_spark.offline.state import GroupState, WriteInfo

    state = GroupState(project="p", name="g", entity_name="user", join_keys=("user_id",),
                       key_types=(("user_id", "long"),), event_time_col="ts").with_schema([("amount", "double")])
    info = WriteInfo(mode="append", start=None, end=None, rows=-1, schema_version=1, seq=-1, run_id="r", label="v7")
    user = json.dumps({"seeknal.state": json.loads(state.to_json()), "seeknal.write": json.loads(info.to_json())})
    parsed = CommitRecord.from_entry({"version": 4, "userMetadata": user}).write
    assert parsed is not None and (parsed["label"], parsed["run_id"]) == ("v7", "r")
    assert CommitRecord.from_entry({"version": 5, "userMetadata": "not json"}).write is None
