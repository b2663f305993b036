"""A feature group's validation settings and the staged check the writer runs before committing."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from seeknal_spark.errors import DefinitionError
from seeknal_spark.validation.builtin import EVENT_MICROS_COL, builtin_expectations, needs_event_micros
from seeknal_spark.validation.errors import ValidationFailed
from seeknal_spark.validation.outcome import ValidationOutcome
from seeknal_spark.validation.suites import SuiteSource, SuiteSpec, expectation_list, load_suite

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

__all__ = ["POLICIES", "CHECK_NAME", "ValidationConfig", "validate_frame"]

log = logging.getLogger(__name__)

POLICIES = ("strict", "warn")
CHECK_NAME = "validation"  # key under seeknal.write -> checks in the commit metadata


@dataclass(frozen=True)
class ValidationConfig:
    """How a feature group validates its writes.

    ``suite`` (optional) adds user expectations to the built-in ones (unless ``builtins=False``). ``policy``
    ``"strict"`` rejects a failing write (nothing is committed, :class:`ValidationFailed` is raised); ``"warn"``
    commits it, logs a warning and records the failures in the commit metadata. The staged rows a write validates
    are already materialized Parquet files, so they are not cached by default (``persist_staged=True`` caches them
    while the expectations run and releases them afterwards; measured slower in benchmarks/bench_validation.py).

    Example:
        >>> cfg = ValidationConfig.create("expectations/user_spend.yaml", policy="warn")   # doctest: +SKIP
    """

    suite: Optional[SuiteSpec] = None
    policy: str = "strict"
    builtins: bool = True
    persist_staged: bool = False

    @classmethod
    def create(cls, suite: SuiteSource = None, policy: str = "strict", builtins: bool = True,
               persist_staged: bool = False) -> "ValidationConfig":
        if policy not in POLICIES:
            raise DefinitionError(f"validation policy {policy!r} is not one of {POLICIES}")
        spec = load_suite(suite)
        if spec is None and not builtins:
            raise DefinitionError("validation with builtins=False needs a suite: pass suite=... or enable builtins")
        return cls(suite=spec, policy=policy, builtins=builtins, persist_staged=persist_staged)

    def expectations(self, join_keys: Sequence[str], event_time_col: str, feature_types: Sequence[Tuple[str, Any]],
                     start: Optional[dt.datetime], end: Optional[dt.datetime]) -> List[Dict[str, Any]]:
        built = builtin_expectations(join_keys, event_time_col, feature_types, start, end) if self.builtins else []
        return built + expectation_list(self.suite)

    def staged_check(self, group: str, join_keys: Sequence[str], event_time_col: str,
                     feature_types: Sequence[Tuple[str, Any]], start: Optional[dt.datetime],
                     end: Optional[dt.datetime]) -> Any:
        """The function the writer calls on the staged rows: validates, applies the policy, returns the outcome."""
        expectations = self.expectations(join_keys, event_time_col, feature_types, start, end)

        def check(staged: "DataFrame") -> Dict[str, object]:
            outcome = validate_frame(staged, expectations, event_time_col, self, persist=self.persist_staged)
            return apply_policy(outcome, group)

        return check


def validate_frame(df: "DataFrame", expectations: Sequence[Dict[str, Any]], event_time_col: str,
                   config: ValidationConfig, persist: bool = True) -> ValidationOutcome:
    """Run ``expectations`` on ``df`` (adding the UTC-microseconds helper column if needed).

    ``persist=True`` caches ``df`` while the expectations run, so a computed DataFrame is computed once, and
    releases it afterwards.
    """
    from pyspark.sql import functions as F

    from seeknal_spark.validation.runner import run_expectations

    frame = df
    if needs_event_micros(expectations):
        frame = frame.withColumn(EVENT_MICROS_COL, F.unix_micros(F.col(event_time_col)))
    cached = False
    if persist:
        from pyspark import StorageLevel

        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        cached = True
    try:
        return run_expectations(frame, expectations, suite=config.suite.name if config.suite else None,
                                source=config.suite.source if config.suite else None, policy=config.policy)
    finally:
        if cached:
            frame.unpersist()


def apply_policy(outcome: ValidationOutcome, group: str) -> Dict[str, object]:
    """Raise (strict) or warn on a failed outcome; return its dict for the commit metadata."""
    if not outcome.success:
        if outcome.policy == "strict":
            log.error("validation of feature group %s failed; nothing was written: %s", group, outcome.summary())
            raise ValidationFailed(
                f"validation of feature group {group} failed (policy strict), nothing was written: "
                f"{outcome.summary()}\nFix the data or the suite, or use set_validation(policy='warn') to write "
                "and record the failures.", outcome)
        log.warning("validation of feature group %s failed (policy warn, data written anyway): %s", group,
                    outcome.summary())
    return outcome.to_dict()
