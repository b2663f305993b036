"""FeatureGroup: a Spark DataFrame of features keyed by an entity and an event time, stored as a Delta table."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from seeknal_spark.definitions import (
    WRITE_MODES,
    Entity,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
    check_name,
)
from seeknal_spark.errors import DefinitionError, SchemaError, StoreError
from seeknal_spark.offline import labels
from seeknal_spark.offline.frames import as_utc_timestamp, check_column_names, in_range, require_columns, to_spark
from seeknal_spark.offline.layout import PARTITION_COL, SEQ_COL, table_uri
from seeknal_spark.offline.state import GroupState, SchemaVersion, next_state
from seeknal_spark.offline.writer import StagedCheck, WriteRequest, WriteResult, write as write_request
from seeknal_spark.timeutil import TimeLike, date_to_datetime, time_range, to_utc
from seeknal_spark.typenames import type_name

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from seeknal_spark.monitoring.drift import DriftReport
    from seeknal_spark.offline.labels import LabelledVersion
    from seeknal_spark.offline.metadata import TableMetadata
    from seeknal_spark.storage import StorageOptions
    from seeknal_spark.monitoring.freshness import Freshness
    from seeknal_spark.validation import ValidationConfig, ValidationOutcome, ValidationRecord

__all__ = ["FeatureGroup"]

_RESERVED = (PARTITION_COL, SEQ_COL)


class FeatureGroup:
    """Features of one entity, computed by a Spark transformation and stored in the offline store.

    Example:
        >>> user = Entity(name="user", join_keys=["user_id"])
        >>> fg = FeatureGroup("user_spend", entity=user,
        ...                   materialization=Materialization(event_time_col="event_time"))
        >>> fg.set_dataframe(df).set_features(None).write()          # doctest: +SKIP
        >>> FeatureGroup("user_spend", store=store).get_or_create().features   # doctest: +SKIP
        ['amount_7d', 'orders_7d']
    """

    def __init__(self, name: str, entity: Optional[Entity] = None,
                 materialization: Optional[Materialization] = None, description: Optional[str] = None,
                 project: str = "default", store: Optional[OfflineStore] = None) -> None:
        self.name = check_name(name, "feature group name")
        self._store = store  # where to find the group when no materialization is given (get_or_create)
        self.project = check_name(project, "project")
        self.entity = entity
        self.materialization = materialization
        self.description = description
        self._df: Optional["DataFrame"] = None
        self._features: Optional[List[str]] = None
        self._state: Optional[GroupState] = None
        self._checks: Dict[str, StagedCheck] = {}
        self._validation: Optional["ValidationConfig"] = None

    # -- definition ------------------------------------------------------------------------------------------
    @property
    def store(self) -> OfflineStore:
        m = self.materialization
        if m is not None and m.offline_materialization.store is not None:
            return m.offline_materialization.store
        return self._store or OfflineStore()

    @property
    def table_path(self) -> str:
        """Location of this group's Delta table."""
        return table_uri(self.store.root(), self.project, self.name)

    @property
    def storage_options(self) -> "StorageOptions":
        """The store's storage options (``FeatureStoreFileOutput(storage_options=...)``; secrets never shown)."""
        return self.store.storage_options()

    @property
    def event_time_col(self) -> str:
        if self.materialization is not None:
            return self.materialization.event_time_col
        if self._state is not None:
            return self._state.event_time_col
        raise DefinitionError(f"feature group {self.name!r} has no Materialization(event_time_col=...)")

    @property
    def join_keys(self) -> List[str]:
        if self.entity is None:
            raise DefinitionError(f"feature group {self.name!r} has no entity; pass entity=Entity(...) "
                                  "or call get_or_create() on a group that was written before")
        return list(self.entity.join_keys)

    def set_dataframe(self, dataframe: Any, spark: Optional["SparkSession"] = None) -> "FeatureGroup":
        """Set the features' DataFrame (Spark, or pandas which is converted; naive times are UTC)."""
        self._df = to_spark(dataframe, spark)
        return self

    def set_features(self, features: Optional[Sequence[str]] = None) -> "FeatureGroup":
        """Choose the feature columns; None means every column except join keys and the event-time column."""
        if features is not None:
            features = [features] if isinstance(features, str) else list(features)
            if len(set(features)) != len(features):
                raise DefinitionError(f"set_features lists a feature twice: {features}")
        self._features = features  # type: ignore[assignment]
        return self

    def add_check(self, name: str, check: StagedCheck) -> "FeatureGroup":
        """Run ``check`` on the staged rows of every write before the commit (it raises to reject the write)."""
        self._checks[name] = check
        return self

    def set_validation(self, suite: Any = None, policy: str = "strict", builtins: bool = True,
                       enabled: bool = True) -> "FeatureGroup":
        """Validate every write with Great Expectations before it is committed.

        ``suite``: a ``great_expectations.ExpectationSuite``, a dict in GX suite JSON form, or a JSON/YAML file
        (relative paths are also looked up in ``conf/``, e.g. ``"expectations/user_spend.yaml"``); None runs the
        built-in expectations only (keys and event time not null, event time in the written range, feature types).
        ``policy="strict"`` writes nothing and raises ``ValidationFailed`` on failure; ``"warn"`` writes, logs a
        warning and records the failures in the commit metadata. ``enabled=False`` turns validation off.
        """
        if not enabled:
            self._validation = None
            return self
        from seeknal_spark.validation import ValidationConfig

        self._validation = ValidationConfig.create(suite, policy=policy, builtins=builtins)
        return self

    @property
    def validation(self) -> Optional["ValidationConfig"]:
        """The validation settings (None when writes are not validated)."""
        return self._validation

    @property
    def features(self) -> List[str]:
        """Feature names: the chosen ones, else those of the DataFrame, else the stored latest schema."""
        if self._features is not None:
            return list(self._features)
        if self._df is not None:
            skip = set(self.join_keys) | {self.event_time_col}
            return [c for c in self._df.columns if c not in skip]
        state = self._load_state()
        return state.latest.names if state and state.schemas else []

    # -- store metadata --------------------------------------------------------------------------------------
    def _metadata(self) -> "TableMetadata":
        """The table's metadata engine: Delta's Spark API on a Delta-JVM session, else delta-rs."""
        from seeknal_spark.offline.metadata import table_metadata
        from seeknal_spark.offline.metadata_spark import session_or_none

        return table_metadata(self.table_path, session_or_none(), self.storage_options)

    def _load_state(self, version: Optional[int] = None) -> Optional[GroupState]:
        state = self._metadata().state(version)
        if version is None:
            self._state = state
        return state

    def get_or_create(self) -> "FeatureGroup":
        """Load the stored definition when the table exists (entity, event time, features); else keep this one.

        A group given only its name, project and store is rebuilt entirely from the Delta log.
        """
        state = self._load_state()
        if state is None:
            if self.entity is None or self.materialization is None:
                raise StoreError(f"feature group {self.project}/{self.name} does not exist at {self.table_path} "
                                 "and has no entity/materialization to create it with")
            return self
        if self.entity is not None and tuple(self.entity.join_keys) != state.join_keys:
            raise DefinitionError(f"feature group {self.name!r} is stored with join keys {list(state.join_keys)}, "
                                  f"not {list(self.entity.join_keys)}")
        if self.entity is None:
            self.entity = Entity(state.entity_name, list(state.join_keys), state.entity_description)
        if self.materialization is None:
            self.materialization = Materialization(
                event_time_col=state.event_time_col,
                offline_materialization=OfflineMaterialization(store=self._store))
        elif self.materialization.event_time_col != state.event_time_col:
            raise DefinitionError(f"feature group {self.name!r} is stored with event-time column "
                                  f"{state.event_time_col!r}, not {self.materialization.event_time_col!r}")
        if self.description is None:
            self.description = state.description
        if self._features is None and self._df is None:
            self._features = state.latest.names
        return self

    @property
    def schema_version(self) -> Optional[int]:
        """The latest schema version (1 after the first write), or None if never written."""
        state = self._load_state()
        return state.schema_version if state else None

    def schema_versions(self) -> List[SchemaVersion]:
        """Every schema version with its features and their types."""
        state = self._load_state()
        return list(state.schemas) if state else []

    def describe_versions(self) -> List[Dict[str, Any]]:
        """Schema versions as plain dicts: ``{"version": 1, "features": {"amount": "double", ...}}``."""
        return [{"version": s.version, "features": {n: type_name(t) for n, t in s.features}}
                for s in self.schema_versions()]

    @property
    def offline_watermarks(self) -> List[dt.datetime]:
        """Sorted UTC dates (as midnight datetimes) that hold data, read from the Delta log."""
        state = self._load_state()
        return [date_to_datetime(dt.date.fromisoformat(d)) for d in state.watermarks] if state else []

    def versions(self) -> List["LabelledVersion"]:
        """Labelled versions (``write(version=...)``), oldest first: label, Delta and schema version, time, rows."""
        return labels.labelled_versions(self._metadata())

    @property
    def delta_version(self) -> Optional[int]:
        return self._metadata().latest_version()

    # -- IO ----------------------------------------------------------------------------------------------------
    def write(self, feature_start_time: Optional[TimeLike] = None, feature_end_time: Optional[TimeLike] = None,
              mode: Optional[str] = None, run_id: Optional[str] = None,
              version: Optional[str] = None) -> WriteResult:
        """Write the DataFrame's rows with start <= event time <= end as one Delta commit.

        ``mode="overwrite"`` replaces exactly the stored rows in [start, end] (all rows without bounds);
        ``mode="append"`` adds. A ``run_id`` makes the write idempotent: a second write with it is skipped.
        ``version="v1"`` labels the commit (unique per group; see :meth:`versions`, ``FeatureLookup(version=)``).
        """
        if self._df is None:
            raise DefinitionError(f"feature group {self.name!r} has no DataFrame: call set_dataframe(df) first")
        if self.materialization is None:
            raise DefinitionError(f"feature group {self.name!r} has no Materialization(event_time_col=...)")
        mode = mode or self.materialization.offline_materialization.mode
        if mode not in WRITE_MODES:
            raise DefinitionError(f"write mode {mode!r} is not one of {WRITE_MODES}")
        start, end = time_range(feature_start_time, feature_end_time)
        df, keys, ts = self._df, self.join_keys, self.event_time_col
        require_columns(df, [ts], "event-time column", "set Materialization(event_time_col=...) to an existing column")
        require_columns(df, keys, f"join keys of entity {self.entity.name!r}")  # type: ignore[union-attr]
        features = self.features
        require_columns(df, features, "features")
        check_column_names(df, keys + [ts] + features)
        for name in keys + [ts] + features:
            if name in _RESERVED:
                raise SchemaError(f"column name {name!r} is reserved by seeknal_spark; rename the column")
        overlap = set(features) & (set(keys) | {ts})
        if overlap:
            raise SchemaError(f"features {sorted(overlap)} are also join keys or the event-time column")
        if version is not None:
            labels.ensure_label_free(self._metadata(), version, run_id, f"{self.project}/{self.name}")
        before = self._load_state()
        after = self._next_state(before, df, keys, ts, features)  # checked now: bad input fails before any job
        ordered = [f for f, _ in after.all_features()]
        from pyspark.sql import functions as F

        frame = df.select(*[F.col(k) for k in keys], as_utc_timestamp(df, ts).alias(ts),
                          *[F.col(f) for f in ordered]).where(in_range(F.col(ts), start, end))
        checks = dict(self._checks)
        if self._validation is not None:
            from seeknal_spark.validation import CHECK_NAME

            checks[CHECK_NAME] = self._validation.staged_check(
                f"{self.project}/{self.name}", keys, ts, after.all_features(), start, end)

        def evolve(state: Optional[GroupState]) -> GroupState:
            # Features registered by a concurrent writer since this write was planned read as null in its rows.
            since = set(state.latest.names) - set(before.latest.names if before and before.schemas else ()) \
                if state is not None and state.schemas else set()
            return self._next_state(state, df, keys, ts, features, tolerate=since)

        req = WriteRequest(uri=self.table_path, df=frame, evolve=evolve, mode=mode, start=start, end=end,
                           run_id=run_id, checks=checks, label=version, storage_options=self.storage_options)
        result = write_request(req)
        self._load_state()
        return result

    def _next_state(self, before: Optional[GroupState], df: "DataFrame", keys: List[str], ts: str,
                    features: List[str], tolerate: Optional[set] = None) -> GroupState:
        """The state after a write of ``df`` (see :func:`seeknal_spark.offline.state.next_state`)."""
        entity = self.entity
        assert entity is not None
        base = GroupState(project=self.project, name=self.name, entity_name=entity.name, join_keys=tuple(keys),
                          key_types=(), event_time_col=ts, description=self.description,
                          entity_description=entity.description)
        return next_state(before, base, {f.name: f.dataType.jsonValue() for f in df.schema.fields}, features,
                          tolerate or set())

    def to_dataframe(self, feature_start_time: Optional[TimeLike] = None,
                     feature_end_time: Optional[TimeLike] = None, version: Optional[Union[int, str]] = None,
                     spark: Optional["SparkSession"] = None) -> "DataFrame":
        """The stored rows (keys, event time, every feature) in [start, end], at a Delta version or label if given."""
        from seeknal_spark.offline.reader import read_table
        from seeknal_spark.session import get_spark

        if isinstance(version, str):
            version = labels.resolve_label(self._metadata(), version, f"{self.project}/{self.name}")

        state = self._load_state(version)
        if state is None:
            raise StoreError(f"feature group {self.project}/{self.name} has never been written ({self.table_path})")
        df = read_table(get_spark(spark), self.table_path, state.event_time_col, version=version,
                        start=to_utc(feature_start_time), end=to_utc(feature_end_time),
                        storage_options=self.storage_options)
        return df.drop(PARTITION_COL)

    def validate(self, dataframe: Any = None, feature_start_time: Optional[TimeLike] = None,
                 feature_end_time: Optional[TimeLike] = None) -> "ValidationOutcome":
        """Dry run: validate a DataFrame (default: the one set) as a write in [start, end] would, without writing.

        Unlike ``write()`` the rows are not filtered to the range first, so the built-in range check reports rows
        outside it. Uses ``set_validation`` settings (built-ins only when none were set); never raises on failure.
        """
        from pyspark.sql import functions as F

        from seeknal_spark.validation import ValidationConfig, validate_frame

        df = self._df if dataframe is None else to_spark(dataframe)
        if df is None:
            raise DefinitionError(f"feature group {self.name!r} has no DataFrame: pass one or call set_dataframe(df)")
        keys, ts = self.join_keys, self.event_time_col
        require_columns(df, [ts] + keys, "event-time column / join keys")
        skip = set(keys) | {ts}
        features = self._features if self._features is not None else [c for c in df.columns if c not in skip]
        require_columns(df, features, "features")
        check_column_names(df, keys + [ts] + features)
        before = self._load_state()
        registered = before.latest.types() if before is not None and before.schemas else {}
        types = {f.name: f.dataType.jsonValue() for f in df.schema.fields}
        feature_types = [(f, registered.get(f, types[f])) for f in features]
        config = self._validation or ValidationConfig.create(None)
        start, end = to_utc(feature_start_time, "feature_start_time"), to_utc(feature_end_time, "feature_end_time")
        frame = df.select(*[F.col(k) for k in keys], as_utc_timestamp(df, ts).alias(ts),
                          *[F.col(f) for f in features])
        expectations = config.expectations(keys, ts, feature_types, start, end)
        return validate_frame(frame, expectations, ts, config, persist=True)  # computed once, released after

    def validation_history(self, limit: Optional[int] = None) -> List["ValidationRecord"]:
        """Validation outcomes of the committed writes, newest first, read from the Delta log."""
        from seeknal_spark.validation import validation_history

        return validation_history(self.table_path, limit, storage_options=self.storage_options)

    # -- monitoring --------------------------------------------------------------------------------------------
    def freshness(self, threshold: dt.timedelta = dt.timedelta(days=1),
                  now: Optional[TimeLike] = None) -> "Freshness":
        """Age of the newest stored event time (from the Delta log's file statistics); warns past ``threshold``."""
        from seeknal_spark.monitoring.freshness import freshness

        state = self._load_state()
        if state is None:
            raise StoreError(f"feature group {self.project}/{self.name} has never been written ({self.table_path})")
        return freshness(self.table_path, self.name, state.event_time_col, threshold, now,
                         storage_options=self.storage_options)

    def drift(self, baseline: Tuple[TimeLike, TimeLike], current: Tuple[TimeLike, TimeLike],
              features: Optional[Sequence[str]] = None, threshold: float = 0.2, chart_dir: Optional[str] = None,
              spark: Optional["SparkSession"] = None) -> "DriftReport":
        """Compare feature distributions of two event-time windows: PSI, mean and null-rate change per feature.

        ``report.to_pandas()`` is the table; with ``chart_dir`` a PNG per drifted feature is written there.
        """
        from seeknal_spark.monitoring.charts import save_drift_charts
        from seeknal_spark.monitoring.drift import drift

        names = list(features) if features is not None else self.features
        report = drift(self.to_dataframe(*baseline, spark=spark), self.to_dataframe(*current, spark=spark), names,
                       group=self.name, baseline_range=(str(baseline[0]), str(baseline[1])),
                       current_range=(str(current[0]), str(current[1])), threshold=threshold)
        if chart_dir is not None:
            save_drift_charts(report, chart_dir)
        return report

    # -- maintenance -------------------------------------------------------------------------------------------
    def vacuum(self, retention: dt.timedelta = dt.timedelta(days=7), dry_run: bool = False) -> Dict[str, List[str]]:
        """Remove dead writers' leftovers (staging directories without a live heartbeat, never-committed data
        files; time travel keeps working) and run Delta VACUUM (files unreferenced by the latest version, older
        than ``retention``: time travel before that stops working). ``dry_run`` only lists them.

        Returns ``{"removed_leftovers": [...], "vacuumed": [...]}`` (paths relative to the table).
        """
        from seeknal_spark.offline.cleanup import vacuum_table

        return vacuum_table(self.table_path, retention, dry_run=dry_run, storage_options=self.storage_options)

    def __repr__(self) -> str:
        return f"FeatureGroup(name={self.name!r}, project={self.project!r}, entity={self.entity!r})"
