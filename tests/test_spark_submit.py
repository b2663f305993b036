"""spark-submit.sh: the command it builds (DRY_RUN), the --py-files archive, and real local spark-submit runs of
the materialize job with their exit codes (0 success, 2 usage error, 3 data rejected)."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "spark-submit.sh"
UTC = dt.timezone.utc


def submit(args, tmp_path, timeout=600, **env):
    full_env = {**os.environ, "BUILD_DIR": str(tmp_path / "build"), "SEEKNAL_CONF_DIR": str(REPO / "conf"), **env}
    full_env.pop("PYSPARK_GATEWAY_PORT", None)
    full_env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    proc = subprocess.run([str(SCRIPT), *args], cwd=tmp_path, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    # spark-submit's PythonRunner merges the Python driver's stderr into its own stdout.
    proc.log = proc.stderr + proc.stdout
    return proc


def conf_values(cmd):
    """The --conf key=value pairs of a spark-submit command."""
    return dict(cmd[i + 1].split("=", 1) for i, c in enumerate(cmd) if c == "--conf")


def project_defaults():
    from seeknal_spark.cli.submit_plan import read_properties

    return read_properties(REPO / "conf" / "spark-defaults.conf")


@pytest.fixture
def no_cluster(tmp_path):
    """An empty SPARK_CONF_DIR: no cluster configuration anywhere."""
    (tmp_path / "noconf").mkdir()
    return {"SPARK_CONF_DIR": str(tmp_path / "noconf"), "MASTER": ""}


def test_dry_run_prints_the_command_and_forwards_arguments_unchanged(tmp_path, no_cluster):
    args = ["conf/feature_groups/user_daily_orders.yaml", "--start", "{{ data_interval_start }}",
            "--run-id", "a b'c$HOME", "--end", ""]
    proc = submit(["materialize", *args], tmp_path, DRY_RUN="1", **no_cluster)
    assert proc.returncode == 0, proc.stderr
    cmd = shlex.split(proc.stdout)
    assert cmd[0] == str(REPO / ".venv" / "bin" / "spark-submit") or cmd[0].endswith("spark-submit")
    assert "--properties-file" not in cmd            # would replace the cluster's spark-defaults.conf
    conf = conf_values(cmd)
    assert conf.pop("spark.driver.extraJavaOptions") == \
        f"-Dlog4j2.configurationFile=file:{REPO / 'conf' / 'log4j2.properties'}"
    assert conf == project_defaults()                # no master anywhere: the project's local defaults, all of them
    assert conf["spark.master"] == "local[2]" and conf["spark.driver.host"] == "127.0.0.1"
    assert cmd[cmd.index("--py-files") + 1] == str(tmp_path / "build" / "seeknal_spark.zip")
    app = cmd.index(str(REPO / "jobs" / "materialize.py"))
    assert cmd[app + 1:] == args
    assert "--packages" not in cmd and "--jars" not in cmd and not any("DeltaSparkSessionExtension" in c for c in cmd)
    assert "spark.pyspark.python" not in conf
    assert f"local run; PYSPARK_PYTHON={REPO / '.venv' / 'bin' / 'python'}" in proc.stderr


def test_cluster_defaults_win_and_local_settings_are_not_added(tmp_path):
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    (cluster / "spark-defaults.conf").write_text("# the cluster's own settings\nspark.master  spark://10.0.0.1:7077\n"
                                                 "spark.sql.shuffle.partitions=400\nspark.driver.memory 16g\n")
    proc = submit(["materialize", "g"], tmp_path, DRY_RUN="1", SPARK_CONF_DIR=str(cluster),
                  SPARK_SUBMIT_EXTRA_ARGS="--py-files deps.zip,util.py --conf spark.sql.session.timeZone=UTC "
                                          "--deploy-mode client")
    assert proc.returncode == 0, proc.stderr
    cmd = shlex.split(proc.stdout)
    conf = conf_values(cmd)
    for key in ("spark.master", "spark.driver.host", "spark.driver.bindAddress", "spark.driver.memory",
                "spark.sql.shuffle.partitions", "spark.ui.enabled", "spark.pyspark.python"):
        assert key not in conf, key                  # the cluster's file (read by spark-submit itself) decides
    assert "--master" not in cmd and "--properties-file" not in cmd
    assert conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"   # project default, not set there
    assert [c for c in cmd if c.startswith("spark.sql.session.timeZone=")] == ["spark.sql.session.timeZone=UTC"]
    assert cmd[cmd.index("--py-files") + 1] == f"deps.zip,util.py,{tmp_path / 'build' / 'seeknal_spark.zip'}"
    assert cmd.count("--py-files") == 1
    assert cmd[cmd.index("--deploy-mode") + 1] == "client"
    assert "cluster run; PYSPARK_PYTHON=<unset>" in proc.stderr


def test_a_master_from_arguments_properties_file_or_env_counts(tmp_path, no_cluster):
    props = tmp_path / "mine.conf"
    props.write_text("spark.master yarn\nspark.sql.parquet.outputTimestampType INT96\n")
    for env in ({"SPARK_SUBMIT_EXTRA_ARGS": "--master yarn"},
                {"SPARK_SUBMIT_EXTRA_ARGS": f"--properties-file {props}"},
                {"MASTER": "spark://127.0.0.1:7077"}):
        proc = submit(["materialize", "g"], tmp_path, DRY_RUN="1", **{**no_cluster, **env})
        assert proc.returncode == 0, proc.stderr
        conf = conf_values(shlex.split(proc.stdout))
        assert "spark.master" not in conf and "spark.driver.host" not in conf and "spark.driver.memory" not in conf
        assert "cluster run" in proc.stderr, env
        if "--properties-file" in env.get("SPARK_SUBMIT_EXTRA_ARGS", ""):
            assert "spark.sql.parquet.outputTimestampType" not in conf    # the user's file set it
            assert shlex.split(proc.stdout).count("--properties-file") == 1


def test_with_delta_picks_the_artifact_of_the_spark_version(tmp_path, no_cluster):
    import pyspark

    # This venv's Spark 4.2: Delta jars resolved by Maven (cached), passed as --jars after the user's.
    proc = submit(["backfill", "x:y"], tmp_path, DRY_RUN="1", WITH_DELTA="1", timeout=900,
                  SPARK_SUBMIT_EXTRA_ARGS="--jars /opt/mine.jar --master yarn --deploy-mode client", **no_cluster)
    if proc.returncode != 0 and not os.environ.get("CI") and "could not resolve" in proc.stderr:
        pytest.skip(f"Maven cannot resolve Delta here: {proc.stderr[-500:]}")
    assert proc.returncode == 0, proc.stderr
    cmd = shlex.split(proc.stdout)
    jars = cmd[cmd.index("--jars") + 1].split(",")
    assert jars[0] == "/opt/mine.jar" and cmd.count("--jars") == 1
    names = {os.path.basename(j) for j in jars[1:]}
    assert {"delta-spark_4.2_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"} <= names, names
    assert all(os.path.isfile(j) for j in jars[1:])
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in cmd
    assert "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog" in cmd
    assert cmd[cmd.index("--master") + 1] == "yarn" and cmd[cmd.index("--deploy-mode") + 1] == "client"
    assert cmd[-2:] == [str(REPO / "jobs" / "backfill.py"), "x:y"]
    assert pyspark.__version__.startswith("4.2")

    # A Spark 3.5 installation (Scala 2.12): its Delta line; as --packages when asked.
    spark35 = tmp_path / "spark-3.5.3"
    (spark35 / "jars").mkdir(parents=True)
    (spark35 / "jars" / "spark-core_2.12-3.5.3.jar").write_bytes(b"")
    proc = submit(["materialize"], tmp_path, DRY_RUN="1", WITH_DELTA="1", DELTA_RESOLVE="packages",
                  SPARK_HOME=str(spark35), SPARK_SUBMIT_EXTRA_ARGS="--packages org.x:y:1", **no_cluster)
    assert proc.returncode == 0, proc.stderr
    cmd = shlex.split(proc.stdout)
    assert cmd[cmd.index("--packages") + 1] == "org.x:y:1,io.delta:delta-spark_2.12:3.3.2"
    proc = submit(["materialize"], tmp_path, DRY_RUN="1", WITH_DELTA="1", DELTA_RESOLVE="packages",
                  DELTA_PACKAGE="io.delta:delta-spark_2.12:3.2.1", SPARK_HOME=str(spark35), **no_cluster)
    assert "io.delta:delta-spark_2.12:3.2.1" in shlex.split(proc.stdout)

    # A Spark without a known Delta line: a usage error naming the version and what to set.
    (spark35 / "jars" / "spark-core_2.12-3.5.3.jar").rename(spark35 / "jars" / "spark-core_2.12-3.3.0.jar")
    proc = submit(["materialize"], tmp_path, DRY_RUN="1", WITH_DELTA="1", SPARK_HOME=str(spark35), **no_cluster)
    assert proc.returncode == 2 and "Spark 3.3" in proc.stderr and "DELTA_PACKAGE" in proc.stderr


def test_unknown_job_and_no_job_are_usage_errors(tmp_path):
    proc = submit(["no_such_job"], tmp_path, DRY_RUN="1")
    assert proc.returncode == 2 and "unknown job 'no_such_job'" in proc.stderr and "materialize" in proc.stderr
    assert submit([], tmp_path).returncode == 2


def test_archive_is_built_when_missing_or_stale_only(tmp_path):
    archive = tmp_path / "build" / "seeknal_spark.zip"
    proc = submit(["materialize"], tmp_path, DRY_RUN="1")
    assert "built" in proc.stderr and archive.is_file()
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"seeknal_spark/__init__.py", "seeknal_spark/cli/main.py", "seeknal_spark/cli/commands.py",
            "seeknal_spark/offline/writer.py"} <= names
    assert not [n for n in names if "__pycache__" in n or not n.startswith("seeknal_spark/")]
    mtime = archive.stat().st_mtime_ns
    proc = submit(["materialize"], tmp_path, DRY_RUN="1")
    assert "built" not in proc.stderr and archive.stat().st_mtime_ns == mtime    # fresh: kept
    os.utime(archive, (1_000_000, 1_000_000))                                   # older than the sources: stale
    proc = submit(["materialize"], tmp_path, DRY_RUN="1")
    assert "built" in proc.stderr and archive.stat().st_mtime_ns != 1_000_000 * 10**9


# -- real spark-submit runs (each starts a JVM: keep them few) -------------------------------------------------------

ORDERS = [(1, "2024-03-01T08:00:00Z", 10.0, "web"), (1, "2024-03-01T21:30:00Z", 20.0, "mobile"),
          (2, "2024-03-01T10:00:00Z", 5.5, "web"), (2, "2024-03-02T23:00:00Z", 7.25, "mobile"),
          (3, "2024-03-03T01:00:00Z", 99.0, "web")]


@pytest.fixture
def orders_definition(tmp_path):
    (tmp_path / "orders.csv").write_text("user_id,order_time,amount,channel\n"
                                         + "".join(f"{u},{t},{a},{c}\n" for u, t, a, c in ORDERS))
    definition = tmp_path / "orders.yaml"
    definition.write_text(textwrap.dedent(f"""\
        transform: seeknal_spark.examples.retail:user_daily_orders
        store: {tmp_path / 'offline'}
        sources: {{orders: orders.csv}}
        """))
    return definition


def test_spark_submit_materialize_end_to_end(tmp_path, orders_definition):
    proc = submit(["materialize", str(orders_definition), "--start", "2024-03-01T00:00:00+00:00",
                   "--end", "2024-03-03T00:00:00+00:00", "--end-exclusive", "--run-id", "sched__2024-03-01"],
                  tmp_path)
    assert proc.returncode == 0, proc.log[-3000:]
    assert "run=sched__2024-03-01 step=write 3 rows committed" in proc.log
    from deltalake import DeltaTable

    rows = DeltaTable(str(tmp_path / "offline" / "default" / "user_daily_orders")).to_pyarrow_table().to_pylist()
    got = sorted((r["user_id"], r["day_end"], r["order_count"], r["total_amount"]) for r in rows)
    expected = {}
    for user, t, amount, _ in ORDERS:
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
        if when < dt.datetime(2024, 3, 3, tzinfo=UTC):
            day_end = dt.datetime(when.year, when.month, when.day, 23, 59, 59, 999999, tzinfo=UTC)
            count, total = expected.get((user, day_end), (0, 0.0))
            expected[(user, day_end)] = (count + 1, total + amount)
    assert got == sorted((u, d, c, round(s, 2)) for (u, d), (c, s) in expected.items())


def test_spark_submit_usage_error_exits_2(tmp_path, orders_definition):
    proc = submit(["materialize", str(orders_definition), "--start", "not-a-date"], tmp_path)
    assert proc.returncode == 2, proc.log[-3000:]
    assert "--start 'not-a-date' is not an ISO-8601" in proc.log


def test_spark_submit_rejected_data_exits_3(tmp_path):
    (tmp_path / "profiles.csv").write_text("user_id,snapshot_time,tenure_days,segment\n"
                                           "1,2024-03-01T00:00:00Z,10,new\n1,2024-03-01T00:00:00Z,11,vip\n")
    definition = tmp_path / "profiles.yaml"
    definition.write_text(f"transform: seeknal_spark.examples.retail:user_profile\nstore: {tmp_path / 'offline'}\n"
                          "sources: {profiles: profiles.csv}\n")
    proc = submit(["materialize", str(definition), "--run-id", "dup"], tmp_path)
    assert proc.returncode == 3, proc.log[-3000:]
    assert "run=dup step=materialize data rejected" in proc.log and "duplicate rows" in proc.log
    assert not (tmp_path / "offline" / "default" / "user_profile" / "_delta_log").exists()


def test_plan_reads_every_spelling_of_user_settings():
    from seeknal_spark.cli.submit_plan import plan

    project = {"spark.master": "local[2]", "spark.driver.memory": "4g", "spark.sql.session.timeZone": "UTC",
               "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}
    out, local = plan(project, {}, ["--master=yarn", "--conf=spark.sql.session.timeZone=UTC", "-c",
                                    "spark.sql.parquet.outputTimestampType=INT96", "--py-files=a.py",
                                    "--deploy-mode", "cluster", "--files", "x.txt"], "pkg.zip", log4j="/conf/l.xml")
    assert not local
    assert out == ["--master=yarn", "--conf=spark.sql.session.timeZone=UTC", "-c",
                   "spark.sql.parquet.outputTimestampType=INT96", "--deploy-mode", "cluster", "--files", "x.txt",
                   "--py-files", "a.py,pkg.zip"]       # the driver runs elsewhere: no local log4j path either
    out, local = plan(project, {}, ["--driver-memory", "1g"], "pkg.zip", log4j="/conf/l.xml")
    assert local and "spark.driver.memory=4g" not in out and "spark.master=local[2]" in out
    assert "spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=file:/conf/l.xml" in out
