"""Leftovers of dead writers (issue 12): writers killed with SIGKILL in the middle of a write, a live writer next to
them, heartbeats, ``remove_leftovers`` and ``FeatureGroup.vacuum``."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
)
from seeknal_spark.offline.cleanup import HEARTBEAT_FILE, WriterHeartbeat, remove_leftovers

REPO = Path(__file__).resolve().parents[1]
BASE = [(1, dt.datetime(2024, 1, 1, 8), 1.0), (2, dt.datetime(2024, 1, 2, 8), 2.0)]

WRITER = textwrap.dedent('''
    import datetime as dt, os, sys, time
    mode, root, signals = sys.argv[1:4]
    from seeknal_spark.session import local_session
    spark = local_session(app_name="writer-" + mode, extra={"spark.sql.shuffle.partitions": "2",
                                                             "spark.ui.enabled": "false"})
    from seeknal_spark import (Entity, FeatureGroup, FeatureStoreFileOutput, Materialization,
                               OfflineMaterialization, OfflineStore)
    store = OfflineStore(value=FeatureStoreFileOutput(path=root))
    fg = FeatureGroup("clicks", entity=Entity("user", ["k"]), materialization=Materialization(
        event_time_col="ts", offline_materialization=OfflineMaterialization(store=store, mode="append")))

    def touch(name):
        open(os.path.join(signals, name), "w").close()

    if mode == "in_check":  # killed while its staged files wait for a check
        def block(staged):
            touch("ready-" + mode)
            time.sleep(3600)
        fg.add_check("block", block)
    elif mode == "before_commit":  # killed after moving its files into the table, before the commit
        from seeknal_spark.offline import delta_log
        def stall(*args, **kwargs):
            touch("ready-" + mode)
            time.sleep(3600)
        delta_log.commit_files = stall
    else:  # live: waits for the parent's go, then commits
        def gate(staged):
            touch("ready-" + mode)
            while not os.path.exists(os.path.join(signals, "go-" + mode)):
                time.sleep(0.05)
        fg.add_check("gate", gate)
    key = {"in_check": 10, "before_commit": 20, "live": 30}[mode]
    rows = [(key + i, dt.datetime(2024, 1, 3 + i, 9), float(key + i)) for i in range(2)]
    fg.set_dataframe(spark.createDataFrame(rows, "k long, ts timestamp, x double")).write()
    touch("done-" + mode)
''')


def _group(root):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    return FeatureGroup("clicks", entity=Entity("user", ["k"]), materialization=Materialization(
        event_time_col="ts", offline_materialization=OfflineMaterialization(store=store, mode="append")))


def _rows(fg, version=None):
    return sorted((r["k"], r["ts"], r["x"]) for r in fg.to_dataframe(version=version).collect())


def _wait(path: Path, procs, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"writer exited early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.1)


def _files(root: Path):
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_heartbeat_beats_while_running_and_stops_after(tmp_path):
    staging = tmp_path / "t" / "_staging" / "abc"
    with WriterHeartbeat(str(staging), interval=0.1) as beat:
        path = staging / HEARTBEAT_FILE
        first = path.stat().st_mtime_ns
        time.sleep(0.5)
        assert path.stat().st_mtime_ns > first
        assert beat.path == str(path)
    stopped = path.stat().st_mtime_ns
    time.sleep(0.4)
    assert path.stat().st_mtime_ns == stopped


def test_a_live_heartbeat_protects_its_staging_directory_whatever_its_age(tmp_path):
    table = tmp_path / "t"
    staging = table / "_staging" / "w1"
    old = time.time() - 86400
    with WriterHeartbeat(str(staging), interval=0.2):
        part = staging / "part-0.parquet"
        part.write_bytes(b"x")
        os.utime(part, (old, old))
        time.sleep(0.5)
        assert remove_leftovers(str(table), dt.timedelta(0)) == []
        assert part.exists()
    time.sleep(0.8)  # 3 missed beats: the writer is dead
    assert remove_leftovers(str(table), dt.timedelta(hours=1), dry_run=True) == []  # it beat less than an hour ago
    assert remove_leftovers(str(table), dt.timedelta(0)) == ["_staging/w1"]
    assert not staging.exists()


def test_killed_writers_leave_readable_table_and_only_their_leftovers_are_removed(tmp_path, spark):
    root = tmp_path / "offline"
    fg = _group(root)
    fg.set_dataframe(spark.createDataFrame(BASE, "k long, ts timestamp, x double")).write()
    table = Path(fg.table_path)
    before_rows, before_version = _rows(fg), fg.delta_version
    committed_files = _files(table)
    signals = tmp_path / "signals"
    signals.mkdir()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "SEEKNAL_WRITER_HEARTBEAT_SECONDS": "0.3", "PYTHONUNBUFFERED": "1"}
    procs = {mode: subprocess.Popen([sys.executable, str(script), mode, str(root), str(signals)], cwd=REPO, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)  # its own process group: kill -9 takes its JVM too
             for mode in ("in_check", "before_commit", "live")}
    try:
        for mode in procs:
            _wait(signals / f"ready-{mode}", procs.values())
        stagings = {p.name for p in (table / "_staging").iterdir()}
        assert len(stagings) == 3
        for mode in ("in_check", "before_commit"):
            os.killpg(procs[mode].pid, signal.SIGKILL)
            procs[mode].wait(30)
        assert procs["live"].poll() is None
        orphans = {f for f in _files(table) - committed_files
                   if f.startswith("_event_date=") and f.endswith(".parquet")}
        assert orphans  # the killed before-commit writer had moved its files into the table
        # the table is untouched: the last committed version reads as before
        assert fg.delta_version == before_version and _rows(fg) == before_rows
        time.sleep(1.5)  # dead writers' heartbeats are now stale (3 beats of 0.3 s); the live one keeps beating

        removed = remove_leftovers(fg.table_path, dt.timedelta(0))
        left = {p.name for p in (table / "_staging").iterdir()}
        assert len(left) == 1  # the live writer's staging directory, untouched
        (live_staging,) = left
        assert sorted(removed) == sorted(f"_staging/{s}" for s in stagings - left)
        assert any(f.endswith(".parquet") for f in _files(table / "_staging" / live_staging))
        # moved-but-uncommitted files are kept while a writer that started before them is alive
        assert orphans <= _files(table)

        (signals / "go-live").touch()
        _wait(signals / "done-live", [procs["live"]])
        assert procs["live"].wait(120) == 0, procs["live"].stderr.read()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    after = _rows(fg)
    live_rows = [(30, dt.datetime(2024, 1, 3, 9), 30.0), (31, dt.datetime(2024, 1, 4, 9), 31.0)]
    assert after == sorted(before_rows + live_rows)
    removed = remove_leftovers(fg.table_path, dt.timedelta(0))
    assert sorted(removed) == sorted(orphans)  # now nobody can own them
    assert not (table / "_staging").exists() or not any((table / "_staging").iterdir())
    assert _rows(fg) == after and _rows(fg, version=before_version) == before_rows  # time travel still works
    assert remove_leftovers(fg.table_path, dt.timedelta(0)) == []


def test_remove_leftovers_respects_age(tmp_path, spark):
    fg = _group(tmp_path / "offline")
    fg.set_dataframe(spark.createDataFrame(BASE, "k long, ts timestamp, x double")).write()
    table = Path(fg.table_path)
    dead = table / "_staging" / "dead"
    dead.mkdir(parents=True)
    (dead / "part-0.parquet").write_bytes(b"x")
    orphan = table / "_event_date=2024-01-01" / "s000000000009-part-0.parquet"
    orphan.write_bytes(b"x")
    assert remove_leftovers(fg.table_path, dt.timedelta(hours=1)) == []  # too young
    old = time.time() - 7200
    for path in (dead / "part-0.parquet", dead, orphan):
        os.utime(path, (old, old))
    assert remove_leftovers(fg.table_path, dt.timedelta(hours=1), dry_run=True) == [
        "_event_date=2024-01-01/s000000000009-part-0.parquet", "_staging/dead"]
    assert orphan.exists() and dead.exists()
    assert remove_leftovers(fg.table_path, dt.timedelta(hours=1)) == [
        "_event_date=2024-01-01/s000000000009-part-0.parquet", "_staging/dead"]
    assert not orphan.exists() and not dead.exists()
    assert _rows(fg) == sorted(BASE)


def test_vacuum_removes_leftovers_and_runs_delta_vacuum(tmp_path, spark):
    fg = _group(tmp_path / "offline")
    df = spark.createDataFrame(BASE, "k long, ts timestamp, x double")
    fg.set_dataframe(df).write()
    v0_files = _files(Path(fg.table_path))
    fg.set_dataframe(df.selectExpr("k", "ts", "x * 10 AS x")).write(mode="overwrite")  # replaces v0's data files
    dead = Path(fg.table_path) / "_staging" / "dead"

    def dead_writer():  # a staging directory of a writer that died before its heartbeat existed
        dead.mkdir(parents=True)
        (dead / "part-0.parquet").write_bytes(b"x")
        assert remove_leftovers(fg.table_path, dt.timedelta(0)) == []  # it might be about to beat
        old = time.time() - 3600
        for path in (dead / "part-0.parquet", dead):
            os.utime(path, (old, old))

    dead_writer()
    replaced = sorted(f for f in v0_files if f.startswith("_event_date="))
    # remove_leftovers alone keeps files of older versions (time travel)
    assert remove_leftovers(fg.table_path, dt.timedelta(0)) == ["_staging/dead"]
    assert _rows(fg, version=0) == sorted(BASE)

    dead_writer()
    planned = fg.vacuum(retention=dt.timedelta(0), dry_run=True)
    assert planned["removed_leftovers"] == ["_staging/dead"] and dead.exists()
    assert sorted(p.split(fg.table_path.rstrip("/") + "/")[-1] for p in planned["vacuumed"]) == replaced
    done = fg.vacuum(retention=dt.timedelta(0))
    assert done["removed_leftovers"] == ["_staging/dead"] and not dead.exists()
    assert sorted(p.split(fg.table_path.rstrip("/") + "/")[-1] for p in done["vacuumed"]) == replaced
    assert _rows(fg) == sorted((k, t, x * 10) for k, t, x in BASE)
    assert fg.vacuum()["vacuumed"] == []  # default retention: 7 days
    with pytest.raises(Exception):
        fg.to_dataframe(version=0).collect()  # VACUUM ends time travel before the retention, as in Delta
