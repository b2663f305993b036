"""Benchmark: the offline store on S3 vs on local disk (write, training set on both engines, publish-online).

One process, one classic session with Delta's JVM jars and the hadoop-aws jars (``scripts/jars.py``), the same
rows for every run (generated once and cached in memory, so the transformation's cost is not measured). For each
write path (``portable``: Spark stages Parquet, delta-rs commits; ``native``: Spark's own Delta writer, with the
S3 writer lease) and each location (a local directory; ``s3://`` on a moto server on loopback, in its own process):
  1. first write: N rows (K keys x N/K event times over D days, F double features) into a new table;
  2. append: one new day (K/10 rows);
  3. training set, Spark engine: a spine of K rows (random keys and times), point-in-time join, every column
     computed (Spark's ``noop`` sink);
  4. training set, DuckDB engine: the same spine as pandas, the same join without Spark;
  5. publish-online: the latest row per key into an online table (local directory / ``s3://`` online location).
Printed: seconds per step (``--repeat`` rounds, alternating the order; the fastest kept) and the S3/local ratio.

moto on loopback is NOT network S3: there is no network latency, no bandwidth limit and no S3 throttling, and moto
itself is a Python server sharing the two cores. The ratios show the overhead of the S3 code paths (s3a
committer and listing, delta-rs object store, pyarrow S3 reads, uploads) on this machine, not what a real
bucket in a region costs.

Usage: .venv/bin/python benchmarks/bench_s3.py [--rows 200000] [--keys 20000] [--features 4] [--paths portable,native]
Figures come from a shared 2-core machine: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchkit import EventFrames, delta_jvm_session, file_store, timed, user_group, write_path

STEPS = ("first_write", "append", "train_spark", "train_duckdb", "publish")


def _moto_server() -> "tuple[subprocess.Popen, str]":
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)  # noqa: S310 - loopback
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--paths", default="portable,native")
    parser.add_argument("--repeat", type=int, default=2, help="rounds over every (path, location); the fastest "
                        "of each step is kept (the first round also warms the JVM)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import boto3
    from pyspark.sql import functions as F

    from seeknal_spark import FeatureLookup, HistoricalFeatures
    from tests.support.jvm import jars_module, pyspark_line

    s3_jars = jars_module().resolve(jars_module().S3_PROFILES[pyspark_line()])
    spark = delta_jvm_session("bench_s3", extra_jars=s3_jars)
    moto, url = _moto_server()
    options = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "AKIABENCH", "AWS_SECRET_ACCESS_KEY": "bench-secret",
               "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    boto3.client("s3", endpoint_url=url, aws_access_key_id="AKIABENCH", aws_secret_access_key="bench-secret",
                 region_name="us-east-1").create_bucket(Bucket="bench-store")
    work = args.workdir or tempfile.mkdtemp(prefix="bench_s3_")
    os.environ["SEEKNAL_ONLINE_STORE"] = os.path.join(work, "online-cache")
    data = EventFrames(spark, args.rows, args.keys, args.days, args.features)
    first = data.frame(args.keys, data.per_key, 0, 0.0)
    new_day = data.frame(args.keys // 10, 1, (args.days + 1) * 86400, 2.0)
    spine_n = max(1, args.keys // 4)
    spine = spark.range(spine_n * 4).select(
        (F.col("id") % args.keys).alias("user_id"),
        F.timestamp_seconds(F.lit(int(data.start.timestamp())) + (F.col("id") * 7919) % (args.days * 86400))
        .alias("label_time")).cache()
    spine_pdf = spine.toPandas()
    print(f"rows: first {first.count()}, append {new_day.count()}, spine {spine.count()}; keys {args.keys}; "
          f"{args.features} double features; {args.days} days")

    def run(path: str, where: str) -> "dict[str, float]":
        if where == "local":
            root = os.path.join(work, path)
            shutil.rmtree(root, ignore_errors=True)
            store = file_store(root)
            target, online_opts = os.path.join(work, f"online-{path}"), None
        else:
            prefix = f"s3://bench-store/{path}-{time.time_ns()}"  # a new table each run
            store = file_store(prefix, storage_options=options)
            target, online_opts = f"s3://bench-store/online-{path}", options
        fg = user_group("bench", store, mode="append", project="b")
        out: "dict[str, float]" = {}
        with write_path(path):
            with timed(out, "first_write"):
                fg.set_dataframe(first).write()
            with timed(out, "append"):
                fg.set_dataframe(new_day).write()
            lookup = [FeatureLookup(source=fg)]
            with timed(out, "train_spark"):
                train = HistoricalFeatures(lookup).using_spine(spine, date_col="label_time").to_dataframe_with_spine()
                train.write.format("noop").mode("overwrite").save()  # every column computed, nothing kept
            n = train.count()
            with timed(out, "train_duckdb"):
                m = len(HistoricalFeatures(lookup, engine="duckdb").using_spine(spine_pdf, date_col="label_time")
                        .to_pandas_with_spine())
            assert n == m == len(spine_pdf), (n, m, len(spine_pdf))
            with timed(out, "publish"):
                kwargs = {"target": target, "storage_options": online_opts} if online_opts else {"store_root": target}
                HistoricalFeatures(lookup).using_latest().serve("bench_online", **kwargs)
        return out

    try:
        results: "dict[tuple[str, str], dict[str, float]]" = {}
        for rnd in range(args.repeat):
            for path in [p for p in args.paths.split(",") if p]:
                for where in ("local", "s3") if rnd % 2 == 0 else ("s3", "local"):
                    got = run(path, where)
                    best = results.setdefault((path, where), got)
                    for step in STEPS:
                        best[step] = min(best[step], got[step])
                    print(f"round {rnd + 1} {path:9s} {where:5s} " + "  ".join(f"{s} {got[s]:6.2f}s" for s in STEPS),
                          flush=True)
        print("\nfastest of each step:")
        for (path, where), best in results.items():
            print(f"{path:9s} {where:5s} " + "  ".join(f"{s} {best[s]:6.2f}s" for s in STEPS))
        print("\nS3 (moto, loopback) / local disk, same rows:")
        for path in [p for p in args.paths.split(",") if p]:
            ratios = {s: results[(path, "s3")][s] / results[(path, "local")][s] for s in STEPS}
            print(f"{path:9s} " + "  ".join(f"{s} x{r:.2f}" for s, r in ratios.items()))
    finally:
        moto.kill()
        moto.wait()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
