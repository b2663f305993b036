"""Data validation of feature-group writes with Great Expectations.

Suites attach to a feature group (GX objects, dicts, or JSON/YAML files in ``conf/``); built-in expectations come
from the group's definition; validation runs on the staged rows of a write before its Delta commit. Nothing here
imports Great Expectations at module import time.

Example:
    >>> fg.set_validation("expectations/user_spend.yaml", policy="strict")   # doctest: +SKIP
    >>> fg.write()                                                           # doctest: +SKIP
    >>> [r.outcome.success for r in fg.validation_history()]                 # doctest: +SKIP
    [True]
"""

from __future__ import annotations

from seeknal_spark.validation.builtin import builtin_expectations
from seeknal_spark.validation.check import CHECK_NAME, POLICIES, ValidationConfig, validate_frame
from seeknal_spark.validation.errors import (
    GreatExpectationsMissing,
    SuiteError,
    ValidationFailed,
)
from seeknal_spark.validation.history import ValidationRecord, validation_history
from seeknal_spark.validation.outcome import FailedExpectation, ValidationOutcome
from seeknal_spark.validation.suites import SuiteSpec, load_suite

__all__ = [
    "CHECK_NAME",
    "POLICIES",
    "FailedExpectation",
    "GreatExpectationsMissing",
    "SuiteError",
    "SuiteSpec",
    "ValidationConfig",
    "ValidationFailed",
    "ValidationOutcome",
    "ValidationRecord",
    "builtin_expectations",
    "load_suite",
    "validate_frame",
    "validation_history",
]
