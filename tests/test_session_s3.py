"""S3 stores and sessions without hadoop-aws: the library's own local session loads it, other sessions are told how.

(a) A child process whose only S3 setting is ``SEEKNAL_OFFLINE_STORE=s3://...`` (plus the endpoint and credentials
in the environment, as a scheduled job has them) calls ``local_session()`` and writes a group; delta-rs, not Spark,
reads the rows back. (b) The shared test session has no hadoop-aws: a write to an ``s3://`` store is refused with
a StoreError naming the setting, before anything reaches the bucket.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap

import pytest

from seeknal_spark import Entity, FeatureGroup, FeatureStoreFileOutput, Materialization, OfflineMaterialization
from seeknal_spark import OfflineStore, StoreError
from seeknal_spark import jvm_versions, session
from tests.support.s3 import all_objects, make_bucket, s3_jars
from tests.support.jvm import REPO

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
ROWS = [(u, T0 + dt.timedelta(hours=u), float(u * 10)) for u in range(1, 6)]

_CHILD = textwrap.dedent('''
    import datetime as dt, json, sys
    sys.path.insert(0, REPO)
    from seeknal_spark import Entity, FeatureGroup, Materialization
    from seeknal_spark.session import local_session

    spark = local_session()            # nothing about S3 here: the configured store is on S3
    rows = [(u, dt.datetime.fromisoformat(t), a) for u, t, a in json.loads(ROWS)]
    fg = FeatureGroup("spend", entity=Entity("user", ["user_id"]), materialization=Materialization(event_time_col="ts"))
    fg.set_dataframe(spark.createDataFrame(rows, "user_id long, ts timestamp, amount double"))
    result = fg.write()
    print(json.dumps({"table": fg.table_path, "version": result.version,
                      "jars": spark.conf.get("spark.jars", ""), "packages": spark.conf.get("spark.jars.packages", "")}))
''')


def test_local_session_on_a_configured_s3_store_loads_hadoop_aws_and_writes(s3_endpoint, tmp_path):
    from deltalake import DeltaTable

    from seeknal_spark.storage import delta_rs_options

    s3_jars()  # the project's jar cache holds hadoop-aws (resolved with Maven; fails in CI, skips elsewhere)
    bucket = make_bucket(s3_endpoint, "warehouse")
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "PYSPARK_GATEWAY_PORT",
                                                             "SPARK_CONNECT_MODE_ENABLED")}
    env.update(s3_endpoint.options, SEEKNAL_OFFLINE_STORE=f"s3://{bucket}/feature_store", TZ="UTC",
               SEEKNAL_CONF_DIR=str(REPO / "conf"), REPO=str(REPO),
               ROWS=json.dumps([(u, t.isoformat(), a) for u, t, a in ROWS]))
    code = "import os\nREPO, ROWS = os.environ['REPO'], os.environ['ROWS']\n" + _CHILD
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                          cwd=str(tmp_path))
    assert done.returncode == 0, f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-6000:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["table"].startswith(f"s3://{bucket}/feature_store/")
    assert "hadoop-aws-" in out["jars"] + out["packages"]
    table = DeltaTable(out["table"], storage_options=delta_rs_options(out["table"], s3_endpoint.options))
    got = table.to_pyarrow_table().to_pydict()
    assert sorted(zip(got["user_id"], got["amount"])) == [(u, a) for u, _, a in ROWS]
    assert sorted(t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t for t in got["ts"]) == \
        [t for _, t, _ in ROWS]


def _s3_group(bucket, options):
    store = OfflineStore(value=FeatureStoreFileOutput(path=f"s3://{bucket}/feature_store", storage_options=options))
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store))
    return FeatureGroup("spend", entity=Entity("user", ["user_id"]), materialization=mat)


def test_session_without_hadoop_aws_is_refused_before_anything_is_written(spark, s3_endpoint, monkeypatch):
    from seeknal_spark.offline.reader import read_table

    bucket = make_bucket(s3_endpoint, "nojars")
    fg = _s3_group(bucket, s3_endpoint.options)
    fg.set_dataframe(spark.createDataFrame(ROWS, "user_id long, ts timestamp, amount double"))
    coordinate = f"org.apache.hadoop:hadoop-aws:{jvm_versions.line_of(spark.version).hadoop}"
    # the library's own session: restart it with s3=True, or add the conf
    with pytest.raises(StoreError, match=r"local_session\(s3=True\)") as info:
        fg.write()
    assert f"spark.jars.packages={coordinate}" in str(info.value) and fg.table_path in str(info.value)
    # any other session (cluster, spark-submit, notebook): the exact --packages / conf
    monkeypatch.delitem(session._CREATED, id(spark))
    with pytest.raises(StoreError, match="S3AFileSystem") as info:
        fg.write()
    assert f"--packages {coordinate}" in str(info.value)
    assert f"spark.jars.packages={coordinate}" in str(info.value)
    with pytest.raises(StoreError, match=f"spark.jars.packages={coordinate}"):  # reads are checked the same way
        read_table(spark, fg.table_path, "ts", storage_options=fg.storage_options)
    assert all_objects(s3_endpoint, bucket) == {}


def test_without_cached_jars_the_local_session_asks_spark_for_the_matching_hadoop_aws(tmp_path, monkeypatch):
    monkeypatch.setenv("SEEKNAL_SPARK_CACHE", str(tmp_path))
    hadoop = jvm_versions.pyspark_hadoop_version()
    import pyspark

    assert hadoop == jvm_versions.line_of(pyspark.__version__).hadoop  # the table matches the installed pyspark
    assert session.s3_settings({"spark.jars.packages": "org.x:y:1"}) == {
        "spark.jars.packages": f"org.x:y:1,org.apache.hadoop:hadoop-aws:{hadoop}"}
    assert session.s3_settings({"spark.jars": "/x/hadoop-aws-3.5.0.jar"}) == {}  # the user's own choice stays
