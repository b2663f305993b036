"""Online serving: publish the latest feature values into a DuckDB lookup file and serve them without Spark.

Nothing in this package imports pyspark.
"""

from __future__ import annotations

from seeknal_spark.serving.manifest import ChecksumError
from seeknal_spark.serving.online import OnlineFeatures
from seeknal_spark.serving.publish import list_online_versions, publish_online_table
from seeknal_spark.serving.source import ServingSource

__all__ = ["ServingSource", "OnlineFeatures", "publish_online_table", "list_online_versions", "ChecksumError"]
