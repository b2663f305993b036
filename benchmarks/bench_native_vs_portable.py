"""Benchmark: the native write path (Spark's own Delta writer) vs the portable path (staged Parquet + delta-rs).

One process, one Delta-JVM session, the same rows for both paths (generated once and cached in memory, so the
transformation's cost is not measured):
  1. first write: N rows (K keys x N/K event times over D days, F double features) into a new table;
  2. a tie rewrite: K/10 rows with existing (key, event time) on one day (copy-on-write of that day);
  3. an append of one new day (K/10 rows; must not read old days).
The portable path is taken by the same session with the library's Delta-JVM check answered "no" (its own
parts, delta-rs commits and Parquet file reads, all run for real).

Usage: .venv/bin/python benchmarks/bench_native_vs_portable.py [--rows 1000000] [--keys 100000] [--features 8]
Figures come from a shared 2-core machine: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="alternating runs per path; the last one is kept")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import seeknal_spark.session as session_mod
    from pyspark.sql import functions as F

    from seeknal_spark import (Entity, FeatureGroup, FeatureStoreFileOutput, Materialization,
                               OfflineMaterialization, OfflineStore)
    from tests.support.jvm import delta_session_conf

    spark = session_mod.local_session(app_name="bench_native_vs_portable", extra={
        **delta_session_conf(), "spark.driver.memory": "4g", "spark.databricks.delta.snapshotPartitions": "2"})
    work = args.workdir or tempfile.mkdtemp(prefix="bench_native_")
    per_key = max(1, args.rows // args.keys)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    step_s = args.days * 86400 // per_key

    def frame(n_keys: int, times: int, offset_s: int, salt: float):
        df = spark.range(n_keys * times).select(
            (F.col("id") % n_keys).alias("user_id"),
            F.timestamp_seconds(F.lit(int(start.timestamp()) + offset_s)
                                + (F.col("id") / n_keys).cast("long") * step_s).alias("event_time"))
        for i in range(args.features):
            df = df.withColumn(f"f{i}", F.rand(i) + F.lit(salt))
        return df.cache()

    first = frame(args.keys, per_key, 0, 0.0)
    tie = frame(args.keys // 10, 1, 0, 1.0)  # existing (key, event time) on the first day
    new_day = frame(args.keys // 10, 1, (args.days + 1) * 86400, 2.0)
    rows = {name: df.count() for name, df in (("first", first), ("tie", tie), ("new_day", new_day))}
    print(f"rows: {rows}; keys {args.keys}; {args.features} double features; {args.days} days")
    real_check = session_mod.has_delta_jvm

    def run(path: str):
        session_mod.has_delta_jvm = real_check if path == "native" else (lambda s: False)
        shutil.rmtree(os.path.join(work, path), ignore_errors=True)  # a new table each run
        store = OfflineStore(value=FeatureStoreFileOutput(path=os.path.join(work, path)))
        mat = Materialization("event_time",
                              offline_materialization=OfflineMaterialization(store=store, mode="append"))
        fg = FeatureGroup("bench", entity=Entity("user", ["user_id"]), materialization=mat, project="b")
        out = {}
        for name, df in (("first", first), ("tie", tie), ("new_day", new_day)):
            t0 = time.perf_counter()
            fg.set_dataframe(df).write()
            out[name] = time.perf_counter() - t0
        stored = spark.read.format("delta").load(fg.table_path).count()
        session_mod.has_delta_jvm = real_check
        return out, stored

    try:
        results = {}
        for path in ("portable", "native") * args.repeat:
            results[path] = run(path)
        native, n_stored = results["native"]
        portable, p_stored = results["portable"]
        assert n_stored == p_stored, (n_stored, p_stored)
        print(f"{'step':10} {'native s':>9} {'portable s':>11} {'native/portable':>16}")
        for name in ("first", "tie", "new_day"):
            print(f"{name:10} {native[name]:9.1f} {portable[name]:11.1f} {native[name] / portable[name]:16.2f}")
        print(f"stored rows after the three writes (both paths): {n_stored}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        spark.stop()


if __name__ == "__main__":
    main()
