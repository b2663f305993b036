"""Operator commands of seeknal-spark on real Delta tables: list, describe, history, vacuum (text and --json, exit
codes), and backfill progress on stderr. Tables are written with the library (test Spark session); what the
commands report is checked against values computed here from the written rows and the files on disk."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from seeknal_spark.cli import main
from tests.fixtures import cli_transforms

REF = "tests.fixtures.cli_transforms:daily_spend"
UTC = dt.timezone.utc


def run_json(capsys, *args):
    code = main([*args, "--json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else None), out.err


@pytest.fixture
def store(spark, tmp_path):
    """Two groups: default/daily_spend (two writes, one overwriting) and shop/profile (two schema versions)."""
    from seeknal_spark import Entity, FeatureGroup, FeatureStoreFileOutput, Materialization, OfflineMaterialization
    from seeknal_spark import OfflineStore

    root = tmp_path / "offline"
    assert main(["materialize", REF, "--store", str(root), "--start", "2024-01-01", "--end", "2024-01-03",
                 "--run-id", "w1"]) == 0
    assert main(["materialize", REF, "--store", str(root), "--start", "2024-01-03", "--end", "2024-01-05",
                 "--run-id", "w2"]) == 0          # overwrites 2024-01-03: its first files become unreferenced
    offline = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    fg = FeatureGroup("profile", entity=Entity("user", ["user_id"]), project="shop",
                      materialization=Materialization(event_time_col="ts",
                                                      offline_materialization=OfflineMaterialization(store=offline)))
    fg.set_validation(None, policy="strict")
    v1 = spark.createDataFrame([(1, dt.datetime(2024, 2, 1, 12), 3)], "user_id long, ts timestamp, tenure long")
    fg.set_dataframe(v1).set_features(None).write("2024-02-01", "2024-02-01T23:59:59", run_id="p1")
    v2 = spark.createDataFrame([(1, dt.datetime(2024, 2, 2, 12), 4, "vip")],
                               "user_id long, ts timestamp, tenure long, segment string")
    fg.set_dataframe(v2).set_features(None).write("2024-02-02", "2024-02-02T23:59:59", run_id="p2")
    return root


def spend_days(lo: int, hi: int):
    return sorted({ts.date().isoformat() for _, ts, _ in cli_transforms.spend_rows() if lo <= ts.day <= hi})


def test_list_shows_every_group_with_rows_and_days(store, capsys):
    code, groups, _ = run_json(capsys, "list", "--store", str(store))
    assert code == 0
    assert [(g["project"], g["name"]) for g in groups] == [("default", "daily_spend"), ("shop", "profile")]
    spend = groups[0]
    assert spend["rows"] == len(cli_transforms.spend_rows()) and spend["schema_version"] == 1
    assert (spend["first_watermark"], spend["last_watermark"]) == ("2024-01-01", "2024-01-05")
    assert spend["features"] == ["spend"] and spend["table"] == f"{store}/default/daily_spend"
    assert groups[1]["rows"] == 2 and groups[1]["schema_version"] == 2
    code, only, _ = run_json(capsys, "list", "--store", str(store), "--project", "shop")
    assert [g["name"] for g in only] == ["profile"]
    assert main(["list", "--store", str(store)]) == 0
    text = capsys.readouterr().out
    assert "default/daily_spend" in text and "shop/profile" in text and "2024-01-01..2024-01-05" in text


def test_list_of_a_missing_store_is_a_usage_error(tmp_path, capsys):
    assert main(["list", "--store", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    code, groups, _ = run_json(capsys, "list", "--store", str(tmp_path / "empty"))
    assert code == 0 and groups == []


def test_describe_reports_definition_versions_watermarks_writes_validation_freshness(store, capsys):
    code, d, _ = run_json(capsys, "describe", "profile", "--project", "shop", "--store", str(store),
                          "--freshness-threshold", "2d")
    assert code == 0
    assert (d["project"], d["name"], d["event_time_col"]) == ("shop", "profile", "ts")
    assert d["entity"]["join_keys"] == ["user_id"] and d["key_types"] == {"user_id": "bigint"}
    assert d["schema_versions"] == [{"version": 1, "features": {"tenure": "bigint"}},
                                    {"version": 2, "features": {"tenure": "bigint", "segment": "string"}}]
    assert d["watermarks"] == ["2024-02-01", "2024-02-02"] and d["rows"] == 2
    assert [(w["run_id"], w["rows"], w["schema_version"], w["validation"]) for w in d["last_writes"]] == \
        [("p2", 1, 2, True), ("p1", 1, 1, True)]                       # newest first
    assert [(v["run_id"], v["success"]) for v in d["validation"]] == [("p2", True), ("p1", True)]
    fresh = d["freshness"]
    assert fresh["newest_event_time"].startswith("2024-02-02T12:00:00") and fresh["stale"] is True
    assert fresh["threshold_seconds"] == 2 * 86400
    # The same group by PROJECT/NAME, as text.
    assert main(["describe", "shop/profile", "--store", str(store)]) == 0
    text = capsys.readouterr().out
    assert "v2: tenure bigint, segment string" in text and "STALE" in text and "p2" in text


def test_describe_by_definition_reference_and_unknown_group(store, capsys):
    code, d, _ = run_json(capsys, "describe", REF, "--store", str(store))
    assert code == 0 and d["name"] == "daily_spend" and d["watermarks"] == spend_days(1, 5)
    assert [w["run_id"] for w in d["last_writes"]] == ["w2", "w1"]
    assert [w["rows"] for w in d["last_writes"]] == [6, 6]
    assert main(["describe", "nope", "--store", str(store)]) == 2
    assert "feature group default/nope does not exist" in capsys.readouterr().err
    assert main(["describe", "bad name!", "--store", str(store)]) == 2


def test_history_lists_commits_newest_first(store, capsys):
    code, commits, _ = run_json(capsys, "history", "default/daily_spend", "--store", str(store))
    assert code == 0
    versions = [c["version"] for c in commits]
    assert versions == sorted(versions, reverse=True) and versions[-1] == 0
    writes = [c["write"] for c in commits if c["write"]]
    assert [(w["run_id"], w["mode"], w["rows"]) for w in writes] == [("w2", "overwrite", 6), ("w1", "overwrite", 6)]
    assert writes[0]["partitions_written"] == spend_days(3, 5)
    code, one, _ = run_json(capsys, "history", "default/daily_spend", "--store", str(store), "--limit", "1")
    assert code == 0 and [c["version"] for c in one] == versions[:1]
    assert main(["history", "default/daily_spend", "--store", str(store), "--limit", "-1"]) == 2


def test_vacuum_dry_run_then_delete_unreferenced_files(store, capsys):
    from deltalake import DeltaTable

    table = store / "default" / "daily_spend"
    before = sorted(DeltaTable(str(table)).to_pyarrow_table().to_pylist(), key=lambda r: (r["user_id"], r["ts"]))
    live = {os.path.relpath(u.removeprefix("file://"), table) for u in DeltaTable(str(table)).file_uris()}
    on_disk = {os.path.relpath(os.path.join(d, f), table) for d, _, fs in os.walk(table) for f in fs
               if f.endswith(".parquet") and "_delta_log" not in d}
    stale = on_disk - live                       # the 2024-01-03 files the overwrite replaced
    assert stale

    code, dry, _ = run_json(capsys, "vacuum", "daily_spend", "--store", str(store), "--retention", "0h",
                            "--dry-run")
    assert code == 0 and dry["dry_run"] is True
    assert {os.path.normpath(f) for f in dry["files"]} == stale
    assert all((table / f).exists() for f in stale)                     # nothing deleted

    code, done, _ = run_json(capsys, "vacuum", "daily_spend", "--store", str(store), "--retention", "0")
    assert code == 0 and {os.path.normpath(f) for f in done["files"]} == stale
    assert not any((table / f).exists() for f in stale) and all((table / f).exists() for f in live)
    after = sorted(DeltaTable(str(table)).to_pyarrow_table().to_pylist(), key=lambda r: (r["user_id"], r["ts"]))
    assert after == before

    code, default, _ = run_json(capsys, "vacuum", "daily_spend", "--store", str(store))   # 7 days: keeps all
    assert code == 0 and default["files"] == [] and default["retention_hours"] == 168
    assert main(["vacuum", "daily_spend", "--store", str(store), "--retention", "soon"]) == 2


def test_json_summary_of_jobs_and_backfill_progress_on_stderr(spark, tmp_path, capsys):
    root = tmp_path / "offline"
    code = main(["backfill", REF, "--store", str(root), "--start", "2024-01-01", "--end", "2024-01-05",
                 "--chunk", "2d", "--json"])
    out = capsys.readouterr()
    assert code == 0
    summary = json.loads(out.out)                     # stdout: only the JSON summary
    assert summary == {"status": "done", "chunks": 3, "written": 3, "skipped": 0,
                       "rows": len(cli_transforms.spend_rows()), "table": f"{root}/default/daily_spend"}
    for i, rows in ((1, 4), (2, 8), (3, 10)):         # cumulative rows after each 2-day chunk
        assert f"progress {i}/3 chunks, {rows} rows, elapsed " in out.err
    assert "step=done backfill default/daily_spend: 3 chunk(s) written, 0 skipped, 10 rows in " in out.err
