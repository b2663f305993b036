"""Feature monitoring: freshness, distribution drift, and training-serving parity and skew checks."""

from __future__ import annotations

from seeknal_spark.monitoring.drift import DriftReport, FeatureDrift, drift, population_stability_index
from seeknal_spark.monitoring.freshness import Freshness, StaleFeatureWarning, freshness
from seeknal_spark.monitoring.parity import FeatureSkew, ParityError, SkewReport, check_skew, validate_parity

__all__ = ["Freshness", "StaleFeatureWarning", "freshness", "DriftReport", "FeatureDrift", "drift",
           "population_stability_index", "ParityError", "validate_parity", "check_skew", "SkewReport",
           "FeatureSkew"]
