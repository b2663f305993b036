"""End-to-end demo on generated data with the embedded defaults (local Spark, local Delta store, DuckDB file).

Run it with ``./run.sh demo``. It
1. materializes two feature groups over four months into the offline store (Delta),
2. builds a labelled training set with a point-in-time join and trains a small model on it,
3. publishes the online table (DuckDB) and scores a few keys with features served without Spark, showing they
   equal the training features at the same time,
4. reports freshness and drift (one feature drifts on purpose in April) with PNG charts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import sys
import time

from seeknal_spark import (
    FeatureLookup,
    FeatureStoreFileOutput,
    FillNull,
    HistoricalFeatures,
    OfflineStore,
)
from seeknal_spark.config import default_offline_store_path, default_online_store_path
from seeknal_spark.examples import retail
from seeknal_spark import check_skew
from seeknal_spark.session import get_spark

UTC = dt.timezone.utc
MODEL_FEATURES = ["order_count", "total_amount", "mean_amount", "mobile_share", "tenure_days"]
AS_OF = dt.datetime(2024, 4, 30, tzinfo=UTC)


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)), flush=True)


def materialize(spark, store) -> None:
    section("1. Materialize feature groups into the offline store (Delta)")
    for transform in (retail.user_daily_orders, retail.user_profile):
        start = time.time()
        # Two writes per group: Jan-Feb, then Mar-Apr, as a scheduler would run them.
        for lo, hi in (("2024-01-01", "2024-02-29T23:59:59.999999"), ("2024-03-01", "2024-04-30T23:59:59.999999")):
            transform.materialize(lo, hi, spark=spark, store=store)
        fg = transform.feature_group(store).get_or_create()
        marks = fg.offline_watermarks
        rows = fg.to_dataframe(spark=spark).count()
        print(f"{fg.name}: {rows} rows, {len(marks)} daily partitions "
              f"({marks[0].date()} .. {marks[-1].date()}), schema version {fg.schema_version}, "
              f"Delta version {fg.delta_version}")
        print(f"  table: {fg.table_path}")
        for v in fg.describe_versions():
            print(f"  schema v{v['version']}: {v['features']}")
        print(f"  took {time.time() - start:.1f}s")


def training_set(spark, store, manifest_path: str):
    section("2. Point-in-time training set (no leakage) and a model trained on it")
    orders = retail.user_daily_orders.feature_group(store).get_or_create()
    profile = retail.user_profile.feature_group(store).get_or_create()
    hist = HistoricalFeatures(
        lookups=[FeatureLookup(source=orders, ttl=dt.timedelta(days=30)), FeatureLookup(source=profile)],
        fill_nulls=[FillNull(0.0, "double"), FillNull(0, "bigint")])
    spine = retail.labels(spark)
    train = hist.using_spine(spine, date_col="label_time", keep_cols=["will_order_big"]).to_dataframe_with_spine(
        manifest_path=manifest_path)
    rows = train.orderBy("label_time", "user_id").collect()
    print(f"training set: {len(rows)} rows x {len(train.columns)} columns: {train.columns}")
    for r in rows[:3]:
        print("  ", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.asDict().items()})
    model = fit_logistic([[float(r[f]) for f in MODEL_FEATURES] for r in rows], [r["will_order_big"] for r in rows])
    acc = sum((model.predict([float(r[f]) for f in MODEL_FEATURES]) > 0.5) == bool(r["will_order_big"])
              for r in rows) / len(rows)
    print(f"logistic regression on {MODEL_FEATURES}: training accuracy {acc:.3f}")
    print(f"training-set manifest (Delta/schema versions read, spine fingerprint): {manifest_path}")
    return hist, model


class Logistic:
    """A tiny standardised logistic regression (plain Python: the model server needs no Spark either)."""

    def __init__(self, mean, scale, weights, bias):
        self.mean, self.scale, self.weights, self.bias = mean, scale, weights, bias

    def predict(self, x) -> float:
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in zip(self.weights, x, self.mean, self.scale))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def fit_logistic(xs, ys, epochs: int = 200, lr: float = 0.5) -> Logistic:
    n, d = len(xs), len(xs[0])
    mean = [sum(x[j] for x in xs) / n for j in range(d)]
    scale = [math.sqrt(sum((x[j] - mean[j]) ** 2 for x in xs) / n) or 1.0 for j in range(d)]
    zs = [[(x[j] - mean[j]) / scale[j] for j in range(d)] for x in xs]
    w, b = [0.0] * d, 0.0
    for _ in range(epochs):
        gw, gb = [0.0] * d, 0.0
        for z, y in zip(zs, ys):
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, b + sum(wj * zj for wj, zj in zip(w, z))))))
            gb += p - y
            for j in range(d):
                gw[j] += (p - y) * z[j]
        w = [wj - lr * g / n for wj, g in zip(w, gw)]
        b -= lr * gb / n
    return Logistic(mean, scale, w, b)


def serve(spark, hist, model, online_root: str, manifest_path: str) -> None:
    section("3. Publish the online table (DuckDB) and score keys without Spark")
    start = time.time()
    table = hist.serve(name="user_features", feature_end_time=AS_OF, store_root=online_root)
    print(f"published {table.name} v{table.version}: {len(table)} keys as of {table.as_of.isoformat()} "
          f"in {time.time() - start:.1f}s -> {table.path}")
    keys = [3, 42, 1337, 1999]
    t0 = time.perf_counter()
    served = table.get_features(keys=[{"user_id": k} for k in keys])
    micros = (time.perf_counter() - t0) * 1e6
    print(f"get_features for {len(keys)} keys took {micros:.0f} us")
    # The same keys through the point-in-time join at the table's as-of time: training-serving parity.
    spine = spark.createDataFrame([(k, AS_OF) for k in keys], "user_id long, at timestamp")
    offline = {r["user_id"]: r.asDict() for r in hist.using_spine(spine, date_col="at").to_dataframe_with_spine()
               .collect()}
    for row in served:
        x = [float(row[f] or 0) for f in MODEL_FEATURES]
        same = all(row[f] == offline[row["user_id"]][f] for f in table.feature_names)
        shown = {f: (round(row[f], 2) if isinstance(row[f], float) else row[f]) for f in MODEL_FEATURES}
        print(f"  user {row['user_id']}: {shown} -> P(big order) = {model.predict(x):.3f}; "
              f"equals training features at the same time: {same}")
    table.validate_parity(manifest_path)  # raises ParityError listing every difference
    print("parity: the online table serves the manifest's features, order, types and sources")
    print(check_skew(table, hist, sample_keys=200, spark=spark))
    table.close()


def monitor(spark, store, report_dir: str) -> None:
    section("4. Freshness and drift")
    orders = retail.user_daily_orders.feature_group(store).get_or_create()
    fresh = orders.freshness(threshold=dt.timedelta(days=2), now=AS_OF + dt.timedelta(hours=12))
    print(f"freshness of {orders.name}: newest event {fresh.newest_event_time}, age {fresh.age}, "
          f"stale={fresh.stale} (threshold {fresh.threshold})")
    baseline = ("2024-01-01", "2024-02-29T23:59:59")
    current = ("2024-04-01", "2024-04-30T23:59:59")
    report = orders.drift(baseline, current, chart_dir=report_dir, spark=spark)
    print(f"drift of {orders.name}, baseline {baseline[0]}..{baseline[1][:10]} vs current "
          f"{current[0]}..{current[1][:10]} (amounts were made to grow in April):")
    table = report.to_pandas()
    with_cols = ["feature", "kind", "psi", "baseline_mean", "current_mean", "null_rate_change", "drifted"]
    print(table[with_cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for feature, path in report.charts.items():
        print(f"  drift chart for {feature}: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=None, help="offline store root (default: embedded default)")
    parser.add_argument("--online-store", default=None, help="online store root (default: embedded default)")
    parser.add_argument("--keep", action="store_true", help="keep the existing stores instead of starting fresh")
    args = parser.parse_args(argv)
    root = args.store or default_offline_store_path()
    online_root = args.online_store or default_online_store_path()
    if not args.keep:
        for path in (root, online_root):
            if os.path.isdir(path):
                shutil.rmtree(path)
    store = OfflineStore(value=FeatureStoreFileOutput(path=root))
    spark = get_spark()
    started = time.time()
    materialize(spark, store)
    reports = os.path.join(os.path.dirname(root.rstrip("/")), "reports")
    os.makedirs(reports, exist_ok=True)
    manifest = os.path.join(reports, "training_manifest.json")
    hist, model = training_set(spark, store, manifest)
    serve(spark, hist, model, online_root, manifest)
    monitor(spark, store, reports)
    print(f"\ndemo finished in {time.time() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
