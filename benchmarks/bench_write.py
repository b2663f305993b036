"""Write cost: ``FeatureGroup.write`` vs a plain partitioned Parquet write of the same rows, with a phase breakdown.

Generates ``--rows`` rows (``--keys`` keys, one row per key and time over ``--days`` days, ``--features`` double
features) and, on one Spark session, times in turn (interleaved, ``--repeat`` rounds, best of each):

  (plain) ``df.withColumn("_event_date", to_date(event_time)).write.partitionBy("_event_date").parquet(...)``,
          what a user would write without the library (no key checks, no statistics, no commit);
  (lib)   ``FeatureGroup(...).set_dataframe(df).write()`` into a fresh table: the same rows plus null and duplicate
          key checks, per-feature statistics, Delta file statistics and one atomic Delta commit.

Prints lib/plain (target <= 1.5) and, for the library's last run, where the time went: each phase of the portable
writer (wall seconds and the Spark jobs it started, counted with the status tracker).

    .venv/bin/python benchmarks/bench_write.py                    # 2M rows, 100k keys, 8 features
    .venv/bin/python benchmarks/bench_write.py --rows 200000 --keys 10000 --repeat 1   # quick

Figures come from a shared 2-core machine: the load average is printed next to every figure; compare ratios.
CPU seconds (driver process + its Spark JVM, from /proc) are printed too: under load they vary less than wall time.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from benchkit import REPO, file_store, load, source, user_group

os.environ.setdefault("SEEKNAL_CONF_DIR", str(REPO / "conf"))


def _jvm_pid() -> int:
    """The Spark driver JVM started by this process (local mode: it runs every task)."""
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]
            if ppid == me and b"java" in open(f"/proc/{pid}/cmdline", "rb").read():
                return int(pid)
        except OSError:
            continue
    raise RuntimeError("no Spark JVM child process found")


_JVM = 0


def cpu() -> float:
    """CPU seconds used so far by this process and its Spark JVM: less sensitive than wall time to other load."""
    global _JVM
    if not _JVM:
        _JVM = _jvm_pid()
    fields = open(f"/proc/{_JVM}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + time.process_time()


class Phases:
    """Wall time and Spark jobs of named functions of the writer's modules (wrapped for the benchmark only)."""

    def __init__(self, spark) -> None:
        self.tracker = spark.sparkContext.statusTracker()
        self.records: List[Tuple[str, float, float, int]] = []
        self.undo: List[Callable[[], None]] = []

    def jobs(self) -> int:
        return len(self.tracker.getJobIdsForGroup(None))

    def wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name, None)
        if original is None:
            return

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            j0, c0, t0 = self.jobs(), cpu(), time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.records.append((label, time.perf_counter() - t0, cpu() - c0, self.jobs() - j0))

        setattr(module, name, timed)
        self.undo.append(lambda: setattr(module, name, original))

    def restore(self) -> None:
        for fn in reversed(self.undo):
            fn()
        self.undo.clear()

    def summary(self) -> Dict[str, Tuple[float, float, int, int]]:
        out: Dict[str, Tuple[float, float, int, int]] = {}
        for label, seconds, cpu_s, jobs in self.records:
            s, c, j, n = out.get(label, (0.0, 0.0, 0, 0))
            out[label] = (s + seconds, c + cpu_s, j + jobs, n + 1)
        return out


def instrument(spark) -> Phases:
    from seeknal_spark.offline import delta_log, write_portable

    phases = Phases(spark)
    # Nested phases are reported on their own lines; "stage new rows" includes the ones called inside it.
    for module, name, label in [
        (write_portable, "_stage_new_rows", "stage new rows (total)"),
        (write_portable, "_write_parquet", "  compute + shuffle + write staged Parquet (+ observed aggregates)"),
        (write_portable, "check_keys", "  key checks (separate pass)"),
        (write_portable, "staged_stats", "  statistics (aggregation over the staged files)"),
        (write_portable, "_move", "  move staged files + read footers"),
        (write_portable, "_stage_kept_rows", "stage kept rows"),
        (delta_log, "commit_files", "commit (delta-rs)"),
        (delta_log, "set_properties", "table properties"),
        (delta_log, "open_table", "open table / log"),
        (delta_log, "read_state", "read state"),
    ]:
        phases.wrap(module, name, label)
    return phases


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workdir", default=None)
    args = p.parse_args(argv)

    from pyspark.sql import functions as F

    from seeknal_spark.session import local_session

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_write_"))
    root.mkdir(parents=True, exist_ok=True)
    spark = local_session(app_name="bench_write")
    print(f"spark {spark.version}, {spark.conf.get('spark.master', '?')}, shuffle partitions "
          f"{spark.conf.get('spark.sql.shuffle.partitions')}, {args.rows:,} rows, {args.keys:,} keys, "
          f"{args.features} double features, load {load()}", flush=True)
    df = source(spark, args.rows, args.keys, args.days, args.features)

    def plain(i: int) -> None:
        out = str(root / f"plain_{i}")
        df.withColumn("_event_date", F.to_date(F.col("event_time"))).write.partitionBy("_event_date").parquet(out)

    def lib(i: int) -> None:
        group = user_group("bench_write", file_store(str(root / f"store_{i}"), name="bench"))
        result = group.set_dataframe(df).write()
        assert result.rows == args.rows, result

    # Warm up the JVM (code generation, Parquet writer, delta-rs) on a small write of each kind.
    small = source(spark, 20_000, 1_000, 2, args.features)
    small.withColumn("_event_date", F.to_date("event_time")).write.partitionBy("_event_date").parquet(
        str(root / "warm_plain"))
    user_group("warm", file_store(str(root / "warm"), name="warm")).set_dataframe(small).write()

    best: Dict[str, float] = {"plain": float("inf"), "lib": float("inf")}
    best_cpu: Dict[str, float] = {"plain": float("inf"), "lib": float("inf")}
    ratios: List[float] = []
    cpu_ratios: List[float] = []
    phases = None
    for i in range(args.repeat):
        times, cpus = {}, {}
        for name, fn in (("plain", plain), ("lib", lib)):
            if name == "lib":
                phases = instrument(spark)
            c0, t0 = cpu(), time.perf_counter()
            try:
                fn(i)
            finally:
                if phases is not None:
                    phases.restore()
            times[name], cpus[name] = time.perf_counter() - t0, cpu() - c0
            best[name] = min(best[name], times[name])
            best_cpu[name] = min(best_cpu[name], cpus[name])
            print(f"  round {i + 1}: {name:>5} {times[name]:6.2f} s wall, {cpus[name]:6.2f} s CPU (load {load()})",
                  flush=True)
        ratios.append(times["lib"] / times["plain"])
        cpu_ratios.append(cpus["lib"] / cpus["plain"])
        print(f"  round {i + 1}: lib/plain {ratios[-1]:.2f} wall, {cpu_ratios[-1]:.2f} CPU", flush=True)
    assert phases is not None
    total = best["lib"]
    print("\nlast library run, phases (wall s, CPU s of driver + JVM, Spark jobs):")
    for label, (seconds, cpu_s, jobs, calls) in phases.summary().items():
        print(f"  {label:<66} {seconds:6.2f} s {cpu_s:6.2f} s CPU {jobs:2d} jobs  "
              f"({calls} call{'s' if calls > 1 else ''})")
    print(f"\nbest: plain {best['plain']:.2f} s, lib {total:.2f} s; lib/plain best-of-each "
          f"{total / best['plain']:.2f}, per round {[round(r, 2) for r in ratios]} (target <= 1.5; load {load()})")
    print(f"CPU: plain {best_cpu['plain']:.2f} s, lib {best_cpu['lib']:.2f} s; lib/plain best-of-each "
          f"{best_cpu['lib'] / best_cpu['plain']:.2f}, per round {[round(r, 2) for r in cpu_ratios]}")
    spark.stop()
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
