# Databricks notebook source
# MAGIC %md
# MAGIC # 3. Publish online and serve
# MAGIC
# MAGIC Publishes the latest value per user of `user_daily_spend` (notebook 1) as a new version of a DuckDB online
# MAGIC table, then looks features up without Spark (what a model server does).

# COMMAND ----------

# notebook_setup.py, next to the notebooks, holds what 01-03 share: the "store" widget (default: a Unity Catalog
# volume on Databricks, ./seeknal_store elsewhere; another volume or s3://... works too) and the "project" widget.
import notebook_setup

# The same widgets mean the same thing in notebooks 01-03 (a job can pass one set of parameters to all three).
notebook_setup.define_widgets(dbutils)
dbutils.widgets.text("table", "user_features", "Online table name")
dbutils.widgets.text("as_of", "", "Serve values known at this time (ISO-8601; empty: now)")
dbutils.widgets.text("user_ids", "1,2,3", "Comma-separated user ids to look up")

STORE, OFFLINE_STORE, ONLINE_STORE, PROJECT = notebook_setup.store_settings(dbutils)
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
