"""Example Airflow DAG: materialize the feature groups every day, then publish the online table.

Each task is a ``SparkSubmitOperator`` running one of the repository's ``jobs/`` entry points with templated dates
(``{{ data_interval_start }}`` / ``{{ data_interval_end }}``, end exclusive) and a templated run id: a retried task
reuses the run id, so a write that already committed is skipped (Delta idempotent transaction), while a new DAG run
writes again.

Deployment: copy this file into the Airflow dags folder and set ``SEEKNAL_REPO`` to the checkout on the workers
(default: the checkout holding this file, i.e. ``conf/airflow/..``); build the ``--py-files`` archive once
(``./spark-submit.sh`` builds ``build/seeknal_spark.zip``; or ship the package in your cluster image). The Spark
master comes from the Airflow connection (``SEEKNAL_SPARK_CONN_ID``, default ``spark_default``).

The task arguments are built by plain functions (``materialize_task``, ``publish_task``) so they can be checked
without Airflow; the DAG object is created only when Airflow is importable.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(os.environ.get("SEEKNAL_REPO") or Path(__file__).resolve().parents[2])
CONN_ID = os.environ.get("SEEKNAL_SPARK_CONN_ID", "spark_default")
DAG_ID = "seeknal_features_daily"
GROUPS = ["user_daily_orders", "user_profile"]          # definitions in conf/feature_groups/<name>.yaml
ONLINE_TABLE = "user_features"
START = "{{ data_interval_start }}"
END = "{{ data_interval_end }}"
RUN_ID = "{{ dag.dag_id }}__{{ run_id }}"


def spark_conf(repo: Path = REPO) -> Dict[str, str]:
    """Settings of ``conf/spark-defaults.conf`` passed as ``--conf`` (the master comes from the connection)."""
    conf: Dict[str, str] = {}
    for line in (repo / "conf" / "spark-defaults.conf").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            if key != "spark.master":
                conf[key] = value.strip()
    conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{repo}/conf/log4j2.properties"
    return conf


def _common(job: str, task_id: str, args: List[str], repo: Path) -> Dict[str, Any]:
    return {
        "task_id": task_id,
        "application": str(repo / "jobs" / f"{job}.py"),
        "application_args": args,
        "py_files": str(repo / "build" / "seeknal_spark.zip"),
        "conf": spark_conf(repo),
        "conn_id": CONN_ID,
        "name": f"seeknal-{task_id}",
        "env_vars": {"SEEKNAL_CONF_DIR": str(repo / "conf")},
    }


def materialize_task(group: str, repo: Path = REPO) -> Dict[str, Any]:
    """SparkSubmitOperator arguments materializing ``group`` for the DAG run's data interval."""
    return _common("materialize", f"materialize_{group}", [
        group, "--start", START, "--end", END, "--end-exclusive", "--run-id", f"{RUN_ID}__{group}"], repo)


def publish_task(groups: List[str] = GROUPS, repo: Path = REPO) -> Dict[str, Any]:
    """SparkSubmitOperator arguments publishing the groups' latest values as of the interval's end."""
    args: List[str] = []
    for group in groups:
        args += ["--group", group]
    return _common("publish_online", "publish_online", args + [
        "--name", ONLINE_TABLE, "--as-of", END, "--run-id", f"{RUN_ID}__publish"], repo)


try:
    from airflow import DAG
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
except ImportError:  # parsed without Airflow (tests, linters): only the task arguments above exist
    DAG = None  # type: ignore[assignment,misc]

if DAG is not None:
    with DAG(
        dag_id=DAG_ID,
        description="seeknal_spark: daily feature materialization, then online publish",
        schedule="@daily",
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
        tags=["seeknal_spark"],
    ) as dag:
        materialize = [SparkSubmitOperator(**materialize_task(group)) for group in GROUPS]
        publish = SparkSubmitOperator(**publish_task())
        materialize >> publish
