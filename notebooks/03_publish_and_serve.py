# Databricks notebook source
# MAGIC %md
# MAGIC # 3. Publish online and serve
# MAGIC
# MAGIC Publishes the latest value per user of `user_daily_spend` (notebook 1) as a new version of a DuckDB online
# MAGIC table, then looks features up without Spark (what a model server does).

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
dbutils.widgets.text("table", "user_features", "Online table name")
dbutils.widgets.text("as_of", "", "Serve values known at this time (ISO-8601; empty: now)")
dbutils.widgets.text("user_ids", "1,2,3", "Comma-separated user ids to look up")

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
TABLE = dbutils.widgets.get("table")
AS_OF = dbutils.widgets.get("as_of") or None
USER_IDS = [int(u) for u in dbutils.widgets.get("user_ids").split(",") if u.strip()]

# COMMAND ----------

from seeknal_spark import FeatureGroup, FeatureStoreFileOutput, Materialization, OfflineMaterialization, OfflineStore
from seeknal_spark.serving import OnlineFeatures, ServingSource, publish_online_table

store = OfflineStore(value=FeatureStoreFileOutput(path=OFFLINE_STORE))
spend = FeatureGroup("user_daily_spend", project=PROJECT, materialization=Materialization(
    event_time_col="day_end", offline_materialization=OfflineMaterialization(store=store))).get_or_create()

published = publish_online_table([ServingSource.from_feature_group(spend)], TABLE, as_of=AS_OF,
                                 store_root=ONLINE_STORE)
print(f"published {published.name} version {published.version}: {len(published)} keys, "
      f"features {published.feature_names} at {published.location}")
published.close()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Serve
# MAGIC `OnlineFeatures` needs no Spark: it reads the published DuckDB file (copy it next to the model server).

# COMMAND ----------

online = OnlineFeatures.open(TABLE, store_root=ONLINE_STORE)
served = online.get_features(keys=[{"user_id": u} for u in USER_IDS])
online.close()
for row in served:
    print(row)
