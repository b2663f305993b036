"""Shared fixtures: one classic local Spark session per test run, and a Spark Connect session on the same JVM."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.support.s3 import s3_endpoint  # noqa: F401 - the loopback S3 fixture, registered once for every test

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SEEKNAL_CONF_DIR", str(REPO / "conf"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def connect_port() -> int:
    return _free_port()


@pytest.fixture(scope="session")
def spark(connect_port):
    from seeknal_spark.session import local_session

    session = local_session(
        app_name="seeknal_spark_tests",
        extra={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
               "spark.connect.grpc.binding.port": str(connect_port),
               "spark.driver.memory": "2g"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def connect_spark(spark, connect_port):
    """A Spark Connect session served by the test JVM (what Databricks serverless and shared clusters run)."""
    import pyspark

    if int(pyspark.__version__.split(".")[0]) < 4:
        pytest.skip(f"pyspark {pyspark.__version__} ships no Spark Connect server jar (Connect runs on the 4.x line)")
    # Test-only: start the Connect service on the classic session's JVM so both share one JVM.
    spark._jvm.org.apache.spark.sql.connect.service.SparkConnectService.start(spark._jsc.sc())
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    session = ConnectSession.builder.remote(f"sc://127.0.0.1:{connect_port}").getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    yield session
    session.stop()


@pytest.fixture(params=["classic", "connect"])
def any_spark(request, spark, monkeypatch):
    """Run a test on both a classic session and a Spark Connect session.

    ``pyspark.sql.functions`` builds Connect columns only when ``SPARK_CONNECT_MODE_ENABLED`` is set (as it is in
    a real Connect client process); the Connect variant sets it for the duration of the test.
    """
    if request.param == "classic":
        return spark
    session = request.getfixturevalue("connect_spark")
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    return session


@pytest.fixture
def store(tmp_path):
    from seeknal_spark import FeatureStoreFileOutput, OfflineStore, OfflineStoreEnum

    return OfflineStore(kind=OfflineStoreEnum.FILE, name="test",
                        value=FeatureStoreFileOutput(path=str(tmp_path / "offline")))


@pytest.fixture
def tz(spark):
    """Set the session time zone for one test and restore UTC after it."""
    def _set(name: str) -> None:
        spark.conf.set("spark.sql.session.timeZone", name)
    yield _set
    spark.conf.set("spark.sql.session.timeZone", "UTC")
