# Databricks notebook source
# MAGIC %md
# MAGIC # 2. Build a point-in-time correct training set
# MAGIC
# MAGIC Joins the features of `user_daily_spend` (notebook 1) onto a labelled spine: each label row gets the latest
# MAGIC feature values known at its `label_time`, never later ones. Uses the notebook's `spark` session.

# COMMAND ----------

# notebook_setup.py, next to the notebooks, holds what 01-03 share: the "store" widget (default: a Unity Catalog
# volume on Databricks, ./seeknal_store elsewhere; another volume or s3://... works too) and the "project" widget.
import notebook_setup

# The same widgets mean the same thing in notebooks 01-03 (a job can pass one set of parameters to all three).
notebook_setup.define_widgets(dbutils)
dbutils.widgets.text("users", "2000", "Users in the generated data")
dbutils.widgets.text("spine_rows", "5000", "Labelled spine rows")
dbutils.widgets.text("ttl_days", "30", "Maximum feature age in days (empty: no limit)")
dbutils.widgets.text("output", "", "Write the training set here as Parquet (empty: do not write)")

STORE, OFFLINE_STORE, ONLINE_STORE, PROJECT = notebook_setup.store_settings(dbutils)
USERS, SPINE_ROWS = int(dbutils.widgets.get("users")), int(dbutils.widgets.get("spine_rows"))
TTL_DAYS = dbutils.widgets.get("ttl_days")
OUTPUT = dbutils.widgets.get("output")

# COMMAND ----------

import datetime as dt

from seeknal_spark import FeatureGroup, FeatureStoreFileOutput, Materialization, OfflineMaterialization, OfflineStore
from seeknal_spark.examples import retail
from seeknal_spark.retrieval import FeatureLookup, FillNull, HistoricalFeatures

store = OfflineStore(value=FeatureStoreFileOutput(path=OFFLINE_STORE))
# The stored definition (keys, event time, features) is read back from the Delta log.
spend = FeatureGroup("user_daily_spend", project=PROJECT, materialization=Materialization(
    event_time_col="day_end", offline_materialization=OfflineMaterialization(store=store))).get_or_create()
spine = retail.labels(spark, users=USERS, n=SPINE_ROWS)

# COMMAND ----------

ttl = dt.timedelta(days=int(TTL_DAYS)) if TTL_DAYS else None
historical = HistoricalFeatures(lookups=[FeatureLookup(source=spend, ttl=ttl, prefix="user_")],
                                fill_nulls=[FillNull(0, "bigint")])
training_set = historical.using_spine(spine, date_col="label_time",
                                      keep_cols=["will_order_big"]).to_dataframe_with_spine()
display(training_set.orderBy("user_id", "label_time").limit(20))

# COMMAND ----------

if OUTPUT:
    training_set.write.mode("overwrite").parquet(OUTPUT)
    print(f"training set written to {OUTPUT}")
