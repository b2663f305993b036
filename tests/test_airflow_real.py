"""The example DAG under real Airflow 3 and Airflow 2: `airflow dags test` runs the real spark-submit tasks.

Each Airflow line lives in its own cached venv built by scripts/airflow_env.sh (pinned by scripts/airflow-<line>.txt
and its constraints file): ~/.cache/seeknal_spark/venv-airflow<line>-<hash>. AIRFLOW_HOME is a temporary directory
with a SQLite metadata database; the DAG file is copied into a dags folder as a user deploys it (SEEKNAL_REPO points
back at this checkout). The materialize task writes one day to a temporary store, the publish task publishes it;
the test then reads the Delta table with delta-rs and the online table with DuckDB, and compares with the rows
computed here from the source CSV (plain loops). `airflow tasks test` of the materialize task then retries it in the
same DAG run: the same run id is rendered and nothing is written again.

In CI (``CI`` set) a venv that cannot be built fails the test; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
ORDERS = [(1, "2024-02-29T08:00:00Z", 3.0, "web"), (1, "2024-03-01T08:00:00Z", 10.0, "web"),
          (1, "2024-03-01T21:30:00Z", 20.0, "mobile"), (2, "2024-03-01T10:00:00Z", 5.5, "web"),
          (2, "2024-03-02T01:00:00Z", 7.25, "mobile"), (3, "2024-03-02T00:00:00Z", 1.0, "web")]


def write_records(table):
    """The seeknal.write record of each data commit (in userMetadata, or a custom commit-info key)."""
    out = []
    for entry in table.history():
        raw = entry.get("seeknal.write")
        if entry.get("userMetadata"):
            raw = json.loads(entry["userMetadata"]).get("seeknal.write", raw)
        if raw:
            out.append(json.loads(raw) if isinstance(raw, str) else raw)
    return out


def airflow_venv(line: str) -> Path:
    """The cached Airflow venv of ``line`` (built on first use); fails in CI, skips elsewhere, if it cannot be."""
    started = time.monotonic()
    proc = subprocess.run(["bash", str(REPO / "scripts" / "airflow_env.sh"), line], capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        reason = f"cannot build the Airflow {line} venv (scripts/airflow_env.sh {line}): {proc.stderr[-1500:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    if "built" in proc.stderr:
        print(f"Airflow {line} venv built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return Path(proc.stdout.strip().splitlines()[-1])


def expected_day(day: dt.date):
    """(user_id, order_count, total_amount) per user for the orders of ``day`` (UTC)."""
    out = {}
    for user, stamp, amount, _ in ORDERS:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if when.date() == day:
            count, total = out.get(user, (0, 0.0))
            out[user] = (count + 1, total + amount)
    return sorted((u, c, round(t, 2)) for u, (c, t) in out.items())


@pytest.fixture
def deployment(tmp_path):
    """A user's deployment: conf dir with one definition, stores, the DAG in a dags folder, the package archive."""
    conf = tmp_path / "conf"
    (conf / "feature_groups").mkdir(parents=True)
    (tmp_path / "orders.csv").write_text("user_id,order_time,amount,channel\n"
                                         + "".join(f"{u},{t},{a},{c}\n" for u, t, a, c in ORDERS))
    (conf / "feature_groups" / "user_daily_orders.yaml").write_text(textwrap.dedent("""\
        transform: seeknal_spark.examples.retail:user_daily_orders
        sources: {orders: ../../orders.csv}
        """))
    (conf / "seeknal.ini").write_text(f"[store]\noffline_path = {tmp_path / 'offline'}\n"
                                      f"online_path = {tmp_path / 'online'}\n")
    shutil.copy(REPO / "conf" / "log4j2.properties", conf / "log4j2.properties")
    (tmp_path / "dags").mkdir()
    shutil.copy(REPO / "conf" / "airflow" / "seeknal_features.py", tmp_path / "dags" / "seeknal_features.py")
    build = subprocess.run([str(REPO / "spark-submit.sh"), "materialize"], capture_output=True, text=True,
                           env={**os.environ, "DRY_RUN": "1", "BUILD_DIR": str(tmp_path / "build")})
    assert build.returncode == 0, build.stderr
    return tmp_path


def airflow_env(home: Path, deployment: Path) -> dict:
    import pyspark

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "PYSPARK_GATEWAY", "SPARK_CONNECT", "SEEKNAL_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(deployment / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "SEEKNAL_REPO": str(REPO), "SEEKNAL_CONF_DIR": str(deployment / "conf"),
        "SEEKNAL_GROUPS": "user_daily_orders", "SEEKNAL_PY_FILES": str(deployment / "build" / "seeknal_spark.zip"),
        # The Spark installation and Python the tasks run (a worker's setup): this checkout's venv.
        "SPARK_HOME": os.path.dirname(pyspark.__file__), "PYSPARK_PYTHON": sys.executable,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_LOCAL_IP": "127.0.0.1",
    })
    return env


@pytest.mark.parametrize("line", ["3", "2"])
def test_airflow_dags_test_materializes_one_day(line, deployment, tmp_path):
    venv = airflow_venv(line)
    home = tmp_path / f"airflow{line}"
    home.mkdir()
    env = airflow_env(home, deployment)
    airflow = str(venv / "bin" / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    started = time.monotonic()
    proc = subprocess.run([airflow, "dags", "test", "seeknal_features_daily", "2024-03-02"], env=env,
                          capture_output=True, text=True, timeout=1200)
    log = proc.stdout + proc.stderr
    print(f"Airflow {line}: dags test took {time.monotonic() - started:.0f} s", file=sys.stderr)
    assert proc.returncode == 0, log[-6000:]
    assert "Spark-Submit cmd: spark-submit --master local[2]" in log
    assert "--start 2024-03-01T00:00:00+00:00 --end 2024-03-02T00:00:00+00:00 --end-exclusive" in log
    assert "empty time range" not in log

    from deltalake import DeltaTable

    table = DeltaTable(str(deployment / "offline" / "default" / "user_daily_orders"))
    rows = table.to_pyarrow_table().to_pylist()
    # The run covers [2024-03-01, 2024-03-02): exactly that day's rows, the days around it untouched.
    assert sorted((r["user_id"], r["order_count"], r["total_amount"]) for r in rows) == \
        expected_day(dt.date(2024, 3, 1))
    assert {r["day_end"] for r in rows} == {dt.datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)}
    writes = write_records(table)
    assert len(writes) == 1
    run_id = writes[0]["run_id"]
    assert run_id.startswith("seeknal_features_daily__manual__") and run_id.endswith("__user_daily_orders")
    assert (writes[0]["start"], writes[0]["end"]) == ("2024-03-01T00:00:00+00:00",
                                                      "2024-03-01T23:59:59.999999+00:00")

    # A retry of the task instance (same DAG run, same rendered run id) writes nothing: exactly once.
    retry = subprocess.run([airflow, "tasks", "test", "seeknal_features_daily", "materialize_user_daily_orders",
                            "2024-03-02"], env=env, capture_output=True, text=True, timeout=900)
    retry_log = retry.stdout + retry.stderr
    assert retry.returncode == 0, retry_log[-6000:]
    assert f"run={run_id} step=skip already committed" in retry_log, retry_log[-6000:]
    table = DeltaTable(str(deployment / "offline" / "default" / "user_daily_orders"))
    assert len(write_records(table)) == 1

    from seeknal_spark.serving import OnlineFeatures

    online = OnlineFeatures.open("user_features", store_root=str(deployment / "online"))
    try:
        got = online.get_features(keys=[{"user_id": u} for u, _, _ in expected_day(dt.date(2024, 3, 1))])
        assert sorted((r["user_id"], r["order_count"], r["total_amount"]) for r in got) == \
            expected_day(dt.date(2024, 3, 1))
    finally:
        online.close()
