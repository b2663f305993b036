"""Where ``HistoricalFeatures.serve`` hands its lookups: the online publisher (dependency inversion).

Retrieval sits below serving and never imports it. The layer above both (``seeknal_spark.workflows.online``)
registers the publisher when it is imported, and the package root imports it, so any process that imports
``seeknal_spark`` (which importing any of its modules does first) can call ``hist.serve(...)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, List, Optional

from seeknal_spark.errors import StoreError

__all__ = ["Publisher", "register_publisher", "publish"]

# (hist, name, start, end, **options) -> the published online table
Publisher = Callable[..., Any]
_publishers: List[Publisher] = []


def register_publisher(publisher: Publisher) -> None:
    """Make ``publisher`` the one ``HistoricalFeatures.serve`` calls (the last registration wins)."""
    _publishers[:] = [publisher]


def publish(hist: Any, name: str, start: Optional[dt.datetime], end: Optional[dt.datetime], **options: Any) -> Any:
    """Publish ``hist``'s lookups as online table ``name`` with the registered publisher."""
    if not _publishers:
        raise StoreError("no online publisher is registered; import seeknal_spark (or "
                         "seeknal_spark.workflows.online) before calling serve()")
    return _publishers[0](hist, name, start, end, **options)
