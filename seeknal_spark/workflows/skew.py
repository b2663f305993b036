"""Training-serving skew: online values against point-in-time offline values at the online table's as-of time.

:func:`check_skew` looks up a sample of keys online and computes the same keys' point-in-time features from the
offline store at the table's ``as_of`` (``HistoricalFeatures.using_spine`` with a spine of ``(keys, as_of)``),
and reports mismatches per feature in a :class:`SkewReport`. It needs Spark (retrieval) and the online table
(serving), so it sits above both; the Spark-free definition check is ``seeknal_spark.serving.parity``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from seeknal_spark.errors import DefinitionError
from seeknal_spark.retrieval import FeatureLookup, HistoricalFeatures
from seeknal_spark.serving.parity import open_online
from seeknal_spark.serving.snapshot import connect_readonly
from seeknal_spark.session import get_spark
from seeknal_spark.sqltypes import quote_ident

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = ["FeatureSkew", "SkewReport", "check_skew"]

_AS_OF_COL = "__seeknal_as_of"
DEFAULT_SAMPLE = 1000


@dataclass
class FeatureSkew:
    """Online vs offline values of one feature over the sampled keys."""

    name: str
    checked: int = 0
    mismatches: int = 0
    example_keys: List[Dict[str, Any]] = field(default_factory=list)
    examples: List[Tuple[Dict[str, Any], Any, Any]] = field(default_factory=list)  # (key, online, offline)

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / self.checked if self.checked else 0.0


@dataclass
class SkewReport:
    """Result of :func:`check_skew`: per-feature mismatch counts with example keys.

    Example:
        >>> report = check_skew(table, hist, sample_keys=200)      # doctest: +SKIP
        >>> report.has_skew, report.mismatched_features            # doctest: +SKIP
        (True, ['amount_7d'])
    """

    table: str
    version: int
    as_of: dt.datetime
    keys_checked: int
    features: Dict[str, FeatureSkew]
    not_compared: List[str] = field(default_factory=list)  # served features no lookup produces

    @property
    def has_skew(self) -> bool:
        return any(f.mismatches for f in self.features.values())

    @property
    def mismatched_features(self) -> List[str]:
        return [n for n, f in self.features.items() if f.mismatches]

    def to_rows(self) -> List[Dict[str, Any]]:
        """One dict per feature: name, checked, mismatches, mismatch_rate, example_keys."""
        return [{"feature": f.name, "checked": f.checked, "mismatches": f.mismatches,
                 "mismatch_rate": f.mismatch_rate, "example_keys": f.example_keys} for f in self.features.values()]

    def __str__(self) -> str:
        lines = [f"skew check of online table {self.table} v{self.version} as of {self.as_of.isoformat()}: "
                 f"{self.keys_checked} key(s)"]
        for f in self.features.values():
            lines.append(f"  {f.name}: {f.mismatches}/{f.checked} mismatched"
                         + (f", e.g. {f.examples[0][0]} online={f.examples[0][1]!r} offline={f.examples[0][2]!r}"
                            if f.examples else ""))
        if self.not_compared:
            lines.append(f"  not compared (no lookup produces them): {self.not_compared}")
        return "\n".join(lines)


def _as_hist(source: Any) -> HistoricalFeatures:
    if isinstance(source, HistoricalFeatures):
        return source
    if isinstance(source, FeatureLookup) or (isinstance(source, Sequence) and not isinstance(source, str)):
        return HistoricalFeatures(source)
    raise DefinitionError(f"check_skew needs a HistoricalFeatures or FeatureLookup(s), got {type(source).__name__}")


def _sample_keys(path: str, table: Mapping[str, Any], n: int, seed: int) -> List[Tuple[Any, ...]]:
    keys = ", ".join(quote_ident(k) for k in table["join_keys"])
    con = connect_readonly(path)
    try:
        return [tuple(r) for r in con.execute(
            f"SELECT {keys} FROM {quote_ident(table['table'])} ORDER BY hash({keys}, $seed), {keys} LIMIT $n",
            {"seed": int(seed), "n": int(n)}).fetchall()]
    finally:
        con.close()


def _norm(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc)  # naive (Spark, local time) and aware (DuckDB) alike
    if hasattr(value, "asDict"):
        return {k: _norm(v) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def _same(a: Any, b: Any, rel_tol: float) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or (rel_tol > 0 and math.isclose(a, b, rel_tol=rel_tol))
    return bool(a == b) and (a is None) == (b is None)


def check_skew(online_table: Any, hist_or_lookups: Any, sample_keys: Union[None, int, Sequence[Mapping[str, Any]]]
               = None, spark: Optional["SparkSession"] = None, *, seed: int = 0, rel_tol: float = 0.0,
               max_examples: int = 5, store_root: Optional[str] = None) -> SkewReport:
    """Compare online values with the offline store's point-in-time values at the online table's ``as_of``.

    Args:
        online_table: an ``OnlineFeatures`` or a table name / path to open.
        hist_or_lookups: the ``HistoricalFeatures`` (or FeatureLookup(s)) the table is meant to serve; features
            are matched by output name. Fill rules are not applied (serving does not fill nulls).
        sample_keys: None for up to 1000 keys, an int for that many keys (a deterministic pseudo-random sample of
            the online table's keys, ``seed``), or explicit key dicts (keys absent online count too).
        spark: the session for the offline side (default: ``get_spark()``).
        rel_tol: relative tolerance for float values (default exact).
        max_examples: example keys kept per feature.

    Returns:
        A SkewReport with per-feature counts; ``report.has_skew`` is True when any value differs.

    Example:
        >>> report = check_skew(OnlineFeatures.open("user_features"), hist, sample_keys=500)   # doctest: +SKIP
        >>> print(report)                                                                       # doctest: +SKIP
    """
    table = open_online(online_table, store_root)
    hist = _as_hist(hist_or_lookups)
    if sample_keys is not None and not isinstance(sample_keys, int) and isinstance(sample_keys, (str, Mapping)):
        raise DefinitionError("sample_keys must be None, a number of keys, or a list of key dicts")
    if isinstance(sample_keys, bool) or (isinstance(sample_keys, int) and sample_keys < 1):
        raise DefinitionError(f"sample_keys must be a positive number of keys, got {sample_keys!r}")
    session = get_spark(spark)
    resolved = hist.resolve()
    meta = table.metadata
    as_of = table.as_of
    served = set(table.feature_names)
    produced = {o for r in resolved for o in r.output_names}
    features: Dict[str, FeatureSkew] = {}
    keys_checked = 0
    for t in meta["tables"]:
        keys = list(t["join_keys"])
        names = [f["name"] for f in t["features"] if f["name"] in produced]
        lookups = [lk for lk, r in zip(hist.lookups, resolved)
                   if set(r.join_keys) == set(keys) and set(r.output_names) & served]
        if not names or not lookups:
            continue
        if sample_keys is None or isinstance(sample_keys, int):
            key_rows = _sample_keys(table.path, t, sample_keys or DEFAULT_SAMPLE, seed)
        else:
            key_rows = []
            for kd in sample_keys:
                missing = [k for k in keys if k not in kd]
                if missing:
                    raise DefinitionError(f"sample key {dict(kd)!r} lacks join key(s) {missing} of online table "
                                          f"{table.name!r}")
                key_rows.append(tuple(kd[k] for k in keys))
            key_rows = list(dict.fromkeys(key_rows))
        if not key_rows:
            continue
        keys_checked += len(key_rows)
        ddl = ", ".join(f"`{k['name'].replace('`', '``')}` {k['offline_type']}" for k in t["key_types"])
        spine = session.createDataFrame([(*kv, as_of) for kv in key_rows], f"{ddl}, {_AS_OF_COL} timestamp")
        offline_rows = HistoricalFeatures(lookups).using_spine(spine, date_col=_AS_OF_COL).to_dataframe_with_spine()
        offline = {tuple(r[k] for k in keys): r for r in offline_rows.select(*keys, *names).collect()}
        online = table.get_features([dict(zip(keys, kv)) for kv in key_rows], feature_names=names)
        for name in names:
            features.setdefault(name, FeatureSkew(name))
        for kv, row in zip(key_rows, online):
            off = offline.get(tuple(kv))
            for name in names:
                skew = features[name]
                skew.checked += 1
                off_value = off[name] if off is not None else None
                if not _same(row.get(name), off_value, rel_tol):
                    skew.mismatches += 1
                    if len(skew.examples) < max_examples:
                        key = dict(zip(keys, kv))
                        skew.example_keys.append(key)
                        skew.examples.append((key, row.get(name), off_value))
    return SkewReport(table=table.name, version=table.version, as_of=as_of, keys_checked=keys_checked,
                      features=features, not_compared=[n for n in table.feature_names if n not in produced])
