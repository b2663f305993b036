"""Stress: N writer processes x mixed writes on overlapping days for a fixed time, checked against their logs.

Each process (its own Spark JVM) loops: append rows on a random day, or overwrite a random few hours of a random
day with new rows. Every write that reports success is logged with the Delta version it committed. At the end
the committed writes are replayed in version order by a plain-Python oracle and compared with the table:
rows lost, rows duplicated, rows that should not be there. Prints commits per minute and retries.

    python benchmarks/bench_concurrent_writers.py --writers 3 --seconds 120
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(store: str, seconds: float, seed: int, log_path: str) -> None:
    from seeknal_spark import (ConcurrentWriteError, Entity, FeatureGroup, FeatureStoreFileOutput,
                               Materialization, OfflineMaterialization, OfflineStore, OfflineStoreEnum)
    from seeknal_spark.session import local_session

    spark = local_session(extra={"spark.sql.shuffle.partitions": "2"})
    rng = random.Random(seed)
    store_obj = OfflineStore(kind=OfflineStoreEnum.FILE, name="b", value=FeatureStoreFileOutput(path=store))
    m = Materialization("event_time", offline_materialization=OfflineMaterialization(store=store_obj))
    deadline = time.time() + seconds
    n = 0
    with open(log_path, "a") as log:
        while time.time() < deadline:
            n += 1
            day = rng.randint(1, 4)
            if rng.random() < 0.5:
                mode, start, end = "append", None, None
                hours = rng.sample(range(24), 3)
            else:
                h0 = rng.randint(0, 20)
                mode = "overwrite"
                start = dt.datetime(2024, 1, day, h0)
                end = dt.datetime(2024, 1, day, h0 + 3, 59)
                hours = [h0 + rng.randint(0, 3) for _ in range(2)]
            rows = sorted({(rng.randint(1, 5), dt.datetime(2024, 1, day, h, rng.choice([0, 30]))) for h in hours})
            data = [(u, t, float(seed * 1_000_000 + n)) for u, t in rows]
            fg = FeatureGroup("g", entity=Entity("user", ["user_id"]), materialization=m, project="b")
            fg.set_dataframe(spark.createDataFrame(data, "user_id long, event_time timestamp, amount double"))
            try:
                result = fg.write(start, end, mode=mode)
            except ConcurrentWriteError as exc:
                log.write(json.dumps({"failed": str(exc)}) + "\n")
                continue
            log.write(json.dumps({"version": result.version, "retries": result.retries, "mode": mode,
                                  "start": start.isoformat() if start else None,
                                  "end": end.isoformat() if end else None,
                                  "rows": [[u, t.isoformat(), a] for u, t, a in data]}) + "\n")
            log.flush()


def replay(entries):
    table = {}
    for e in sorted(entries, key=lambda e: e["version"]):
        if e["mode"] == "overwrite":
            table = {k: v for k, v in table.items() if not (e["start"] <= k[1] <= e["end"])}
        for u, t, a in e["rows"]:
            table[(u, t)] = a
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--worker", nargs=4, metavar=("STORE", "SECONDS", "SEED", "LOG"))
    args = parser.parse_args()
    if args.worker:
        store, seconds, seed, log = args.worker
        worker(store, float(seconds), int(seed), log)
        return
    from deltalake import DeltaTable

    tmp = tempfile.mkdtemp(prefix="seeknal-stress-")
    store = os.path.join(tmp, "store")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    logs = [os.path.join(tmp, f"w{i}.jsonl") for i in range(args.writers)]
    started = time.time()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", store, str(args.seconds), str(i + 1), logs[i]],
                              env=env, stderr=subprocess.DEVNULL) for i in range(args.writers)]
    for p in procs:
        p.wait()
    elapsed = time.time() - started
    entries, failed = [], 0
    for path in logs:
        for line in open(path):
            e = json.loads(line)
            if "failed" in e:
                failed += 1
            else:
                entries.append(e)
    path = os.path.join(store, "b", "g")
    rows = [(r["user_id"], r["event_time"].astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(), r["amount"])
            for r in DeltaTable(path).to_pyarrow_table().to_pylist()]
    got = {}
    dups = 0
    for u, t, a in rows:
        dups += (u, t) in got
        got[(u, t)] = a
    want = replay(entries)
    lost = sum(1 for k, v in want.items() if got.get(k) != v)
    extra = sum(1 for k in got if k not in want)
    versions = [e["version"] for e in entries]
    print(f"writers={args.writers} seconds={args.seconds:.0f} wall={elapsed:.0f}s")
    print(f"committed writes={len(entries)} ({len(entries) / (args.seconds / 60):.1f}/min), "
          f"gave up={failed}, retries={sum(e['retries'] for e in entries)}, "
          f"distinct versions={len(set(versions))}")
    print(f"table rows={len(rows)} expected={len(want)} lost={lost} duplicated={dups} unexpected={extra}")
    sys.exit(0 if lost == dups == extra == 0 and len(set(versions)) == len(versions) else 1)


if __name__ == "__main__":
    main()
