"""spark-submit.sh against a real standalone Spark cluster on loopback.

A master and a worker run as separate JVM processes (``spark-class ...deploy.master.Master`` / ``...Worker`` from
this venv's pyspark). The cluster's configuration directory holds a spark-defaults.conf with one line,
``spark.master spark://127.0.0.1:<port>``: that is all a cluster user sets. spark-submit.sh then runs the materialize
job; the executors run in the worker's JVMs and write the feature group, on the portable path (Parquet + delta-rs
commit) and on the Delta-JVM path (WITH_DELTA=1, jars resolved by Maven). The test proves the script kept the
cluster's master: the application is registered on the master, and its executors ran in the worker's work
directory. The tables are read back with delta-rs and compared with rows computed here with plain loops.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "spark-submit.sh"
UTC = dt.timezone.utc
ORDERS = [(1, "2024-03-01T08:00:00Z", 10.0, "web"), (1, "2024-03-01T21:30:00Z", 20.0, "mobile"),
          (2, "2024-03-01T10:00:00Z", 5.5, "web"), (2, "2024-03-02T23:00:00Z", 7.25, "mobile"),
          (3, "2024-03-03T01:00:00Z", 99.0, "web")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


class Cluster:
    """A standalone master and one worker, each its own process group (stopped by their process ids)."""

    def __init__(self, root: Path) -> None:
        import pyspark

        self.root = root
        self.spark_home = os.path.dirname(pyspark.__file__)
        self.port, self.ui_port = _free_port(), _free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.work = root / "worker-work"
        self.work.mkdir(parents=True)
        daemon_conf = root / "daemon-conf"
        daemon_conf.mkdir()
        (daemon_conf / "master.conf").write_text("spark.master.rest.enabled false\n")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PYSPARK", "SPARK_", "MASTER"))}
        self.env.update({"SPARK_HOME": self.spark_home, "SPARK_LOCAL_IP": "127.0.0.1",
                         "SPARK_CONF_DIR": str(daemon_conf), "SPARK_LOG_DIR": str(root)})
        spark_class = os.path.join(self.spark_home, "bin", "spark-class")
        self.procs = []
        self.procs.append(self._start("master", [
            spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
            "--webui-port", str(self.ui_port), "--properties-file", str(daemon_conf / "master.conf")]))
        self._wait(lambda s: s.get("status") == "ALIVE", "the master to start")
        self.procs.append(self._start("worker", [
            spark_class, "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1",
            "--port", "0", "--webui-port", str(_free_port()), "--cores", "2", "--memory", "1g",
            "--work-dir", str(self.work)]))
        self._wait(lambda s: s.get("aliveworkers", 0) >= 1, "the worker to register")

    def _start(self, name: str, cmd) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")
        return subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def state(self) -> dict:
        return _json(f"http://127.0.0.1:{self.ui_port}/json/")

    def _wait(self, ready, what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[1]} exited ({proc.returncode}) while waiting for {what}; "
                                       f"see {self.root}")
            try:
                if ready(self.state()):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}; logs in {self.root}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("standalone"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster_conf(cluster, tmp_path):
    """What a cluster user sets: SPARK_CONF_DIR/spark-defaults.conf with the master. Nothing else."""
    conf = tmp_path / "cluster-conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text(f"spark.master {cluster.url}\n")
    return conf


@pytest.fixture
def definition(tmp_path):
    (tmp_path / "orders.csv").write_text("user_id,order_time,amount,channel\n"
                                         + "".join(f"{u},{t},{a},{c}\n" for u, t, a, c in ORDERS))
    path = tmp_path / "orders.yaml"
    path.write_text(textwrap.dedent(f"""\
        transform: seeknal_spark.examples.retail:user_daily_orders
        store: {tmp_path / 'offline'}
        sources: {{orders: orders.csv}}
        """))
    return path


def expected_rows():
    out = {}
    for user, stamp, amount, _ in ORDERS:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if when < dt.datetime(2024, 3, 3, tzinfo=UTC):
            day_end = dt.datetime(when.year, when.month, when.day, 23, 59, 59, 999999, tzinfo=UTC)
            count, total = out.get((user, day_end), (0, 0.0))
            out[(user, day_end)] = (count + 1, total + amount)
    return sorted((u, d, c, round(s, 2)) for (u, d), (c, s) in out.items())


def run_on_cluster(cluster, cluster_conf, definition, tmp_path, run_id, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_", "MASTER"))}
    full_env.update({"SPARK_CONF_DIR": str(cluster_conf), "BUILD_DIR": str(tmp_path / "build"),
                     "SEEKNAL_CONF_DIR": str(REPO / "conf"), **env})
    args = [str(SCRIPT), "materialize", str(definition), "--start", "2024-03-01T00:00:00+00:00",
            "--end", "2024-03-03T00:00:00+00:00", "--end-exclusive", "--run-id", run_id]
    dry = subprocess.run(args, cwd=tmp_path, env={**full_env, "DRY_RUN": "1"}, capture_output=True, text=True,
                         timeout=900)
    assert dry.returncode == 0, dry.stderr
    before = {a["id"] for a in cluster.state()["completedapps"] + cluster.state()["activeapps"]}
    proc = subprocess.run(args, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=1200)
    log = proc.stderr + proc.stdout
    assert proc.returncode == 0, log[-5000:]
    state = cluster.state()
    apps = [a for a in state["completedapps"] + state["activeapps"] if a["id"] not in before]
    return dry.stdout, log, apps


def check_ran_on_the_cluster(cluster, dry_cmd: str, apps) -> Path:
    # The script passed no master, driver address or memory: the cluster's spark-defaults.conf decided.
    for setting in ("spark.master", "--master", "spark.driver.host", "spark.driver.bindAddress",
                    "spark.driver.memory", "spark.pyspark.python", "--properties-file", "local["):
        assert setting not in dry_cmd, setting
    # The application registered on the master, and its executors ran in the worker's JVMs (work directory).
    assert len(apps) == 1, apps
    app_dir = cluster.work / apps[0]["id"]
    executor_logs = list(app_dir.glob("*/stderr"))
    assert executor_logs, f"no executor of {apps[0]['id']} ran on the worker"
    assert any("Finished task" in p.read_text() for p in executor_logs)
    assert all("CoarseGrainedExecutorBackend" in p.read_text() for p in executor_logs)
    return app_dir


def stored(table: Path):
    from deltalake import DeltaTable

    t = DeltaTable(str(table))
    rows = t.to_pyarrow_table().to_pylist()
    return t, sorted((r["user_id"], r["day_end"], r["order_count"], r["total_amount"]) for r in rows)


def test_portable_path_on_a_standalone_cluster(cluster, cluster_conf, definition, tmp_path):
    dry, log, apps = run_on_cluster(cluster, cluster_conf, definition, tmp_path, "cluster-portable")
    assert "run=cluster-portable step=write 3 rows committed" in log
    app_dir = check_ran_on_the_cluster(cluster, dry, apps)
    assert (app_dir / "0" / "seeknal_spark.zip").is_file() or list(app_dir.glob("*/seeknal_spark.zip"))
    table, rows = stored(tmp_path / "offline" / "default" / "user_daily_orders")
    assert rows == expected_rows()
    engines = {str(h.get("engineInfo")) for h in table.history()}
    assert engines and all(e.startswith("delta-rs") for e in engines), engines     # committed by delta-rs


def test_delta_jvm_path_on_a_standalone_cluster(cluster, cluster_conf, definition, tmp_path):
    resolve = subprocess.run([str(REPO / "scripts" / "delta_jars.sh"), "io.delta:delta-spark_4.2_2.13:4.4.0"],
                             capture_output=True, text=True, timeout=900)
    if resolve.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"Maven could not resolve Delta's jars: {resolve.stderr[-1500:]}")
        pytest.skip(f"Maven could not resolve Delta's jars here: {resolve.stderr[-500:]}")
    dry, log, apps = run_on_cluster(cluster, cluster_conf, definition, tmp_path, "cluster-delta", WITH_DELTA="1")
    assert "--jars" in dry and "delta-spark_4.2_2.13-4.4.0.jar" in dry
    app_dir = check_ran_on_the_cluster(cluster, dry, apps)
    assert list(app_dir.glob("*/delta-spark_4.2_2.13-4.4.0.jar"))    # shipped to the executors
    table, rows = stored(tmp_path / "offline" / "default" / "user_daily_orders")
    assert rows == expected_rows()
    commits = [h for h in table.history() if h.get("operation") == "WRITE"]
    assert commits and "Delta-Lake/4.4.0" in str(commits[-1].get("engineInfo")), table.history()   # Spark's writer
