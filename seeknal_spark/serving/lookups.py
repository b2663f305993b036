"""Glue from point-in-time lookups to serving sources, duck-typed so serving never imports retrieval (or Spark)."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional

from seeknal_spark.serving.provided import RowsProvider
from seeknal_spark.serving.source import ServingSource

__all__ = ["sources_from_resolved"]


def sources_from_resolved(resolved: Iterable[Any], rows: Optional[RowsProvider] = None) -> List[ServingSource]:
    """ServingSources from resolved lookups (``HistoricalFeatures.resolve()``: objects with ``table_path``,
    ``join_keys``, ``event_time_col``, ``features``, ``output_names``, ``ttl`` and ``lookup.source`` (the group)).

    A lookup pinned to a Delta version or a version label is published from exactly that version. ``rows``: the
    provider that reads every source's snapshot (None: the export reads the files itself)."""
    out = []
    for r in resolved:
        group = r.lookup.source
        label = getattr(r, "label", None)
        pinned = label is not None or getattr(r.lookup, "delta_version", None) is not None
        out.append(ServingSource(table_uri=r.table_path, project=group.project, name=group.name,
                                 join_keys=list(r.join_keys), event_time_col=r.event_time_col,
                                 features=list(zip(r.features, r.output_names)), ttl=r.ttl,
                                 delta_version=r.delta_version if pinned else None, label=label,
                                 rows=rows, storage_options=getattr(r, "storage_options", None)))
    return out
