# Databricks notebook source
# MAGIC %md
# MAGIC # 2. Build a point-in-time correct training set
# MAGIC
# MAGIC Joins the features of `user_daily_spend` (notebook 1) onto a labelled spine: each label row gets the latest
# MAGIC feature values known at its `label_time`, never later ones. Uses the notebook's `spark` session.

# COMMAND ----------

import os

# Where the store lives by default: on Databricks a Unity Catalog volume (one path that Spark and the Spark-free
# readers, delta-rs and DuckDB, both open through the /Volumes mount); elsewhere ./seeknal_store. Edit the widget
# to use another location (another volume, or s3://... with credentials for Spark and delta-rs).
ON_DATABRICKS = bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))
DEFAULT_STORE = "/Volumes/main/default/seeknal/seeknal_store" if ON_DATABRICKS else "./seeknal_store"

# The same widgets mean the same thing in notebooks 01-03 (a job can pass one set of parameters to all three).
dbutils.widgets.text("store", DEFAULT_STORE, "Store root (offline/ and online/ below it)")
dbutils.widgets.text("project", "notebooks", "Project")
dbutils.widgets.text("users", "2000", "Users in the generated data")
dbutils.widgets.text("spine_rows", "5000", "Labelled spine rows")
dbutils.widgets.text("ttl_days", "30", "Maximum feature age in days (empty: no limit)")
dbutils.widgets.text("output", "", "Write the training set here as Parquet (empty: do not write)")

STORE = dbutils.widgets.get("store").strip().rstrip("/")
if not STORE:
    raise ValueError(f"the 'store' widget is empty: set it to the store root, e.g. {DEFAULT_STORE}")
if "://" not in STORE:
    STORE = os.path.abspath(STORE)
if STORE.startswith("/Volumes/") and not os.path.isdir("/".join(STORE.split("/")[:5])):
    volume = ".".join(STORE.split("/")[2:5])
    raise FileNotFoundError(f"Unity Catalog volume {volume} does not exist: create it (CREATE VOLUME {volume}) "
                            "or set the 'store' widget to a location you can write")
OFFLINE_STORE, ONLINE_STORE = f"{STORE}/offline", f"{STORE}/online"
PROJECT = dbutils.widgets.get("project")
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
