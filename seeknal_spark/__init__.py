"""seeknal_spark: a Spark-native feature platform.

Define features once (``FeatureGroup``), materialize them into Delta tables, build point-in-time correct
training sets, and serve the same values online from a DuckDB file.
"""

from __future__ import annotations

from seeknal_spark.definitions import (
    Entity,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
    OfflineStoreEnum,
)
from seeknal_spark.errors import (
    DataError,
    DefinitionError,
    LabelExistsError,
    SchemaError,
    SeeknalError,
    StoreError,
    UnsupportedTableError,
    ConcurrentWriteError,
    VersionLabelError,
)
from seeknal_spark.feature_group import FeatureGroup
from seeknal_spark.offline.labels import LabelledVersion
from seeknal_spark.offline.state import SchemaVersion
from seeknal_spark.offline.writer import WriteResult
from seeknal_spark.retrieval import (
    FeatureLookup,
    FillNull,
    HistoricalFeatures,
    HistoricalFeaturesWithSpine,
    ManifestError,
    SpineMismatchError,
)
from seeknal_spark.serving import OnlineFeatures
from seeknal_spark.serving.parity import ParityError, validate_parity
from seeknal_spark.transform import FeatureTransform, feature_transform, load_reference
from seeknal_spark.validation import ValidationFailed, ValidationOutcome, load_suite
from seeknal_spark.version import __version__
from seeknal_spark.workflows.skew import SkewReport, check_skew

__all__ = [
    "Entity",
    "FeatureGroup",
    "FeatureTransform",
    "feature_transform",
    "load_reference",
    "FeatureStoreFileOutput",
    "Materialization",
    "OfflineMaterialization",
    "OfflineStore",
    "OfflineStoreEnum",
    "FeatureLookup",
    "FillNull",
    "HistoricalFeatures",
    "HistoricalFeaturesWithSpine",
    "OnlineFeatures",
    "validate_parity",
    "check_skew",
    "ParityError",
    "SkewReport",
    "ManifestError",
    "SpineMismatchError",
    "SchemaVersion",
    "WriteResult",
    "SeeknalError",
    "DefinitionError",
    "SchemaError",
    "DataError",
    "StoreError",
    "UnsupportedTableError",
    "ConcurrentWriteError",
    "VersionLabelError",
    "LabelExistsError",
    "LabelledVersion",
    "ValidationFailed",
    "ValidationOutcome",
    "load_suite",
]
