"""Feature groups declared as named Python transformations, importable by reference (``package.module:name``).

A transformation is a function from source DataFrames and a time range to the feature DataFrame. Jobs import it
by reference, load its sources, run it for a range and write the result.
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from seeknal_spark.definitions import Entity, Materialization, OfflineMaterialization, OfflineStore, check_name
from seeknal_spark.errors import DefinitionError
from seeknal_spark.feature_group import FeatureGroup
from seeknal_spark.timeutil import TimeLike, to_utc

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["FeatureTransform", "feature_transform", "load_reference"]

# A source is a callable that builds a DataFrame from the session, or a path read with spark.read.load.
Source = Union[Callable[["SparkSession"], "DataFrame"], str]
TransformFn = Callable[[Mapping[str, "DataFrame"], Optional[dt.datetime], Optional[dt.datetime]], "DataFrame"]


@dataclass
class FeatureTransform:
    """A feature group defined by a transformation function.

    Example:
        >>> @feature_transform(name="user_spend", entity=Entity("user", ["user_id"]),
        ...                    event_time_col="day", sources={"orders": "data/orders.parquet"})
        ... def user_spend(sources, start, end):
        ...     orders = sources["orders"]
        ...     return orders.groupBy("user_id", "day").agg(F.sum("amount").alias("spend"))
        >>> user_spend.materialize("2024-01-01", "2024-01-31")          # doctest: +SKIP
    """

    fn: TransformFn
    name: str
    entity: Entity
    event_time_col: str
    sources: Mapping[str, Source] = field(default_factory=dict)
    features: Optional[Sequence[str]] = None
    description: Optional[str] = None
    project: str = "default"
    mode: str = "overwrite"

    def __post_init__(self) -> None:
        check_name(self.name, "feature group name")

    def __call__(self, sources: Mapping[str, "DataFrame"], start: Optional[dt.datetime] = None,
                 end: Optional[dt.datetime] = None) -> "DataFrame":
        return self.fn(sources, start, end)

    def load_sources(self, spark: "SparkSession") -> Dict[str, "DataFrame"]:
        """Build each source DataFrame (callables get the session; strings are paths for spark.read.load)."""
        loaded: Dict[str, "DataFrame"] = {}
        for key, source in self.sources.items():
            if callable(source):
                loaded[key] = source(spark)
            elif isinstance(source, str):
                fmt = "csv" if source.endswith(".csv") else "json" if source.endswith(".json") else "parquet"
                reader = spark.read.format(fmt)
                if fmt == "csv":
                    reader = reader.option("header", "true").option("inferSchema", "true")
                loaded[key] = reader.load(source)
            else:
                raise DefinitionError(f"source {key!r} of {self.name!r} must be a callable(spark) or a path, "
                                      f"not {type(source).__name__}")
        return loaded

    def compute(self, start: Optional[TimeLike] = None, end: Optional[TimeLike] = None,
                spark: Optional["SparkSession"] = None) -> "DataFrame":
        """Run the transformation for [start, end] on freshly loaded sources."""
        from seeknal_spark.session import get_spark

        session = get_spark(spark)
        return self.fn(self.load_sources(session), to_utc(start, "start"), to_utc(end, "end"))

    def feature_group(self, store: Optional[OfflineStore] = None) -> FeatureGroup:
        """The FeatureGroup this transformation writes (no DataFrame set)."""
        materialization = Materialization(
            event_time_col=self.event_time_col,
            offline_materialization=OfflineMaterialization(store=store, mode=self.mode))
        return FeatureGroup(self.name, entity=self.entity, materialization=materialization,
                            description=self.description, project=self.project)

    def materialize(self, start: Optional[TimeLike] = None, end: Optional[TimeLike] = None, *,
                    spark: Optional["SparkSession"] = None, store: Optional[OfflineStore] = None,
                    mode: Optional[str] = None, run_id: Optional[str] = None) -> Any:
        """Compute for [start, end] and write that range as one commit; returns the WriteResult."""
        group = self.feature_group(store)
        group.set_dataframe(self.compute(start, end, spark)).set_features(
            list(self.features) if self.features is not None else None)
        return group.write(start, end, mode=mode, run_id=run_id)


def feature_transform(*, name: str, entity: Entity, event_time_col: str,
                      sources: Optional[Mapping[str, Source]] = None, features: Optional[Sequence[str]] = None,
                      description: Optional[str] = None, project: str = "default",
                      mode: str = "overwrite") -> Callable[[TransformFn], FeatureTransform]:
    """Decorator declaring a function ``fn(sources, start, end) -> DataFrame`` as a feature group."""
    def wrap(fn: TransformFn) -> FeatureTransform:
        return FeatureTransform(fn=fn, name=name, entity=entity, event_time_col=event_time_col,
                                sources=dict(sources or {}), features=features,
                                description=description or (fn.__doc__ or "").strip() or None,
                                project=project, mode=mode)
    return wrap


def load_reference(reference: str) -> Any:
    """Import ``package.module:name`` (``name`` may be dotted) and return the object."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise DefinitionError(f"reference {reference!r} must look like 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise DefinitionError(f"cannot import module {module_name!r} of reference {reference!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DefinitionError(f"module {module_name!r} has no attribute {attr!r} (reference {reference!r})")
        obj = getattr(obj, part)
    return obj


def transforms_in(module: Any) -> List[FeatureTransform]:
    """Every FeatureTransform defined at the top level of a module (for listing in jobs)."""
    return [v for v in vars(module).values() if isinstance(v, FeatureTransform)]
