"""The compact, JSON-able result of one validation (what goes into the Delta commit metadata)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from seeknal_spark.validation.builtin import EVENT_MICROS_COL

__all__ = ["FailedExpectation", "ValidationOutcome"]

MAX_OBSERVED = 10  # example unexpected values kept per failed expectation
_MAX_TEXT = 200


def _jsonable(value: Any) -> Any:
    """Plain JSON values (datetimes, decimals, numpy scalars become strings/numbers)."""
    text = json.dumps(value, default=str)
    return json.loads(text)


def _short(value: Any) -> Any:
    if isinstance(value, list):
        return [_short(v) for v in value]
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return value[:_MAX_TEXT] + "..."
    return value


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that failed: its type, column(s), arguments and what was observed."""

    expectation: str
    column: Union[str, List[str], None]
    kwargs: Dict[str, Any] = field(default_factory=dict)
    builtin: Optional[str] = None
    unexpected_count: Optional[int] = None
    unexpected_percent: Optional[float] = None
    observed: Any = None  # observed_value, or example unexpected values
    error: Optional[str] = None

    def describe(self) -> str:
        where = f" on column {self.column!r}" if self.column is not None else ""
        label = f" (built-in {self.builtin})" if self.builtin else ""
        args = {k: v for k, v in self.kwargs.items() if k not in ("column", "column_list")}
        text = f"{self.expectation}{where}{label}"
        if args:
            text += f" {args}"
        if self.error:
            return text + f": could not be evaluated: {self.error}"
        if self.unexpected_count is not None:
            pct = f" ({self.unexpected_percent:.4g}%)" if self.unexpected_percent is not None else ""
            text += f": {self.unexpected_count} unexpected rows{pct}"
            if self.observed:
                text += f", e.g. {self.observed}"
            return text
        return text + f": observed {self.observed!r}"

    def to_dict(self) -> Dict[str, Any]:
        data = {"expectation": self.expectation, "column": self.column, "kwargs": self.kwargs,
                "builtin": self.builtin, "unexpected_count": self.unexpected_count,
                "unexpected_percent": self.unexpected_percent, "observed": self.observed, "error": self.error}
        return {k: v for k, v in data.items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "FailedExpectation":
        return cls(expectation=data["expectation"], column=data.get("column"), kwargs=data.get("kwargs", {}),
                   builtin=data.get("builtin"), unexpected_count=data.get("unexpected_count"),
                   unexpected_percent=data.get("unexpected_percent"), observed=data.get("observed"),
                   error=data.get("error"))


@dataclass(frozen=True)
class ValidationOutcome:
    """Success, failed expectations and counts of one validation run.

    Example:
        >>> outcome = fg.validate()                                      # doctest: +SKIP
        >>> outcome.success, outcome.evaluated, [f.column for f in outcome.failures]  # doctest: +SKIP
        (False, 7, ['amount'])
    """

    success: bool
    policy: str
    suite: Optional[str]
    source: Optional[str]
    rows: Optional[int]
    evaluated: int
    successful: int
    failures: Tuple[FailedExpectation, ...] = ()
    seconds: Optional[float] = None
    gx_version: Optional[str] = None

    @property
    def failed(self) -> int:
        return len(self.failures)

    def summary(self) -> str:
        head = (f"{self.failed} of {self.evaluated} expectations failed"
                + (f" on {self.rows} rows" if self.rows is not None else "")
                + (f" (suite {self.suite!r})" if self.suite else " (built-in expectations)"))
        return head + "".join(f"\n  - {f.describe()}" for f in self.failures)

    def to_dict(self) -> Dict[str, Any]:
        return {"success": self.success, "policy": self.policy, "suite": self.suite, "source": self.source,
                "rows": self.rows, "evaluated": self.evaluated, "successful": self.successful,
                "failed": self.failed, "failures": [f.to_dict() for f in self.failures],
                "seconds": self.seconds, "gx_version": self.gx_version}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ValidationOutcome":
        return cls(success=bool(data["success"]), policy=data.get("policy", ""), suite=data.get("suite"),
                   source=data.get("source"), rows=data.get("rows"), evaluated=int(data.get("evaluated", 0)),
                   successful=int(data.get("successful", 0)),
                   failures=tuple(FailedExpectation.from_dict(f) for f in data.get("failures", [])),
                   seconds=data.get("seconds"), gx_version=data.get("gx_version"))


def _column(kwargs: Dict[str, Any], seeknal: Dict[str, Any]) -> Union[str, List[str], None]:
    if seeknal.get("column"):
        return seeknal["column"]
    if "column" in kwargs:
        return kwargs["column"]
    if "column_list" in kwargs:
        return list(kwargs["column_list"])
    if "column_A" in kwargs and "column_B" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return None


def _micros_to_iso(value: Any) -> Any:
    from seeknal_spark.timeutil import from_micros

    if isinstance(value, float) and value.is_integer():
        value = int(value)  # GX turns min_value/max_value into floats (exact below 2**53 us, i.e. year 2255)
    if isinstance(value, int) and not isinstance(value, bool):
        return from_micros(value).isoformat()
    return value


def failure_from_result(result: Dict[str, Any]) -> FailedExpectation:
    """A :class:`FailedExpectation` from one GX ExpectationValidationResult (as ``to_json_dict()``)."""
    config = result.get("expectation_config") or {}
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    seeknal = (config.get("meta") or {}).get("seeknal") or {}
    res = result.get("result") or {}
    exc = result.get("exception_info") or {}
    error = None
    if exc.get("raised_exception"):
        error = exc.get("exception_message")
    else:  # keyed by metric id when a metric failed
        for value in exc.values():
            if isinstance(value, dict) and value.get("raised_exception"):
                error = value.get("exception_message")
                break
    observed: Any
    if "observed_value" in res:
        observed = res["observed_value"]
    else:
        observed = list(res.get("partial_unexpected_list") or [])[:MAX_OBSERVED] or None
    if kwargs.get("column") == EVENT_MICROS_COL:  # built-in range check: show instants, not microseconds
        observed = [_micros_to_iso(v) for v in observed] if isinstance(observed, list) else observed
        kwargs = {k: _micros_to_iso(v) for k, v in kwargs.items() if k != "column"}
    return FailedExpectation(
        expectation=str(config.get("type")), column=_column(kwargs, seeknal), kwargs=_jsonable(kwargs),
        builtin=seeknal.get("builtin"), unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"), observed=_short(_jsonable(observed)),
        error=_short(error) if error else None)
