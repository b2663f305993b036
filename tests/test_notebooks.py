"""The Databricks notebooks, run locally as scripts against the test session with a minimal ``dbutils`` stand-in.

Results are checked against oracles computed with plain Python loops over the generated input rows and over the
Delta table read back with delta-rs. As on Databricks (Runtime 14+), the notebooks' directory is on ``sys.path``
while they run, so they import the setup they share (``notebooks/notebook_setup.py``, a plain Python file)."""

from __future__ import annotations

import contextlib
import datetime as dt
import runpy
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
SHARED = NOTEBOOKS / "notebook_setup.py"
UTC = dt.timezone.utc
USERS, DAYS = 30, 120


class _Widgets:
    """The part of ``dbutils.widgets`` the notebooks use: defined widgets with defaults, values set by the job."""

    def __init__(self, values):
        self.values = dict(values)
        self.defaults = {}

    def text(self, name, defaultValue, label=None):
        self.defaults[name] = defaultValue

    def get(self, name):
        if name not in self.defaults:
            raise KeyError(f"widget {name!r} is read but never defined")
        return str(self.values.get(name, self.defaults[name]))


class _DbUtils:
    def __init__(self, values):
        self.widgets = _Widgets(values)


@contextlib.contextmanager
def _notebook_dir_on_path():
    """What Databricks does for a notebook: its directory is on ``sys.path`` (modules next to it import)."""
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        yield
    finally:
        sys.path.remove(str(NOTEBOOKS))


def run_notebook(name, spark, **widgets):
    unknown_widgets = dict(widgets)
    dbutils = _DbUtils(unknown_widgets)
    shown = []
    with _notebook_dir_on_path():
        result = runpy.run_path(str(NOTEBOOKS / name), init_globals={
            "spark": spark, "dbutils": dbutils, "display": shown.append})
    assert set(widgets) <= set(dbutils.widgets.defaults), "the test sets a widget the notebook does not define"
    result["_displayed"] = shown
    return result


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_databricks_source_format(path):
    text = path.read_text()
    assert text.startswith("# Databricks notebook source\n")
    assert "\n# COMMAND ----------\n" in text and "# MAGIC %md" in text
    assert "dbutils.widgets.text(" in text and "dbutils.widgets.get(" in text
    assert "pip install pyspark" not in text.replace("\n", " ") and "SparkSession" not in text
    assert "getOrCreate()" not in text.replace("get_or_create()", "")
    assert "\nimport notebook_setup\n" in text and "notebook_setup.store_settings(dbutils)" in text


def test_shared_setup_is_a_plain_python_file_next_to_the_notebooks():
    """Databricks imports a .py file with the notebook header as a notebook, which ``import`` cannot load."""
    text = SHARED.read_text()
    assert not text.startswith("# Databricks notebook source") and "# COMMAND ----------" not in text


def widgets_of(path):
    """name -> (default, label) of the widgets a notebook defines, read from the notebook run without Spark."""
    dbutils = _DbUtils({})
    labels = {}
    original = dbutils.widgets.text

    def text(name, defaultValue, label=None):
        labels[name] = label
        original(name, defaultValue, label)

    class Defined(Exception):
        """Raised at the first widget read: every widget is defined by then."""

    def get(name):
        raise Defined

    dbutils.widgets.text, dbutils.widgets.get = text, get
    source = path.read_text().split("\n# COMMAND ----------\n")
    widget_cell = next(c for c in source if "dbutils.widgets.text(" in c)
    with pytest.raises(Defined), _notebook_dir_on_path():
        exec(compile(widget_cell, str(path), "exec"), {"dbutils": dbutils})
    return {n: (dbutils.widgets.defaults[n], labels[n]) for n in labels}


def test_widgets_mean_the_same_in_every_notebook():
    seen = {}
    for path in ALL:
        for name, spec in widgets_of(path).items():
            seen.setdefault(name, {})[path.name] = spec
    for name, by_notebook in seen.items():
        assert len(set(by_notebook.values())) == 1, f"widget {name!r} differs: {by_notebook}"
    assert all(len(seen[n]) == 3 for n in ("store", "project"))
    assert seen["store"]["01_define_features.py"][0] == "./seeknal_store"
    assert set(seen["users"]) == {"01_define_features.py", "02_training_set.py"}   # a count in both
    assert "user_ids" in seen


def test_default_store_on_databricks_is_a_unity_catalog_volume(monkeypatch, tmp_path):
    """On a Databricks runtime the default store is a UC volume path, shown in the widget; a missing volume is
    reported by name before anything is computed."""
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    for path in ALL:
        assert widgets_of(path)["store"][0] == "/Volumes/main/default/seeknal/seeknal_store"
    with pytest.raises(FileNotFoundError, match=r"volume main\.default\.seeknal does not exist.*CREATE VOLUME"):
        run_notebook("01_define_features.py", None)
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION")
    with pytest.raises(ValueError, match="'store' widget is empty"):
        run_notebook("02_training_set.py", None, store="  ")


def test_default_local_store_is_seeknal_store_in_the_working_directory(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = run_notebook("01_define_features.py", spark, users=3, days=2, end="2024-01-02T23:59:59.999999")
    assert ns["feature_group"].table_path == str(tmp_path / "seeknal_store" / "offline" / "notebooks" /
                                                 "user_daily_spend")
    assert (tmp_path / "seeknal_store" / "offline" / "notebooks" / "user_daily_spend" / "_delta_log").is_dir()


def test_notebooks_exist():
    assert [p.name for p in ALL] == ["01_define_features.py", "02_training_set.py", "03_publish_and_serve.py"]
    assert sorted(p.name for p in NOTEBOOKS.glob("*.py")) == [p.name for p in ALL] + [SHARED.name]


@pytest.fixture(scope="module")
def defined(spark, tmp_path_factory):
    store = tmp_path_factory.mktemp("nb") / "store"
    ns = run_notebook("01_define_features.py", spark, store=store, users=USERS, days=DAYS,
                      end="2024-04-30T23:59:59.999999", run_id="nb-1")
    from deltalake import DeltaTable

    rows = DeltaTable(ns["feature_group"].table_path).to_pyarrow_table().to_pylist()
    stored = {(r["user_id"], r["day_end"]): (r["orders"], r["spend"]) for r in rows}
    return ns, store, stored


def test_define_features_materializes_daily_spend(spark, defined):
    ns, store, stored = defined
    from seeknal_spark.examples import retail

    expected = {}
    for row in retail.orders(spark, users=USERS, days=DAYS).collect():
        t = row["order_time"].replace(tzinfo=UTC) if row["order_time"].tzinfo is None else row["order_time"]
        day = t.astimezone(UTC).date()
        day_end = dt.datetime(day.year, day.month, day.day, 23, 59, 59, 999999, tzinfo=UTC)
        count, total = expected.get((row["user_id"], day_end), (0, 0.0))
        expected[(row["user_id"], day_end)] = (count + 1, total + row["amount"])
    assert sorted(stored) == sorted(expected)
    for key, (count, total) in expected.items():
        assert stored[key][0] == count
        assert stored[key][1] == pytest.approx(total, abs=0.006)
    assert ns["write_result"].rows == len(expected)
    assert ns["_displayed"], "the notebook displays the features"
    # Rerunning the notebook with the same run id writes nothing.
    again = run_notebook("01_define_features.py", spark, store=store, users=USERS, days=DAYS,
                         end="2024-04-30T23:59:59.999999", run_id="nb-1")
    assert again["write_result"].skipped


def test_training_set_is_point_in_time_correct(spark, defined):
    _, store, stored = defined
    ns = run_notebook("02_training_set.py", spark, store=store, users=USERS, spine_rows=60, ttl_days=2)
    got = sorted((r["user_id"], r["label_time"], r["will_order_big"], r["user_orders"], r["user_spend"])
                 for r in ns["training_set"].collect())
    ttl = dt.timedelta(days=2)
    expected = []
    for s in ns["spine"].collect():
        when = s["label_time"].replace(tzinfo=UTC) if s["label_time"].tzinfo is None else s["label_time"]
        best = None
        for (user, day_end), values in stored.items():
            if user == s["user_id"] and when - ttl <= day_end <= when and (best is None or day_end > best[0]):
                best = (day_end, values)
        orders, spend = best[1] if best else (0, None)
        expected.append((s["user_id"], s["label_time"], s["will_order_big"], orders, spend))
    assert got == sorted(expected)
    assert any(e[4] is None for e in expected) and any(e[4] is not None for e in expected)


def test_publish_and_serve_returns_latest_values(spark, defined, tmp_path):
    _, store, stored = defined
    as_of = dt.datetime(2024, 3, 15, tzinfo=UTC)
    ns = run_notebook("03_publish_and_serve.py", spark, store=store, as_of=as_of.isoformat(), user_ids="0,1,2,999")
    expected = []
    for user in (0, 1, 2, 999):
        seen = [(day_end, v) for (u, day_end), v in stored.items() if u == user and day_end <= as_of]
        orders, spend = max(seen)[1] if seen else (None, None)
        expected.append({"user_id": user, "orders": orders, "spend": spend})
    assert ns["served"] == expected
    assert expected[0]["orders"] is not None and expected[3]["orders"] is None
