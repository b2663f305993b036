"""Named feature versions: labels given to writes (``write(version="v1")``), read back from the Delta log.

A label is recorded in the ``seeknal.write`` commit metadata of the write that carries it (key ``label``), on both
write paths (delta-rs custom metadata, or ``userMetadata`` of Spark's Delta writer). A label names exactly one
Delta version of a group: the data commit of that write. Labels are unique per group; a write that reuses one is
refused unless it is the same run (same ``run_id``), which the writer then skips as already committed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from seeknal_spark.errors import LabelExistsError, VersionLabelError
from seeknal_spark.offline import delta_log
from seeknal_spark.offline.state import WRITE_KEY

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


def _write_info(entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The ``seeknal.write`` dict of one commit info (portable: custom metadata; native: inside userMetadata)."""
    raw: Any = entry.get(WRITE_KEY)
    if raw is None and entry.get("userMetadata"):
        try:
            user = json.loads(str(entry["userMetadata"]))
        except ValueError:
            return None
        raw = user.get(WRITE_KEY) if isinstance(user, dict) else None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def _rows_written(info: Dict[str, Any], entry: Dict[str, Any]) -> Optional[int]:
    rows = info.get("rows")
    if isinstance(rows, int) and rows >= 0:
        return rows
    metrics = entry.get("operationMetrics") or {}
    value = metrics.get("numOutputRows") if isinstance(metrics, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _labelled_entries(uri: str, storage_options: Optional[Dict[str, str]] = None
                      ) -> List[tuple]:
    """(label, version, write info, commit info) of every labelled commit, oldest first."""
    table = delta_log.open_table(uri, storage_options=storage_options)
    if table is None:
        return []
    out = []
    for entry in delta_log.history(table):
        info = _write_info(entry)
        if info is not None and isinstance(info.get(LABEL_KEY), str):
            out.append((info[LABEL_KEY], int(entry["version"]), info, entry))
    out.sort(key=lambda item: item[1])
    return out


def labelled_versions(uri: str, storage_options: Optional[Dict[str, str]] = None) -> List[LabelledVersion]:
    """Every labelled commit of the table at ``uri``, oldest first (empty when there is no table)."""
    out = []
    for label, version, info, entry in _labelled_entries(uri, storage_options):
        snapshot = delta_log.open_table(uri, version, storage_options=storage_options)
        counts = [f.num_records for f in delta_log.live_files(snapshot)] if snapshot is not None else [None]
        rows = None if any(c is None for c in counts) else int(sum(counts))  # type: ignore[arg-type]
        stamp = entry.get("timestamp")
        committed = (dt.datetime.fromtimestamp(int(stamp) / 1000, dt.timezone.utc) if stamp is not None
                     else dt.datetime.fromtimestamp(0, dt.timezone.utc))
        out.append(LabelledVersion(label=label, delta_version=version,
                                   schema_version=int(info.get("schema_version", 0)), committed_at=committed,
                                   rows=rows, rows_written=_rows_written(info, entry), run_id=info.get("run_id")))
    return out


def resolve_label(uri: str, label: str, group: str = "", storage_options: Optional[Dict[str, str]] = None) -> int:
    """The Delta version the label names (the first commit that carries it); VersionLabelError if none does."""
    check_label(label)
    entries = _labelled_entries(uri, storage_options)
    for name, version, _, _ in entries:
        if name == label:
            return version
    known = [name for name, _, _, _ in entries]
    where = f"feature group {group}" if group else f"the table at {uri}"
    raise VersionLabelError(f"{where} has no version labelled {label!r}; its labels are {known} "
                            "(label a write with write(..., version=...); list them with versions())")


def ensure_label_free(uri: str, label: str, run_id: Optional[str], group: str = "",
                      storage_options: Optional[Dict[str, str]] = None) -> None:
    """Refuse a write labelled ``label`` when another commit already holds it (LabelExistsError).

    The same run (an equal, non-empty ``run_id``) may repeat its label: the writer skips that run anyway.
    """
    check_label(label)
    for name, version, info, _ in _labelled_entries(uri, storage_options):
        if name != label:
            continue
        if run_id and info.get("run_id") == run_id:
            return
        where = f"feature group {group}" if group else f"the table at {uri}"
        raise LabelExistsError(
            f"version label {label!r} of {where} already names Delta version {version} (run_id "
            f"{info.get('run_id')!r}); labels are unique per group: pick a new label, or read that version with "
            f"FeatureLookup(source=..., version={label!r}). Nothing was written.", label=label, delta_version=version)
