"""The point-in-time oracle every test compares the library against: plain Python loops over the raw rows written,
sharing no code with the implementation.

The as-of row of a key at time ``at``: among the rows of that key with ``start <= event time <= at`` (and
``event time >= at - ttl`` when a TTL is given), the one with the latest event time; ties go to the later write
(``rank``, else the later position in ``rows``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

__all__ = ["latest_as_of", "OverwriteAppendOracle"]


def latest_as_of(rows: Iterable[Any], match: Callable[[Any], bool], time_of: Callable[[Any], dt.datetime],
                 at: dt.datetime, *, start: Optional[dt.datetime] = None, ttl: Optional[dt.timedelta] = None,
                 rank: Optional[Callable[[Any], Any]] = None) -> Any:
    """The as-of row of ``rows`` (see the module doc) among those ``match`` accepts; None when there is none."""
    best, best_order = None, None
    for position, row in enumerate(rows):
        if not match(row):
            continue
        ts = time_of(row)
        if ts > at or (start is not None and ts < start) or (ttl is not None and ts < at - ttl):
            continue
        order = (ts, rank(row) if rank is not None else position)
        if best_order is None or order >= best_order:
            best, best_order = row, order
    return best


class OverwriteAppendOracle:
    """Rows ``(user, event time, value)`` after a first write, an overwrite of ``[lo, hi]`` and an append: what the
    store-level end-to-end tests (local, S3, Delta-JVM) write, and the values they must read back."""

    def __init__(self, first: Sequence[Tuple[Any, dt.datetime, Any]],
                 overwrite: Sequence[Tuple[Any, dt.datetime, Any]], overwrite_range: Tuple[dt.datetime, dt.datetime],
                 append: Sequence[Tuple[Any, dt.datetime, Any]]) -> None:
        lo, hi = overwrite_range
        kept = [r for r in first if not lo <= r[1] <= hi] + [r for r in overwrite if lo <= r[1] <= hi]
        self.rows = sorted(kept + list(append))

    def value_as_of(self, user: Any, at: dt.datetime) -> Any:
        """The value of ``user`` as of ``at`` (None: no row yet)."""
        row = latest_as_of(self.rows, lambda r: r[0] == user, lambda r: r[1], at)
        return None if row is None else row[2]

    def training(self, spine: Iterable[Tuple[Any, dt.datetime]], iso: Callable[[dt.datetime], str]) -> List[list]:
        """Sorted ``[user, iso(time), value as of time]`` of every spine row."""
        return sorted([u, iso(t), self.value_as_of(u, t)] for u, t in spine)

    def latest(self, users: Iterable[Any]) -> List[dict]:
        """``{"user", "v"}`` with each user's latest value, as an online table serves it."""
        return [{"user": u, "v": self.value_as_of(u, dt.datetime.max)} for u in users]
