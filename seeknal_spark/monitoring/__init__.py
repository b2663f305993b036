"""Feature monitoring: freshness of the newest data and distribution drift between two time windows."""

from __future__ import annotations

from seeknal_spark.monitoring.drift import DriftReport, FeatureDrift, drift, population_stability_index
from seeknal_spark.monitoring.freshness import Freshness, freshness

__all__ = ["Freshness", "freshness", "DriftReport", "FeatureDrift", "drift", "population_stability_index"]
