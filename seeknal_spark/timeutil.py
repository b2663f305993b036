"""Time helpers shared by every layer. Naive datetimes are UTC; nothing depends on a session time zone."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional, Tuple, Type, Union

from seeknal_spark.errors import DefinitionError

__all__ = ["TimeLike", "to_utc", "time_range", "to_micros", "from_micros", "duration_micros", "micros_duration",
           "utc_date", "date_to_datetime", "pandas_utc", "check_range"]

TimeLike = Union[dt.datetime, dt.date, str]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_utc(value: Optional[TimeLike], what: str = "time") -> Optional[dt.datetime]:
    """Convert a datetime, date or ISO-8601 string to an aware UTC datetime (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise DefinitionError(f"{what} {value!r} is not an ISO-8601 date or datetime") from exc
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        try:
            return value.astimezone(dt.timezone.utc)
        except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is in year 10000 UTC
            raise DefinitionError(f"{what} {value.isoformat()} is outside the years 1-9999 in UTC") from None
    if isinstance(value, dt.date):
        return date_to_datetime(value)
    raise DefinitionError(f"{what} {value!r} is not a datetime, date or ISO-8601 string")


def time_range(start: Optional[TimeLike], end: Optional[TimeLike]) -> Tuple[Optional[dt.datetime],
                                                                          Optional[dt.datetime]]:
    """``feature_start_time``/``feature_end_time`` as UTC datetimes; refuses a range whose start is after its end."""
    start_t, end_t = to_utc(start, "feature_start_time"), to_utc(end, "feature_end_time")
    check_range(start_t, end_t)
    return start_t, end_t


def check_range(start: Optional[dt.datetime], end: Optional[dt.datetime], start_name: str = "feature_start_time",
                end_name: str = "feature_end_time", error: Type[DefinitionError] = DefinitionError) -> None:
    """Refuse an empty range (``start`` after ``end``; None is unbounded) with ``error``, a DefinitionError (the
    CLI passes its UsageError, which is one): the one empty-range check."""
    if start is not None and end is not None and start > end:
        raise error(f"empty time range: {start_name} {start.isoformat()} is after {end_name} {end.isoformat()}")


def date_to_datetime(value: dt.date) -> dt.datetime:
    """Midnight UTC of a date."""
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)


def to_micros(value: dt.datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact integer arithmetic)."""
    return duration_micros(value - _EPOCH)


def duration_micros(value: Optional[dt.timedelta]) -> Optional[int]:
    """A duration in integer microseconds (exact; None stays None): the one timedelta -> microseconds."""
    if value is None:
        return None
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def micros_duration(micros: Optional[int]) -> Optional[dt.timedelta]:
    """The inverse of :func:`duration_micros`."""
    return None if micros is None else dt.timedelta(microseconds=int(micros))


def from_micros(micros: int) -> dt.datetime:
    """Aware UTC datetime from microseconds since the epoch."""
    return _EPOCH + dt.timedelta(microseconds=micros)


def utc_date(value: dt.datetime) -> dt.date:
    """The UTC calendar date of an aware datetime."""
    return value.astimezone(dt.timezone.utc).date()


def pandas_utc(frame: Any) -> Any:
    """A copy of a pandas DataFrame whose datetime columns are UTC-aware (naive values are taken as UTC)."""
    import pandas as pd

    frame = frame.copy()
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            if getattr(series.dt, "tz", None) is None:
                series = series.dt.tz_localize("UTC")
            frame[name] = series.dt.tz_convert("UTC")
    return frame
