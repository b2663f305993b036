"""Point-in-time correct retrieval of features from the offline store."""

from __future__ import annotations

from seeknal_spark.retrieval.historical import HistoricalFeatures, HistoricalFeaturesWithSpine
from seeknal_spark.retrieval.lookup import FeatureLookup, FillNull
from seeknal_spark.retrieval.manifest import ManifestError, SpineMismatchError

__all__ = ["FeatureLookup", "FillNull", "HistoricalFeatures", "HistoricalFeaturesWithSpine", "ManifestError",
           "SpineMismatchError"]
