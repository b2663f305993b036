"""ServingSource: one feature lookup to publish online (a feature group's Delta table and the features to serve)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Union

from seeknal_spark.definitions import check_name
from seeknal_spark.errors import DefinitionError
from seeknal_spark.sqltypes import type_label
from seeknal_spark.timeutil import duration_micros
from seeknal_spark.vocabulary import FeatureRef, GroupRef, LookupSpec

if TYPE_CHECKING:  # pragma: no cover
    from seeknal_spark.offline.provided import RowsProvider

__all__ = ["ServingSource"]

FeatureSpec = Union[str, Tuple[str, str]]


@dataclass(frozen=True)
class ServingSource:
    """One lookup of an online table: which feature group, keyed how, serving which features under which names.

    Args:
        table_uri: location of the feature group's Delta table (``FeatureGroup.table_path``).
        project: project of the feature group.
        name: feature group name.
        join_keys: the entity's join keys (the key dicts passed to ``get_features`` must contain them).
        event_time_col: the group's event-time column.
        features: ``(stored_name, output_name)`` pairs (a plain string serves a feature under its own name);
            None or empty serves every feature of the group's latest schema under its own name.
        ttl: rows older than ``as_of - ttl`` are not served (the key then returns null features); None = no limit.
        delta_version: publish the group as of this Delta version (None: its current version).
        label: the version label ``delta_version`` came from (recorded in the online table's metadata).
        rows: who reads the group's snapshot (:class:`~seeknal_spark.offline.provided.RowsProvider`); None: the
            export lists the live Parquet files with delta-rs and reads them with DuckDB (S3 tables: with pyarrow).
        storage_options: how to reach an S3 table (see :mod:`seeknal_spark.storage`); never shown or recorded.

    Example:
        >>> src = ServingSource(table_uri="/data/offline/default/user_spend", project="default",
        ...                     name="user_spend", join_keys=["user_id"], event_time_col="event_time",
        ...                     features=[("amount_7d", "spend_7d")], ttl=dt.timedelta(days=2))
        >>> src.output_names
        ['spend_7d']
    """

    table_uri: str
    project: str
    name: str
    join_keys: Sequence[str]
    event_time_col: str
    features: Optional[Sequence[FeatureSpec]] = None
    ttl: Optional[dt.timedelta] = None
    delta_version: Optional[int] = None
    label: Optional[str] = None
    rows: Optional["RowsProvider"] = field(default=None, compare=False, repr=False)
    storage_options: Optional[Mapping[str, str]] = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_name(self.project, "project")
        check_name(self.name, "feature group name")
        keys = [self.join_keys] if isinstance(self.join_keys, str) else list(self.join_keys)
        if not keys or len(set(keys)) != len(keys) or not all(isinstance(k, str) and k for k in keys):
            raise DefinitionError(f"lookup {self.project}/{self.name}: join_keys must be distinct non-empty "
                                  f"strings, got {self.join_keys!r}")
        object.__setattr__(self, "join_keys", tuple(keys))
        if not isinstance(self.event_time_col, str) or not self.event_time_col:
            raise DefinitionError(f"lookup {self.project}/{self.name}: event_time_col must be a column name")
        if self.features is not None:
            pairs = []
            for spec in self.features:
                if isinstance(spec, str):
                    spec = (spec, spec)
                if (not isinstance(spec, (tuple, list)) or len(spec) != 2
                        or not all(isinstance(s, str) and s for s in spec)):
                    raise DefinitionError(f"lookup {self.project}/{self.name}: feature {spec!r} must be a name or "
                                          "a (stored_name, output_name) pair")
                pairs.append((spec[0], spec[1]))
            object.__setattr__(self, "features", tuple(pairs))
        if self.ttl is not None:
            if not isinstance(self.ttl, dt.timedelta) or self.ttl < dt.timedelta(0):
                raise DefinitionError(f"lookup {self.project}/{self.name}: ttl must be a non-negative timedelta, "
                                      f"got {self.ttl!r}")

    @property
    def output_names(self) -> list:
        """Names the features are served under (empty when every feature is served: known only at publish)."""
        return [out for _, out in (self.features or ())]

    @classmethod
    def from_feature_group(cls, group: Any, features: Optional[Sequence[FeatureSpec]] = None,
                           ttl: Optional[dt.timedelta] = None) -> "ServingSource":
        """A source for a ``FeatureGroup`` (anything with table_path, project, name, join_keys, event_time_col)."""
        return cls(table_uri=group.table_path, project=group.project, name=group.name,
                   join_keys=list(group.join_keys), event_time_col=group.event_time_col,
                   features=features, ttl=ttl, storage_options=getattr(group, "storage_options", None))

    @classmethod
    def from_spec(cls, spec: LookupSpec, *, rows: Optional["RowsProvider"] = None,
                  storage_options: Optional[Mapping[str, str]] = None) -> "ServingSource":
        """The source serving a lookup spec (``ResolvedLookup.spec``): its group, features under their output names,
        TTL, and exactly the Delta version (and label) the lookup resolved to."""
        group = spec.group
        return cls(table_uri=group.table_uri, project=group.project, name=group.name,
                   join_keys=list(group.join_keys), event_time_col=group.event_time_col,
                   features=[(f.stored_name, f.output_name) for f in spec.features], ttl=spec.ttl,
                   delta_version=spec.delta_version, label=spec.label, rows=rows, storage_options=storage_options)

    def spec(self, features: Sequence[Tuple[str, str, Any]], delta_version: Optional[int],
             schema_version: Optional[int]) -> LookupSpec:
        """This source as the vocabulary's lookup spec, with the features (stored, output, Delta type) and the
        snapshot it was published from: what the online metadata records (the training manifest's spelling)."""
        return LookupSpec(GroupRef(self.project, self.name, self.table_uri, tuple(self.join_keys),
                                   self.event_time_col),
                          tuple(FeatureRef(stored, output, type_label(kind)) for stored, output, kind in features),
                          duration_micros(self.ttl), delta_version, schema_version, self.label)
