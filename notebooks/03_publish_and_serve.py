# Databricks notebook source
# MAGIC %md
# MAGIC # 3. Publish online and serve
# MAGIC
# MAGIC Publishes the latest value per user of `user_daily_spend` (notebook 1) as a new version of a DuckDB online
# MAGIC table, then looks features up without Spark (what a model server does).

# COMMAND ----------

dbutils.widgets.text("store", "", "Offline store root (empty: conf/seeknal.ini default)")
dbutils.widgets.text("online_store", "", "Online store root (empty: conf/seeknal.ini default)")
dbutils.widgets.text("project", "notebooks", "Project")
dbutils.widgets.text("table", "user_features", "Online table name")
dbutils.widgets.text("as_of", "", "Serve values known at this time (ISO-8601; empty: now)")
dbutils.widgets.text("users", "1,2,3", "Comma-separated user ids to look up")

STORE = dbutils.widgets.get("store") or None
ONLINE_STORE = dbutils.widgets.get("online_store") or None
PROJECT, TABLE = dbutils.widgets.get("project"), dbutils.widgets.get("table")
AS_OF = dbutils.widgets.get("as_of") or None
USER_IDS = [int(u) for u in dbutils.widgets.get("users").split(",") if u.strip()]

# COMMAND ----------

from seeknal_spark import FeatureGroup, FeatureStoreFileOutput, Materialization, OfflineMaterialization, OfflineStore
from seeknal_spark.serving import OnlineFeatures, ServingSource, publish_online_table

store = OfflineStore(value=FeatureStoreFileOutput(path=STORE)) if STORE else None
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
