"""A classic Spark session with Delta Lake's JVM side (Delta jars + extension + catalog), for tests/native/.

These tests run in their own pytest process (see tests/test_native_delta.py): the main test process already owns a
JVM started without Delta's jars.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def delta_spark():
    from seeknal_spark.session import has_delta_jvm, local_session
    from tests.support.jvm import delta_session_conf

    session = local_session(
        app_name="seeknal_spark_native_tests",
        extra={**delta_session_conf(),  # the Delta jars of the installed pyspark's line, extension, catalog
               "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2", "spark.driver.memory": "2g",
               # Delta rebuilds snapshots with 50 tasks by default: right for clusters, slow on 2 local cores.
               "spark.databricks.delta.snapshotPartitions": "2"})
    assert has_delta_jvm(session)
    yield session
    session.stop()


@pytest.fixture
def portable(monkeypatch):
    """Within one test: make the library take its portable path (delta-rs metadata and commits, Parquet file reads)
    on the Delta session, as it does on a session without Delta's jars. Only the session check is forced; every
    part it then runs is real."""
    class Switch:
        def __enter__(self):
            monkeypatch.setattr("seeknal_spark.session.has_delta_jvm", lambda spark: False)

        def __exit__(self, *exc):
            monkeypatch.undo()

    return Switch()
