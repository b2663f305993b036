"""A feature group's definition and history as kept in the Delta log.

Every data commit carries the whole state (definition, schema versions, watermarks) in its commit metadata under
``seeknal.state``, so the newest commit describes the table; the table properties ``seeknal.*`` mirror it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

__all__ = ["SchemaVersion", "GroupState", "WriteInfo", "STATE_KEY", "WRITE_KEY", "encode_commit_metadata",
           "decode_commit_metadata", "commit_write_info", "check_stored_definition", "next_state"]

STATE_KEY = "seeknal.state"
WRITE_KEY = "seeknal.write"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SchemaVersion:
    """One version of a feature group's feature schema: ordered (feature name, type) pairs.

    A type is Spark's ``DataType.jsonValue()`` (the Delta schema type): ``"double"``, ``"long"``, or a dict for
    complex types.
    """

    version: int
    features: Tuple[Tuple[str, Any], ...]

    @property
    def names(self) -> List[str]:
        return [name for name, _ in self.features]

    def types(self) -> Dict[str, Any]:
        """Feature name -> Spark/Delta type (e.g. ``"double"``, ``"long"``)."""
        return dict(self.features)


@dataclass(frozen=True)
class GroupState:
    """Everything the log says about a feature group."""

    project: str
    name: str
    entity_name: str
    join_keys: Tuple[str, ...]
    key_types: Tuple[Tuple[str, Any], ...]
    event_time_col: str
    description: Optional[str] = None
    entity_description: Optional[str] = None
    schemas: Tuple[SchemaVersion, ...] = ()
    watermarks: Tuple[str, ...] = ()  # ISO dates with data, sorted

    @property
    def schema_version(self) -> int:
        return self.schemas[-1].version if self.schemas else 0

    @property
    def latest(self) -> SchemaVersion:
        return self.schemas[-1]

    def schema(self, version: Optional[int] = None) -> SchemaVersion:
        if version is None:
            return self.latest
        for schema in self.schemas:
            if schema.version == version:
                return schema
        known = [s.version for s in self.schemas]
        raise KeyError(f"schema version {version} does not exist for {self.project}/{self.name}; versions: {known}")

    def all_features(self) -> List[Tuple[str, Any]]:
        """Every feature ever registered (the latest version holds them all: features are only added)."""
        return list(self.latest.features) if self.schemas else []

    def with_schema(self, features: Sequence[Tuple[str, Any]]) -> "GroupState":
        """This state with ``features`` registered: unchanged if they equal the latest version, else a new one."""
        features = tuple((n, t) for n, t in features)
        if self.schemas and self.latest.features == features:
            return self
        return replace(self, schemas=self.schemas + (SchemaVersion(self.schema_version + 1, features),))

    def with_watermarks(self, removed: Sequence[dt.date], added: Sequence[dt.date]) -> "GroupState":
        marks = set(self.watermarks) - {d.isoformat() for d in removed}
        marks |= {d.isoformat() for d in added}
        return replace(self, watermarks=tuple(sorted(marks)))

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "project": self.project,
            "name": self.name,
            "description": self.description,
            "entity": {"name": self.entity_name, "join_keys": list(self.join_keys),
                       "description": self.entity_description},
            "key_types": [list(kt) for kt in self.key_types],
            "event_time_col": self.event_time_col,
            "schemas": [{"version": s.version, "features": [list(f) for f in s.features]} for s in self.schemas],
            "watermarks": list(self.watermarks),
        }

    @classmethod
    def from_json(cls, text: str) -> "GroupState":
        data = json.loads(text)
        return cls(
            project=data["project"],
            name=data["name"],
            description=data.get("description"),
            entity_name=data["entity"]["name"],
            join_keys=tuple(data["entity"]["join_keys"]),
            entity_description=data["entity"].get("description"),
            key_types=tuple(tuple(kt) for kt in data["key_types"]),  # type: ignore[misc]
            event_time_col=data["event_time_col"],
            schemas=tuple(SchemaVersion(s["version"], tuple(tuple(f) for f in s["features"]))  # type: ignore[misc]
                          for s in data["schemas"]),
            watermarks=tuple(data.get("watermarks", ())),
        )

    def table_properties(self) -> Dict[str, str]:
        """The ``seeknal.*`` Delta table properties mirroring this state (values are strings)."""
        return {
            "seeknal.project": self.project,
            "seeknal.name": self.name,
            "seeknal.description": self.description or "",
            "seeknal.entity": self.entity_name,
            "seeknal.join_keys": json.dumps(list(self.join_keys)),
            "seeknal.event_time_col": self.event_time_col,
            "seeknal.features": json.dumps(dict(self.all_features())),
            "seeknal.schema_version": str(self.schema_version),
            "seeknal.watermarks": json.dumps(list(self.watermarks)),
            STATE_KEY: self.to_json(),
        }


@dataclass(frozen=True)
class WriteInfo:
    """What one write did, recorded in its commit metadata under ``seeknal.write``."""

    mode: str
    start: Optional[str]
    end: Optional[str]
    rows: int
    schema_version: int
    seq: int
    partitions_written: Tuple[str, ...] = ()
    run_id: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    label: Optional[str] = None  # the version label given to write(version=...), unique per group

    def to_json(self) -> str:
        data = {"mode": self.mode, "start": self.start, "end": self.end, "rows": self.rows,
                "schema_version": self.schema_version, "seq": self.seq,
                "partitions_written": list(self.partitions_written), "run_id": self.run_id, **self.extra}
        if self.label is not None:
            data["label"] = self.label
        return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)


def encode_commit_metadata(state: GroupState, info: WriteInfo) -> str:
    """The commit's ``userMetadata``: ``{"seeknal.state": {...}, "seeknal.write": {...}}`` (both write paths)."""
    return json.dumps({STATE_KEY: state.to_dict(), WRITE_KEY: json.loads(info.to_json())},
                      separators=(",", ":"), sort_keys=True, default=str)


def _commit_payload(entry: Dict[str, Any]) -> Tuple[Any, Any]:
    """The raw (state, write info) of one commit info: from ``userMetadata`` when it holds them, else the custom
    top-level keys of seeknal_spark 0.1 tables."""
    state_raw: Any = entry.get(STATE_KEY)
    write_raw: Any = entry.get(WRITE_KEY)
    user = entry.get("userMetadata")
    if user:
        try:
            decoded = json.loads(str(user))
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            state_raw = decoded.get(STATE_KEY, state_raw)
            write_raw = decoded.get(WRITE_KEY, write_raw)
    return state_raw, write_raw


def commit_write_info(entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The write info recorded in one commit info; None when it has none or it is unreadable (no state parsed)."""
    raw = _commit_payload(entry)[1]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def decode_commit_metadata(entry: Dict[str, Any]) -> Tuple[Optional[GroupState], Optional[Dict[str, Any]]]:
    """(state, write info) recorded in one commit info, whichever engine wrote or reads it.

    Current commits carry them in ``userMetadata`` (readable by every Delta engine, Spark's ``history()``
    included); tables written by seeknal_spark 0.1 carried them as custom top-level commit-info keys.
    """
    state_raw, write_raw = _commit_payload(entry)
    state = None
    if state_raw:
        state = GroupState.from_json(state_raw if isinstance(state_raw, str) else json.dumps(state_raw))
    write = None
    if write_raw:
        write = json.loads(write_raw) if isinstance(write_raw, str) else dict(write_raw)
    return state, write


def next_state(before: Optional[GroupState], base: GroupState, types: Dict[str, Any], features: Sequence[str],
               tolerate: Set[str] = frozenset()) -> GroupState:  # type: ignore[assignment]
    """The group's state after a write: the evolution rule of feature groups, in one place.

    ``base`` carries the write's definition (project, name, entity, join keys, event-time column); ``types`` maps
    every column of the written DataFrame to its Spark/Delta type JSON; ``features`` are the written features.
    A new group starts at schema version 1. Afterwards join keys, their types and the event-time column are fixed,
    every registered feature must be written with its registered type (``tolerate``: features registered by a
    concurrent writer since this write was planned, which its rows read as null), and new features make the next
    schema version. Raises SchemaError naming the column and what to do.
    """
    from seeknal_spark.errors import SchemaError
    from seeknal_spark.typenames import type_name

    keys = list(base.join_keys)
    if before is None:
        return replace(base, key_types=tuple((k, types[k]) for k in keys)).with_schema([(f, types[f]) for f in features])
    group, ts = base.name, base.event_time_col
    check_stored_definition(repr(group), before, keys, ts, "this write")
    for key, stored in before.key_types:
        if types[key] != stored:
            raise SchemaError(f"join key {key!r} has type {type_name(types[key])} but is stored as "
                              f"{type_name(stored)}; cast it to {type_name(stored)}")
    registered = before.latest.types()
    for name, stored in registered.items():
        if name not in types:
            if name in tolerate:
                continue
            raise SchemaError(f"feature {name!r} (schema version {before.schema_version}) is missing from the "
                              "DataFrame; every registered feature must be written (fill it with nulls if needed)")
        if types[name] != stored:
            raise SchemaError(f"feature {name!r} changes type from {type_name(stored)} to {type_name(types[name])}; "
                              f"changing a feature's type is not allowed: cast it back to {type_name(stored)} or "
                              "write it under a new name")
    added = [(f, types[f]) for f in features if f not in registered]
    return before.with_schema(list(before.latest.features) + added)


def check_stored_definition(group: str, stored: GroupState, join_keys: Sequence[str], event_time_col: str,
                            given_by: str) -> None:
    """Raise StoredDefinitionError unless ``join_keys`` and ``event_time_col`` (given by ``given_by``: a write, a
    lookup, a definition) are the ones the group is stored with: the one check of a definition against the log."""
    from seeknal_spark.errors import StoredDefinitionError

    if tuple(stored.join_keys) != tuple(join_keys):
        raise StoredDefinitionError(f"feature group {group} is stored with join keys {list(stored.join_keys)}; "
                                    f"{given_by} uses {list(join_keys)}")
    if stored.event_time_col != event_time_col:
        raise StoredDefinitionError(f"feature group {group} is stored with event-time column "
                                    f"{stored.event_time_col!r}; {given_by} uses {event_time_col!r}")
