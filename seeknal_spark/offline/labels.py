"""Named feature versions: labels given to writes (``write(version="v1")``), read back from the Delta log.

A label is recorded in the ``seeknal.write`` commit metadata of the write that carries it (key ``label``), on both
write paths, and read through either metadata engine (:mod:`seeknal_spark.offline.metadata`). A label names exactly one
Delta version of a group: the data commit of that write. Labels are unique per group; a write that reuses one is
refused unless it is the same run (same ``run_id``), which the writer then skips as already committed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from seeknal_spark.errors import LabelExistsError, VersionLabelError
from seeknal_spark.offline.metadata import CommitRecord, TableMetadata

__all__ = ["LabelledVersion", "LABEL_KEY", "check_label", "labelled_versions", "resolve_label",
           "ensure_label_free"]

LABEL_KEY = "label"
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class LabelledVersion:
    """One labelled commit of a feature group.

    ``rows`` is the number of rows the group holds at that Delta version (from the Delta file statistics);
    ``rows_written`` the rows that write added (None when the writer did not record it).
    """

    label: str
    delta_version: int
    schema_version: int
    committed_at: dt.datetime
    rows: Optional[int]
    rows_written: Optional[int]
    run_id: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"label": self.label, "delta_version": self.delta_version, "schema_version": self.schema_version,
                "committed_at": self.committed_at.isoformat(), "rows": self.rows,
                "rows_written": self.rows_written, "run_id": self.run_id}


def check_label(label: Any, what: str = "version") -> str:
    """``label`` if it is a valid version label (letters, digits, ``.``, ``_``, ``-``; at most 128 characters)."""
    if not isinstance(label, str) or not _LABEL_RE.match(label):
        raise VersionLabelError(f"{what}={label!r} is not a valid version label: use a short name of letters, "
                                "digits, '.', '_' or '-' starting with a letter or digit, e.g. 'v1' or '2024-06'")
    return label


def _rows_written(record: CommitRecord) -> Optional[int]:
    rows = (record.write or {}).get("rows")
    return rows if isinstance(rows, int) and rows >= 0 else None


def _labelled(meta: TableMetadata) -> List[CommitRecord]:
    """Every labelled commit, oldest first."""
    out = [r for r in meta.commits() if r.write is not None and isinstance(r.write.get(LABEL_KEY), str)]
    return sorted(out, key=lambda r: r.version)


def labelled_versions(meta: TableMetadata) -> List[LabelledVersion]:
    """Every labelled commit of the table, oldest first (empty when there is no table)."""
    out = []
    for record in _labelled(meta):
        info = record.write or {}
        out.append(LabelledVersion(label=info[LABEL_KEY], delta_version=record.version,
                                   schema_version=int(info.get("schema_version", 0)),
                                   committed_at=record.committed_at, rows=meta.row_count(record.version),
                                   rows_written=_rows_written(record), run_id=info.get("run_id")))
    return out


def resolve_label(meta: TableMetadata, label: str, group: str = "") -> int:
    """The Delta version the label names (the first commit that carries it); VersionLabelError if none does."""
    check_label(label)
    records = _labelled(meta)
    for record in records:
        if (record.write or {}).get(LABEL_KEY) == label:
            return record.version
    known = [(r.write or {}).get(LABEL_KEY) for r in records]
    where = f"feature group {group}" if group else f"the table at {meta.uri}"
    raise VersionLabelError(f"{where} has no version labelled {label!r}; its labels are {known} "
                            "(label a write with write(..., version=...); list them with versions())")


def ensure_label_free(meta: TableMetadata, label: str, run_id: Optional[str], group: str = "") -> None:
    """Refuse a write labelled ``label`` when another commit already holds it (LabelExistsError).

    The same run (an equal, non-empty ``run_id``) may repeat its label: the writer skips that run anyway.
    """
    check_label(label)
    for record in _labelled(meta):
        info, version = record.write or {}, record.version
        if info.get(LABEL_KEY) != label:
            continue
        if run_id and info.get("run_id") == run_id:
            return
        where = f"feature group {group}" if group else f"the table at {meta.uri}"
        raise LabelExistsError(
            f"version label {label!r} of {where} already names Delta version {version} (run_id "
            f"{info.get('run_id')!r}); labels are unique per group: pick a new label, or read that version with "
            f"FeatureLookup(source=..., version={label!r}). Nothing was written.", label=label, delta_version=version)
