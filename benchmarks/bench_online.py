"""Benchmark: online lookups from a published online table vs plain DuckDB queries vs a Feast-style SQLite store.

Steps (one run, same data):
  1. write N keys x F double features into the offline store with Spark (FeatureGroup.write; not a target),
  2. export + publish the online table with DuckDB (target <= 60 s for 1M keys),
  3. open it ready to serve (target <= 2 s),
  4. single-key get_features latency p50/p99 (targets 100 us / 1 ms) and 1000-key batches (target <= 5 ms),
     side by side with (b) DuckDB ``SELECT ... WHERE key = ?`` per lookup on the same file and (c) a SQLite table
     keyed like Feast's local online store (entity_key BLOB + feature_name rows, PRIMARY KEY(entity_key,
     feature_name), ``WHERE entity_key IN (...)``, one serialized value per row).

  5. index="mmap": sidecar build, open, latency, and the memory of serving processes: two child processes open
     the same version (one after the other) and report RSS and USS (private memory); with the mapped index the
     second one adds only its private memory (target: <= 20% of the first one's), the data pages are shared.

Usage: .venv/bin/python benchmarks/bench_online.py [--keys 1000000] [--features 10] [--workdir DIR]
Figures come from a shared 2-core machine (other agents run at the same time): compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def mem_mb() -> dict:
    """RSS and USS (private clean + dirty) of this process, MB."""
    out = {"rss": rss_mb(), "uss": float("nan")}
    try:
        with open("/proc/self/smaps_rollup") as fh:
            priv = 0
            for line in fh:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    priv += int(line.split()[1])
            out["uss"] = priv / 1024
    except OSError:
        pass
    return out


CHILD = """
import json, random, sys, time
sys.path.insert(0, {repo!r})
from bench_online import mem_mb
from seeknal_spark.serving import OnlineFeatures
import duckdb, numpy, pyarrow
t0 = time.perf_counter()
opened = None
if {index!r} != "none":  # "none": the interpreter and libraries only (the floor of any serving process)
    table = OnlineFeatures.open("bench", store_root={root!r}, index={index!r}, verify=False)
    opened = time.perf_counter() - t0
    rng = random.Random({seed})
    for _ in range(20000):
        table.get_features(keys=[{{"user_id": rng.randrange({keys})}}])
print(json.dumps(dict(mem_mb(), open_s=opened)), flush=True)
sys.stdin.readline()  # stay alive (mappings shared) until the parent has measured the others
"""


def children_memory(root: str, indexes: list, keys: int) -> list:
    """Start one serving process per entry of ``indexes``, each after the previous one has measured itself, all
    kept alive until the end (so shared pages are shared); their memory figures, in order."""
    import json
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=here)
    procs, stats = [], []
    try:
        for seed, index in enumerate(indexes):
            code = CHILD.format(repo=os.path.join(here, ".."), root=root, index=index, seed=seed, keys=keys)
            proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, env=env)
            procs.append(proc)
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"serving process ({index}) failed")
            stats.append(json.loads(line))
    finally:
        for proc in procs:
            proc.communicate("\n", timeout=60)
    return stats


def pct(samples_ns, q):
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0  # us


def timed(fn, args_list, cpu=None):
    """Wall-clock ns per call; with a list ``cpu``, also this thread's CPU ns per call (less sensitive to other
    processes competing for the cores)."""
    out = []
    for args in args_list:
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        fn(args)
        out.append(time.perf_counter_ns() - t0)
        if cpu is not None:
            cpu.append(time.thread_time_ns() - c0)
    return out


def write_offline(root: str, n_keys: int, n_feat: int, reuse: bool = False) -> "object":
    from pyspark.sql import functions as F

    from seeknal_spark import Entity, FeatureGroup, FeatureStoreFileOutput, Materialization, \
        OfflineMaterialization, OfflineStore
    from seeknal_spark.session import local_session

    spark = local_session(extra={"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "4g"})
    df = spark.range(n_keys).select(
        F.col("id").alias("user_id"),
        (F.lit(dt.datetime(2024, 1, 1)).cast("timestamp") + F.make_interval(secs=F.col("id") % 86400 * 7)).alias("ts"),
        *[(F.rand(seed=i) * 100).alias(f"f{i}") for i in range(n_feat)])
    store = OfflineStore(value=FeatureStoreFileOutput(path=root))
    fg = FeatureGroup("bench_user", entity=Entity("user", ["user_id"]),
                      materialization=Materialization(event_time_col="ts",
                                                      offline_materialization=OfflineMaterialization(store=store)))
    if reuse and fg.delta_version is not None:
        print("offline table reused (--reuse)")
        return fg
    t0 = time.perf_counter()
    fg.set_dataframe(df).write()
    print(f"offline write (Spark, {n_keys} rows): {time.perf_counter() - t0:.1f} s")
    return fg


def build_sqlite(path: str, online_file: str, n_feat: int) -> float:
    """Feast's SqliteOnlineStore layout: one row per (entity_key, feature_name)."""
    import duckdb

    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE bench (entity_key BLOB, feature_name TEXT, value BLOB, vector_value BLOB, "
                "event_ts timestamp, created_ts timestamp, PRIMARY KEY(entity_key, feature_name))")
    con.execute("CREATE INDEX bench_ek ON bench (entity_key)")
    src = duckdb.connect(online_file, read_only=True)
    cols = ", ".join(f'"f{i}"' for i in range(n_feat))
    cur = src.execute(f'SELECT user_id, {cols} FROM features_0')
    ts = "2024-01-01 00:00:00"
    while True:
        chunk = cur.fetchmany(50_000)
        if not chunk:
            break
        rows = []
        for rec in chunk:
            key = sk(rec[0])
            for i in range(n_feat):
                rows.append((key, f"f{i}", struct.pack("<d", rec[i + 1]), None, ts, ts))
        con.executemany("INSERT INTO bench VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    src.close()
    return time.perf_counter() - t0


def sk(key: int) -> bytes:  # like feast serialize_entity_key: join key name + typed value
    return b"\x01\x00\x00\x00user_id\x00" + struct.pack("<iq", 4, key)


def sqlite_lookup(con, keys, n_feat):
    q = f"SELECT entity_key, feature_name, value, event_ts FROM bench WHERE entity_key IN ({','.join('?' * len(keys))}) ORDER BY entity_key"
    rows = con.execute(q, [sk(k) for k in keys]).fetchall()
    by_key = {}
    for ek, name, value, _ in rows:
        by_key.setdefault(ek, {})[name] = struct.unpack("<d", value)[0]
    return [{"user_id": k, **by_key.get(sk(k), {})} for k in keys]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--slow-lookups", type=int, default=3_000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="reuse the offline table and SQLite file of --workdir")
    parser.add_argument("--skip-memory-index", action="store_true",
                        help="do not load the per-process dict index (large --keys)")
    args = parser.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="bench_online_")
    os.makedirs(work, exist_ok=True)
    print(f"{args.keys} keys x {args.features} features; workdir {work}; 2 shared cores (other agents running), "
          f"load average {os.getloadavg()[0]:.1f}")

    fg = write_offline(os.path.join(work, "offline"), args.keys, args.features, args.reuse)
    from seeknal_spark.serving import OnlineFeatures, ServingSource, publish_online_table

    src = ServingSource.from_feature_group(fg)
    online_root = os.path.join(work, "online")
    shutil.rmtree(online_root, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    table = publish_online_table(src, "bench", store_root=online_root, index="duckdb")
    export_s, export_cpu = time.perf_counter() - t0, time.process_time() - c0
    path = table.path
    table.close()
    print(f"export + publish (DuckDB): {export_s:.2f} s wall, {export_cpu:.2f} s CPU (all threads)   file {os.path.getsize(path) / 1e6:.0f} MB   [target <= 60 s]")

    t0 = time.perf_counter()
    OnlineFeatures.open("bench", store_root=online_root, index="mmap", verify=False).close()
    sidecar_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mapped = OnlineFeatures.open("bench", store_root=online_root, index="mmap")
    open_map = time.perf_counter() - t0
    t0 = time.perf_counter()
    OnlineFeatures.open("bench", store_root=online_root, index="mmap", verify=False).close()
    open_map_nv = time.perf_counter() - t0
    from seeknal_spark.serving.mmap_index import sidecar_path

    print(f"mmap index: sidecar build (once per version) {sidecar_s:.2f} s, {os.path.getsize(sidecar_path(path)) / 1e6:.0f} MB; "
          f"open {open_map:.2f} s (without sha256 check {open_map_nv:.3f} s)   [target <= 2 s]")
    floor, first, second = children_memory(online_root, ["none", "mmap", "mmap"], args.keys)
    added = second["uss"] - floor["uss"]
    print(f"serving processes (mmap, 20k lookups each, alive together): first RSS {first['rss']:.0f} MB "
          f"(USS {first['uss']:.0f} MB), second RSS {second['rss']:.0f} MB, private (USS) {second['uss']:.0f} MB; "
          f"a bare interpreter with the same libraries: USS {floor['uss']:.0f} MB")
    print(f"  the second process adds {second['uss']:.0f} MB = {100 * second['uss'] / first['rss']:.0f}% of the first's "
          f"RSS; beyond the bare interpreter {added:.0f} MB = {100 * added / first['rss']:.0f}%   [target <= 20%]")
    if not args.skip_memory_index:
        (one,) = children_memory(online_root, ["memory"], args.keys)
        print(f"  for comparison, a memory-index process: RSS {one['rss']:.0f} MB, USS {one['uss']:.0f} MB, "
              f"open {one['open_s']:.2f} s (each process holds its own copy)")

    mem_label = "seeknal OnlineFeatures (memory index)" if not args.skip_memory_index else "(memory index skipped: mmap)"
    rss0 = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    mem = OnlineFeatures.open("bench", store_root=online_root) if not args.skip_memory_index else mapped
    open_mem, open_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = rss_mb()
    t0 = time.perf_counter()
    ddb = OnlineFeatures.open("bench", store_root=online_root, index="duckdb")
    open_ddb = time.perf_counter() - t0
    t0 = time.perf_counter()
    OnlineFeatures.open("bench", store_root=online_root, index="duckdb", verify=False).close()
    open_ddb_nv = time.perf_counter() - t0
    print(f"open ready to serve: memory index {open_mem:.2f} s wall, {open_cpu:.2f} s CPU (+{rss1 - rss0:.0f} MB RSS), duckdb index "
          f"{open_ddb:.2f} s (without sha256 check {open_ddb_nv:.2f} s)   [target <= 2 s]")

    import duckdb

    plain = duckdb.connect(path, read_only=True)
    feats = ", ".join(f'"f{i}"' for i in range(args.features))
    plain_sql = f"SELECT user_id, {feats} FROM features_0 WHERE user_id = ?"

    def plain_lookup(key):
        rows = plain.execute(plain_sql, [key]).fetchall()
        return dict(zip(["user_id"] + [f"f{i}" for i in range(args.features)], rows[0])) if rows else None

    sqlite_con = None
    if not args.skip_sqlite:
        sqlite_path = os.path.join(work, "feast_style.db")
        if not (args.reuse and os.path.exists(sqlite_path)):
            if os.path.exists(sqlite_path):
                os.unlink(sqlite_path)
            build_s = build_sqlite(sqlite_path, path, args.features)
            print(f"sqlite (Feast layout) build: {build_s:.1f} s  {os.path.getsize(sqlite_path) / 1e6:.0f} MB")
        sqlite_con = sqlite3.connect(sqlite_path)

    rng = random.Random(7)
    keys = [rng.randrange(args.keys) for _ in range(args.lookups)]
    slow = keys[: args.slow_lookups]
    expected = mem.get_features(keys=[{"user_id": k} for k in slow[:50]])
    assert ddb.get_features(keys=[{"user_id": k} for k in slow[:50]]) == expected
    assert mapped.get_features(keys=[{"user_id": k} for k in slow[:50]]) == expected
    assert [plain_lookup(k) for k in slow[:50]] == expected
    if sqlite_con is not None:
        assert sqlite_lookup(sqlite_con, slow[:50], args.features) == expected

    rows = []
    for label, fn, sample in [
        (mem_label, lambda k: mem.get_features(keys=[{"user_id": k}]), keys),
        ("seeknal OnlineFeatures (mmap index)", lambda k: mapped.get_features(keys=[{"user_id": k}]), keys),
        ("seeknal OnlineFeatures (duckdb index)", lambda k: ddb.get_features(keys=[{"user_id": k}]), slow),
        ("(b) DuckDB SELECT ... WHERE key = ?", plain_lookup, slow),
    ] + ([("(c) SQLite, Feast layout", lambda k: sqlite_lookup(sqlite_con, [k], args.features), slow)]
         if sqlite_con is not None else []):
        for k in sample[:200]:
            fn(k)  # warm up
        cpu = []
        ns = timed(fn, sample, cpu)
        rows.append((label, pct(ns, 0.5), pct(ns, 0.99), statistics.fmean(ns) / 1000, pct(cpu, 0.5)))
    base = rows[0][1]
    print(f"\nsingle-key lookup ({len(keys)} / {len(slow)} random keys)   [targets p50 <= 100 us, p99 <= 1000 us]")
    print(f"{'':42s} {'p50 us':>9s} {'p99 us':>9s} {'mean us':>9s} {'cpu p50':>9s} {'p50 x':>7s}")
    for label, p50, p99, mean, cpu50 in rows:
        print(f"{label:42s} {p50:9.1f} {p99:9.1f} {mean:9.1f} {cpu50:9.1f} {p50 / base:7.1f}")

    batches = [[rng.randrange(args.keys) for _ in range(args.batch_size)] for _ in range(args.batches)]
    brows = []
    for label, fn in [
        (mem_label, lambda b: mem.get_features(keys=[{"user_id": k} for k in b])),
        ("seeknal OnlineFeatures (mmap index)", lambda b: mapped.get_features(keys=[{"user_id": k} for k in b])),
        ("seeknal OnlineFeatures (duckdb index)", lambda b: ddb.get_features(keys=[{"user_id": k} for k in b])),
        ("(b) DuckDB WHERE key = ? per key", lambda b: [plain_lookup(k) for k in b]),
    ] + ([("(c) SQLite, Feast layout (IN list)", lambda b: sqlite_lookup(sqlite_con, b, args.features))]
         if sqlite_con is not None else []):
        fn(batches[0])
        cpu: list = []
        ns = timed(fn, batches, cpu)
        brows.append((label, pct(ns, 0.5) / 1000, pct(ns, 0.99) / 1000, pct(cpu, 0.5) / 1000))
    print(f"\n{args.batch_size}-key batch ({args.batches} batches)   [target <= 5 ms]")
    print(f"{'':42s} {'p50 ms':>9s} {'p99 ms':>9s} {'cpu p50':>9s} {'p50 x':>7s}")
    for label, p50, p99, cpu50 in brows:
        print(f"{label:42s} {p50:9.2f} {p99:9.2f} {cpu50:9.2f} {p50 / brows[0][1]:7.1f}")


if __name__ == "__main__":
    main()
