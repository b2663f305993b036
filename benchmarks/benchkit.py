"""What the benchmark scripts share: generated feature rows, the benchmark feature group, write-path selection,
timing and load helpers. Not a benchmark itself.

Importing it puts the repository on ``sys.path`` (the scripts import ``seeknal_spark`` and ``tests.support``
from the checkout). Spark and the library are imported inside the functions, so ``--help`` starts no JVM.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["REPO", "START", "EventFrames", "source", "file_store", "user_group", "delta_jvm_session",
           "write_path", "timed", "load"]

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)  # the first event time of every generated data set


class EventFrames:
    """Rows of ``keys`` users, ``rows // keys`` event times per user evenly spaced over ``days`` days from
    :data:`START`, ``features`` double features ``f0..``: one cached DataFrame per :meth:`frame` call."""

    def __init__(self, spark: Any, rows: int, keys: int, days: int, features: int) -> None:
        self.spark, self.features = spark, features
        self.per_key = max(1, rows // keys)
        self.start = START
        self.step_s = days * 86400 // self.per_key

    def frame(self, n_keys: int, times: int, offset_s: int, salt: float) -> Any:
        """``n_keys`` users x ``times`` event times from ``START + offset_s``; features ``rand(i) + salt``."""
        from pyspark.sql import functions as F

        df = self.spark.range(n_keys * times).select(
            (F.col("id") % n_keys).alias("user_id"),
            F.timestamp_seconds(F.lit(int(self.start.timestamp()) + offset_s)
                                + (F.col("id") / n_keys).cast("long") * self.step_s).alias("event_time"))
        for i in range(self.features):
            df = df.withColumn(f"f{i}", F.rand(i) + F.lit(salt))
        return df.cache()


def source(spark: Any, rows: int, keys: int, days: int, features: int) -> Any:
    """``keys`` users with ``rows // keys`` rows each over ``days`` days: row i of a user sits at a hashed offset in
    the i-th time slot; ``features`` uniform double features ``f0..`` (not cached)."""
    from pyspark.sql import functions as F

    per_key = max(1, rows // keys)
    span = days * 86_400
    step = max(1, span // per_key)
    base = F.lit(int(START.timestamp()))
    # One row per (key, time): row i of key k sits in the i-th slot of length ``step``.
    return spark.range(per_key * keys).select(
        (F.col("id") % keys).alias("user_id"),
        F.timestamp_seconds(base + (F.col("id") / keys).cast("long") * step
                            + F.pmod(F.xxhash64("id"), F.lit(step))).alias("event_time"),
        *[F.rand(i).alias(f"f{i}") for i in range(features)])


def file_store(path: str, name: Optional[str] = None, storage_options: Optional[Dict[str, str]] = None) -> Any:
    """An offline store of Delta tables under ``path`` (local or ``s3://``)."""
    from seeknal_spark import FeatureStoreFileOutput, OfflineStore

    return OfflineStore(name=name, value=FeatureStoreFileOutput(path=path, storage_options=storage_options))


def user_group(name: str, store: Any, mode: str = "overwrite", project: str = "default") -> Any:
    """The benchmark feature group: entity ``user`` keyed by ``user_id``, event time ``event_time``, on ``store``."""
    from seeknal_spark import Entity, FeatureGroup, Materialization, OfflineMaterialization

    return FeatureGroup(name, entity=Entity("user", ["user_id"]), project=project, materialization=Materialization(
        event_time_col="event_time", offline_materialization=OfflineMaterialization(store=store, mode=mode)))


def delta_jvm_session(app_name: str, extra_jars: Sequence[str] = ()) -> Any:
    """A classic local session with Delta's JVM jars (``tests/support/jvm.py``) and ``extra_jars``."""
    from seeknal_spark.session import local_session
    from tests.support.jvm import delta_session_conf

    conf = delta_session_conf()
    if extra_jars:
        conf["spark.jars"] = ",".join([*conf["spark.jars"].split(","), *extra_jars])
    return local_session(app_name=app_name, extra={**conf, "spark.driver.memory": "4g",
                                                   "spark.databricks.delta.snapshotPartitions": "2"})


@contextlib.contextmanager
def write_path(path: str) -> Iterator[None]:
    """Writes inside take ``path``: ``native`` (Spark's own Delta writer, when the session has Delta's jars) or
    ``portable`` (staged Parquet + delta-rs: the library's Delta-JVM check answers "no"; its own parts run)."""
    import seeknal_spark.session as session_mod

    real_check = session_mod.has_delta_jvm
    session_mod.has_delta_jvm = real_check if path == "native" else (lambda s: False)
    try:
        yield
    finally:
        session_mod.has_delta_jvm = real_check


@contextlib.contextmanager
def timed(out: Dict[str, float], step: str) -> Iterator[None]:
    """Store the wall seconds of the block in ``out[step]`` (when it completes)."""
    t0 = time.perf_counter()
    yield
    out[step] = time.perf_counter() - t0


def load() -> str:
    """The 1-minute load average, as printed next to the figures."""
    return "%.1f" % os.getloadavg()[0]
