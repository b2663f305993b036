"""The README's Python examples run, in order, in one namespace, against a real local session and store.

The preamble is what a reader of the README already has (the examples are written against it): an active Spark
session, store roots set as a deployment sets them (``SEEKNAL_OFFLINE_STORE`` / ``SEEKNAL_ONLINE_STORE``), a
scratch working directory, and their own data: ``daily_spend_df`` (user spend per day), ``store`` (the offline
store handle), ``load_orders`` (a source for the transform), an ``item_stats`` group already in the store, and
labels (``labels_df`` in Spark, ``labels_pdf`` in pandas). Blocks preceded by ``<!-- readme-test: skip ... -->``
would not run (none today).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import warnings
from pathlib import Path

import pytest

from tests.test_docs import python_blocks

README = Path(__file__).resolve().parents[1] / "README.md"
UTC = dt.timezone.utc
USERS = list(range(40, 46))
ITEMS = [7, 8]
DAYS = [dt.datetime(2024, 3, 1, 12, tzinfo=UTC) + dt.timedelta(days=d) for d in range(61)]  # Mar + Apr


def _skipped_lines(text: str):
    return {text[:m.end()].count("\n") + 3 for m in re.finditer(r"<!-- readme-test: skip[^>]*-->", text)}


@pytest.fixture
def reader(spark, tmp_path, monkeypatch):
    from seeknal_spark import Entity, FeatureGroup, Materialization
    from seeknal_spark.definitions import FeatureStoreFileOutput, OfflineStore

    offline = tmp_path / "store" / "offline"
    monkeypatch.setenv("SEEKNAL_OFFLINE_STORE", str(offline))
    monkeypatch.setenv("SEEKNAL_ONLINE_STORE", str(tmp_path / "store" / "online"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    # April's spend drifts up (so the README's drift call draws a chart)
    spend = [(u, d, float(u + i % 7 + (100 if d.month == 4 else 0)), "SG" if u % 2 else "ID")
             for u in USERS for i, d in enumerate(DAYS)]
    items = FeatureGroup("item_stats", entity=Entity("item", ["item_id"]),
                         materialization=Materialization(event_time_col="event_time"))
    items.set_dataframe(spark.createDataFrame([(i, DAYS[0], 1.5 * i) for i in ITEMS],
                                              "item_id long, event_time timestamp, price double")).write()
    orders = spark.createDataFrame([(u, d) for u in USERS for d in DAYS[:31:3]], "user_id long, day_end timestamp")
    labels = [(u, ITEMS[u % 2], DAYS[20 + u % 30], u % 2) for u in USERS]
    labels_df = spark.createDataFrame(labels, "user_id long, item_id long, label_time timestamp, label int")
    return {
        "__name__": "readme",
        "daily_spend_df": spark.createDataFrame(spend, "user_id long, event_time timestamp, amount double, "
                                                       "country string"),
        "store": OfflineStore(value=FeatureStoreFileOutput(path=str(offline))),
        "load_orders": lambda session: orders,
        "labels_df": labels_df,
        "labels_pdf": labels_df.drop("label").toPandas(),
    }


def test_readme_python_examples_run(reader):
    text = README.read_text()
    skipped = _skipped_lines(text)
    blocks = [(line, code) for line, code in python_blocks(README) if line not in skipped]
    assert len(blocks) >= 3 and len(skipped) <= 1
    ns = dict(reader)
    with warnings.catch_warnings(record=True):  # fg.freshness warns (the README says so)
        warnings.simplefilter("always")
        for line, code in blocks:
            exec(compile("\n" * (line - 1) + code, str(README), "exec"), ns)  # noqa: S102 - the README's code
    assert [v.label for v in ns["fg"].versions()] == ["v1"]
    served = ns["online"].get_features(keys=[{"user_id": 42, "item_id": 7}])[0]
    assert served["user_id"] == 42 and served["price"] == 10.5
    assert ns["same"].count() == ns["train"].count() == len(USERS)
    assert not ns["data"].empty and len(ns["pdf"]) == len(USERS)
    assert os.path.isfile("train.json") and [p.name for p in Path("reports").iterdir()] == ["user_spend__amount.png"]
