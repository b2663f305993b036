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
import os
import shutil
import tempfile

from benchkit import EventFrames, delta_jvm_session, file_store, timed, user_group, write_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="alternating runs per path; the last one is kept")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    spark = delta_jvm_session("bench_native_vs_portable")
    work = args.workdir or tempfile.mkdtemp(prefix="bench_native_")
    data = EventFrames(spark, args.rows, args.keys, args.days, args.features)
    first = data.frame(args.keys, data.per_key, 0, 0.0)
    tie = data.frame(args.keys // 10, 1, 0, 1.0)  # existing (key, event time) on the first day
    new_day = data.frame(args.keys // 10, 1, (args.days + 1) * 86400, 2.0)
    rows = {name: df.count() for name, df in (("first", first), ("tie", tie), ("new_day", new_day))}
    print(f"rows: {rows}; keys {args.keys}; {args.features} double features; {args.days} days")

    def run(path: str):
        with write_path(path):
            shutil.rmtree(os.path.join(work, path), ignore_errors=True)  # a new table each run
            fg = user_group("bench", file_store(os.path.join(work, path)), mode="append", project="b")
            out = {}
            for name, df in (("first", first), ("tie", tie), ("new_day", new_day)):
                with timed(out, name):
                    fg.set_dataframe(df).write()
            stored = spark.read.format("delta").load(fg.table_path).count()
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
