"""Data validation on write with Great Expectations: real GX on real Spark DataFrames, real Delta tables."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.support.commits import write_info
from seeknal_spark import Entity, FeatureGroup, Materialization, OfflineMaterialization
from seeknal_spark.errors import DataError, SeeknalError
from seeknal_spark.validation import (
    GreatExpectationsMissing,
    SuiteError,
    ValidationFailed,
    load_suite,
)

REPO = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
SCHEMA = "user_id long, event_time timestamp, amount double, country string"


def t(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour, tzinfo=UTC)


GOOD = [(1, t(1, 1), 10.0, "SG"), (2, t(1, 2), 20.0, "ID"), (1, t(2, 3), 30.0, "MY"), (3, t(3, 4), 40.0, "TH")]
# amount out of [0, 10000] in two rows, one unknown country
BAD = [(1, t(1, 1), 10.0, "SG"), (2, t(1, 2), -5.0, "ID"), (1, t(2, 3), 20000.0, "XX"), (3, t(3, 4), 40.0, "TH")]


def group(store, name="user_spend") -> FeatureGroup:
    return FeatureGroup(name, entity=Entity("user", ["user_id"]),
                        materialization=Materialization(event_time_col="event_time",
                                                        offline_materialization=OfflineMaterialization(store=store)))


def gx_suite():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(name="user_spend", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=10000),
        gxe.ExpectColumnValuesToNotBeNull(column="amount", mostly=0.95),
        gxe.ExpectColumnValuesToBeInSet(column="country", value_set=["SG", "ID", "MY", "TH"]),
    ])


def write_meta(path: str):
    """(version, parsed seeknal.write) of every data commit, newest first, read with delta-rs."""
    out = []
    for entry in DeltaTable(path).history():
        info = write_info(entry)
        if info is not None:
            out.append((entry["version"], info))
    return out


def stored_rows(path: str):
    table = DeltaTable(path).to_pyarrow_table()
    return sorted(zip(table.column("user_id").to_pylist(), table.column("amount").to_pylist()))


def failures_by_column(outcome):
    return {(f.expectation, f.column if isinstance(f.column, str) else tuple(f.column)): f for f in outcome.failures}


# -- import behaviour ---------------------------------------------------------------------------------------------
def test_import_seeknal_spark_does_not_import_great_expectations():
    code = ("import sys, seeknal_spark, seeknal_spark.validation, seeknal_spark.feature_group\n"
            "print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_missing_great_expectations_says_how_to_install():
    code = ("import sys\nsys.modules['great_expectations'] = None\n"
            "from seeknal_spark.validation.runner import import_gx\n"
            "from seeknal_spark.validation import GreatExpectationsMissing\n"
            "try:\n    import_gx()\nexcept GreatExpectationsMissing as e:\n    print(str(e))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert "pip install 'great-expectations==1.24.1'" in out.stdout
    assert issubclass(GreatExpectationsMissing, ImportError) and issubclass(GreatExpectationsMissing, SeeknalError)


# -- writes -------------------------------------------------------------------------------------------------------
def test_passing_suite_writes_and_records_outcome(spark, store):
    fg = group(store).set_dataframe(spark.createDataFrame(GOOD, SCHEMA)).set_validation(gx_suite())
    result = fg.write()
    assert result.version == 0
    assert stored_rows(fg.table_path) == sorted((r[0], r[2]) for r in GOOD)
    (version, info), = write_meta(fg.table_path)
    outcome = info["checks"]["validation"]
    assert version == 0 and outcome["success"] is True and outcome["failures"] == []
    assert outcome["suite"] == "user_spend" and outcome["policy"] == "strict" and info["rows"] == len(GOOD)
    # 3 suite expectations + built-ins: user_id / event_time not null, 2 feature types (no range without bounds)
    assert outcome["evaluated"] == 3 + 2 + 2 == outcome["successful"]


def test_failing_suite_strict_commits_nothing_and_names_expectation_and_column(spark, store):
    fg = group(store).set_dataframe(spark.createDataFrame(GOOD, SCHEMA)).set_validation(gx_suite())
    fg.write()
    before = DeltaTable(fg.table_path).version()
    fg.set_dataframe(spark.createDataFrame(BAD, SCHEMA))
    with pytest.raises(ValidationFailed) as err:
        fg.write(mode="append")
    message = str(err.value)
    assert "expect_column_values_to_be_between on column 'amount'" in message
    assert "expect_column_values_to_be_in_set on column 'country'" in message
    assert "nothing was written" in message
    assert DeltaTable(fg.table_path).version() == before
    assert stored_rows(fg.table_path) == sorted((r[0], r[2]) for r in GOOD)
    leftovers = [p for p in Path(fg.table_path).rglob("*.parquet") if "_staging" in str(p) or "staging" in p.parent.name]
    assert leftovers == []
    assert err.value.outcome.rows == len(BAD) and err.value.outcome.evaluated == 3 + 2 + 2
    failed = failures_by_column(err.value.outcome)
    between = failed[("expect_column_values_to_be_between", "amount")]
    oracle = [a for _, _, a, _ in BAD if not 0 <= a <= 10000]
    assert between.unexpected_count == len(oracle) and sorted(between.observed) == sorted(oracle)
    assert failed[("expect_column_values_to_be_in_set", "country")].observed == ["XX"]
    assert set(failed) == {("expect_column_values_to_be_between", "amount"),
                           ("expect_column_values_to_be_in_set", "country")}


def test_failing_suite_warn_writes_and_records_failure_in_commit_metadata(spark, store, caplog):
    fg = group(store).set_dataframe(spark.createDataFrame(BAD, SCHEMA)).set_validation(gx_suite(), policy="warn")
    with caplog.at_level("WARNING", logger="seeknal_spark.validation.check"):
        result = fg.write()
    assert "expect_column_values_to_be_between" in caplog.text
    assert stored_rows(fg.table_path) == sorted((r[0], r[2]) for r in BAD)
    (version, info), = write_meta(fg.table_path)
    assert version == result.version
    outcome = info["checks"]["validation"]
    assert outcome["success"] is False and outcome["policy"] == "warn" and outcome["failed"] == 2
    got = {(f["expectation"], f["column"]): f for f in outcome["failures"]}
    assert got[("expect_column_values_to_be_between", "amount")]["unexpected_count"] == 2
    assert sorted(got[("expect_column_values_to_be_between", "amount")]["observed"]) == [-5.0, 20000.0]
    assert got[("expect_column_values_to_be_in_set", "country")]["observed"] == ["XX"]


def test_null_key_write_is_refused_naming_the_key(spark, store):
    rows = GOOD + [(None, t(2, 5), 1.0, "SG")]
    fg = group(store).set_dataframe(spark.createDataFrame(rows, SCHEMA)).set_validation(None)
    with pytest.raises(DataError) as err:  # ValidationFailed is a DataError too
        fg.write()
    assert "'user_id'" in str(err.value)
    assert not (Path(fg.table_path) / "_delta_log").exists()


# -- built-in expectations ----------------------------------------------------------------------------------------
def test_builtins_catch_null_keys_and_event_times(spark, store):
    rows = GOOD + [(None, t(2, 5), 1.0, "SG"), (None, t(2, 6), 2.0, "SG"), (4, None, 3.0, "SG")]
    fg = group(store).set_dataframe(spark.createDataFrame(rows, SCHEMA))
    outcome = fg.validate()
    assert not outcome.success
    failed = failures_by_column(outcome)
    key = failed[("expect_column_values_to_not_be_null", "user_id")]
    assert key.builtin == "join_key_not_null"
    assert key.unexpected_count == sum(1 for r in rows if r[0] is None)
    ts = failed[("expect_column_values_to_not_be_null", "event_time")]
    assert ts.builtin == "event_time_not_null" and ts.unexpected_count == 1
    assert set(failed) == {("expect_column_values_to_not_be_null", "user_id"),
                           ("expect_column_values_to_not_be_null", "event_time")}


def test_builtins_catch_out_of_range_event_times_whatever_the_session_time_zone(spark, store, tz):
    tz("Asia/Jakarta")
    fg = group(store).set_dataframe(spark.createDataFrame(GOOD, SCHEMA))
    start, end = t(1, 2), t(2, 23)
    outcome = fg.validate(feature_start_time=start, feature_end_time=end)
    oracle = sorted(r[1].isoformat() for r in GOOD if not start <= r[1] <= end)
    (failure,) = outcome.failures
    assert failure.builtin == "event_time_in_range" and failure.column == "event_time"
    assert failure.unexpected_count == len(oracle) == 2
    assert sorted(failure.observed) == oracle
    assert failure.kwargs == {"min_value": start.isoformat(), "max_value": end.isoformat()}
    assert "on column 'event_time'" in outcome.summary()
    assert fg.validate(feature_start_time=t(1), feature_end_time=t(4)).success


def test_builtins_check_registered_feature_types(spark, store):
    fg = group(store).set_dataframe(spark.createDataFrame(GOOD, SCHEMA))
    fg.write()
    ints = spark.createDataFrame([(r[0], r[1], int(r[2]), r[3]) for r in GOOD],
                                 "user_id long, event_time timestamp, amount long, country string")
    outcome = fg.validate(ints)
    (failure,) = outcome.failures
    assert (failure.builtin, failure.column, failure.observed) == ("feature_type", "amount", "LongType")


# -- suites from conf/ --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["expectations/user_spend.yaml", "conf/expectations/user_spend.json"])
def test_suite_from_conf_file_behaves_like_the_python_suite(spark, store, path):
    df = spark.createDataFrame(BAD, SCHEMA)
    assert load_suite(path).expectations == load_suite(gx_suite()).expectations
    from_file = group(store, "a").set_validation(path).validate(df)
    in_python = group(store, "b").set_validation(gx_suite()).validate(df)

    def key(outcome):
        return sorted((f.expectation, f.column, f.unexpected_count, tuple(sorted(f.observed, key=str)))
                      for f in outcome.failures)
    assert key(from_file) == key(in_python) != []
    assert (from_file.evaluated, from_file.successful) == (in_python.evaluated, in_python.successful)
    assert from_file.source == path and from_file.suite == "user_spend"


def test_bad_suites_are_refused_with_the_reason(spark, store, tmp_path):
    with pytest.raises(SuiteError, match="not found"):
        group(store).set_validation("expectations/nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nexpectations:\n  - type: expect_column_values_to_be_between\n"
                   "    kwargs: {colum: amount, min_value: 0}\n")
    fg = group(store).set_dataframe(spark.createDataFrame(GOOD, SCHEMA)).set_validation(str(bad))
    with pytest.raises(SuiteError, match=r"expectation #0 \(expect_column_values_to_be_between"):
        fg.write()
    assert not (Path(fg.table_path) / "_delta_log").exists()


# -- history, sessions --------------------------------------------------------------------------------------------
def test_validation_history_lists_outcomes_newest_first(spark, store):
    fg = group(store).set_dataframe(spark.createDataFrame(GOOD, SCHEMA)).set_validation(gx_suite(), policy="warn")
    first = fg.write()
    fg.set_dataframe(spark.createDataFrame([(9, t(5), -1.0, "SG")], SCHEMA))
    second = fg.write(mode="append")
    fg.set_validation(enabled=False)
    fg.set_dataframe(spark.createDataFrame([(8, t(6), 1.0, "SG")], SCHEMA)).write(mode="append")
    history = FeatureGroup("user_spend", materialization=fg.materialization).validation_history()
    assert [(r.version, r.outcome.success, r.mode) for r in history] == [
        (second.version, False, "append"), (first.version, True, "overwrite")]
    assert history[0].rows == 1 and history[0].outcome.failures[0].column == "amount"
    assert history[0].outcome.failures[0].observed == [-1.0]
    assert history[0].to_dict()["failed"] == 1


CONNECT_SCRIPT = """
import datetime as dt, json, sys
from pyspark.sql import SparkSession
from deltalake import DeltaTable
from seeknal_spark import Entity, FeatureGroup, Materialization, OfflineMaterialization, OfflineStore
from seeknal_spark.definitions import FeatureStoreFileOutput
from seeknal_spark.validation import ValidationFailed
spark = (SparkSession.builder.remote("local[2]").config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.session.timeZone", "UTC").getOrCreate())
assert type(spark).__module__.startswith("pyspark.sql.connect")
utc = dt.timezone.utc
store = OfflineStore(value=FeatureStoreFileOutput(path=sys.argv[1]))
fg = FeatureGroup("g", entity=Entity("user", ["user_id"]), materialization=Materialization(
    "event_time", offline_materialization=OfflineMaterialization(store=store)))
suite = {"name": "s", "expectations": [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0, "max_value": 100}}]}
schema = "user_id long, event_time timestamp, amount double"
fg.set_dataframe(spark.createDataFrame([(1, dt.datetime(2024, 1, 1, tzinfo=utc), 5.0)], schema))
fg.set_validation(suite).write()
before = DeltaTable(fg.table_path).version()
fg.set_dataframe(spark.createDataFrame([(2, dt.datetime(2024, 1, 2, tzinfo=utc), 500.0)], schema))
try:
    fg.write(mode="append")
    raise SystemExit("strict failure was committed")
except ValidationFailed as err:
    failed = [(f.expectation, f.column, f.observed) for f in err.outcome.failures]
print(json.dumps({"unchanged": DeltaTable(fg.table_path).version() == before, "failed": failed}))
"""


def test_validation_on_a_spark_connect_session(tmp_path):
    """Databricks serverless / shared clusters run Spark Connect: validate a write there (own process: a pure
    Connect client, as in production; the shared test process mixes classic and Connect sessions)."""
    import pyspark

    if int(pyspark.__version__.split(".")[0]) < 4:
        pytest.skip(f"pyspark {pyspark.__version__} ships no Spark Connect server jar (Connect runs on the 4.x line)")
    out = subprocess.run([sys.executable, "-c", CONNECT_SCRIPT, str(tmp_path / "store")], capture_output=True,
                         text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"unchanged": True, "failed": [["expect_column_values_to_be_between", "amount", [500.0]]]}
