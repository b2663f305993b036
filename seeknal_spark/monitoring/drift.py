"""Distribution drift of features between a baseline window and a current window.

Numeric features: population stability index (PSI) over baseline deciles, and the change in mean and null rate.
Categorical features: PSI over category shares (the most frequent categories, the rest pooled as ``__other__``).
Each window is scanned once for all numeric features, and once per categorical feature.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from seeknal_spark.offline.write_stats import is_numeric_type

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

__all__ = ["FeatureDrift", "DriftReport", "drift", "population_stability_index"]

_EPS = 1e-4
TOP_CATEGORIES = 20


def population_stability_index(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bins of two share vectors (shares are floored at 1e-4)."""
    total = 0.0
    for e, a in zip(expected, actual):
        e, a = max(e, _EPS), max(a, _EPS)
        total += (a - e) * math.log(a / e)
    return total


@dataclass
class FeatureDrift:
    """Drift figures of one feature."""

    feature: str
    kind: str  # "numeric" or "categorical"
    psi: float
    baseline_mean: Optional[float]
    current_mean: Optional[float]
    baseline_null_rate: float
    current_null_rate: float
    drifted: bool
    bins: List[str] = field(default_factory=list)
    baseline_shares: List[float] = field(default_factory=list)
    current_shares: List[float] = field(default_factory=list)
    edges: List[float] = field(default_factory=list)  # numeric bin edges (baseline quantiles)

    @property
    def mean_change(self) -> Optional[float]:
        if self.baseline_mean is None or self.current_mean is None:
            return None
        return self.current_mean - self.baseline_mean

    @property
    def null_rate_change(self) -> float:
        return self.current_null_rate - self.baseline_null_rate


@dataclass
class DriftReport:
    """Drift of every feature; ``to_pandas()`` gives the table, ``charts`` the PNG files written."""

    group: str
    baseline: Tuple[str, str]
    current: Tuple[str, str]
    threshold: float
    features: List[FeatureDrift]
    charts: Dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> List[str]:
        return [f.feature for f in self.features if f.drifted]

    def rows(self) -> List[Dict[str, Any]]:
        out = []
        for f in self.features:
            out.append({"feature": f.feature, "kind": f.kind, "psi": round(f.psi, 4),
                        "baseline_mean": f.baseline_mean, "current_mean": f.current_mean,
                        "mean_change": f.mean_change, "baseline_null_rate": f.baseline_null_rate,
                        "current_null_rate": f.current_null_rate, "null_rate_change": f.null_rate_change,
                        "drifted": f.drifted})
        return out

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows())

    def to_dict(self) -> Dict[str, Any]:
        return {"group": self.group, "baseline": self.baseline, "current": self.current,
                "threshold": self.threshold, "features": [asdict(f) for f in self.features], "charts": self.charts}


def _numeric_profile(df: "DataFrame", features: List[str], edges: Dict[str, List[float]]) -> Dict[str, Any]:
    """One aggregation: rows, nulls, mean and per-bin counts of every numeric feature."""
    from pyspark.sql import functions as F

    cols = [F.count(F.lit(1)).alias("__rows")]
    for i, name in enumerate(features):
        x = F.col(name).cast("double")
        cols += [F.sum(x.isNull().cast("long")).alias(f"{i}_n"), F.avg(x).alias(f"{i}_m")]
        bucket = F.lit(0)
        for edge in edges[name]:
            bucket = bucket + (x > F.lit(edge)).cast("int")
        for b in range(len(edges[name]) + 1):
            cols.append(F.sum((x.isNotNull() & (bucket == b)).cast("long")).alias(f"{i}_b{b}"))
    return df.agg(*cols).collect()[0].asDict()


def _shares(counts: List[int]) -> List[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def drift(baseline: "DataFrame", current: "DataFrame", features: Sequence[str], *, group: str = "",
          baseline_range: Tuple[str, str] = ("", ""), current_range: Tuple[str, str] = ("", ""),
          threshold: float = 0.2, bins: int = 10) -> DriftReport:
    """Compare feature distributions of two DataFrames (same columns)."""
    from pyspark.sql import functions as F

    types = {f.name: f.dataType.jsonValue() for f in baseline.schema.fields}
    numeric = [f for f in features if is_numeric_type(types[f])]
    categorical = [f for f in features if f not in numeric and types[f] in ("string", "boolean")]
    results: List[FeatureDrift] = []
    if numeric:
        probs = [i / bins for i in range(1, bins)]
        q_row = baseline.agg(*[F.percentile_approx(F.col(f).cast("double"), probs, 10000).alias(f)
                               for f in numeric]).collect()[0].asDict()
        edges = {f: sorted(set(q_row[f] or [])) for f in numeric}
        base, cur = _numeric_profile(baseline, numeric, edges), _numeric_profile(current, numeric, edges)
        for i, name in enumerate(numeric):
            nb = len(edges[name]) + 1
            b_counts = [int(base[f"{i}_b{b}"] or 0) for b in range(nb)]
            c_counts = [int(cur[f"{i}_b{b}"] or 0) for b in range(nb)]
            b_sh, c_sh = _shares(b_counts), _shares(c_counts)
            psi = population_stability_index(b_sh, c_sh)
            labels = [f"<= {edges[name][0]:.4g}"] if edges[name] else ["all"]
            labels += [f"({lo:.4g}, {hi:.4g}]" for lo, hi in zip(edges[name], edges[name][1:])]
            if edges[name]:
                labels.append(f"> {edges[name][-1]:.4g}")
            b_rows, c_rows = int(base["__rows"]), int(cur["__rows"])
            results.append(FeatureDrift(
                name, "numeric", psi, base[f"{i}_m"], cur[f"{i}_m"],
                (base[f"{i}_n"] or 0) / b_rows if b_rows else 0.0, (cur[f"{i}_n"] or 0) / c_rows if c_rows else 0.0,
                psi > threshold, labels, b_sh, c_sh, list(edges[name])))
    for name in categorical:
        b = {r[0]: r[1] for r in baseline.groupBy(F.col(name).cast("string")).count().collect()}
        c = {r[0]: r[1] for r in current.groupBy(F.col(name).cast("string")).count().collect()}
        b_null, c_null = b.pop(None, 0), c.pop(None, 0)
        top = sorted(set(b) | set(c), key=lambda k: -(b.get(k, 0) + c.get(k, 0)))
        keep, rest = top[:TOP_CATEGORIES], top[TOP_CATEGORIES:]
        b_counts = [b.get(k, 0) for k in keep] + ([sum(b.get(k, 0) for k in rest)] if rest else [])
        c_counts = [c.get(k, 0) for k in keep] + ([sum(c.get(k, 0) for k in rest)] if rest else [])
        b_sh, c_sh = _shares(b_counts), _shares(c_counts)
        psi = population_stability_index(b_sh, c_sh)
        b_rows, c_rows = sum(b.values()) + b_null, sum(c.values()) + c_null
        results.append(FeatureDrift(
            name, "categorical", psi, None, None, b_null / b_rows if b_rows else 0.0,
            c_null / c_rows if c_rows else 0.0, psi > threshold, [str(k) for k in keep] + (["__other__"] if rest else []),
            b_sh, c_sh))
    order = {f: i for i, f in enumerate(features)}
    results.sort(key=lambda r: order[r.feature])
    return DriftReport(group, baseline_range, current_range, threshold, results)
