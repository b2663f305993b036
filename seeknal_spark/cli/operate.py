"""Operator commands behind ``seeknal-spark list|describe|history|vacuum``: read the store's Delta logs (delta-rs,
no Spark, no JVM) and return plain JSON-ready dicts; ``seeknal_spark.cli`` prints them as text or ``--json``.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from typing import Any, Dict, List, Optional

from seeknal_spark.cli.spec import UsageError

__all__ = ["GroupRef", "list_groups", "describe_group", "group_history", "vacuum_group"]

HISTORY_LIMIT = 20


class GroupRef:
    """A stored feature group: store root, project and name (the table is ``<root>/<project>/<name>``)."""

    def __init__(self, root: str, project: str, name: str) -> None:
        from seeknal_spark.offline.layout import table_uri

        self.root, self.project, self.name = root, project, name
        self.table = table_uri(root, project, name)

    @property
    def label(self) -> str:
        return f"{self.project}/{self.name}"


def _utc_ms(value: Any) -> Optional[str]:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc).isoformat()
    return None


def _open(ref: GroupRef) -> Any:
    from seeknal_spark.offline import delta_log

    table = delta_log.open_table(ref.table)
    if table is None:
        raise UsageError(f"feature group {ref.label} does not exist in store {ref.root} (no Delta table at "
                         f"{ref.table}); `seeknal-spark list --store {ref.root}` shows the groups there")
    return table


def _write_info(entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    from seeknal_spark.offline.state import commit_write_info

    return commit_write_info(entry)


def _commit(entry: Dict[str, Any]) -> Dict[str, Any]:
    """One Delta commit as an operator sees it: version, time, operation, and the seeknal write it carried."""
    info = _write_info(entry)
    out: Dict[str, Any] = {"version": int(entry.get("version", -1)), "timestamp": _utc_ms(entry.get("timestamp")),
                           "operation": entry.get("operation"), "write": None}
    if info is not None:
        checks = info.get("checks") or {}
        validation = next((v for v in checks.values() if isinstance(v, dict) and "success" in v), None) \
            if isinstance(checks, dict) else None
        out["write"] = {"mode": info.get("mode"), "start": info.get("start"), "end": info.get("end"),
                        "rows": info.get("rows"), "run_id": info.get("run_id"),
                        "schema_version": info.get("schema_version"),
                        "partitions_written": info.get("partitions_written") or [],
                        "validation": None if validation is None else bool(validation["success"])}
    return out


def _live_stats(table: Any) -> Dict[str, Any]:
    from seeknal_spark.offline import delta_log

    files = delta_log.live_files(table)
    rows = [f.num_records for f in files]
    return {"files": len(files), "bytes": sum(f.size for f in files),
            "rows": sum(r for r in rows if r is not None) if all(r is not None for r in rows) else None}


def list_groups(root: str, project: Optional[str] = None) -> List[Dict[str, Any]]:
    """The feature groups of a local store: one dict per Delta table ``<root>/<project>/<name>``, sorted."""
    from seeknal_spark.offline import delta_log

    if "://" in root and not root.startswith("file:"):
        raise UsageError(f"list reads a local store directory; {root!r} is a URI (use describe GROUP on it)")
    base = root[len("file://"):] if root.startswith("file://") else root[5:] if root.startswith("file:") else root
    if not os.path.isdir(base):
        raise UsageError(f"offline store {root!r} does not exist (set --store or SEEKNAL_OFFLINE_STORE)")
    groups = []
    for proj in sorted(os.listdir(base)):
        if project is not None and proj != project:
            continue
        proj_dir = os.path.join(base, proj)
        if not os.path.isdir(proj_dir):
            continue
        for name in sorted(os.listdir(proj_dir)):
            if not os.path.isdir(os.path.join(proj_dir, name, "_delta_log")):
                continue
            ref = GroupRef(root, proj, name)
            table = delta_log.open_table(ref.table)
            if table is None:
                continue
            state = delta_log.read_state(table)
            last = _commit(delta_log.history(table, 1)[0])
            groups.append({"project": proj, "name": name, "table": ref.table, "delta_version": table.version(),
                           "schema_version": state.schema_version if state else None,
                           "features": state.latest.names if state and state.schemas else [],
                           "first_watermark": state.watermarks[0] if state and state.watermarks else None,
                           "last_watermark": state.watermarks[-1] if state and state.watermarks else None,
                           "last_commit": last["timestamp"], **_live_stats(table)})
    return groups


def describe_group(ref: GroupRef, freshness_threshold: dt.timedelta = dt.timedelta(days=1),
                   writes: int = 5, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Definition, schema versions, watermarks, last writes, validation outcomes and freshness of a group."""
    from seeknal_spark.typenames import type_name as _type_name
    from seeknal_spark.monitoring.freshness import freshness
    from seeknal_spark.offline import delta_log
    from seeknal_spark.validation.history import validation_history

    table = _open(ref)
    state = delta_log.read_state(table)
    if state is None:
        raise UsageError(f"{ref.table} is a Delta table but not a seeknal feature group (no seeknal.state)")
    commits = [_commit(e) for e in delta_log.history(table, None)]
    data = [c for c in commits if c["write"] is not None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # staleness is reported in the result, not warned
        fresh = freshness(ref.table, ref.label, state.event_time_col, freshness_threshold, now=now)
    return {
        "project": state.project, "name": state.name, "table": ref.table, "description": state.description,
        "entity": {"name": state.entity_name, "join_keys": list(state.join_keys),
                   "description": state.entity_description},
        "key_types": {k: _type_name(t) for k, t in state.key_types},
        "event_time_col": state.event_time_col,
        "delta_version": table.version(),
        "schema_version": state.schema_version,
        "schema_versions": [{"version": s.version, "features": {n: _type_name(t) for n, t in s.features}}
                            for s in state.schemas],
        "watermarks": list(state.watermarks),
        "writes_total": len(data),
        "last_writes": [{"version": c["version"], "timestamp": c["timestamp"], **c["write"]} for c in data[:writes]],
        "validation": [r.to_dict() for r in validation_history(ref.table, limit=writes)],
        "freshness": {"newest_event_time": fresh.newest_event_time.isoformat() if fresh.newest_event_time else None,
                      "checked_at": fresh.checked_at.isoformat(),
                      "age_seconds": fresh.age.total_seconds() if fresh.age is not None else None,
                      "threshold_seconds": fresh.threshold.total_seconds(), "stale": fresh.stale},
        **_live_stats(table),
    }


def group_history(ref: GroupRef, limit: Optional[int] = HISTORY_LIMIT) -> List[Dict[str, Any]]:
    """The group's Delta commits, newest first (data writes carry their seeknal write record)."""
    from seeknal_spark.offline import delta_log

    return [_commit(e) for e in delta_log.history(_open(ref), limit)]


def vacuum_group(ref: GroupRef, retention: dt.timedelta = dt.timedelta(days=7),
                 dry_run: bool = False) -> Dict[str, Any]:
    """``FeatureGroup.vacuum``: dead writers' leftovers, then Delta VACUUM of files older than ``retention``."""
    from seeknal_spark.definitions import FeatureStoreFileOutput, OfflineStore
    from seeknal_spark.feature_group import FeatureGroup

    if retention < dt.timedelta(0):
        raise UsageError(f"--retention must not be negative (got {retention})")
    _open(ref)
    group = FeatureGroup(ref.name, project=ref.project,
                         store=OfflineStore(value=FeatureStoreFileOutput(path=ref.root))).get_or_create()
    result = group.vacuum(retention=retention, dry_run=dry_run)
    files = sorted(result["vacuumed"])
    return {"table": ref.table, "dry_run": dry_run, "retention_hours": retention.total_seconds() / 3600,
            "files": files, "count": len(files), "removed_leftovers": sorted(result["removed_leftovers"])}
