"""The delta-rs engine of :class:`~seeknal_spark.offline.metadata.TableMetadata` (no JVM, no Spark)."""

from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional

from seeknal_spark.offline import delta_log
from seeknal_spark.offline.metadata import CommitRecord, TableMetadata
from seeknal_spark.offline.state import GroupState

__all__ = ["DeltaRsMetadata"]


class DeltaRsMetadata(TableMetadata):
    """Table metadata read with delta-rs."""

    def __init__(self, uri: str, storage_options: Optional[Dict[str, str]] = None) -> None:
        super().__init__(uri)
        self.storage_options = storage_options

    def latest_version(self) -> Optional[int]:
        table = delta_log.open_table(self.uri, storage_options=self.storage_options)
        return None if table is None else table.version()

    def commits(self, limit: Optional[int] = None) -> List[CommitRecord]:
        table = delta_log.open_table(self.uri, storage_options=self.storage_options)
        if table is None:
            return []
        return [CommitRecord.from_entry(e) for e in delta_log.history(table, limit)]

    def state(self, version: Optional[int] = None) -> Optional[GroupState]:
        table = delta_log.open_table(self.uri, version, storage_options=self.storage_options)
        return None if table is None else delta_log.read_state(table)

    def dates(self, version: Optional[int] = None) -> List[dt.date]:
        table = delta_log.open_table(self.uri, version, storage_options=self.storage_options)
        if table is None:
            return []
        return sorted({f.date for f in delta_log.live_files(table) if f.date is not None})

    def row_count(self, version: Optional[int] = None) -> Optional[int]:
        table = delta_log.open_table(self.uri, version, storage_options=self.storage_options)
        if table is None:
            return None
        counts = [f.num_records for f in delta_log.live_files(table)]
        return None if any(c is None for c in counts) else int(sum(counts))  # type: ignore[arg-type]

    def run_version(self, app_id: str) -> Optional[int]:
        return delta_log.app_version(self.uri, app_id, self.storage_options)

    def check_readable(self, version: Optional[int] = None) -> None:
        table = delta_log.open_table(self.uri, version, storage_options=self.storage_options)
        if table is not None:
            delta_log.check_portable(table)
