"""What to retrieve: FeatureLookup (which features of which group, how old at most, under which names) and
FillNull (what to put where no value exists)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from seeknal_spark.errors import DefinitionError, SchemaError, StoreError, VersionLabelError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from seeknal_spark.feature_group import FeatureGroup
    from seeknal_spark.offline.state import GroupState
    from seeknal_spark.vocabulary import LookupSpec

__all__ = ["FeatureLookup", "FillNull", "ResolvedLookup", "apply_fill_nulls", "fill_targets", "normalize_type_name"]


@dataclass(frozen=True)
class ResolvedLookup:
    """A lookup checked against its group's Delta log: stored names, output names, keys, event time, TTL."""

    lookup: "FeatureLookup"
    table_path: str
    join_keys: Tuple[str, ...]
    key_types: Tuple[Tuple[str, Any], ...]
    event_time_col: str
    features: Tuple[str, ...]  # stored names
    output_names: Tuple[str, ...]  # same order as ``features``
    feature_types: Tuple[Tuple[str, Any], ...]  # (stored name, Spark type JSON)
    ttl: Optional[dt.timedelta]
    delta_version: Optional[int] = None  # the Delta version resolved against; retrieval reads exactly this one
    schema_version: Optional[int] = None  # the schema version the features come from
    label: Optional[str] = None  # the version label the lookup was pinned to (``FeatureLookup(version=...)``)

    @property
    def spec(self) -> "LookupSpec":
        """This lookup in the shared vocabulary: what a training manifest and an online table record of it."""
        from seeknal_spark.sqltypes import type_label
        from seeknal_spark.vocabulary import FeatureRef, GroupRef, LookupSpec, duration_micros

        group = self.lookup.source
        return LookupSpec(GroupRef(group.project, group.name, self.table_path, tuple(self.join_keys),
                                   self.event_time_col),
                          tuple(FeatureRef(f, o, type_label(t)) for (f, t), o in zip(self.feature_types,
                                                                                     self.output_names)),
                          duration_micros(self.ttl), self.delta_version, self.schema_version, self.label)

    @property
    def name(self) -> str:
        return self.lookup.source.name

    @property
    def storage_options(self) -> Optional[Mapping[str, str]]:
        """The group's storage options (see :mod:`seeknal_spark.storage`)."""
        return self.lookup.storage_options


class FeatureLookup:
    """Features of one feature group to join onto a spine, as of each spine row's time.

    Args:
        source: the FeatureGroup (it must have been written at least once before retrieval).
        features: stored feature names to fetch; None means every feature of the group.
        ttl: maximum feature age: a stored row older than ``spine time - ttl`` is not used (the feature is null).
        prefix: prepended to every output column name (``prefix="user_"`` gives ``user_amount``).
        rename: ``{stored name: output name}``, applied instead of the prefix for the features it names.
        schema_version: pin a schema version of the group: the lookup then fetches exactly that version's
            features (with their types); None means the latest version. ``features=`` may narrow it further.
        delta_version: read the group's Delta table as of this version (time travel) instead of its current
            version; training-set manifests use it to rebuild a dataset exactly.
        version: a version label given to ``write(..., version="v1")``: read the group exactly as it was at that
            labelled commit (with ``delta_version`` too, both must name the same commit).

    Example:
        >>> lookup = FeatureLookup(source=user_spend, features=["amount_7d"],      # doctest: +SKIP
        ...                        ttl=dt.timedelta(days=7), prefix="user_")
        >>> lookup.output_names                                                    # doctest: +SKIP
        ['user_amount_7d']
    """

    def __init__(self, source: "FeatureGroup", features: Optional[Union[str, Sequence[str]]] = None,
                 ttl: Optional[dt.timedelta] = None, prefix: Optional[str] = None,
                 rename: Optional[Mapping[str, str]] = None, schema_version: Optional[int] = None,
                 delta_version: Optional[int] = None, version: Optional[str] = None) -> None:
        from seeknal_spark.feature_group import FeatureGroup

        if not isinstance(source, FeatureGroup):
            raise DefinitionError(f"FeatureLookup(source=...) must be a FeatureGroup, got {type(source).__name__}")
        if features is not None:
            features = [features] if isinstance(features, str) else list(features)
            if not features:
                raise DefinitionError(f"FeatureLookup on {source.name!r}: features=[] selects nothing; "
                                      "pass None for every feature")
            if len(set(features)) != len(features):
                raise DefinitionError(f"FeatureLookup on {source.name!r} lists a feature twice: {features}")
        if ttl is not None:
            if not isinstance(ttl, dt.timedelta):
                raise DefinitionError(f"FeatureLookup on {source.name!r}: ttl must be a datetime.timedelta, "
                                      f"got {ttl!r}")
            if ttl < dt.timedelta(0):
                raise DefinitionError(f"FeatureLookup on {source.name!r}: ttl {ttl} is negative")
        if prefix is not None and not isinstance(prefix, str):
            raise DefinitionError(f"FeatureLookup on {source.name!r}: prefix must be a string, got {prefix!r}")
        for label, value in (("schema_version", schema_version), ("delta_version", delta_version)):
            low = 1 if label == "schema_version" else 0
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise DefinitionError(f"FeatureLookup on {source.name!r}: {label} must be an integer >= {low}, "
                                      f"got {value!r}")
        if version is not None:
            from seeknal_spark.offline.labels import check_label

            check_label(version)
        self.source = source
        self.version = version
        self.schema_version = schema_version
        self.delta_version = delta_version
        self.requested_features: Optional[List[str]] = features  # type: ignore[assignment]
        self.ttl = ttl
        self.prefix = prefix
        self.rename: Dict[str, str] = dict(rename or {})

    @property
    def storage_options(self) -> Optional[Mapping[str, str]]:
        """The source group's storage options (``FeatureStoreFileOutput(storage_options=...)``)."""
        return getattr(self.source, "storage_options", None)

    # -- resolution against the stored definition ----------------------------------------------------------
    def _state(self) -> Tuple["GroupState", int]:
        """The group's state and the Delta version it was read at (``delta_version`` when pinned)."""
        from seeknal_spark.offline import labels
        from seeknal_spark.offline.metadata import table_metadata
        from seeknal_spark.offline.metadata_spark import session_or_none

        meta = table_metadata(self.source.table_path, session_or_none(), self.storage_options)
        latest = meta.latest_version()
        pinned = self.delta_version
        if self.version is not None and latest is not None:
            group = f"{self.source.project}/{self.source.name}"
            pinned = labels.resolve_label(meta, self.version, group)
            if self.delta_version is not None and self.delta_version != pinned:
                raise VersionLabelError(f"FeatureLookup on {self.source.name!r}: version={self.version!r} names Delta "
                                        f"version {pinned}, not delta_version={self.delta_version}; pass one of them")
        read_at = pinned if pinned is not None else latest
        state = meta.state(read_at) if latest is not None else None
        if state is None or not state.schemas:
            raise StoreError(f"feature group {self.source.project}/{self.source.name} has never been written "
                             f"(no Delta table at {self.source.table_path}); write it before looking it up")
        return state, read_at  # type: ignore[return-value]

    def resolve(self) -> ResolvedLookup:
        """Check the lookup against the group's stored definition (raises for unknown features or renames).

        The result records the Delta version it was resolved at; retrieval reads that version, so the schema
        checked here and the rows read belong to one snapshot.
        """
        state, delta_version = self._state()
        if self.schema_version is not None:
            try:
                schema = state.schema(self.schema_version)
            except KeyError:
                at = f" at Delta version {delta_version}" if self.delta_version is not None else ""
                raise DefinitionError(
                    f"FeatureLookup on {self.source.name!r}: schema_version={self.schema_version} does not exist"
                    f"{at}; the group's schema versions are {[v.version for v in state.schemas]}") from None
        else:
            schema = state.latest
        stored = schema.names
        types = schema.types()
        wanted = list(self.requested_features) if self.requested_features is not None else list(stored)
        unknown = [f for f in wanted if f not in types]
        if unknown:
            version = f" schema version {schema.version}" if self.schema_version is not None else ""
            raise DefinitionError(f"feature group {self.source.name!r}{version} has no feature(s) {unknown}; "
                                  f"its features are {stored}")
        bad_rename = [f for f in self.rename if f not in wanted]
        if bad_rename:
            raise DefinitionError(f"FeatureLookup on {self.source.name!r}: rename names {bad_rename}, which are "
                                  f"not among the looked-up features {wanted}")
        outputs = [self.rename.get(f, f"{self.prefix or ''}{f}") for f in wanted]
        dup = sorted({o for o in outputs if outputs.count(o) > 1})
        if dup:
            raise DefinitionError(f"FeatureLookup on {self.source.name!r} produces the output column(s) {dup} "
                                  "more than once; fix its rename mapping")
        return ResolvedLookup(lookup=self, table_path=self.source.table_path, join_keys=tuple(state.join_keys),
                              key_types=tuple(state.key_types), event_time_col=state.event_time_col,
                              features=tuple(wanted), output_names=tuple(outputs),
                              feature_types=tuple((f, types[f]) for f in wanted), ttl=self.ttl,
                              delta_version=delta_version, schema_version=schema.version, label=self.version)

    @property
    def features(self) -> List[str]:
        """Stored names of the features this lookup fetches (resolved from the Delta log)."""
        return list(self.resolve().features)

    @property
    def output_names(self) -> List[str]:
        """Output column names, in the order of :attr:`features` (after prefix / rename)."""
        return list(self.resolve().output_names)

    @property
    def join_keys(self) -> List[str]:
        """The stored join keys of the source group."""
        return list(self.resolve().join_keys)

    def __repr__(self) -> str:
        return (f"FeatureLookup(source={self.source.name!r}, features={self.requested_features!r}, "
                f"ttl={self.ttl!r}, prefix={self.prefix!r}, rename={self.rename!r}"
                + (f", schema_version={self.schema_version!r}" if self.schema_version is not None else "")
                + (f", delta_version={self.delta_version!r}" if self.delta_version is not None else "")
                + (f", version={self.version!r}" if self.version is not None else "") + ")")


# -- FillNull ------------------------------------------------------------------------------------------------
_ALIASES = {
    "int": "int", "integer": "int", "long": "bigint", "bigint": "bigint", "short": "smallint",
    "smallint": "smallint", "byte": "tinyint", "tinyint": "tinyint", "float": "float", "real": "float",
    "double": "double", "string": "string", "str": "string", "boolean": "boolean", "bool": "boolean",
    "date": "date", "timestamp": "timestamp", "timestamp_ntz": "timestamp_ntz", "binary": "binary",
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")


def normalize_type_name(data_type: Any) -> str:
    """Spark's simple type string of a type given as a DataType or a name (``"long"`` -> ``"bigint"``)."""
    if hasattr(data_type, "simpleString"):
        return str(data_type.simpleString())
    if isinstance(data_type, str):
        name = data_type.strip().lower()
        if name in _ALIASES:
            return _ALIASES[name]
        match = _DECIMAL.match(name)
        if match:
            return f"decimal({int(match.group(1))},{int(match.group(2))})"
        if name == "decimal":
            return "decimal(10,0)"
    raise DefinitionError(f"FillNull dataType {data_type!r} is not a Spark type or a type name such as "
                          f"'double', 'long', 'string' (known names: {sorted(_ALIASES)})")


class FillNull:
    """Replace nulls in feature columns: every feature column of ``dataType``, or only ``columns``.

    Example:
        >>> fills = [FillNull(0.0, "double"), FillNull("unknown", "string", columns=["segment"])]
    """

    def __init__(self, value: Any, dataType: Any, columns: Optional[Union[str, Sequence[str]]] = None) -> None:
        if value is None:
            raise DefinitionError("FillNull(value=None) would fill nothing; give the replacement value")
        self.value = value
        self.dataType = dataType
        self.type_name = normalize_type_name(dataType)
        self.columns: Optional[List[str]] = ([columns] if isinstance(columns, str) else list(columns)) \
            if columns is not None else None

    def __repr__(self) -> str:
        return f"FillNull(value={self.value!r}, dataType={self.type_name!r}, columns={self.columns!r})"


def fill_targets(fill: FillNull, feature_columns: Sequence[str], type_names: Mapping[str, str]) -> List[str]:
    """The feature columns ``fill`` applies to (both engines' rule): the columns it names, each of which must be a
    feature column of the result, else every feature column whose Spark type name is the fill's type."""
    if fill.columns is not None:
        unknown = [c for c in fill.columns if c not in feature_columns]
        if unknown:
            raise SchemaError(f"{fill!r} names column(s) {unknown} that are not feature columns of the result "
                              f"(feature columns: {list(feature_columns)})")
        return list(fill.columns)
    return [c for c in feature_columns if type_names[c] == fill.type_name]


def apply_fill_nulls(df: "DataFrame", fills: Sequence[FillNull], feature_columns: Sequence[str]) -> "DataFrame":
    """``df`` with the fills applied to its feature columns, in order (the first fill of a column wins)."""
    if not fills:
        return df
    from pyspark.sql import functions as F

    types = {f.name: f.dataType for f in df.schema.fields}
    type_names = {c: types[c].simpleString() for c in feature_columns}
    replacement: Dict[str, Any] = {}
    for fill in fills:
        for column in fill_targets(fill, feature_columns, type_names):
            if column not in replacement:
                value = F.lit(fill.value).cast(fill.type_name).cast(types[column])
                replacement[column] = value
    if not replacement:
        return df
    return df.select(*[F.coalesce(F.col(c), replacement[c]).alias(c) if c in replacement else F.col(c)
                       for c in df.columns])
