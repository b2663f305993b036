"""The Spark-free vocabulary every layer speaks: group and feature references, the lookup spec, time units.

Retrieval resolves a ``FeatureLookup`` to a :class:`LookupSpec`; the training manifest and the online table's
metadata record the same spec; parity compares specs. Nothing here imports pyspark, DuckDB or Great Expectations.
"""

from __future__ import annotations

from seeknal_spark.vocabulary.specs import (
    FeatureRef,
    GroupRef,
    LookupSpec,
    duration_micros,
    micros_duration,
)

__all__ = ["FeatureRef", "GroupRef", "LookupSpec", "duration_micros", "micros_duration"]
