"""Rows read by someone else for the online export: the protocol of a ``ServingSource``'s ``rows`` provider.

Without a provider the export reads a source itself: delta-rs lists the live Parquet files of the snapshot and
DuckDB reads them (local tables Delta-rs can read correctly). Where that is wrong or impossible (sessions with Delta's
JVM side: ``dbfs:/`` or cloud paths, deletion vectors), the retrieval layer hands each source a provider that reads
the snapshot with that engine and returns the rows as an Arrow table (``seeknal_spark.retrieval.serve_rows``). The
export then builds the online file from those rows exactly as it does from files: same checks, columns, types, keys
and metadata.

Nothing here imports pyspark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, List, Optional, Protocol, Sequence

from seeknal_spark.offline.state import GroupState

__all__ = ["SnapshotSource", "ProvidedSnapshot", "ProvidedRows", "RowsProvider"]


class SnapshotSource(Protocol):
    """What a provider reads of a source (``seeknal_spark.serving.source.ServingSource`` is one)."""

    table_uri: str
    join_keys: Sequence[str]
    event_time_col: str
    delta_version: Optional[int]


@dataclass(frozen=True)
class ProvidedSnapshot:
    """The Delta version a provider will read for a source, and the feature-group state recorded at it."""

    delta_version: int
    state: Optional[GroupState]


@dataclass(frozen=True)
class ProvidedRows:
    """A source's rows to serve (a ``pyarrow.Table``) and the data files they were read from (for the metadata)."""

    table: Any
    files: List[str]


class RowsProvider(Protocol):
    """Reads a source's Delta snapshot for the export (see the module doc)."""

    def snapshot(self, source: SnapshotSource) -> Optional[ProvidedSnapshot]:
        """``source.delta_version`` when pinned, else the table's latest version, with its state; None when no
        Delta table exists at ``source.table_uri``. Raises when the version does not exist."""
        ...

    def latest_rows(self, source: SnapshotSource, delta_version: int, columns: Sequence[str],
                    lower: Optional[dt.datetime], upper: dt.datetime) -> ProvidedRows:
        """Per join-key tuple (no key null), the row with the largest event time in ``[lower, upper]`` (``lower``
        None: unbounded) of the table at ``delta_version``: the join keys, the event-time column and those of
        ``columns`` (stored feature names) the snapshot has, as an Arrow table."""
        ...
