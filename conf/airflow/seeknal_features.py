"""Example Airflow DAG: materialize the feature groups every day, then publish the online table.

Works unchanged on Airflow 2.x and 3.x:

- The schedule is an explicit ``CronDataIntervalTimetable("0 0 * * *", "UTC")``: each run covers one whole day,
  ``[data_interval_start, data_interval_end)``. (Airflow 3's default for ``schedule="@daily"`` is
  ``CronTriggerTimetable``, whose runs have ``data_interval_start == data_interval_end``: an empty range.)
- The dates are rendered by the ``seeknal_start`` / ``seeknal_end`` macros as ISO-8601 with an offset. They never
  produce an empty range: a run whose interval is missing or empty (a manual Airflow 3 run without a logical date,
  or the DAG copied onto a trigger timetable) covers the day before its end (or before ``run_after``).
- Each task passes ``--run-id <dag_id>__<run_id>__<task>``: a retry of the same task instance renders the same id,
  so a write that already committed is skipped (Delta idempotent transaction) and a retried run writes exactly
  once; a new DAG run writes again.

Deployment: copy this file into the Airflow dags folder and set ``SEEKNAL_REPO`` to the checkout on the workers
(default: the checkout holding this file, i.e. ``conf/airflow/..``); build the ``--py-files`` archive once
(``./spark-submit.sh`` builds ``build/seeknal_spark.zip``; or ship the package in your cluster image). The Spark
master and everything else about the cluster come from the Airflow connection (``SEEKNAL_SPARK_CONN_ID``, default
``spark_default``) and the cluster's own spark-defaults; the tasks add only the two settings the library's files
depend on (UTC session time zone, microsecond Parquet timestamps). ``SEEKNAL_CONF_DIR`` (default ``conf/`` of the
checkout) is passed to the jobs; ``SEEKNAL_GROUPS`` (comma-separated) overrides the groups materialized;
``SEEKNAL_PY_FILES`` overrides the package archive (default ``build/seeknal_spark.zip`` of the checkout).

The task arguments are built by plain functions (``materialize_task``, ``publish_task``) and the interval macros
are plain functions too, so they can be checked without Airflow; the DAG object is created only when Airflow is
importable.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(os.environ.get("SEEKNAL_REPO") or Path(__file__).resolve().parents[2])
CONF_DIR = Path(os.environ.get("SEEKNAL_CONF_DIR") or REPO / "conf")
CONN_ID = os.environ.get("SEEKNAL_SPARK_CONN_ID", "spark_default")
PY_FILES = os.environ.get("SEEKNAL_PY_FILES") or str(REPO / "build" / "seeknal_spark.zip")
DAG_ID = "seeknal_features_daily"
GROUPS = [g.strip() for g in os.environ.get("SEEKNAL_GROUPS", "user_daily_orders,user_profile").split(",")
          if g.strip()]                                  # definitions in conf/feature_groups/<name>.yaml
ONLINE_TABLE = "user_features"
CRON = "0 0 * * *"                                       # daily at midnight UTC
PERIOD = dt.timedelta(days=1)                            # what an empty or missing interval falls back to
START = "{{ seeknal_start(data_interval_start, data_interval_end, dag_run) }}"
END = "{{ seeknal_end(data_interval_start, data_interval_end, dag_run) }}"
RUN_ID = "{{ dag.dag_id }}__{{ run_id }}"
# Settings the library's output depends on; nothing about where or how the job runs.
REQUIRED_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}


def _utc(value: Any) -> Optional[dt.datetime]:
    if value is None:
        return None
    value = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    value = dt.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                        value.microsecond, tzinfo=value.tzinfo or dt.timezone.utc)   # pendulum -> datetime
    return value.astimezone(dt.timezone.utc)


def interval(start: Any, end: Any, dag_run: Any = None, period: dt.timedelta = PERIOD) -> Tuple[dt.datetime,
                                                                                                 dt.datetime]:
    """The run's ``[start, end)`` in UTC, never empty: a missing or empty interval becomes the ``period`` before
    its end (or before the run's ``run_after`` / ``logical_date`` when there is no end)."""
    lo, hi = _utc(start), _utc(end)
    if hi is None:
        hi = _utc(getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None)
                  or dt.datetime.now(dt.timezone.utc))
    if lo is None or lo >= hi:  # type: ignore[operator]
        lo = hi - period  # type: ignore[operator]
    return lo, hi  # type: ignore[return-value]


def seeknal_start(start: Any, end: Any, dag_run: Any = None) -> str:
    """Template macro: the interval's inclusive start, ISO-8601."""
    return interval(start, end, dag_run)[0].isoformat()


def seeknal_end(start: Any, end: Any, dag_run: Any = None) -> str:
    """Template macro: the interval's exclusive end, ISO-8601 (passed with ``--end-exclusive``)."""
    return interval(start, end, dag_run)[1].isoformat()


MACROS = {"seeknal_start": seeknal_start, "seeknal_end": seeknal_end}


def spark_conf(repo: Path = REPO) -> Dict[str, str]:
    """``--conf`` settings of every task: the library's required ones and the log4j configuration."""
    conf = dict(REQUIRED_CONF)
    log4j = CONF_DIR / "log4j2.properties"
    if log4j.is_file():
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{log4j}"
    return conf


def _common(job: str, task_id: str, args: List[str], repo: Path) -> Dict[str, Any]:
    return {
        "task_id": task_id,
        "application": str(repo / "jobs" / f"{job}.py"),
        "application_args": args,
        "py_files": PY_FILES,
        "conf": spark_conf(repo),
        "conn_id": CONN_ID,
        "name": f"seeknal-{task_id}",
        "env_vars": {"SEEKNAL_CONF_DIR": str(CONF_DIR)},
    }


def materialize_task(group: str, repo: Path = REPO) -> Dict[str, Any]:
    """SparkSubmitOperator arguments materializing ``group`` for the DAG run's data interval."""
    return _common("materialize", f"materialize_{group}", [
        group, "--start", START, "--end", END, "--end-exclusive", "--run-id", f"{RUN_ID}__{group}"], repo)


def publish_task(groups: Optional[List[str]] = None, repo: Path = REPO) -> Dict[str, Any]:
    """SparkSubmitOperator arguments publishing the groups' latest values as of the interval's end."""
    args: List[str] = []
    for group in groups if groups is not None else GROUPS:
        args += ["--group", group]
    return _common("publish_online", "publish_online", args + [
        "--name", ONLINE_TABLE, "--as-of", END, "--run-id", f"{RUN_ID}__publish"], repo)


try:
    try:
        from airflow.sdk import DAG  # Airflow 3
    except ImportError:
        from airflow import DAG  # Airflow 2
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.timetables.interval import CronDataIntervalTimetable
except ImportError:  # parsed without Airflow (tests, linters): only the functions above exist
    DAG = None  # type: ignore[assignment,misc]

if DAG is not None:
    with DAG(
        dag_id=DAG_ID,
        description="seeknal_spark: daily feature materialization, then online publish",
        schedule=CronDataIntervalTimetable(CRON, timezone="UTC"),
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        user_defined_macros=MACROS,
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
        tags=["seeknal_spark"],
    ) as dag:
        materialize = [SparkSubmitOperator(**materialize_task(group)) for group in GROUPS]
        publish = SparkSubmitOperator(**publish_task())
        materialize >> publish
