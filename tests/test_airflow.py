"""The example Airflow DAG (conf/airflow/seeknal_features.py).

Without Airflow: the DAG file is valid Python, its SparkSubmitOperator arguments point at real files, and the
templated arguments, rendered with Jinja2 (and the DAG's macros) as Airflow renders them, are accepted by the real
job entry points (dry run) and select the DAG run's data interval, never an empty one.

With real Airflow (tests/test_airflow_real.py): Airflow 3 and 2 in cached venvs run `airflow dags test`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "conf" / "airflow" / "seeknal_features.py"
UTC = dt.timezone.utc


def load_dag_module():
    spec = importlib.util.spec_from_file_location("seeknal_features_dag_under_test", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _AirflowDateTime(dt.datetime):
    """Renders like Airflow's (pendulum) datetimes in templates: ISO-8601 with a 'T'."""

    def __str__(self) -> str:
        return self.isoformat()


def context(day: dt.date, run_type: str = "scheduled"):
    start = _AirflowDateTime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + dt.timedelta(days=1)
    end = _AirflowDateTime(end.year, end.month, end.day, tzinfo=UTC)
    return {"data_interval_start": start, "data_interval_end": end, "run_id": f"{run_type}__{start.isoformat()}",
            "dag": SimpleNamespace(dag_id="seeknal_features_daily")}


def render(values, ctx):
    import jinja2

    macros = load_dag_module().MACROS
    ctx = {"dag_run": None, **ctx}
    return [jinja2.Template(v).render(**macros, **ctx) for v in values]


def run_job(application: str, args, capsys):
    """Run a jobs/*.py entry point as __main__ (as spark-submit does) and return (exit code, log)."""
    old = sys.argv
    sys.argv = [application, *args]
    try:
        with pytest.raises(SystemExit) as exc:
            runpy.run_path(application, run_name="__main__")
    finally:
        sys.argv = old
    return exc.value.code, capsys.readouterr().err


def test_dag_file_builds_task_arguments_pointing_at_real_files():
    dag = load_dag_module()
    tasks = [dag.materialize_task(g) for g in dag.GROUPS] + [dag.publish_task()]
    assert [t["task_id"] for t in tasks] == ["materialize_user_daily_orders", "materialize_user_profile",
                                             "publish_online"]
    for task in tasks:
        assert Path(task["application"]).is_file() and Path(task["application"]).parent == REPO / "jobs"
        assert task["py_files"] == str(REPO / "build" / "seeknal_spark.zip")
        conf = dict(task["conf"])
        assert conf.pop("spark.driver.extraJavaOptions") == \
            f"-Dlog4j2.configurationFile=file:{REPO}/conf/log4j2.properties"
        # Only what the library's files depend on: no master, driver address or memory (the cluster decides).
        assert conf == {"spark.sql.session.timeZone": "UTC",
                        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}
        assert task["env_vars"] == {"SEEKNAL_CONF_DIR": str(REPO / "conf")}
    for group in dag.GROUPS:
        assert (REPO / "conf" / "feature_groups" / f"{group}.yaml").is_file()


def test_rendered_materialize_arguments_select_the_data_interval(capsys):
    dag = load_dag_module()
    task = dag.materialize_task("user_daily_orders")
    args = render(task["application_args"], context(dt.date(2024, 3, 1)))
    assert args == ["user_daily_orders", "--start", "2024-03-01T00:00:00+00:00", "--end", "2024-03-02T00:00:00+00:00",
                    "--end-exclusive", "--run-id",
                    "seeknal_features_daily__scheduled__2024-03-01T00:00:00+00:00__user_daily_orders"]
    code, log = run_job(task["application"], args + ["--dry-run"], capsys)
    assert code == 0, log
    assert "materialize default/user_daily_orders [2024-03-01T00:00:00+00:00, 2024-03-01T23:59:59.999999+00:00]" \
        in log
    assert f"run={args[-1]} step=dry-run" in log
    # A retry of the same task instance renders the same run id (its write is skipped); the next day's does not.
    assert render(task["application_args"], context(dt.date(2024, 3, 1))) == args
    assert render(task["application_args"], context(dt.date(2024, 3, 2)))[-1] != args[-1]


def test_rendered_publish_arguments_are_accepted(capsys):
    dag = load_dag_module()
    task = dag.publish_task()
    args = render(task["application_args"], context(dt.date(2024, 3, 1), run_type="manual"))
    assert args == ["--group", "user_daily_orders", "--group", "user_profile", "--name", "user_features",
                    "--as-of", "2024-03-02T00:00:00+00:00", "--run-id",
                    "seeknal_features_daily__manual__2024-03-01T00:00:00+00:00__publish"]
    code, log = run_job(task["application"], args + ["--dry-run"], capsys)
    assert code == 0, log
    assert "publish-online user_features from [default/user_daily_orders, default/user_profile] " \
           "as_of=2024-03-02T00:00:00+00:00" in log


def test_empty_or_missing_intervals_become_the_day_before_their_end(capsys):
    """Airflow 3's CronTriggerTimetable (start == end) or a manual run without a logical date: never empty."""
    dag = load_dag_module()
    task = dag.materialize_task("user_daily_orders")
    at = _AirflowDateTime(2024, 3, 2, tzinfo=UTC)
    expected = ["--start", "2024-03-01T00:00:00+00:00", "--end", "2024-03-02T00:00:00+00:00"]
    for ctx in ({"data_interval_start": at, "data_interval_end": at},                      # trigger timetable
                {"data_interval_start": None, "data_interval_end": None,                   # no logical date
                 "dag_run": SimpleNamespace(run_after=at, logical_date=None)},
                {"data_interval_start": at + dt.timedelta(hours=1), "data_interval_end": at}):
        ctx = {"run_id": "manual__x", "dag": SimpleNamespace(dag_id="seeknal_features_daily"), **ctx}
        args = render(task["application_args"], ctx)
        assert args[1:5] == expected, ctx
    code, log = run_job(task["application"], args + ["--dry-run"], capsys)
    assert code == 0, log
    assert "[2024-03-01T00:00:00+00:00, 2024-03-01T23:59:59.999999+00:00]" in log
    # Local times are rendered in UTC; a non-UTC interval keeps its instant.
    paris = dt.timezone(dt.timedelta(hours=1))
    assert dag.interval(dt.datetime(2024, 3, 1, 1, tzinfo=paris), dt.datetime(2024, 3, 2, 1, tzinfo=paris)) == \
        (dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 3, 2, tzinfo=UTC))
