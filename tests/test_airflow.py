"""The example Airflow DAG (conf/airflow/seeknal_features.py).

Without Airflow: the DAG file is valid Python, its SparkSubmitOperator arguments point at real files, and the
templated arguments, rendered with Jinja2 as Airflow renders them, are accepted by the real job entry points
(dry run) and select the DAG run's data interval. With Airflow installed (optional, not a default dependency):
the DAG imports in a DagBag without errors and the operator's hook builds the expected spark-submit command.
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

    return [jinja2.Template(v).render(**ctx) for v in values]


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
    from seeknal_spark.session import read_spark_defaults

    defaults = read_spark_defaults(REPO / "conf" / "spark-defaults.conf")
    tasks = [dag.materialize_task(g) for g in dag.GROUPS] + [dag.publish_task()]
    assert [t["task_id"] for t in tasks] == ["materialize_user_daily_orders", "materialize_user_profile",
                                             "publish_online"]
    for task in tasks:
        assert Path(task["application"]).is_file() and Path(task["application"]).parent == REPO / "jobs"
        assert task["py_files"] == str(REPO / "build" / "seeknal_spark.zip")
        conf = dict(task["conf"])
        assert conf.pop("spark.driver.extraJavaOptions") == \
            f"-Dlog4j2.configurationFile=file:{REPO}/conf/log4j2.properties"
        assert conf == {k: v for k, v in defaults.items() if k != "spark.master"}
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


def test_dag_with_real_airflow(monkeypatch):
    pytest.importorskip("airflow", reason="apache-airflow is an optional test dependency (too heavy for the default "
                                          "install): pip install apache-airflow apache-airflow-providers-apache-spark")
    pytest.importorskip("airflow.providers.apache.spark",
                        reason="apache-airflow-providers-apache-spark is not installed")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "local[2]"}')
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    import inspect

    from airflow.models import DagBag

    options = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
    bag = DagBag(dag_folder=str(DAG_FILE.parent), **options)
    assert bag.import_errors == {}
    dag = bag.dags["seeknal_features_daily"]   # parsed DAG (get_dag() may query the metadata DB)
    assert set(dag.task_ids) == {"materialize_user_daily_orders", "materialize_user_profile", "publish_online"}
    assert dag.get_task("publish_online").upstream_task_ids == {"materialize_user_daily_orders",
                                                                "materialize_user_profile"}
    task = dag.get_task("materialize_user_daily_orders")
    args = task.render_template(task.application_args, context(dt.date(2024, 3, 1)))
    assert args[1:5] == ["--start", "2024-03-01T00:00:00+00:00", "--end", "2024-03-02T00:00:00+00:00"]
    task.application_args = args
    hook = task._get_hook()
    cmd = hook._build_spark_submit_command(task.application)
    assert cmd[cmd.index("--master") + 1] == "local[2]"
    assert cmd[cmd.index("--py-files") + 1] == str(REPO / "build" / "seeknal_spark.zip")
    assert "spark.sql.session.timeZone=UTC" in cmd
    assert cmd[cmd.index("--name") + 1] == "seeknal-materialize_user_daily_orders"
    app = cmd.index(str(REPO / "jobs" / "materialize.py"))
    assert cmd[app + 1:] == args
