"""The offline store on S3 through Spark's JVM: the Delta-JVM write path, its single-writer rule, Spark Connect.

Everything runs against a real S3 HTTP endpoint on loopback (moto's server, tests/support/s3.py) from real child
Spark processes (tests/support/s3_jvm.py): a classic session with Delta's jars and hadoop-aws (the native path,
``format("delta")`` on ``s3a://``), and a Spark Connect client whose server has hadoop-aws (the portable path).
Oracles are plain Python over the rows the test wrote. The independent reader is DuckDB's delta extension
(delta-kernel) on a byte-for-byte copy of the table's objects (it has no S3 client of its own in its venv).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
from pathlib import Path

from tests.support.independent import read_delta
from tests.support.jvm import REPO
from tests.support.oracle import OverwriteAppendOracle
from tests.support.s3 import TEST_SECRET, all_objects, make_bucket
from tests.support.s3_jvm import reap, result_of, run_s3_jvm, s3_jvm_command, wait_for

D1, D2, D3 = dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2), dt.datetime(2024, 3, 3)
WRITE1 = [(u, D1 + dt.timedelta(hours=8), u * 10) for u in (1, 2, 3)] + \
         [(u, D2 + dt.timedelta(hours=h), u * 10 + h) for u in (1, 2) for h in (6, 18)]
WRITE2 = [(1, D2 + dt.timedelta(hours=7), -1), (3, D2 + dt.timedelta(hours=9), -3)]   # overwrite D2 00:00-12:00
WRITE2_RANGE = (D2, D2 + dt.timedelta(hours=12))
WRITE3 = [(2, D3 + dt.timedelta(hours=1), 77), (4, D3 + dt.timedelta(hours=2), 4)]    # append
SPINE = [(u, t) for u in (1, 2, 3, 4, 5) for t in (D1 + dt.timedelta(hours=12), D2 + dt.timedelta(hours=8),
                                                   D2 + dt.timedelta(hours=20), D3 + dt.timedelta(hours=3))]


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


# -- oracles (plain Python) ----------------------------------------------------------------------------------------
ORACLE = OverwriteAppendOracle(WRITE1, WRITE2, WRITE2_RANGE, WRITE3)


def _writes():
    enc = lambda rows: [[u, _iso(t), v] for u, t, v in rows]  # noqa: E731
    return json.dumps({"1": enc(WRITE1), "2": enc(WRITE2), "2_range": [_iso(t) for t in WRITE2_RANGE],
                       "3": enc(WRITE3), "spine": [[u, _iso(t)] for u, t in SPINE]})


def _download(endpoint, bucket: str, prefix: str, dest: Path) -> Path:
    """A byte-for-byte local copy of the objects under ``prefix`` (what the independent reader reads)."""
    for key, body in all_objects(endpoint, bucket).items():
        if key.startswith(prefix + "/") and not key.endswith("/"):  # (S3A's directory markers end in "/")
            target = dest / key[len(prefix) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    return dest


# -- children --------------------------------------------------------------------------------------------------------
_COMMON = '''
import datetime as dt, json, pathlib, time
import pandas as pd
from pyspark.sql import functions as F
from seeknal_spark import (Entity, FeatureGroup, FeatureLookup, FeatureStoreFileOutput, HistoricalFeatures,
                           Materialization, OfflineMaterialization, OfflineStore)
from seeknal_spark.serving import OnlineFeatures
from seeknal_spark.offline.metadata import table_metadata

W = json.loads(WRITES) if "WRITES" in globals() else {}
out = {}
store = OfflineStore(value=FeatureStoreFileOutput(path=f"s3://{BUCKET}/fs", storage_options=OPTIONS))

def group(name="user_spend"):
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store))
    return FeatureGroup(name, entity=Entity("user", ["user"]), materialization=mat)

def frame(rows):
    pdf = pd.DataFrame({"user": [r[0] for r in rows], "ts": pd.to_datetime([r[1] for r in rows]),
                        "v": [r[2] for r in rows]})
    return spark.createDataFrame(pdf)

def rows_of(df, time_col):
    return sorted([r[0], r[1], r[2]] for r in df.select("user", F.date_format(time_col, "yyyy-MM-dd'T'HH:mm:ss"),
                                                        "v").collect())
'''

_SCENARIO = _COMMON + '''
fg = group()
fg.set_dataframe(frame(W["1"])).write(mode="overwrite")
fg.set_dataframe(frame(W["2"])).write(*W["2_range"], mode="overwrite")
fg.set_dataframe(frame(W["3"])).write(mode="append")
fg = FeatureGroup("user_spend", store=store).get_or_create()
out["version"] = fg.delta_version
out["engines"] = sorted({(c.write or {}).get("extra", {}).get("engine") or (c.write or {}).get("engine", "")
                         for c in table_metadata(fg.table_path, spark, fg.storage_options).commits() if c.write})
out["stored"] = rows_of(fg.to_dataframe(), "ts")
fresh = fg.freshness(threshold=dt.timedelta(days=1), now="2024-03-04T00:00:00")
out["freshness"] = [fresh.newest_event_time.strftime("%Y-%m-%dT%H:%M:%S"), fresh.stale]

spine = pd.DataFrame({"user": [s[0] for s in W["spine"]], "label_time": pd.to_datetime([s[1] for s in W["spine"]])})
train = HistoricalFeatures([FeatureLookup(source=fg)]).using_spine(spine, date_col="label_time")
out["train_spark"] = rows_of(train.to_dataframe_with_spine(), "label_time")
duck = HistoricalFeatures([FeatureLookup(source=fg)], engine="duckdb").using_spine(spine, date_col="label_time")
pdf = duck.to_pandas_with_spine()
out["train_duckdb"] = sorted([int(u), pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%S"), None if pd.isna(v) else int(v)]
                             for u, t, v in zip(pdf["user"], pdf["label_time"], pdf["v"]))
HistoricalFeatures([FeatureLookup(source=fg)]).using_latest().serve(
    "user_online", target=f"s3://{BUCKET}/online", storage_options=OPTIONS)

missing = OfflineStore(value=FeatureStoreFileOutput(path="s3://no-such-bucket-jvm/fs", storage_options=OPTIONS))
for what, call in (("read", lambda: FeatureGroup("g", store=missing).get_or_create()),
                   ("write", lambda: FeatureGroup("g", entity=Entity("user", ["user"]), materialization=Materialization(
                       event_time_col="ts", offline_materialization=OfflineMaterialization(store=missing)))
                    .set_dataframe(frame(W["3"])).write())):
    try:
        call()
        out["missing_" + what] = "no error"
    except Exception as exc:
        out["missing_" + what] = f"{type(exc).__name__}: {exc!s}"

from seeknal_spark.offline.write_native import needs_writer_lease
out["lease_needed"] = [needs_writer_lease(spark, f"s3://{BUCKET}/t"), needs_writer_lease(spark, "/tmp/t")]
spark.conf.set("spark.delta.logStore.s3a.impl", "io.delta.storage.S3DynamoDBLogStore")  # last: a user's setting
out["lease_needed"].append(needs_writer_lease(spark, f"s3://{BUCKET}/t"))
print("RESULT " + json.dumps(out, default=str))
'''


def test_delta_jvm_on_s3_write_read_training_set_serve(s3_endpoint, tmp_path):
    from seeknal_spark.serving import OnlineFeatures

    bucket = make_bucket(s3_endpoint, "jvm")
    done = run_s3_jvm(_SCENARIO, "delta", env={"BUCKET": bucket, "SEEKNAL_ONLINE_STORE": str(tmp_path / "online"),
                                                "WRITES": _writes()}, options=s3_endpoint.options)
    out = result_of(done.stdout)
    stored = sorted([u, _iso(t), v] for u, t, v in ORACLE.rows)
    assert out["engines"] == ["delta-spark"]            # Spark's own Delta writer wrote every commit
    assert out["stored"] == stored                      # first write, partial-day overwrite, append
    assert out["freshness"] == [_iso(max(r[1] for r in ORACLE.rows)), False]   # Delta's reader, S3 options
    assert out["train_spark"] == ORACLE.training(SPINE, _iso)     # point-in-time on the JVM-written S3 table
    assert out["train_duckdb"] == ORACLE.training(SPINE, _iso)    # ... and read by delta-rs/DuckDB from S3
    online = OnlineFeatures.open(f"s3://{bucket}/online/user_online", storage_options=s3_endpoint.options,
                                 cache_dir=str(tmp_path / "read"))
    assert online.get_features(keys=[{"user": u} for u in (1, 2, 3, 4, 5)]) == ORACLE.latest((1, 2, 3, 4, 5))
    assert out["lease_needed"] == [True, False, False]  # S3 needs the lease unless a multi-writer LogStore is set
    for what in ("read", "write"):                      # the bucket is named with what to check
        assert out["missing_" + what].startswith("StoreError") and "no-such-bucket-jvm" in out["missing_" + what]

    # an independent reader (delta-kernel) sees the same rows in a copy of the table's objects
    copy = _download(s3_endpoint, bucket, "fs/default/user_spend", tmp_path / "copy")
    independent = sorted([r["user"], r["ts"][:19], r["v"]] for r in read_delta(str(copy)))
    assert independent == stored

    objects = all_objects(s3_endpoint, bucket)
    assert not [k for k in objects if k.endswith("_seeknal_writer_lease.json")]   # every write released its lease
    secret = TEST_SECRET.encode()
    leaked = [k for k, body in objects.items() if secret in body]
    leaked += [str(p) for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert leaked == [] and TEST_SECRET not in done.stdout + done.stderr + json.dumps(out)


# -- the single-writer rule of the Delta-JVM path on S3 (two real writer processes) --------------------------------
_ROLE = _COMMON + '''
from seeknal_spark.errors import ConcurrentWriteError
D = pathlib.Path(DIR)

def wait(name, timeout=600):
    start = time.time()
    while not (D / name).exists():
        if time.time() - start > timeout:
            raise SystemExit(f"timed out waiting for {name}")
        time.sleep(0.2)

def mark(name):
    (D / name).write_text("x")

def write(user, check=None):
    fg = group("g")
    if check is not None:
        fg.add_check("pause", check)
    fg.set_dataframe(frame([[user, f"2024-03-01T{user:02d}:00:00", user]])).write(mode="append")

def attempt(user):
    try:
        write(user)
        return "written"
    except ConcurrentWriteError as exc:
        return f"ConcurrentWriteError: {exc}"
'''

_WRITER_1 = _ROLE + '''
write(1)                                        # creates the table
def hold(staged):                               # the lease is held while the checks run: pause here
    mark("w1_holding")
    wait("w1_go")
write(2, hold)
mark("w1_second_done")
wait("w2_killed")                               # writer 2 died holding the lease
out["right_after_kill"] = attempt(3)            # its lease is still fresh: refused
time.sleep(float(os.environ["SEEKNAL_WRITER_LEASE_SECONDS"]) + 2)
out["after_expiry"] = attempt(4)                # stale: taken over
print("RESULT " + json.dumps(out), flush=True)
'''

_WRITER_2 = _ROLE + '''
wait("w1_holding")
out["while_held"] = attempt(5)                  # writer 1 holds the lease: refused, nothing written
mark("w2_refused")
wait("w1_second_done")
out["after_release"] = attempt(6)
print("RESULT " + json.dumps(out), flush=True)
def hang(staged):
    mark("w2_holding")
    time.sleep(600)
write(7, hang)                                  # killed while holding the lease
'''


def test_delta_jvm_single_writer_rule_on_s3_two_processes(s3_endpoint, tmp_path):
    from seeknal_spark.offline import delta_log

    bucket = make_bucket(s3_endpoint, "lease")
    env = {"BUCKET": bucket, "DIR": str(tmp_path), "SEEKNAL_WRITER_LEASE_SECONDS": "10"}
    logs, procs = [], []
    try:
        for name, script in (("w1", _WRITER_1), ("w2", _WRITER_2)):
            argv, child_env = s3_jvm_command(script, "delta", env=env, options=s3_endpoint.options)
            logs.append(open(tmp_path / f"{name}.log", "w"))
            procs.append(subprocess.Popen(argv, env=child_env, stdout=logs[-1], stderr=subprocess.STDOUT,
                                          text=True, cwd=str(REPO)))
        w1, w2 = procs
        wait_for(tmp_path / "w2_refused", procs)
        (tmp_path / "w1_go").write_text("x")
        wait_for(tmp_path / "w2_holding", [w1, w2])
        lease_key = "fs/default/g/_seeknal_writer_lease.json"
        assert lease_key in all_objects(s3_endpoint, bucket)
        os.kill(w2.pid, signal.SIGKILL)
        w2.wait()
        (tmp_path / "w2_killed").write_text("x")
        assert w1.wait(timeout=600) == 0, (tmp_path / "w1.log").read_text()[-6000:]
    finally:
        reap(procs, logs)
    first = result_of((tmp_path / "w1.log").read_text())
    second = result_of((tmp_path / "w2.log").read_text())

    table_uri = f"s3://{bucket}/fs/default/g"
    refused = second["while_held"]
    assert refused.startswith("ConcurrentWriteError") and table_uri in refused
    assert "one writer at a time" in refused and "Nothing was written" in refused
    assert second["after_release"] == "written"
    assert first["right_after_kill"].startswith("ConcurrentWriteError") and table_uri in first["right_after_kill"]
    assert first["after_expiry"] == "written"

    # exactly the writes that were not refused or killed, each once
    table = delta_log.open_table(table_uri, storage_options=s3_endpoint.options)
    rows = delta_log.read_files_arrow(table, delta_log.live_files(table), "_file").select(["user", "v"])
    assert sorted(zip(*rows.to_pydict().values())) == [(1, 1), (2, 2), (4, 4), (6, 6)]
    assert lease_key not in all_objects(s3_endpoint, bucket)     # the last writer released it
    assert "took over the stale writer lease" in (tmp_path / "w1.log").read_text()


# -- Spark Connect on S3 (the portable path; the Connect server's JVM has hadoop-aws) -------------------------------
_CONNECT = _COMMON + '''
from pyspark.sql.connect.session import SparkSession as ConnectSession
out["client_is_connect"] = isinstance(spark, ConnectSession)
fg = group()
fg.set_dataframe(frame(W["1"])).write(mode="overwrite")
fg.set_dataframe(frame(W["2"])).write(*W["2_range"], mode="overwrite")
fg.set_dataframe(frame(W["3"])).write(mode="append")
fg = FeatureGroup("user_spend", store=store).get_or_create()
out["engines"] = sorted({(c.write or {}).get("engine", "")
                         for c in table_metadata(fg.table_path, spark, fg.storage_options).commits() if c.write})
out["stored"] = rows_of(fg.to_dataframe(spark=spark), "ts")
spine = spark.createDataFrame(pd.DataFrame({"user": [s[0] for s in W["spine"]],
                                            "label_time": pd.to_datetime([s[1] for s in W["spine"]])}))
train = HistoricalFeatures([FeatureLookup(source=fg)]).using_spine(spine, date_col="label_time")
out["train"] = rows_of(train.to_dataframe_with_spine(), "label_time")
print("RESULT " + json.dumps(out, default=str))
'''


def test_spark_connect_on_s3_write_training_set_read(s3_endpoint, tmp_path):
    bucket = make_bucket(s3_endpoint, "connect")
    done = run_s3_jvm(_CONNECT, "connect", env={"BUCKET": bucket, "WRITES": _writes(),
                                                 "SEEKNAL_ONLINE_STORE": str(tmp_path / "online")},
                      options=s3_endpoint.options)
    out = result_of(done.stdout)
    assert out["client_is_connect"] is True
    assert "delta-spark" not in out["engines"]          # the portable path: Spark stages, delta-rs commits
    assert out["stored"] == sorted([u, _iso(t), v] for u, t, v in ORACLE.rows)
    assert out["train"] == ORACLE.training(SPINE, _iso)
    copy = _download(s3_endpoint, bucket, "fs/default/user_spend", tmp_path / "copy")
    assert sorted([r["user"], r["ts"][:19], r["v"]] for r in read_delta(str(copy))) == out["stored"]
    assert TEST_SECRET not in done.stdout + done.stderr
