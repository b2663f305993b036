"""How each cost grows with the number of feature rows: write, training set (Spark and DuckDB engines), export.

For each size N (feature rows): N/20 keys with 20 rows each over 30 days, 8 double features, one
``FeatureGroup.write``; a spine of N/4 rows; then the training set with ``engine="spark"`` (written to Parquet so
every column is computed) and ``engine="duckdb"`` (an Arrow table), and the online export + publish of the latest
row per key. Prints one table row per size and the growth from the smallest size.

    .venv/bin/python benchmarks/bench_scaling.py --sizes 1000000,10000000
    .venv/bin/python benchmarks/bench_scaling.py --sizes 1000000 --skip-spark-above 5000000

Figures come from a shared 2-core machine: compare the growth, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from benchkit import REPO, START, file_store, load, source, timed, user_group

os.environ.setdefault("SEEKNAL_CONF_DIR", str(REPO / "conf"))


def one_size(spark, n: int, root: Path, skip_spark: bool) -> Dict[str, float]:
    import pyarrow.dataset as ds
    from pyspark.sql import functions as F

    from seeknal_spark.retrieval import FeatureLookup, HistoricalFeatures
    from seeknal_spark.serving import ServingSource, publish_online_table

    keys, per_key, days = max(1, n // 20), 20, 30
    span = days * 86_400
    base = F.lit(int(START.timestamp()))
    group = user_group(f"scale_{n}", file_store(str(root / "store"), name="scale"))
    rows = source(spark, keys * per_key, keys, days, 8)
    out: Dict[str, float] = {}
    with timed(out, "write"):
        group.set_dataframe(rows).write()
    spine_path = str(root / f"spine_{n}")
    spark.range(max(1, n // 4)).select(
        F.pmod(F.xxhash64("id", F.lit(1)), F.lit(keys)).alias("user_id"),
        F.timestamp_seconds(base + F.pmod(F.xxhash64("id", F.lit(2)), F.lit(span))).alias("ts")) \
        .write.mode("overwrite").parquet(spine_path)
    lookup = FeatureLookup(source=group)
    if not skip_spark:
        with timed(out, "spark"):
            HistoricalFeatures([lookup]).using_spine(spark.read.parquet(spine_path), "ts").to_dataframe_with_spine() \
                .write.mode("overwrite").parquet(str(root / f"out_{n}"))
    spine = ds.dataset(spine_path, format="parquet").to_table()
    with timed(out, "duckdb"):
        HistoricalFeatures([lookup], engine="duckdb").using_spine(spine, "ts").to_arrow_with_spine()
    with timed(out, "export"):
        publish_online_table(ServingSource.from_feature_group(group), f"scale_{n}", store_root=str(root / "online"),
                             index="duckdb").close()
    return out


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000000,10000000")
    p.add_argument("--skip-spark-above", type=int, default=10 ** 12, help="no Spark engine run above this size")
    p.add_argument("--workdir", default=None)
    p.add_argument("--warmup", type=int, default=100_000,
                   help="rows of one untimed round first, so the JVM's start-up is not billed to the first size (0: none)")
    args = p.parse_args(argv)
    from seeknal_spark.session import local_session

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_scaling_"))
    root.mkdir(parents=True, exist_ok=True)
    spark = local_session(app_name="bench_scaling", extra={"spark.driver.memory": "6g"})
    if args.warmup:
        one_size(spark, args.warmup, root / "warmup", False)
    results = {}
    for n in [int(s) for s in args.sizes.split(",")]:
        results[n] = one_size(spark, n, root, n > args.skip_spark_above)
        r = results[n]
        print(f"{n:>12,} rows: write {r['write']:.1f} s, training set spark {r.get('spark', float('nan')):.1f} s, "
              f"duckdb {r['duckdb']:.1f} s, export {r['export']:.1f} s (load avg {load()})",
              flush=True)
    first = min(results)
    print("\n| feature rows | write s | training set Spark s | training set DuckDB s | export s |")
    print("|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        cells = [f"{r[k]:.1f} ({r[k] / results[first][k]:.1f}x)" if k in r and k in results[first] else "-"
                 for k in ("write", "spark", "duckdb", "export")]
        print(f"| {n:,} | " + " | ".join(cells) + " |")
    spark.stop()
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
