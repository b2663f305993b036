"""Point-in-time correct training sets: HistoricalFeatures and its spine wrapper."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from seeknal_spark.errors import DefinitionError
from seeknal_spark.retrieval.asof import qcol
from seeknal_spark.retrieval.lookup import FeatureLookup, FillNull, ResolvedLookup
from seeknal_spark.retrieval.spark_engine import retrieve
from seeknal_spark.timeutil import TimeLike, time_range
from seeknal_spark.typenames import type_name

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from seeknal_spark.serving import OnlineFeatures

__all__ = ["HistoricalFeatures", "HistoricalFeaturesWithSpine", "LatestFeatures"]

ENGINES = ("spark", "duckdb")


class HistoricalFeatures:
    """Features of one or more feature groups, point-in-time correct, as a Spark DataFrame.

    Args:
        lookups: the FeatureLookups to fetch (groups may have different entities).
        fill_nulls: FillNull rules applied, in order, to feature columns that end up null.
        feature_start_time, feature_end_time: default time range of :meth:`to_dataframe` and :meth:`serve`
            (an argument given to the call wins).

    Example:
        >>> hist = HistoricalFeatures(lookups=[FeatureLookup(source=user_spend, ttl=dt.timedelta(days=30))],
        ...                           fill_nulls=[FillNull(0.0, "double")])                 # doctest: +SKIP
        >>> train = hist.using_spine(labels, date_col="label_time",
        ...                          keep_cols=["label"]).to_dataframe_with_spine()       # doctest: +SKIP

    Reproducible training sets: ``to_dataframe_with_spine(manifest_path="train.json")`` also saves a manifest
    (groups, Delta and schema versions read, features, TTLs, fills, spine fingerprint); later,
    ``HistoricalFeatures.from_manifest("train.json").using_spine(labels).to_dataframe_with_spine()`` rebuilds
    the same rows from the recorded Delta versions, whatever was written since.
    """

    def __init__(self, lookups: Sequence[FeatureLookup], fill_nulls: Optional[Sequence[FillNull]] = None,
                 feature_start_time: Optional[TimeLike] = None,
                 feature_end_time: Optional[TimeLike] = None, engine: str = "spark") -> None:
        if engine not in ENGINES:
            raise DefinitionError(f"HistoricalFeatures(engine={engine!r}): the engine must be one of {ENGINES}")
        lookups = [lookups] if isinstance(lookups, FeatureLookup) else list(lookups)
        if not lookups:
            raise DefinitionError("HistoricalFeatures needs at least one FeatureLookup")
        for lookup in lookups:
            if not isinstance(lookup, FeatureLookup):
                raise DefinitionError(f"HistoricalFeatures(lookups=...) takes FeatureLookup objects, got "
                                      f"{type(lookup).__name__}")
        fills = list(fill_nulls or [])
        for fill in fills:
            if not isinstance(fill, FillNull):
                raise DefinitionError(f"HistoricalFeatures(fill_nulls=...) takes FillNull objects, got "
                                      f"{type(fill).__name__}")
        self.lookups: List[FeatureLookup] = lookups
        self.fill_nulls: List[FillNull] = fills
        self.source_manifest: Optional[Dict[str, Any]] = None  # set by from_manifest()
        self.engine = engine  # "duckdb": to_dataframe_with_spine() builds a pandas DataFrame without Spark
        # defaults of to_dataframe()/serve(); an explicit argument wins
        self.feature_start_time, self.feature_end_time = time_range(feature_start_time, feature_end_time)

    def _range(self, start: Optional[TimeLike], end: Optional[TimeLike]
               ) -> Tuple[Optional[dt.datetime], Optional[dt.datetime]]:
        """The [start, end] a call uses: its own bounds, else the defaults given to the constructor."""
        return time_range(self.feature_start_time if start is None else start,
                          self.feature_end_time if end is None else end)

    @classmethod
    def from_manifest(cls, manifest: Union[Mapping[str, Any], str, "os.PathLike[str]"],
                      engine: str = "spark") -> "HistoricalFeatures":
        """The HistoricalFeatures a training-set manifest was built with, pinned to the Delta versions it read.

        ``manifest`` is the dict from ``HistoricalFeaturesWithSpine.manifest()``, or the path of the JSON file
        written by ``to_dataframe_with_spine(manifest_path=...)``. With the same spine,
        ``.using_spine(spine).to_dataframe_with_spine()`` (``date_col`` and ``keep_cols`` default to the
        manifest's) returns the same rows as the original build; it raises ``SpineMismatchError`` when the spine
        differs and ``ManifestError`` when a group no longer matches the recorded snapshot.

        Example:
            >>> again = HistoricalFeatures.from_manifest("train.json")                       # doctest: +SKIP
            >>> df = again.using_spine(labels).to_dataframe_with_spine()                     # doctest: +SKIP
        """
        from seeknal_spark.retrieval.manifest import load_manifest, lookups_from_manifest

        data = load_manifest(manifest)
        lookups, fills = lookups_from_manifest(data)
        hist = cls(lookups, fills, engine=engine)
        hist.source_manifest = data
        return hist

    def resolve(self) -> List[ResolvedLookup]:
        """Every lookup checked against its group's Delta log; output names must not collide.

        Each resolved lookup records the Delta version it was checked at; retrieval reads exactly that version.
        """
        resolved = [lookup.resolve() for lookup in self.lookups]
        if self.source_manifest is not None:
            from seeknal_spark.retrieval.manifest import check_resolved

            check_resolved(self.source_manifest, resolved)
        seen: Dict[str, str] = {}
        for r in resolved:
            for out in r.output_names:
                if out in seen:
                    raise DefinitionError(f"output column {out!r} comes from both {seen[out]!r} and {r.name!r}; "
                                          "give one lookup a prefix= or rename={...}")
                seen[out] = r.name
        return resolved

    def using_spine(self, spine: Any, date_col: Optional[str] = None,
                    keep_cols: Optional[Union[str, Sequence[str]]] = None,
                    spark: Optional["SparkSession"] = None) -> "HistoricalFeaturesWithSpine":
        """Fetch features for the rows of ``spine`` (Spark or pandas) as of each row's ``date_col``.

        ``date_col`` is required, except on a HistoricalFeatures from :meth:`from_manifest`, where ``date_col``
        and ``keep_cols`` default to the manifest's.
        """
        if self.source_manifest is not None:
            recorded = self.source_manifest["spine"]
            date_col = recorded["date_col"] if date_col is None else date_col
            keep_cols = recorded["keep_cols"] if keep_cols is None else keep_cols
        if date_col is None:
            raise DefinitionError("using_spine needs date_col=, the name of the spine's time column")
        return HistoricalFeaturesWithSpine(self, spine, date_col, keep_cols, spark)

    def to_dataframe(self, feature_start_time: Optional[TimeLike] = None,
                     feature_end_time: Optional[TimeLike] = None,
                     spark: Optional["SparkSession"] = None, *, spine_df: Any = None,
                     date_col: Optional[str] = None,
                     keep_cols: Optional[Union[str, Sequence[str]]] = None) -> Any:
        """Stored rows in [start, end] of every lookup's group, each carrying every lookup's features as of its
        event time. All lookups must share the same join keys; the time column is named after the first
        lookup's event-time column. Bounds default to the constructor's ``feature_start_time``/``_end_time``.

        With ``spine_df`` (Spark or pandas): the point-in-time join of ``using_spine(spine_df, date_col,
        keep_cols).to_dataframe_with_spine()``, using only feature rows with event time in [start, end]; see
        :func:`seeknal_spark.retrieval.spine.spine_to_dataframe` (``date_col`` may be inferred; a pandas spine
        gives a pandas result aligned with it, ready for ``spine_df.merge(result, on=[keys..., date_col])``).
        """
        from seeknal_spark.offline.reader import read_table
        from seeknal_spark.session import get_spark

        start, end = self._range(feature_start_time, feature_end_time)
        if spine_df is not None:
            from seeknal_spark.retrieval.spine import spine_to_dataframe

            return spine_to_dataframe(self, spine_df, date_col, keep_cols, (start, end), spark)
        if date_col is not None or keep_cols is not None:
            raise DefinitionError("to_dataframe(date_col=..., keep_cols=...) needs spine_df=, the spine they name")
        session = get_spark(spark)
        resolved = self.resolve()
        keys = list(resolved[0].join_keys)
        for r in resolved[1:]:
            if set(r.join_keys) != set(keys):
                raise DefinitionError(f"to_dataframe() without a spine needs lookups with the same join keys; "
                                      f"{resolved[0].name!r} has {keys}, {r.name!r} has {list(r.join_keys)}: "
                                      "use using_spine(...) instead")
        time_col = resolved[0].event_time_col
        frames = [read_table(session, r.table_path, r.event_time_col, version=r.delta_version, start=start, end=end,
                             storage_options=r.storage_options)
                  .select(*[qcol(k) for k in keys], qcol(r.event_time_col).alias(time_col)) for r in resolved]
        rows = frames[0]
        for frame in frames[1:]:
            rows = rows.unionByName(frame)
        return retrieve(self, rows.distinct(), time_col, [], resolved)[0]

    def serve(self, name: str, feature_start_time: Optional[TimeLike] = None,
              feature_end_time: Optional[TimeLike] = None, *, target: Optional[str] = None,
              store_root: Optional[str] = None, keep: int = 3,
              storage_options: Optional[Dict[str, str]] = None, index: str = "memory") -> "OnlineFeatures":
        """Publish the latest row per key within [start, end] (as of end; now when no end) as online table ``name``.

        The export runs in DuckDB over the groups' current Delta snapshots, or the versions lookups pin (e.g.
        ``FeatureLookup(version="v1")``), without Spark; on a session with Delta's JVM side (Databricks), Spark
        reads the snapshots with Delta's reader and hands DuckDB the rows to serve (every IO through Spark/Hadoop
        file systems, deletion vectors honoured). Bounds default to the constructor's.
        ``target="s3://..."`` uploads the published file with boto3.
        """
        start, end = self._range(feature_start_time, feature_end_time)
        return self._publish(name, start, end, target=target, store_root=store_root, keep=keep,
                             storage_options=storage_options, index=index)

    def _publish(self, name: str, start: Optional[dt.datetime], end: Optional[dt.datetime],
                 **options: Any) -> "OnlineFeatures":
        from seeknal_spark.offline.metadata_spark import session_or_none
        from seeknal_spark.retrieval.serve_rows import spark_rows_provider
        from seeknal_spark.serving import publish_online_table
        from seeknal_spark.serving.lookups import sources_from_resolved

        sources = sources_from_resolved(self.resolve(), rows=spark_rows_provider(session_or_none()))
        return publish_online_table(sources, name, start=start, end=end, **options)

    def using_latest(self) -> "LatestFeatures":
        """The latest row per key of each lookup (TTL applied), to publish with ``.serve(name=...)``."""
        return LatestFeatures(self)


class LatestFeatures:
    """``hist.using_latest()``: the latest row per key of each lookup (TTL applied) as of publish time."""

    def __init__(self, hist: HistoricalFeatures) -> None:
        self.hist = hist

    def serve(self, name: str, *, target: Optional[str] = None, store_root: Optional[str] = None, keep: int = 3,
              storage_options: Optional[Dict[str, str]] = None, index: str = "memory") -> "OnlineFeatures":
        """Publish online table ``name`` holding each key's latest features as of now (the HistoricalFeatures'
        default time range does not apply)."""
        return self.hist._publish(name, None, None, target=target, store_root=store_root, keep=keep,
                                  storage_options=storage_options, index=index)


class HistoricalFeaturesWithSpine:
    """HistoricalFeatures bound to a spine; call :meth:`to_dataframe_with_spine` to build the training set.

    Example:
        >>> bound = hist.using_spine(labels, date_col="label_time", keep_cols=["label"])     # doctest: +SKIP
        >>> train = bound.to_dataframe_with_spine(manifest_path="models/churn/train.json")    # doctest: +SKIP
        >>> bound.manifest()["lookups"][0]["delta_version"]                                   # doctest: +SKIP
        7
    """

    def __init__(self, hist: HistoricalFeatures, spine: Any, date_col: str,
                 keep_cols: Optional[Union[str, Sequence[str]]] = None,
                 spark: Optional["SparkSession"] = None) -> None:
        from seeknal_spark.offline.frames import to_spark

        self.hist = hist
        # the duckdb engine keeps the pandas/Arrow spine as it is (no Spark session needed)
        self.spine = spine if hist.engine == "duckdb" else to_spark(spine, spark)
        self.date_col = date_col
        self.keep_cols: List[str] = [keep_cols] if isinstance(keep_cols, str) else list(keep_cols or [])
        self._manifest: Optional[Dict[str, Any]] = None

    @property
    def lookups(self) -> List[FeatureLookup]:
        return self.hist.lookups

    def to_dataframe_with_spine(self, manifest_path: Optional[Union[str, "os.PathLike[str]"]] = None
                                ) -> "DataFrame":
        """One row per spine row: its join keys, ``date_col``, ``keep_cols`` and every lookup's features.

        Every group is read at the Delta version it resolved to at this call (the returned DataFrame is lazy but
        bound to those snapshots). The build's manifest is kept for :meth:`manifest`; with ``manifest_path`` it
        is also written there as JSON (atomically). On a HistoricalFeatures from ``from_manifest`` the spine is
        checked against the manifest's fingerprint first (``SpineMismatchError`` when it differs).

        The spine fingerprint rides on the scan of the spine this method runs anyway (one Spark job).
        With ``engine="duckdb"`` this returns :meth:`to_pandas_with_spine` instead (a pandas DataFrame).
        """
        if self.hist.engine == "duckdb":
            return self.to_pandas_with_spine(manifest_path)  # type: ignore[return-value]
        resolved = self.hist.resolve()
        df, fingerprint, spine_types = retrieve(self.hist, self.spine, self.date_col, self.keep_cols, resolved)
        self._record(resolved, fingerprint, spine_types, manifest_path)
        return df

    def to_arrow_with_spine(self, manifest_path: Optional[Union[str, "os.PathLike[str]"]] = None,
                            threads: Optional[int] = None) -> Any:
        """The training set as a pyarrow Table built by DuckDB on this machine, in spine order: the Spark
        engine's rows, columns, rules and manifest (``retrieval/duckdb_engine.py``)."""
        from seeknal_spark.retrieval.duckdb_engine import build_training_set

        spine = self.spine.toPandas() if hasattr(self.spine, "sparkSession") else self.spine
        resolved = self.hist.resolve()
        table, fingerprint, spine_types = build_training_set(self.hist, spine, self.date_col, self.keep_cols,
                                                             resolved, threads=threads)
        self._record(resolved, fingerprint, spine_types, manifest_path)
        return table

    def to_pandas_with_spine(self, manifest_path: Optional[Union[str, "os.PathLike[str]"]] = None,
                             threads: Optional[int] = None) -> Any:
        """:meth:`to_arrow_with_spine` as a pandas DataFrame."""
        return self.to_arrow_with_spine(manifest_path, threads=threads).to_pandas()

    def _record(self, resolved: List[ResolvedLookup], fingerprint: Dict[str, Any],
                spine_types: List[Tuple[str, str]], manifest_path: Optional[Union[str, "os.PathLike[str]"]]) -> None:
        """Check the spine against a source manifest, then build (and optionally save) this build's manifest."""
        from seeknal_spark.retrieval import manifest as mf
        if self.hist.source_manifest is not None:
            mf.check_spine(self.hist.source_manifest, spine_types, fingerprint)
        types = dict(spine_types)
        for r in resolved:
            types.update({o: type_name(t) for (_, t), o in zip(r.feature_types, r.output_names)})
        columns = [c for c, _ in spine_types] + [o for r in resolved for o in r.output_names]
        self._manifest = mf.build_manifest(resolved, self.hist.fill_nulls, date_col=self.date_col,
                                           keep_cols=self.keep_cols, spine_columns=spine_types,
                                           fingerprint=fingerprint, output_types=[(c, types[c]) for c in columns])
        if manifest_path is not None:
            mf.save_manifest(manifest_path, self._manifest)

    def manifest(self) -> Dict[str, Any]:
        """The manifest (a JSON-ready dict) of the training set last built by :meth:`to_dataframe_with_spine`.

        Pass it (or the saved file) to ``HistoricalFeatures.from_manifest`` to rebuild the same rows later.
        """
        if self._manifest is None:
            raise DefinitionError("no training set has been built yet: call to_dataframe_with_spine() first; the "
                                  "manifest describes the snapshots that build read")
        import copy

        return copy.deepcopy(self._manifest)
