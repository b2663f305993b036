"""Validation outcomes recorded in a feature group's Delta log (commit metadata ``seeknal.write.checks``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from seeknal_spark.validation.check import CHECK_NAME
from seeknal_spark.validation.outcome import ValidationOutcome

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = ["ValidationRecord", "validation_history"]


@dataclass(frozen=True)
class ValidationRecord:
    """The validation outcome of one committed write."""

    version: int
    timestamp: Optional[dt.datetime]
    mode: Optional[str]
    rows: Optional[int]
    run_id: Optional[str]
    outcome: ValidationOutcome

    def to_dict(self) -> Dict[str, Any]:
        return {"version": self.version, "timestamp": self.timestamp.isoformat() if self.timestamp else None,
                "mode": self.mode, "rows": self.rows, "run_id": self.run_id, **self.outcome.to_dict()}


def validation_history(uri: str, limit: Optional[int] = None,
                       spark: "Optional[SparkSession]" = None,
                       storage_options: Optional[Mapping[str, str]] = None) -> List[ValidationRecord]:
    """Validation outcomes of the writes committed to the Delta table at ``uri``, newest first.

    Read through the session's metadata engine (Delta's Spark API on Delta-JVM sessions, else delta-rs).
    """
    from seeknal_spark.offline.metadata import table_metadata
    from seeknal_spark.offline.metadata_spark import session_or_none

    records: List[ValidationRecord] = []
    session = spark if spark is not None else session_or_none()
    for commit in table_metadata(uri, session, storage_options).commits():
        info = commit.write
        checks = (info or {}).get("checks") or {}
        data = checks.get(CHECK_NAME) if isinstance(checks, dict) else None
        if not isinstance(data, dict) or "success" not in data:
            continue
        assert info is not None
        records.append(ValidationRecord(version=commit.version, timestamp=commit.committed_at,
                                        mode=info.get("mode"), rows=info.get("rows"), run_id=info.get("run_id"),
                                        outcome=ValidationOutcome.from_dict(data)))
        if limit is not None and len(records) >= limit:
            break
    return records
