"""Point-in-time join benchmark: seeknal_spark's windowed as-of join vs Feast's equi-join + row_number vs DuckDB.

Generates feature rows for ``--keys`` entities (about ``--feature-rows`` rows, spread over ``--days`` days, with
``--tie-fraction`` of them rewritten by a second write at the same keys and time: the later write must win) and a
spine of ``--spine-rows`` rows, writes the features through ``FeatureGroup.write`` and the spine as Parquet, then
times, on one Spark session and the same files:

  (a) ``HistoricalFeatures(...).using_spine(...).to_dataframe_with_spine()`` (this library),
  (b) equi-join on the key with ``event_time <= spine time`` then ``row_number()`` per spine row (the algorithm of
      Feast's Spark offline store; ties broken by the write sequence number so it is correct),
  (c) DuckDB ``ASOF LEFT JOIN`` over the live Parquet files of the Delta snapshot (ties removed first with the
      write sequence number taken from the file names),
  (d) this library's DuckDB engine: ``HistoricalFeatures(..., engine="duckdb")`` on a pandas spine
      (``to_arrow_with_spine()``), no Spark.

Each result is written to Parquet (so every column is computed), then all three are compared row for row.

    .venv/bin/python benchmarks/bench_pit.py                      # 100k keys, 2M feature rows, 500k spine rows
    .venv/bin/python benchmarks/bench_pit.py --keys 2000 --feature-rows 40000 --spine-rows 10000   # quick

Figures depend on the machine and on what else runs on it; compare the ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SEEKNAL_CONF_DIR", str(REPO / "conf"))

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
COLUMNS = ["user_id", "ts", "f1", "f2"]


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--feature-rows", type=int, default=2_000_000)
    p.add_argument("--spine-rows", type=int, default=500_000)
    p.add_argument("--days", type=int, default=30, help="days the feature rows span")
    p.add_argument("--tie-fraction", type=float, default=0.01, help="share of rows rewritten by a second write")
    p.add_argument("--repeat", type=int, default=1, help="rounds of (a), (b), (c), interleaved; the fastest of each is reported")
    p.add_argument("--workdir", default=None, help="directory for the store and outputs (default: a temp dir)")
    p.add_argument("--duckdb-threads", type=int, default=2)
    return p.parse_args(argv)


def generate(spark, args, root: Path):
    """Write the feature group (two writes, the second rewriting some rows) and the spine Parquet file."""
    from pyspark.sql import functions as F

    from seeknal_spark import (Entity, FeatureGroup, FeatureStoreFileOutput, Materialization,
                               OfflineMaterialization, OfflineStore)

    per_key = max(1, args.feature_rows // args.keys)
    span = args.days * 86_400
    step = max(1, span // per_key)
    store = OfflineStore(name="bench", value=FeatureStoreFileOutput(path=str(root / "store")))
    group = FeatureGroup("bench_users", entity=Entity("user", ["user_id"]),
                         materialization=Materialization(event_time_col="event_time", offline_materialization=
                                                         OfflineMaterialization(store=store, mode="append")))
    base = F.lit(int(BASE.timestamp()))
    rows = spark.range(per_key * args.keys).select(
        (F.col("id") % args.keys).alias("user_id"),
        F.timestamp_seconds(base + (F.col("id") / args.keys).cast("long") * step
                            + F.pmod(F.xxhash64("id"), F.lit(step))).alias("event_time"),
        F.when(F.rand(11) < 0.05, F.lit(None)).otherwise(F.round(F.rand(12) * 100, 3)).alias("f1"),
        (F.rand(13) * 1000).cast("long").alias("f2"),
        F.col("id"))
    t0 = time.perf_counter()
    group.set_dataframe(rows.drop("id")).write()
    modulus = max(1, int(round(1 / args.tie_fraction))) if args.tie_fraction > 0 else 0
    if modulus:
        ties = rows.where(F.col("id") % modulus == 0).select(
            "user_id", "event_time", (-F.col("f2")).cast("double").alias("f1"), (F.col("f2") + 1_000_000).alias("f2"))
        group.set_dataframe(ties).write()
    spine = spark.range(args.spine_rows).select(
        F.pmod(F.xxhash64("id", F.lit(1)), F.lit(args.keys)).alias("user_id"),
        F.timestamp_seconds(base - 2 * 86_400 + F.pmod(F.xxhash64("id", F.lit(2)), F.lit(span + 4 * 86_400)))
        .alias("ts"))
    spine_path = str(root / "spine.parquet")
    spine.write.mode("overwrite").parquet(spine_path)
    print(f"generated {per_key * args.keys:,} feature rows (+{'%.0f' % (per_key * args.keys / modulus) if modulus else 0}"
          f" rewritten), {args.spine_rows:,} spine rows for {args.keys:,} keys in {time.perf_counter() - t0:.1f} s")
    return group, spine_path


def run_library(spark, group, spine_path: str, out: str) -> None:
    from seeknal_spark.retrieval import FeatureLookup, HistoricalFeatures

    spine = spark.read.parquet(spine_path)
    hist = HistoricalFeatures([FeatureLookup(source=group, features=["f1", "f2"])])
    hist.using_spine(spine, "ts").to_dataframe_with_spine().select(*COLUMNS).write.mode("overwrite").parquet(out)


def run_duckdb_engine(group, spine_path: str, out: str, threads: int) -> None:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from seeknal_spark.retrieval import FeatureLookup, HistoricalFeatures

    spine = ds.dataset(spine_path, format="parquet").to_table()
    hist = HistoricalFeatures([FeatureLookup(source=group, features=["f1", "f2"])], engine="duckdb")
    table = hist.using_spine(spine, "ts").to_arrow_with_spine(threads=threads)
    os.makedirs(out, exist_ok=True)
    pq.write_table(table.select(COLUMNS), os.path.join(out, "part-0.parquet"))


def run_feast(spark, group, spine_path: str, out: str) -> None:
    """Feast's Spark offline store: left join on key with event_time <= ts, row_number() per spine row, keep 1."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from seeknal_spark.offline.reader import read_table

    spine = spark.read.parquet(spine_path).withColumn("_rid", F.monotonically_increasing_id())
    feats = read_table(spark, group.table_path, "event_time", with_seq=True).select(
        F.col("user_id").alias("_fk"), "event_time", "_seq", "f1", "f2")
    joined = spine.join(feats, (spine["user_id"] == feats["_fk"]) & (feats["event_time"] <= spine["ts"]), "left")
    rank = F.row_number().over(Window.partitionBy("_rid").orderBy(F.col("event_time").desc_nulls_last(),
                                                                 F.col("_seq").desc_nulls_last()))
    joined.withColumn("_rn", rank).where(F.col("_rn") == 1).select(*COLUMNS).write.mode("overwrite").parquet(out)


def run_duckdb(group, spine_path: str, out: str, threads: int, dedupe: bool = True) -> None:
    """Hand-written DuckDB ASOF join; without ``dedupe`` ties are left to chance (correct only on tables without
    ties, such as tables written by this version's writer, which keeps one row per keys and event time)."""
    import duckdb

    from seeknal_spark.offline import delta_log

    files = [f.uri[len("file://"):] if f.uri.startswith("file://") else f.uri
             for f in delta_log.live_files(delta_log.open_table(group.table_path))]
    con = duckdb.connect()
    con.execute("SET threads = $1", [threads])
    con.read_parquet(files, filename=True).create_view("feat_files")
    con.read_parquet(spine_path + "/*.parquet").create_view("spine")
    con.execute("""
        CREATE VIEW feats AS
        SELECT user_id, event_time, f1, f2 FROM feat_files
        QUALIFY row_number() OVER (PARTITION BY user_id, event_time
                                   ORDER BY CAST(regexp_extract(filename, '/s(\\d+)-[^/]*$', 1) AS BIGINT) DESC) = 1
    """)
    source = "feats" if dedupe else "feat_files"
    con.execute(f"CREATE VIEW result AS SELECT s.user_id, s.ts, f.f1, f.f2 FROM spine s "
                f"ASOF LEFT JOIN {source} f ON s.user_id = f.user_id AND s.ts >= f.event_time")
    con.table("result").write_parquet(out)
    con.close()


def load_sorted(path: str):
    """The output as a pyarrow Table with normalised types, sorted by every column."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    table = ds.dataset(path, format="parquet").to_table(columns=COLUMNS)
    ts = table.column("ts")
    micros = pc.cast(pc.cast(ts, pa.timestamp("us", tz="UTC")), pa.int64())
    table = pa.table({"user_id": pc.cast(table.column("user_id"), pa.int64()), "ts": micros,
                      "f1": pc.cast(table.column("f1"), pa.float64()), "f2": pc.cast(table.column("f2"), pa.int64())})
    return table.sort_by([(c, "ascending") for c in COLUMNS])


def timed_interleaved(methods: Dict[str, Callable[[], None]], repeat: int) -> Dict[str, float]:
    """Run the methods in turn ``repeat`` times (a, b, c, a, b, c, ...) so load changes hit each alike; best time."""
    best = {name: float("inf") for name in methods}
    for i in range(repeat):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - t0
            best[name] = min(best[name], elapsed)
            print(f"  {name}: run {i + 1}: {elapsed:.2f} s (load avg {os.getloadavg()[0]:.1f})", flush=True)
    return best


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    from seeknal_spark.session import local_session

    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_pit_"))
    if root.exists() and args.workdir:
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    spark = local_session(app_name="bench_pit")
    print(f"spark {spark.version}, master {spark.conf.get('spark.master', '?')}, shuffle partitions "
          f"{spark.conf.get('spark.sql.shuffle.partitions')}, cores {os.cpu_count()}, load avg {os.getloadavg()}")
    group, spine_path = generate(spark, args, root)
    spark.read.parquet(spine_path).count()  # warm up the JVM's readers before timing
    outs = {k: str(root / f"out_{k}") for k in "abcde"}
    labels = {"a": "(a) seeknal_spark engine='spark'", "b": "(b) equi-join + row_number (Feast)",
              "c": "(c) DuckDB ASOF LEFT JOIN", "d": "(d) seeknal_spark engine='duckdb'",
              "e": "(e) DuckDB ASOF LEFT JOIN, no tie handling"}
    best = timed_interleaved({
        labels["a"]: lambda: run_library(spark, group, spine_path, outs["a"]),
        labels["b"]: lambda: run_feast(spark, group, spine_path, outs["b"]),
        labels["c"]: lambda: run_duckdb(group, spine_path, outs["c"], args.duckdb_threads),
        labels["d"]: lambda: run_duckdb_engine(group, spine_path, outs["d"], args.duckdb_threads),
        labels["e"]: lambda: run_duckdb(group, spine_path, outs["e"], args.duckdb_threads, dedupe=False),
    }, args.repeat)
    times = {k: best[v] for k, v in labels.items()}
    tables = {k: load_sorted(v) for k, v in outs.items()}
    agree = True
    for k in "bcde":
        same = tables["a"].num_rows == tables[k].num_rows and tables["a"].equals(tables[k])
        agree &= same
        print(f"rows (a)={tables['a'].num_rows:,} ({k})={tables[k].num_rows:,}: "
              f"{'identical' if same else 'DIFFERENT'}")
    if tables["a"].num_rows != args.spine_rows:
        print(f"(a) has {tables['a'].num_rows} rows for {args.spine_rows} spine rows")
        agree = False
    print(f"load avg after: {os.getloadavg()} (2-core machine shared with other agents: compare ratios)")
    print("times: " + ", ".join(f"({k}) {times[k]:.2f} s" for k in "abcde"))
    lib_rn, spark_duck, engine_hand = times["a"] / times["b"], times["a"] / times["d"], times["d"] / times["c"]
    print(f"lib/row_number (a)/(b) = {lib_rn:.2f}  [target <= 0.6: {'met' if lib_rn <= 0.6 else 'NOT met'}] "
          f"at {args.feature_rows // args.keys} rows per key")
    print(f"(a)/(c) = {times['a'] / times['c']:.2f}x  (Spark engine vs hand-written DuckDB ASOF)")
    print(f"duckdb engine vs hand-written ASOF (d)/(c) = {engine_hand:.2f}x  "
          f"[target <= 1.5x: {'met' if engine_hand <= 1.5 else 'NOT met'}]")
    print(f"duckdb engine vs plain ASOF without tie handling (d)/(e) = {times['d'] / times['e']:.2f}x")
    print(f"Spark engine / duckdb engine (a)/(d) = {spark_duck:.2f}x  "
          f"[target >= 5x: {'met' if spark_duck >= 5 else 'NOT met'}]")
    spark.stop()
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
