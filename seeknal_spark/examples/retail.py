"""A small retail example: generated orders and user profiles, and two feature groups defined on them.

The generators are deterministic Spark code (no driver-side loops), so the demo runs the same everywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Optional

from seeknal_spark.definitions import Entity
from seeknal_spark.transform import feature_transform

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["USER", "START", "DAYS", "orders", "profiles", "user_daily_orders", "user_profile", "labels"]

USER = Entity(name="user", join_keys=["user_id"], description="A customer of the shop")
START = dt.date(2024, 1, 1)
DAYS = 120
USERS = 2000


def orders(spark: "SparkSession", users: int = USERS, days: int = DAYS) -> "DataFrame":
    """One to three orders per user on about a third of the days, Jan-Apr 2024; amounts grow for a third of users in April."""
    from pyspark.sql import functions as F

    base = spark.range(users * days).select(
        (F.col("id") % users).alias("user_id"), (F.col("id") / users).cast("int").alias("day"))
    picked = (base.where(F.rand(7) < 0.33)  # an active day for about a third of (user, day) pairs
              .withColumn("n", F.explode(F.sequence(F.lit(1), (F.rand(5) * 3).cast("int") + 1))))
    start = F.lit(dt.datetime(START.year, START.month, START.day, tzinfo=dt.timezone.utc))
    ts = F.timestamp_micros(F.unix_micros(start) + F.col("day").cast("long") * 86_400_000_000
                            + (F.rand(11) * 86_399_000_000).cast("long"))
    drift = F.when((F.col("day") >= 91) & (F.col("user_id") % 3 == 0), F.lit(2.5)).otherwise(F.lit(1.0))
    amount = F.round((F.lit(5.0) + F.rand(13) * 45.0 + (F.col("user_id") % 10)) * drift, 2)
    return picked.select("user_id", ts.alias("order_time"), amount.alias("amount"),
                         F.when(F.rand(17) < 0.2, "mobile").otherwise("web").alias("channel"))


def profiles(spark: "SparkSession", users: int = USERS, days: int = DAYS) -> "DataFrame":
    """A weekly profile snapshot per user (tenure and segment)."""
    from pyspark.sql import functions as F

    weeks = days // 7 + 1
    base = spark.range(users * weeks).select(
        (F.col("id") % users).alias("user_id"), (F.col("id") / users).cast("int").alias("week"))
    snap = F.timestamp_micros(
        F.lit(int(dt.datetime(START.year, START.month, START.day, tzinfo=dt.timezone.utc).timestamp() * 1e6))
        + F.col("week").cast("long") * 7 * 86_400_000_000)
    segment = F.element_at(F.array(F.lit("new"), F.lit("regular"), F.lit("vip")),
                           (F.col("user_id") % 3 + 1).cast("int"))
    return base.select("user_id", snap.alias("snapshot_time"),
                       ((F.col("user_id") % 365) + F.col("week") * 7).alias("tenure_days"),
                       segment.alias("segment"))


@feature_transform(name="user_daily_orders", entity=USER, event_time_col="day_end",
                   sources={"orders": orders})
def user_daily_orders(sources, start: Optional[dt.datetime], end: Optional[dt.datetime]) -> "DataFrame":
    """Orders per user and day: count, total and mean amount, share of mobile orders (known at day end)."""
    from pyspark.sql import functions as F

    o = sources["orders"]
    day_end = F.timestamp_micros((F.floor(F.unix_micros("order_time") / 86_400_000_000) + 1).cast("long")
                                 * 86_400_000_000 - 1)
    return (o.withColumn("day_end", day_end)
            .groupBy("user_id", "day_end")
            .agg(F.count(F.lit(1)).alias("order_count"), F.round(F.sum("amount"), 2).alias("total_amount"),
                 F.round(F.avg("amount"), 2).alias("mean_amount"),
                 F.avg((F.col("channel") == "mobile").cast("double")).alias("mobile_share")))


@feature_transform(name="user_profile", entity=USER, event_time_col="snapshot_time",
                   sources={"profiles": profiles})
def user_profile(sources, start: Optional[dt.datetime], end: Optional[dt.datetime]) -> "DataFrame":
    """Weekly user profile: tenure in days and segment."""
    return sources["profiles"]


def labels(spark: "SparkSession", users: int = USERS, n: int = 5000, seed: int = 3) -> "DataFrame":
    """A labelled spine: (user_id, label_time, will_order_big) sampled over Feb-Apr 2024."""
    from pyspark.sql import functions as F

    start = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
    span = 85 * 86_400_000_000
    base = spark.range(n).select(
        (F.abs(F.hash(F.col("id"), F.lit(seed))) % users).cast("long").alias("user_id"),
        F.timestamp_micros(F.lit(int(start.timestamp() * 1e6)) + (F.rand(seed) * span).cast("long"))
        .alias("label_time"))
    return base.withColumn("will_order_big", ((F.col("user_id") % 3 == 0) | (F.rand(seed + 1) < 0.1)).cast("int"))
