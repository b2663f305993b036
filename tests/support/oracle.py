"""The point-in-time oracle every test compares the library against: plain Python loops over the raw rows written,
sharing no code with the implementation.

The as-of row of a key at time ``at``: among the rows of that key with ``start <= event time <= at`` (and
``event time >= at - ttl`` when a TTL is given), the one with the latest event time; ties go to the later write
(``rank``, else the later position in ``rows``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Iterable, Optional

__all__ = ["latest_as_of"]


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
