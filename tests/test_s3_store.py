"""The offline store on S3 (portable path: Spark stages Parquet through s3a, delta-rs commits with conditional
puts), end to end against a real S3 HTTP endpoint on loopback (moto's server), with real Spark child sessions that
load the hadoop-aws jars (tests/support/s3.py).

Oracles are plain Python over the rows the test wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time

import pytest

from seeknal_spark import FeatureGroup, FeatureStoreFileOutput, OfflineStore
from seeknal_spark.errors import StoreError
from tests.support.s3 import TEST_SECRET, all_objects, make_bucket, run_with_s3_session, s3_child_command
from tests.support.jvm import REPO
from tests.support.oracle import OverwriteAppendOracle

D1, D2, D3 = dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2), dt.datetime(2024, 3, 3)
WRITE1 = [(u, D1 + dt.timedelta(hours=10), u * 100 + 10) for u in (1, 2, 3)] + \
         [(u, D2 + dt.timedelta(hours=h), u * 100 + 20 + h) for u in (1, 2, 3) for h in (10, 20)]
WRITE2 = [(u, D2 + dt.timedelta(hours=11), -u) for u in (1, 2)]            # overwrite of [D2 00:00, D2 12:00]
WRITE2_RANGE = (D2, D2 + dt.timedelta(hours=12))
WRITE3 = [(3, D3 + dt.timedelta(hours=9), 999), (4, D3 + dt.timedelta(hours=9), 4)]  # append
SPINE = [(u, t) for u in (1, 2, 3, 4, 5) for t in (D1 + dt.timedelta(hours=9), D1 + dt.timedelta(hours=12),
                                                   D2 + dt.timedelta(hours=12), D3 + dt.timedelta(hours=23))]


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


# -- oracles (plain Python) ----------------------------------------------------------------------------------------
ORACLE = OverwriteAppendOracle(WRITE1, WRITE2, WRITE2_RANGE, WRITE3)


# -- the child: every scenario of one Spark session ---------------------------------------------------------------
_SCENARIO = '''
import datetime as dt, json
import pandas as pd
from pyspark.sql import functions as F
from seeknal_spark import (Entity, FeatureGroup, FeatureLookup, FeatureStoreFileOutput, HistoricalFeatures,
                           Materialization, OfflineMaterialization, OfflineStore)
from seeknal_spark.serving import OnlineFeatures

W = json.loads(WRITES)
out = {}

def group(store):
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store))
    return FeatureGroup("user_spend", entity=Entity("user", ["user"]), materialization=mat)

def frame(rows):
    return pd.DataFrame({"user": [r[0] for r in rows], "ts": pd.to_datetime([r[1] for r in rows]),
                         "v": [r[2] for r in rows]})

s3_store = OfflineStore(value=FeatureStoreFileOutput(path=f"s3://{BUCKET}/fs", storage_options=OPTIONS))
local_store = OfflineStore(value=FeatureStoreFileOutput(path=LOCAL_ROOT))
out["store_repr"] = repr(s3_store) + " " + str(s3_store.storage_options())
for name, store in (("s3", s3_store), ("local", local_store)):
    fg = group(store)
    fg.set_dataframe(frame(W["1"])).write(mode="overwrite")
    fg.set_dataframe(frame(W["2"])).write(*W["2_range"], mode="overwrite")
    fg.set_dataframe(frame(W["3"])).write(mode="append")
    out[name + "_versions"] = fg.delta_version

fg = FeatureGroup("user_spend", store=s3_store).get_or_create()
out["fg_repr"] = repr(fg)
def rows_of(df, time_col):
    return sorted([r[0], r[1], r[2]] for r in df.select("user", F.date_format(time_col, "yyyy-MM-dd'T'HH:mm:ss"),
                                                        "v").collect())
out["stored"] = rows_of(fg.to_dataframe(), "ts")
out["newest"] = fg.freshness(now="2024-03-04").newest_event_time.strftime("%Y-%m-%dT%H:%M:%S")
out["validation_history"] = len(fg.validation_history())

# an object-store failure injected after the upload (a check that raises): nothing changes
failing = group(s3_store)
def boom(staged):
    raise RuntimeError("injected failure after staging on S3")
failing.add_check("boom", boom)
try:
    failing.set_dataframe(frame([[1, W["3"][0][1], 5]])).write(mode="append")
    out["failed_write"] = "no error"
except Exception as exc:
    out["failed_write"] = f"{type(exc).__name__}: {exc!s} {exc!r}"
out["version_after_failure"] = fg.delta_version
out["stored_after_failure"] = rows_of(fg.to_dataframe(), "ts")

spine = pd.DataFrame({"user": [s[0] for s in W["spine"]], "label_time": pd.to_datetime([s[1] for s in W["spine"]])})
spark_set = HistoricalFeatures([FeatureLookup(source=fg)]).using_spine(spine, date_col="label_time")
spark_df = spark_set.to_dataframe_with_spine(manifest_path=MANIFEST)
out["train_spark"] = sorted([r[0], r[1], r[2]] for r in spark_df.select(
    "user", F.date_format("label_time", "yyyy-MM-dd'T'HH:mm:ss"), "v").collect())
duck = HistoricalFeatures([FeatureLookup(source=fg)], engine="duckdb").using_spine(spine, date_col="label_time")
pdf = duck.to_pandas_with_spine()
out["train_duckdb"] = sorted([int(u), pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%S"), None if pd.isna(v) else int(v)]
                             for u, t, v in zip(pdf["user"], pdf["label_time"], pdf["v"]))

keys = [{"user": u} for u in (1, 2, 3, 4, 5)]
HistoricalFeatures([FeatureLookup(source=fg)]).using_latest().serve(
    "user_online", target=f"s3://{BUCKET}/online", storage_options=OPTIONS)  # cache: the online store
opened = OnlineFeatures.open(f"s3://{BUCKET}/online/user_online", storage_options=OPTIONS, cache_dir=CACHE + "/read")
out["online_s3"] = opened.get_features(keys=keys)
local_fg = FeatureGroup("user_spend", store=local_store).get_or_create()
local_online = HistoricalFeatures([FeatureLookup(source=local_fg)]).using_latest().serve(
    "user_online", store_root=LOCAL_ONLINE)
out["online_local"] = local_online.get_features(keys=keys)

print("RESULT " + json.dumps(out, default=str))
'''


def _writes():
    enc = lambda rows: [[u, _iso(t), v] for u, t, v in rows]  # noqa: E731
    return json.dumps({"1": enc(WRITE1), "2": enc(WRITE2), "2_range": [_iso(t) for t in WRITE2_RANGE],
                       "3": enc(WRITE3), "spine": [[u, _iso(t)] for u, t in SPINE]})


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_portable_store_on_s3_end_to_end_and_no_secret_anywhere(s3_endpoint, tmp_path):
    bucket = make_bucket(s3_endpoint, "warehouse")
    manifest = tmp_path / "train.json"
    done = run_with_s3_session(_SCENARIO, env={
        "BUCKET": bucket, "LOCAL_ROOT": str(tmp_path / "offline"), "LOCAL_ONLINE": str(tmp_path / "online"),
        "MANIFEST": str(manifest), "CACHE": str(tmp_path / "cache"), "WRITES": _writes(), "TZ": "UTC",
        "SEEKNAL_ONLINE_STORE": str(tmp_path / "online_default")},
        options=s3_endpoint.options)
    out = _result(done.stdout)

    stored = sorted([u, _iso(t), v] for u, t, v in ORACLE.rows)
    assert out["stored"] == stored                       # first write, overwrite of part of a day, append
    assert out["s3_versions"] == out["local_versions"]
    assert out["newest"] == max(_iso(t) for _, t, _ in ORACLE.rows) and out["validation_history"] == 0
    assert out["failed_write"].startswith("RuntimeError: injected failure")
    assert out["version_after_failure"] == out["s3_versions"] and out["stored_after_failure"] == stored
    assert out["train_spark"] == ORACLE.training(SPINE, _iso)       # point-in-time, Spark engine
    assert out["train_duckdb"] == ORACLE.training(SPINE, _iso)      # point-in-time, DuckDB engine over the S3 snapshot
    assert out["online_s3"] == ORACLE.latest((1, 2, 3, 4, 5))           # published from S3 to S3, opened from S3
    assert out["online_s3"] == out["online_local"]        # same rows as from a local table
    assert "***" in out["store_repr"]

    objects = all_objects(s3_endpoint, bucket)
    keys = sorted(objects)
    assert any(k.startswith("fs/default/user_spend/_delta_log/") for k in keys)
    assert any(k.startswith("online/user_online/") and k.endswith(".duckdb") for k in keys)
    assert not [k for k in keys if "/_staging/" in k and not k.endswith("/")]  # writers cleaned up, failed too

    # the secret is nowhere: bucket objects (data, Delta log, online files, manifests), the training manifest,
    # cached online copies, the child's output and logs, reprs of the store and errors
    secret = TEST_SECRET.encode()
    leaked = [k for k, body in objects.items() if secret in body]
    leaked += [str(p) for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert manifest.is_file()
    assert leaked == []
    assert TEST_SECRET not in done.stdout and TEST_SECRET not in done.stderr


_KILLED = '''
import json, pandas as pd, pathlib, time
from seeknal_spark.cli import main
from seeknal_spark.serving import OnlineFeatures

# the CLI on an S3 store with settings from the environment only (the standard AWS chain of each client)
ref = "tests.fixtures.cli_transforms:daily_spend"
cli = [main(["materialize", ref, "--store", f"s3://{BUCKET}/cli", "--start", "2024-01-01", "--end", "2024-01-05"]),
       main(["publish-online", "--group", ref, "--store", f"s3://{BUCKET}/cli", "--name", "spend",
             "--target", f"s3://{BUCKET}/online"])]
got = OnlineFeatures.open(f"s3://{BUCKET}/online/spend", cache_dir=CACHE).get_features(keys=[{"user_id": 1},
                                                                                              {"user_id": 2}])
pathlib.Path(CLI_OUT).write_text(json.dumps({"exit": cli, "online": got}))

# a write killed after its new rows were uploaded
from seeknal_spark import Entity, FeatureGroup, FeatureStoreFileOutput, Materialization, OfflineMaterialization
from seeknal_spark import OfflineStore

store = OfflineStore(value=FeatureStoreFileOutput(path=f"s3://{BUCKET}/fs"))
mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store))
fg = FeatureGroup("g", entity=Entity("user", ["user"]), materialization=mat)
fg.set_dataframe(pd.DataFrame({"user": [1, 2], "ts": pd.to_datetime(["2024-03-01", "2024-03-01"]), "v": [1, 2]}))
fg.write()
BEFORE = fg.delta_version
def hang(staged):  # the new rows are uploaded to S3 (staged) when checks run: signal, then wait to be killed
    pathlib.Path(MARK).write_text(str(BEFORE))
    time.sleep(600)
fg.add_check("hang", hang)
fg.set_dataframe(pd.DataFrame({"user": [1, 3], "ts": pd.to_datetime(["2024-03-01", "2024-03-02"]), "v": [9, 3]}))
fg.write(mode="overwrite")
'''


def test_cli_with_environment_settings_and_a_write_killed_mid_upload(s3_endpoint, tmp_path):
    from seeknal_spark.offline import delta_log

    bucket = make_bucket(s3_endpoint, "killed")
    mark = tmp_path / "staged"
    # this child's settings come from the environment (its JVM too), as for a scheduled CLI job
    argv, env = s3_child_command(_KILLED, env={"BUCKET": bucket, "MARK": str(mark), "TZ": "UTC",
                                               "CACHE": str(tmp_path / "cache"), "CLI_OUT": str(tmp_path / "cli.json"),
                                               "SEEKNAL_ONLINE_STORE": str(tmp_path / "online"),
                                               **s3_endpoint.options})
    with open(tmp_path / "child.log", "wb") as log:
        child = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
        deadline = time.time() + 600
        while not mark.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        try:
            assert mark.exists(), (tmp_path / "child.log").read_text()[-4000:]
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
    cli = json.loads((tmp_path / "cli.json").read_text())
    assert cli == {"exit": [0, 0], "online": [{"user_id": u, "spend": float(u * 100 + 5)} for u in (1, 2)]}

    uri = f"s3://{bucket}/fs/default/g"
    staged = [k for k in all_objects(s3_endpoint, bucket) if "/_staging/" in k and k.endswith(".parquet")]
    assert staged, "the killed write had uploaded its staged files"
    table = delta_log.open_table(uri, storage_options=s3_endpoint.options)
    assert table.version() == int(mark.read_text())  # the version before the killed write
    rows = delta_log.read_files_arrow(table, delta_log.live_files(table), "_file").select(["user", "v"])
    assert sorted(zip(*rows.to_pydict().values())) == [(1, 1), (2, 2)]
    assert TEST_SECRET.encode() not in (tmp_path / "child.log").read_bytes()


def test_missing_bucket_is_a_store_error_naming_it(s3_endpoint):
    store = OfflineStore(value=FeatureStoreFileOutput(path="s3://no-such-bucket-xyz/fs",
                                                      storage_options=s3_endpoint.options))
    group = FeatureGroup("g", store=store)
    with pytest.raises(StoreError) as info:
        group.get_or_create()
    text = f"{info.value!s} {info.value!r} {store!r} {group!r}"
    assert "'no-such-bucket-xyz' does not exist" in text and "AWS_ENDPOINT_URL" in text
    assert TEST_SECRET not in text


def test_concurrent_delta_rs_commits_on_s3_have_one_winner_per_version(s3_endpoint):
    """The portable path's guarantee on S3: delta-rs writes ``_delta_log/<n>.json`` with a conditional put
    (``conditional_put=etag``), so of several writers committing the same version exactly one wins."""
    import threading

    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    from seeknal_spark import storage
    from seeknal_spark.offline import delta_log

    bucket = make_bucket(s3_endpoint, "race")
    uri, opts = f"s3://{bucket}/t", s3_endpoint.options
    schema = delta_log.commit_schema_json([("k", "long"), ("_event_date", "date")])
    fs, root = storage.filesystem(uri, opts)

    def add(name: str) -> AddAction:
        path = f"_event_date=2024-01-01/{name}.parquet"
        pq.write_table(pa.table({"k": [1]}), f"{root}/{path}", filesystem=fs)
        size = fs.get_file_info(f"{root}/{path}").size
        return AddAction(path, size, {"_event_date": "2024-01-01"}, 0, True, None)

    delta_log.commit_files(uri, schema, [add("base")], version=-1, replace_days=[], user_metadata="{}",
                           storage_options=opts)
    outcomes: list = []
    adds = [add(f"w{i}") for i in range(4)]
    barrier = threading.Barrier(len(adds))

    def writer(action: AddAction) -> None:
        barrier.wait()
        try:
            outcomes.append(delta_log.commit_files(uri, schema, [action], version=0, replace_days=[],
                                                   user_metadata="{}", storage_options=opts))
        except delta_log.VersionTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=writer, args=(a,)) for a in adds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str) == [1, "taken", "taken", "taken"]
    table = delta_log.open_table(uri, storage_options=opts)
    assert table.version() == 1 and len(delta_log.live_files(table)) == 2


def test_storage_rules_map_uris_and_options_per_client_and_never_show_secrets(monkeypatch):
    from seeknal_spark import storage

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ALLOW_HTTP"):
        monkeypatch.delenv(name, raising=False)
    assert storage.hadoop_uri("s3://b1b/x/y") == "s3a://b1b/x/y" and storage.hadoop_uri("/tmp/x") == "/tmp/x"
    assert storage.object_store_uri("s3a://b1b/x") == "s3://b1b/x" and storage.fs_path("s3://b1b/x/") == "b1b/x"
    opts = {"aws_endpoint_url": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "s3cr3t!",
            "AWS_SESSION_TOKEN": "tok3n"}
    assert storage.hadoop_options(opts) == {
        "fs.s3a.endpoint": "http://127.0.0.1:9", "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false", "fs.s3a.endpoint.region": "us-east-1",
        "fs.s3a.access.key": "AKIAX", "fs.s3a.secret.key": "s3cr3t!", "fs.s3a.session.token": "tok3n",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"}
    assert storage.hadoop_options(None) == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://minio.internal:9000")
    assert storage.hadoop_options(None)["fs.s3a.connection.ssl.enabled"] == "true"  # endpoint from the environment
    assert storage.delta_rs_options("s3://b1b/t", opts)["conditional_put"] == "etag"
    assert storage.delta_rs_options("s3://b1b/t", opts)["AWS_ALLOW_HTTP"] == "true"
    assert storage.delta_rs_options("/local/t", None) is None
    shown = repr(FeatureStoreFileOutput(path="s3://b1b/t", storage_options=opts)) + repr(storage.StorageOptions(opts))
    assert "s3cr3t!" not in shown and "tok3n" not in shown and "s3://b1b/t" in shown
    assert FeatureStoreFileOutput(path="s3://b1b/t", storage_options=opts) == FeatureStoreFileOutput(path="s3://b1b/t")
    assert storage.redact("failed with s3cr3t! and tok3n", opts) == "failed with *** and ***"
