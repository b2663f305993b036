"""Operations across layers: publishing a training set's lookups online, and the Spark-based skew check.

This layer sits above retrieval and serving (it uses both); only the interfaces (CLI, jobs, notebooks) are above.
"""

from __future__ import annotations

from seeknal_spark.workflows.online import publish_online
from seeknal_spark.workflows.skew import FeatureSkew, SkewReport, check_skew

__all__ = ["publish_online", "FeatureSkew", "SkewReport", "check_skew"]
