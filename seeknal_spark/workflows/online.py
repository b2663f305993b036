"""Publish a HistoricalFeatures online: retrieval resolves the lookups (and, on a Delta-JVM session, reads the
snapshots with Spark), serving exports and publishes the DuckDB file. Registered as retrieval's publisher."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from seeknal_spark.offline.metadata_spark import session_or_none
from seeknal_spark.retrieval.publishing import register_publisher
from seeknal_spark.retrieval.serve_rows import spark_rows_provider
from seeknal_spark.serving import OnlineFeatures, ServingSource, publish_online_table

__all__ = ["publish_online"]


def publish_online(hist: Any, name: str, start: Optional[dt.datetime], end: Optional[dt.datetime],
                   **options: Any) -> OnlineFeatures:
    """Publish the latest row per key of ``hist``'s lookups within ``[start, end]`` as online table ``name``
    (``options``: those of ``publish_online_table``)."""
    rows = spark_rows_provider(session_or_none())
    sources = [ServingSource.from_spec(r.spec, rows=rows, storage_options=r.storage_options) for r in hist.resolve()]
    return publish_online_table(sources, name, start=start, end=end, **options)


register_publisher(publish_online)
