"""The seeknal-spark CLI in process, on the test session: materialize, backfill, training-set, publish-online,
dry runs and exit codes. Delta tables are read back with delta-rs (deltalake), outputs with pyarrow / DuckDB."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from seeknal_spark.cli import main
from tests.fixtures import cli_transforms

REPO = Path(__file__).resolve().parents[1]
REF = "tests.fixtures.cli_transforms:daily_spend"
UTC = dt.timezone.utc


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def stored_rows(table: Path):
    from deltalake import DeltaTable

    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    return sorted((r["user_id"], r["ts"], r["spend"]) for r in rows)


def expected_rows(lo: dt.datetime, hi: dt.datetime):
    out = []
    for user, ts, spend in cli_transforms.spend_rows():
        t = ts.replace(tzinfo=UTC)
        if lo <= t <= hi:
            out.append((user, t, spend))
    return sorted(out)


def data_commits(table: Path):
    from deltalake import DeltaTable

    from tests.support.commits import write_info

    return [h for h in DeltaTable(str(table)).history() if write_info(h) is not None]


@pytest.fixture
def root(tmp_path):
    return tmp_path / "offline"


def test_materialize_by_reference_is_idempotent_per_run_id(spark, root, capsys):
    args = ["materialize", REF, "--store", str(root), "--start", "2024-01-02", "--end", "2024-01-03"]
    assert main(args + ["--run-id", "run-a"]) == 0
    table = root / "default" / "daily_spend"
    assert stored_rows(table) == expected_rows(_utc(2024, 1, 2), _utc(2024, 1, 3, 23, 59, 59, 999999))
    err = capsys.readouterr().err
    assert "run=run-a step=write 4 rows committed" in err
    commits = len(data_commits(table))

    assert main(args + ["--run-id", "run-a"]) == 0          # an Airflow retry: nothing is written again
    assert len(data_commits(table)) == commits
    assert "run=run-a step=skip already committed" in capsys.readouterr().err

    assert main(args + ["--run-id", "run-b", "--mode", "append"]) == 0   # a new run id writes again
    assert len(data_commits(table)) == commits + 1
    # the same (keys, event time) again: the table still holds one row each (the new run's)
    assert stored_rows(table) == expected_rows(_utc(2024, 1, 2), _utc(2024, 1, 3, 23, 59, 59, 999999))


def test_end_exclusive_matches_airflow_intervals(spark, root):
    args = ["materialize", REF, "--store", str(root), "--start", "2024-01-02T00:00:00+00:00",
            "--end", "2024-01-03T00:00:00+00:00", "--end-exclusive", "--run-id", "scheduled__2024-01-02"]
    assert main(args) == 0
    got = stored_rows(root / "default" / "daily_spend")
    assert got == expected_rows(_utc(2024, 1, 2), _utc(2024, 1, 2, 23, 59, 59, 999999))
    assert {r[1].date() for r in got} == {dt.date(2024, 1, 2)}


def test_backfill_commits_per_chunk_and_resumes_after_a_crash(spark, root, capsys, monkeypatch):
    args = ["backfill", REF, "--store", str(root), "--start", "2024-01-01", "--end", "2024-01-05", "--chunk", "2d"]
    table = root / "default" / "daily_spend"
    monkeypatch.setattr(cli_transforms, "FAIL_ON", dt.date(2024, 1, 4))   # chunk 2 of 3 crashes
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "chunk 1 of 3 [2024-01-01T00:00:00+00:00, 2024-01-02T23:59:59.999999+00:00] 4 rows written" in err
    assert "simulated crash" in err
    assert stored_rows(table) == expected_rows(_utc(2024, 1, 1), _utc(2024, 1, 2, 23, 59, 59))
    assert len(data_commits(table)) == 1

    monkeypatch.setattr(cli_transforms, "FAIL_ON", None)
    assert main(args) == 0                                   # the rerun skips chunk 1 and finishes
    err = capsys.readouterr().err
    assert "chunk 1 of 3 [2024-01-01T00:00:00+00:00, 2024-01-02T23:59:59.999999+00:00] already committed" in err
    assert "chunk 2 of 3 [2024-01-03T00:00:00+00:00, 2024-01-04T23:59:59.999999+00:00] 4 rows written" in err
    assert "chunk 3 of 3 [2024-01-05T00:00:00+00:00, 2024-01-05T23:59:59.999999+00:00] 2 rows written" in err
    assert len(data_commits(table)) == 3
    assert stored_rows(table) == expected_rows(_utc(2024, 1, 1), _utc(2024, 1, 5, 23, 59, 59))

    assert main(args) == 0                                   # a third run writes nothing
    assert len(data_commits(table)) == 3
    assert capsys.readouterr().err.count("already committed, skipped") == 3


def test_duplicate_keys_are_rejected_with_exit_code_3(spark, root, capsys):
    code = main(["materialize", "tests.fixtures.cli_transforms:dup_spend", "--store", str(root), "--run-id", "d1"])
    assert code == 3
    err = capsys.readouterr().err
    assert "run=d1" in err and "data rejected" in err and "duplicate rows" in err
    assert not (root / "default" / "dup_spend" / "_delta_log").exists()


def test_validation_failure_from_a_yaml_suite_exits_3(spark, tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent("""\
        name: spend_small
        expectations:
          - type: expect_column_values_to_be_between
            kwargs: {column: spend, min_value: 0, max_value: 150}
        """))
    definition = tmp_path / "spend.yaml"
    definition.write_text(textwrap.dedent(f"""\
        transform: {REF}
        store: {tmp_path / 'offline'}
        validation: {{suite: {suite}, policy: strict}}
        """))
    assert main(["materialize", str(definition), "--run-id", "v1"]) == 3     # user 2 spends 201..205
    assert "ValidationFailed" in capsys.readouterr().err
    assert not (tmp_path / "offline" / "default" / "daily_spend" / "_delta_log").exists()


def test_yaml_definition_sources_store_and_conf_lookup(spark, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text(
        "user_id,order_time,amount,channel\n7,2024-03-01T08:00:00Z,10.0,web\n7,2024-03-01T09:30:00Z,20.0,mobile\n"
        "8,2024-03-02T10:00:00Z,5.5,web\n")
    conf = tmp_path / "conf" / "feature_groups"
    conf.mkdir(parents=True)
    (conf / "orders_by_day.yaml").write_text(textwrap.dedent(f"""\
        transform: seeknal_spark.examples.retail:user_daily_orders
        name: orders_by_day
        project: shop
        store: {tmp_path / 'offline'}
        sources: {{orders: ../../data/orders.csv}}
        """))
    monkeypatch.setenv("SEEKNAL_CONF_DIR", str(tmp_path / "conf"))
    assert main(["materialize", "orders_by_day", "--start", "2024-03-01", "--end", "2024-03-02", "--run-id", "y"]) == 0
    from deltalake import DeltaTable

    rows = DeltaTable(str(tmp_path / "offline" / "shop" / "orders_by_day")).to_pyarrow_table().to_pylist()
    got = sorted((r["user_id"], r["day_end"], r["order_count"], r["total_amount"], r["mobile_share"]) for r in rows)
    assert got == [(7, _utc(2024, 3, 1, 23, 59, 59, 999999), 2, 30.0, 0.5),
                   (8, _utc(2024, 3, 2, 23, 59, 59, 999999), 1, 5.5, 0.0)]


@pytest.mark.parametrize("argv, message", [
    ([], "a command is required"),
    (["frobnicate"], "invalid choice"),
    (["materialize"], "required: group"),
    (["materialize", "no_such_module_xyz:thing", "--dry-run"], "cannot import module"),
    (["materialize", "tests.fixtures.cli_transforms:not_a_transform", "--dry-run"], "not a feature transform"),
    (["materialize", "tests.fixtures.cli_transforms:nothing_here", "--dry-run"], "has no attribute"),
    (["materialize", "not_in_conf", "--dry-run"], "neither 'package.module:name'"),
    (["materialize", REF, "--start", "yesterday", "--dry-run"], "--start 'yesterday' is not an ISO-8601"),
    (["materialize", REF, "--start", "2024-02-01", "--end", "2024-01-01", "--dry-run"], "empty time range"),
    (["materialize", REF, "--mode", "upsert", "--dry-run"], "invalid choice: 'upsert'"),
    (["backfill", REF, "--start", "2024-01-01", "--dry-run"], "needs both --start and --end"),
    (["backfill", REF, "--start", "2024-01-01", "--end", "2024-01-09", "--chunk", "week", "--dry-run"], "--chunk"),
    (["training-set", "--group", REF, "--spine", "/no/such/spine.csv", "--date-col", "t", "--output", "/tmp/x",
      "--dry-run"], "spine file '/no/such/spine.csv' does not exist"),
    (["training-set", "--group", REF, "--spine", "x", "--date-col", "t", "--output", "o", "--fill-null", "zero",
      "--dry-run"], "must be VALUE:TYPE"),
    (["publish-online", "--group", REF, "--name", "bad name!", "--dry-run"], "online table name"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_yaml_definition_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"transform: {REF}\nschedule: daily\n")
    assert main(["materialize", str(bad), "--dry-run"]) == 2
    assert "unknown key(s) ['schedule']" in capsys.readouterr().err
    bad.write_text(f"transform: {REF}\nsources: {{orders: x.csv}}\n")
    assert main(["materialize", str(bad), "--dry-run"]) == 2
    assert "sources ['orders'] are not sources of" in capsys.readouterr().err
    assert main(["materialize", str(tmp_path / "missing.yaml"), "--dry-run"]) == 2


def test_dry_run_starts_no_spark_and_writes_nothing(tmp_path):
    """In a fresh process: dry runs of every command validate and exit 0 without a JVM or any file written."""
    spine = tmp_path / "spine.csv"
    spine.write_text("user_id,t\n1,2024-01-02\n")
    store = tmp_path / "offline"
    script = textwrap.dedent(f"""\
        import sys
        from seeknal_spark.cli import main
        codes = [
            main(["materialize", "conf/feature_groups/user_daily_orders.yaml", "--store", {str(store)!r},
                  "--start", "2024-03-01", "--end", "2024-03-02", "--dry-run"]),
            main(["backfill", {REF!r}, "--store", {str(store)!r}, "--start", "2024-01-01", "--end", "2024-01-31",
                  "--chunk", "7d", "--dry-run", "--run-id", "bf"]),
            main(["training-set", "--group", {REF!r}, "--spine", {str(spine)!r}, "--date-col", "t",
                  "--output", {str(tmp_path / 'out')!r}, "--dry-run"]),
            main(["publish-online", "--group", "user_profile", "--name", "users", "--dry-run"]),
        ]
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
        assert SparkContext._active_spark_context is None and SparkSession.getActiveSession() is None
        print(codes)
        """)
    env = {**os.environ, "SEEKNAL_CONF_DIR": str(REPO / "conf"), "JAVA_HOME": "/nonexistent-java"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0, 0, 0, 0]"
    assert "chunk 5 of 5 [2024-01-29T00:00:00+00:00, 2024-01-31T23:59:59.999999+00:00] run id bf/" in proc.stderr
    assert "run=bf step=dry-run" in proc.stderr
    assert not store.exists() and not (tmp_path / "out").exists()


def test_training_set_from_a_spine_file(spark, tmp_path):
    root = tmp_path / "offline"
    assert main(["materialize", REF, "--store", str(root), "--run-id", "m"]) == 0
    spine = tmp_path / "spine.csv"
    spine_rows = [(1, "2024-01-03T12:00:00Z", 1), (2, "2024-01-03T11:00:00Z", 0), (2, "2024-01-03T13:00:00Z", 1),
                  (1, "2023-12-31T00:00:00Z", 0), (3, "2024-01-04T00:00:00Z", 1)]
    spine.write_text("user_id,label_time,label\n" + "".join(f"{u},{t},{y}\n" for u, t, y in spine_rows))
    out = tmp_path / "train"
    code = main(["training-set", "--group", REF, "--store", str(root), "--spine", str(spine),
                 "--date-col", "label_time", "--keep-cols", "label", "--output", str(out), "--run-id", "ts1"])
    assert code == 0
    import pyarrow.dataset as ds

    got = sorted((r["user_id"], r["label_time"], r["label"], r["spend"])
                 for r in ds.dataset(str(out), format="parquet").to_table().to_pylist())
    history = [(u, ts.replace(tzinfo=UTC), s) for u, ts, s in cli_transforms.spend_rows()]
    expected = []
    for user, t, label in spine_rows:
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
        seen = [(ts, s) for u, ts, s in history if u == user and ts <= when]
        expected.append((user, when, label, max(seen)[1] if seen else None))
    assert got == sorted(expected)
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p or ".old-" in p]


def test_publish_online_serves_latest_values(spark, tmp_path):
    root, online = tmp_path / "offline", tmp_path / "online"
    assert main(["materialize", REF, "--store", str(root), "--run-id", "m"]) == 0
    code = main(["publish-online", "--group", REF, "--store", str(root), "--online-store", str(online),
                 "--name", "spend_online", "--as-of", "2024-01-03T23:00:00Z", "--run-id", "p1"])
    assert code == 0
    from seeknal_spark.serving import OnlineFeatures

    with OnlineFeatures.open("spend_online", store_root=str(online)) as table:
        got = table.get_features(keys=[{"user_id": 1}, {"user_id": 2}, {"user_id": 9}])
    as_of = _utc(2024, 1, 3, 23)
    expected = []
    for user in (1, 2, 9):
        seen = [(ts.replace(tzinfo=UTC), s) for u, ts, s in cli_transforms.spend_rows()
                if u == user and ts.replace(tzinfo=UTC) <= as_of]
        expected.append(max(seen)[1] if seen else None)
    assert [r["spend"] for r in got] == expected == [103.0, 203.0, None]
