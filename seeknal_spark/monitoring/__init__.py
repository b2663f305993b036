"""Monitoring of the offline store: freshness and distribution drift of what was written.

Training-serving parity (Spark-free) is ``seeknal_spark.serving.parity``; the Spark-based skew check is
``seeknal_spark.workflows.skew`` (both re-exported by the package root).
"""

from __future__ import annotations

from seeknal_spark.monitoring.drift import DriftReport, FeatureDrift, drift, population_stability_index
from seeknal_spark.monitoring.freshness import Freshness, StaleFeatureWarning, freshness

__all__ = ["Freshness", "StaleFeatureWarning", "freshness", "DriftReport", "FeatureDrift", "drift",
           "population_stability_index"]
