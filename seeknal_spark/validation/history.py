"""Validation outcomes recorded in a feature group's Delta log (commit metadata ``seeknal.write.checks``)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from seeknal_spark.validation.check import CHECK_NAME
from seeknal_spark.validation.outcome import ValidationOutcome

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


def _write_info(entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    from seeknal_spark.offline.state import WRITE_KEY

    raw: Any = entry.get(WRITE_KEY)
    if raw is None and entry.get("userMetadata"):
        try:
            raw = json.loads(str(entry["userMetadata"])).get(WRITE_KEY)
        except (ValueError, AttributeError):
            raw = None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def validation_history(uri: str, limit: Optional[int] = None) -> List[ValidationRecord]:
    """Validation outcomes of the writes committed to the Delta table at ``uri``, newest first."""
    from seeknal_spark.offline import delta_log

    table = delta_log.open_table(uri)
    if table is None:
        return []
    records: List[ValidationRecord] = []
    for entry in delta_log.history(table):
        info = _write_info(entry)
        checks = (info or {}).get("checks") or {}
        data = checks.get(CHECK_NAME) if isinstance(checks, dict) else None
        if not isinstance(data, dict) or "success" not in data:
            continue
        stamp = entry.get("timestamp")
        when = (dt.datetime.fromtimestamp(int(stamp) / 1000, dt.timezone.utc)
                if isinstance(stamp, (int, float)) else None)
        records.append(ValidationRecord(version=int(entry.get("version", -1)), timestamp=when,
                                        mode=info.get("mode"), rows=info.get("rows"), run_id=info.get("run_id"),
                                        outcome=ValidationOutcome.from_dict(data)))
        if limit is not None and len(records) >= limit:
            break
    return records
