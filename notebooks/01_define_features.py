# Databricks notebook source
# MAGIC %md
# MAGIC # 1. Define features and materialize them
# MAGIC
# MAGIC Declares a feature group as a named Spark transformation, materializes it for a time range into the offline
# MAGIC store (one Delta commit per write) and reads it back. It uses the notebook's own `spark` session; nothing
# MAGIC here creates or reconfigures a session. On a Databricks runtime install only the library (it does not bring
# MAGIC pyspark: the runtime's own is used): `%pip install seeknal_spark`.

# COMMAND ----------

# notebook_setup.py, next to the notebooks, holds what 01-03 share: the "store" widget (default: a Unity Catalog
# volume on Databricks, ./seeknal_store elsewhere; another volume or s3://... works too) and the "project" widget.
import notebook_setup

# The same widgets mean the same thing in notebooks 01-03 (a job can pass one set of parameters to all three).
notebook_setup.define_widgets(dbutils)
dbutils.widgets.text("start", "2024-01-01", "Start (ISO-8601, inclusive)")
dbutils.widgets.text("end", "2024-02-29T23:59:59.999999", "End (ISO-8601, inclusive)")
dbutils.widgets.text("users", "2000", "Users in the generated data")
dbutils.widgets.text("days", "60", "Days of generated orders")
dbutils.widgets.text("run_id", "", "Run id (empty: not idempotent)")

STORE, OFFLINE_STORE, ONLINE_STORE, PROJECT = notebook_setup.store_settings(dbutils)
START, END = dbutils.widgets.get("start"), dbutils.widgets.get("end")
USERS, DAYS = int(dbutils.widgets.get("users")), int(dbutils.widgets.get("days"))
RUN_ID = dbutils.widgets.get("run_id") or None

# COMMAND ----------

# MAGIC %md
# MAGIC ## Sources and the feature transformation
# MAGIC A source is a callable taking the session (or a path). The transformation turns sources and a time range
# MAGIC into one row per (join keys, event time).

# COMMAND ----------

from pyspark.sql import functions as F

from seeknal_spark import FeatureStoreFileOutput, OfflineStore, feature_transform
from seeknal_spark.examples import retail


def orders_source(session):
    return retail.orders(session, users=USERS, days=DAYS)


@feature_transform(name="user_daily_spend", entity=retail.USER, event_time_col="day_end",
                   sources={"orders": orders_source}, project=PROJECT)
def user_daily_spend(sources, start, end):
    """Orders and spend per user and day, known at the end of the day (UTC)."""
    o = sources["orders"]
    day_end = F.timestamp_micros((F.floor(F.unix_micros("order_time") / 86_400_000_000) + 1).cast("long")
                                 * 86_400_000_000 - 1)
    return (o.withColumn("day_end", day_end).groupBy("user_id", "day_end")
            .agg(F.count(F.lit(1)).alias("orders"), F.round(F.sum("amount"), 2).alias("spend")))


store = OfflineStore(value=FeatureStoreFileOutput(path=OFFLINE_STORE))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Materialize
# MAGIC One Delta commit; rerunning with the same `run_id` writes nothing.

# COMMAND ----------

write_result = user_daily_spend.materialize(START, END, spark=spark, store=store, run_id=RUN_ID)
feature_group = user_daily_spend.feature_group(store).get_or_create()
print(f"{feature_group.name}: {write_result.rows} rows written, Delta version {feature_group.delta_version}, "
      f"schema version {feature_group.schema_version}, {len(feature_group.offline_watermarks)} daily partitions "
      f"at {feature_group.table_path}")

# COMMAND ----------

features_df = feature_group.to_dataframe(spark=spark)
display(features_df.orderBy("user_id", "day_end").limit(20))
