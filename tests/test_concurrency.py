"""Concurrent writers in separate OS processes (each its own Spark JVM), with a barrier that overlaps their commit
windows; and writers killed with SIGKILL. After each case the table must equal SOME serial order of the writes
that reported success (a plain-Python oracle), nothing committed is lost or duplicated, and the group's state
(watermarks, schema versions) matches the table."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.support.commits import writes

REPO = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc


class Writer:
    """A long-lived writer process (tests/support/writer_proc.py)."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.writer_proc"], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        ready = json.loads(self.proc.stdout.readline())
        assert "ready" in ready

    def send(self, **cmd) -> None:
        self.proc.stdin.write(json.dumps(cmd, default=str) + "\n")
        self.proc.stdin.flush()

    def result(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, "writer process died"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def writers():
    pair = [Writer(), Writer()]
    yield pair
    for w in pair:
        w.close()


def iso(d, h=0, m=0):
    return dt.datetime(2024, 1, d, h, m).isoformat()


def table_rows(path, features=("amount",)):
    out = []
    for r in DeltaTable(path).to_pyarrow_table().to_pylist():
        out.append((r["user_id"], r["event_time"].astimezone(UTC).replace(tzinfo=None).isoformat(),
                    *[r.get(f) for f in features]))
    return sorted(out)


def apply_serially(order, features=("amount",)):
    """Oracle: the table after applying writes one after another (a dict keyed by (user, event time))."""
    table = {}
    for w in order:
        if w.get("mode") == "overwrite":
            lo = w.get("start") or "0000"
            hi = w.get("end") or "9999"
            table = {k: v for k, v in table.items() if not (lo <= k[1] <= hi)}
        cols = w.get("features", ["amount"])
        for r in w["rows"]:
            values = dict(zip(cols, r[2:]))
            table[(r[0], r[1])] = tuple(values.get(f) for f in features)
    return sorted((k[0], k[1], *v) for k, v in table.items())


def assert_serializable(path, prefix, concurrent, features=("amount",)):
    """The table equals ``prefix`` then some order of ``concurrent``; one row per key; state matches it."""
    got = table_rows(path, features)
    orders = [apply_serially(list(prefix) + list(p), features) for p in itertools.permutations(concurrent)]
    assert got in orders, f"table {got} is no serial order of the committed writes: {orders}"
    keys = [(r[0], r[1]) for r in got]
    assert len(keys) == len(set(keys)), "duplicate (keys, event time) rows in the table"
    state = json.loads(writes(path)[0]["userMetadata"])["seeknal.state"]
    assert state["watermarks"] == sorted({r[1][:10] for r in got}), "watermarks differ from the table's days"


def race(writers, tmp_path, base, a, b, base_features=None):
    """Write ``base`` serially, then ``a`` and ``b`` concurrently (commit windows overlapped); return results."""
    store = str(tmp_path / "store")
    path = f"{store}/c/g"
    if base is not None:
        writers[0].send(store=store, group="g", **base)
        assert writers[0].result()["ok"]
    barrier = str(tmp_path / "barrier")
    writers[0].send(store=store, group="g", barrier=barrier, parties=2, me="a", **a)
    writers[1].send(store=store, group="g", barrier=barrier, parties=2, me="b", **b)
    ra, rb = writers[0].result(), writers[1].result()
    return path, ra, rb


BASE = {"mode": "append", "rows": [[1, iso(1, 6), 1.0], [1, iso(2, 6), 2.0], [2, iso(2, 18), 3.0],
                                   [1, iso(3, 6), 4.0]]}


def test_overwrite_racing_an_append_on_its_boundary_day_loses_nothing(writers, tmp_path):
    a = {"mode": "overwrite", "start": iso(1), "end": iso(2, 12), "rows": [[1, iso(2, 6), 20.0]]}
    b = {"mode": "append", "rows": [[3, iso(2, 20), 30.0]]}  # day 2, outside a's range
    path, ra, rb = race(writers, tmp_path, BASE, a, b)
    assert ra["ok"] and rb["ok"], (ra, rb)
    assert_serializable(path, [BASE], [a, b])
    got = table_rows(path)
    assert (3, iso(2, 20), 30.0) in got and (2, iso(2, 18), 3.0) in got and (1, iso(1, 6), 1.0) not in got
    assert ra["retries"] + rb["retries"] >= 1  # one of them lost the race and re-planned


def test_overwrites_of_disjoint_ranges_sharing_a_day_keep_both(writers, tmp_path):
    a = {"mode": "overwrite", "start": iso(2, 0), "end": iso(2, 11), "rows": [[1, iso(2, 6), 21.0]]}
    b = {"mode": "overwrite", "start": iso(2, 12), "end": iso(2, 23), "rows": [[2, iso(2, 18), 31.0]]}
    path, ra, rb = race(writers, tmp_path, BASE, a, b)
    assert ra["ok"] and rb["ok"], (ra, rb)
    got = table_rows(path)
    assert (1, iso(2, 6), 21.0) in got and (2, iso(2, 18), 31.0) in got
    assert_serializable(path, [BASE], [a, b])


def test_appends_to_different_days_keep_every_watermark(writers, tmp_path):
    a = {"mode": "append", "rows": [[1, iso(5, 1), 5.0]]}
    b = {"mode": "append", "rows": [[1, iso(6, 1), 6.0]]}
    path, ra, rb = race(writers, tmp_path, BASE, a, b)
    assert ra["ok"] and rb["ok"], (ra, rb)
    assert_serializable(path, [BASE], [a, b])
    state = json.loads(writes(path)[0]["userMetadata"])["seeknal.state"]
    assert state["watermarks"] == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05", "2024-01-06"]
    infos = [w["write"] for w in writes(path)]
    assert sorted(i["seq"] for i in infos) == sorted(w["version"] for w in writes(path))  # seq = commit version


def test_a_feature_added_concurrently_is_kept_in_the_state(writers, tmp_path):
    a = {"mode": "append", "features": ["amount", "visits"], "rows": [[1, iso(7, 1), 7.0, 70.0]]}
    b = {"mode": "append", "rows": [[1, iso(8, 1), 8.0]]}
    path, ra, rb = race(writers, tmp_path, BASE, a, b)
    assert ra["ok"] and rb["ok"], (ra, rb)
    state = json.loads(writes(path)[0]["userMetadata"])["seeknal.state"]
    assert [f[0] for f in state["schemas"][-1]["features"]] == ["amount", "visits"]
    assert "visits" in DeltaTable(path).schema().to_json()
    got = table_rows(path, ("amount", "visits"))
    assert (1, iso(7, 1), 7.0, 70.0) in got and (1, iso(8, 1), 8.0, None) in got


def test_same_run_id_from_two_processes_commits_once(writers, tmp_path):
    rows = [[4, iso(9, 1), 9.0], [4, iso(9, 2), 9.5]]
    a = {"mode": "append", "run_id": "daily-09", "rows": rows}
    path, ra, rb = race(writers, tmp_path, BASE, a, dict(a))
    assert ra["ok"] and rb["ok"], (ra, rb)
    assert sorted([ra["skipped"], rb["skipped"]]) == [False, True]
    assert_serializable(path, [BASE], [a])
    assert sum(1 for w in writes(path) if w["write"].get("run_id") == "daily-09") == 1


def test_the_same_version_label_from_two_processes_is_taken_once(writers, tmp_path):
    a = {"mode": "append", "version": "v1", "rows": [[5, iso(10, 1), 1.0]]}
    b = {"mode": "append", "version": "v1", "rows": [[6, iso(11, 1), 2.0]]}
    path, ra, rb = race(writers, tmp_path, BASE, a, b)
    assert sorted([ra["ok"], rb["ok"]]) == [False, True], (ra, rb)
    loser = ra if not ra["ok"] else rb
    assert loser["error"] == "LabelExistsError" and "'v1'" in loser["message"]
    assert_serializable(path, [BASE], [a if ra["ok"] else b])
    assert [w["write"].get("label") for w in writes(path)].count("v1") == 1


def test_two_first_writes_of_a_new_group_both_land(writers, tmp_path):
    a = {"mode": "append", "rows": [[1, iso(1, 1), 1.0]]}
    b = {"mode": "append", "rows": [[2, iso(1, 2), 2.0], [1, iso(1, 1), 9.0]]}  # same day, one shared key
    path, ra, rb = race(writers, tmp_path, None, a, b)
    assert ra["ok"] and rb["ok"], (ra, rb)
    assert_serializable(path, [], [a, b])
    assert DeltaTable(path).version() >= 1


@pytest.mark.parametrize("delay", [0.0, None])
def test_killed_writer_leaves_the_previous_version_readable(tmp_path, delay):
    """SIGKILL a writer while it writes (at a random early point, and while it runs its checks on staged rows):
    the table stays at the last committed version, readable, equal to the serial result of committed writes."""
    store = str(tmp_path / "store")
    path = f"{store}/c/g"
    w = Writer()
    try:
        w.send(store=store, group="g", **BASE)
        assert w.result()["ok"]
        version = DeltaTable(path).version()
        reached = str(tmp_path / "reached")
        cmd = {"mode": "overwrite", "start": iso(1), "end": iso(3, 23), "rows": [[1, iso(2, 6), 99.0]]}
        if delay is None:
            w.send(store=store, group="g", hang=reached, **cmd)
            deadline = time.time() + 120
            while not os.path.exists(reached) and time.time() < deadline:
                time.sleep(0.05)
            assert os.path.exists(reached)
        else:
            w.send(store=store, group="g", **cmd)
            time.sleep(delay)
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.wait(30)
    finally:
        w.close()
    assert DeltaTable(path).version() == version
    assert table_rows(path) == apply_serially([BASE])
