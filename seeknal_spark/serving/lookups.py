"""Glue from point-in-time lookups to serving sources, duck-typed so serving never imports retrieval (or Spark)."""

from __future__ import annotations

from typing import Any, Iterable, List

from seeknal_spark.serving.source import ServingSource

__all__ = ["sources_from_resolved"]


def sources_from_resolved(resolved: Iterable[Any]) -> List[ServingSource]:
    """ServingSources from resolved lookups (``HistoricalFeatures.resolve()``: objects with ``table_path``,
    ``join_keys``, ``event_time_col``, ``features``, ``output_names``, ``ttl`` and ``lookup.source`` (the group))."""
    out = []
    for r in resolved:
        group = r.lookup.source
        out.append(ServingSource(table_uri=r.table_path, project=group.project, name=group.name,
                                 join_keys=list(r.join_keys), event_time_col=r.event_time_col,
                                 features=list(zip(r.features, r.output_names)), ttl=r.ttl))
    return out
