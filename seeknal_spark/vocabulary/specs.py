"""Group reference, feature reference and lookup spec: one spelling of "which features of which group, how".

Units and names, everywhere a spec is written (training manifest, online metadata) and compared (parity):

* ``table_uri``: the group's Delta table location;
* a feature has a ``stored_name`` (its column in the group's table), an ``output_name`` (the column it becomes in
  a training set or online table) and a ``type`` (the Delta spelling: ``"long"``, ``"array<double>"``);
* ``ttl_micros``: the TTL in integer microseconds (None: no limit);
* ``delta_version`` / ``schema_version``: the table snapshot and the schema version its features come from.

:meth:`LookupSpec.from_dict` also reads the older spellings (a manifest's ``group.table_path`` and feature
``name``/``output``; an online source's ``ttl_seconds`` and top-level group fields): one reader for every file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from seeknal_spark.sqltypes import type_label
from seeknal_spark.timeutil import duration_micros, micros_duration

__all__ = ["GroupRef", "FeatureRef", "LookupSpec", "duration_micros", "micros_duration", "specs_of"]


@dataclass(frozen=True)
class GroupRef:
    """A feature group as lookups see it: where its table is and how its rows are keyed and timed."""

    project: str
    name: str
    table_uri: str
    join_keys: Tuple[str, ...]
    event_time_col: str

    @property
    def label(self) -> str:
        """``project/name``."""
        return f"{self.project}/{self.name}"

    def to_dict(self) -> Dict[str, Any]:
        return {"project": self.project, "name": self.name, "table_uri": self.table_uri,
                "join_keys": list(self.join_keys), "event_time_col": self.event_time_col}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GroupRef":
        return cls(project=str(data["project"]), name=str(data["name"]),
                   table_uri=str(data.get("table_uri", data.get("table_path"))),
                   join_keys=tuple(data["join_keys"]), event_time_col=str(data["event_time_col"]))


@dataclass(frozen=True)
class FeatureRef:
    """One feature of a lookup: its stored column, the name it is served/trained under, and its type."""

    stored_name: str
    output_name: str
    type: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"stored_name": self.stored_name, "output_name": self.output_name, "type": self.type}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureRef":
        if "output_name" in data:  # the spec's own spelling
            stored, output, kind = data["stored_name"], data["output_name"], data.get("type")
        elif "output" in data:  # a training manifest's lookup entry: name = stored, output = output
            stored, output, kind = data["name"], data["output"], data.get("type")
        else:  # online metadata: name = output, stored_name = stored
            stored, output, kind = data["stored_name"], data["name"], data.get("offline_type", data.get("type"))
        return cls(str(stored), str(output), type_label(kind) if kind is not None else None)


@dataclass(frozen=True)
class LookupSpec:
    """What one lookup reads: the group, its features, the TTL, and the snapshot (Delta and schema version)."""

    group: GroupRef
    features: Tuple[FeatureRef, ...] = ()
    ttl_micros: Optional[int] = None
    delta_version: Optional[int] = None
    schema_version: Optional[int] = None
    label: Optional[str] = None

    @property
    def ttl(self) -> Optional[dt.timedelta]:
        return micros_duration(self.ttl_micros)

    @property
    def output_names(self) -> List[str]:
        return [f.output_name for f in self.features]

    def to_dict(self) -> Dict[str, Any]:
        return {"group": self.group.to_dict(), "features": [f.to_dict() for f in self.features],
                "ttl_micros": self.ttl_micros, "delta_version": self.delta_version,
                "schema_version": self.schema_version, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LookupSpec":
        """A spec from its dict, a training manifest's lookup entry, or an online metadata source."""
        group = data["group"] if "group" in data else data
        if data.get("ttl_micros") is not None:
            ttl: Optional[int] = int(data["ttl_micros"])
        elif data.get("ttl_seconds") is not None:
            ttl = int(round(float(data["ttl_seconds"]) * 1_000_000))
        else:
            ttl = None
        return cls(group=GroupRef.from_dict(group),
                   features=tuple(FeatureRef.from_dict(f) for f in data.get("features") or ()),
                   ttl_micros=ttl,
                   delta_version=_int_or_none(data.get("delta_version")),
                   schema_version=_int_or_none(data.get("schema_version")),
                   label=data.get("label"))

    def differences(self, other: "LookupSpec", *, ours: str = "here", theirs: str = "there",
                    delta_versions: bool = False) -> List[str]:
        """Readable differences of the group and snapshot fields (features are compared by the caller, who knows
        the order they are served in)."""
        label, a, b = self.group.label, self.group, other.group
        diffs = []
        if a.table_uri != b.table_uri:
            diffs.append(f"{label}: table {a.table_uri} {ours}, {b.table_uri} {theirs}")
        if list(a.join_keys) != list(b.join_keys):
            diffs.append(f"{label}: join keys {list(a.join_keys)} {ours}, {list(b.join_keys)} {theirs}")
        if a.event_time_col != b.event_time_col:
            diffs.append(f"{label}: event-time column {a.event_time_col!r} {ours}, {b.event_time_col!r} {theirs}")
        if self.ttl_micros != other.ttl_micros:
            diffs.append(f"{label}: TTL {_secs(self.ttl_micros)} s {ours}, {_secs(other.ttl_micros)} s {theirs}")
        if self.schema_version != other.schema_version:
            diffs.append(f"{label}: schema version {self.schema_version} {ours}, {other.schema_version} {theirs}")
        if delta_versions and self.delta_version != other.delta_version:
            diffs.append(f"{label}: Delta version {self.delta_version} {ours}, {other.delta_version} {theirs}")
        return diffs


def _int_or_none(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def _secs(micros: Optional[int]) -> Optional[float]:
    return None if micros is None else micros / 1_000_000


def specs_of(entries: Sequence[Mapping[str, Any]]) -> List[LookupSpec]:
    """Specs of a sequence of dicts (manifest lookups or online sources)."""
    return [LookupSpec.from_dict(e) for e in entries]
