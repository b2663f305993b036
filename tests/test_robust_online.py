"""Online serving under hostile input and racing publishers (issue 12): key types, tampered pointers, S3 races,
missing buckets, a publish pruning the file a reader is opening, corrupted files."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading

import pytest

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStoreFileOutput,
    Materialization,
    OfflineMaterialization,
    OfflineStore,
)
from seeknal_spark.errors import DefinitionError, StoreError
from seeknal_spark.serving import OnlineFeatures, ServingSource, publish_online_table
from seeknal_spark.serving.location import LocalDir
from tests.support.s3 import make_bucket


def _group(root, name, keys, spark, rows, schema):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(root)))
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store,
                                                                                              mode="append"))
    fg = FeatureGroup(name, entity=Entity("e", list(keys)), materialization=mat)
    fg.set_dataframe(spark.createDataFrame(rows, schema)).write()
    return fg


@pytest.fixture(scope="module")
def groups(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("robust_online")
    t0 = dt.datetime(2024, 1, 1)
    ints = _group(root / "off", "ints", ["user_id"], spark,
                  [(k, t0, k * 10.0) for k in range(1, 21)], "user_id long, ts timestamp, spend double")
    pairs = _group(root / "off", "pairs", ["user_id", "shop"], spark,
                   [(1, "a", t0, 1), (2, "b", t0, 2)], "user_id int, shop string, ts timestamp, n long")
    flags = _group(root / "off", "flags", ["flag"], spark, [(True, t0, 7)], "flag boolean, ts timestamp, n long")
    return {"root": root, "ints": ints, "pairs": pairs, "flags": flags}


@pytest.mark.parametrize("index", ["memory", "duckdb"])
def test_join_key_of_another_type_is_refused_in_both_indexes(groups, tmp_path, index):
    table = publish_online_table(ServingSource.from_feature_group(groups["ints"]), "ints", index=index,
                                 store_root=str(tmp_path))
    assert table.get_features([{"user_id": 1}]) == [{"user_id": 1, "spend": 10.0}]
    for bad in (True, 1.0, "1"):
        with pytest.raises(DefinitionError, match=rf"join key 'user_id' is stored as BIGINT .*{bad!r}"):
            table.get_features([{"user_id": bad}])
        many = [{"user_id": k} for k in range(2, 12)] + [{"user_id": bad}]  # batch path
        with pytest.raises(DefinitionError, match="join key 'user_id'"):
            table.get_features(many)
    pairs = publish_online_table(ServingSource.from_feature_group(groups["pairs"]), "pairs", index=index,
                                 store_root=str(tmp_path))
    assert pairs.get_features([{"user_id": 1, "shop": "a"}]) == [{"user_id": 1, "shop": "a", "n": 1}]
    with pytest.raises(DefinitionError, match="join key 'user_id'"):
        pairs.get_features([{"user_id": True, "shop": "a"}])
    flags = publish_online_table(ServingSource.from_feature_group(groups["flags"]), "flags", index=index,
                                 store_root=str(tmp_path))
    assert flags.get_features([{"flag": True}]) == [{"flag": True, "n": 7}]
    with pytest.raises(DefinitionError, match="join key 'flag' is stored as BOOLEAN"):
        flags.get_features([{"flag": 1}])


# -- tampered pointers --------------------------------------------------------------------------------------------
def _publish_local(groups, root, name="ints", keep=3):
    return publish_online_table(ServingSource.from_feature_group(groups["ints"]), name, store_root=str(root),
                                keep=keep)


@pytest.mark.parametrize("field,value", [("sha256", "../../etc/x"), ("sha256", "A" * 64), ("version", "1/../../"),
                                         ("version", -1), ("version", True), ("file", "../v000001-ab.duckdb")])
def test_tampered_local_pointer_is_refused(groups, tmp_path, field, value):
    table = _publish_local(groups, tmp_path)
    pointer = os.path.join(os.path.dirname(table.path), "CURRENT.json")
    with open(pointer) as fh:
        data = json.load(fh)
    data[field] = value
    with open(pointer, "w") as fh:
        json.dump(data, fh)
    for verify in (True, False):
        with pytest.raises(StoreError, match=f"invalid {field}|unexpected file"):
            OnlineFeatures.open("ints", store_root=str(tmp_path), verify=verify)


# -- S3 -------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bucket(s3_endpoint):
    return make_bucket(s3_endpoint, "robust")


def test_hostile_s3_pointer_never_touches_local_files(groups, s3_endpoint, bucket, tmp_path):
    s3 = s3_endpoint.options
    src = ServingSource.from_feature_group(groups["ints"])
    publish_online_table(src, "t", target=f"s3://{bucket}/hostile", storage_options=s3,
                         cache_dir=str(tmp_path / "pub_cache"))
    # a valid online file of another table sits next to the reader's cache: the attacker wants it deleted or served
    other = publish_online_table(ServingSource.from_feature_group(groups["flags"]), "other",
                                 store_root=str(tmp_path / "local"))
    victim = tmp_path / "victim.duckdb"
    shutil.copy(other.path, victim)
    before = victim.read_bytes()
    cache = tmp_path / "reader_cache"
    cache.mkdir()
    client = s3_endpoint.client()
    text = client.get_object(Bucket=bucket, Key="hostile/t/CURRENT.json")["Body"].read()
    good = json.loads(text)
    for field, value in (("sha256", "../victim"), ("sha256", "../../etc/x"), ("version", "1/../../")):
        hostile = dict(good, **{field: value})
        client.put_object(Bucket=bucket, Key="hostile/t/CURRENT.json", Body=json.dumps(hostile).encode())
        for verify in (True, False):
            with pytest.raises(StoreError, match=f"invalid {field}"):
                OnlineFeatures.open(f"s3://{bucket}/hostile/t", storage_options=s3, cache_dir=str(cache),
                                    verify=verify)
            assert victim.read_bytes() == before
    assert os.listdir(cache) == []


def test_concurrent_s3_publishes_get_distinct_versions(groups, s3_endpoint, bucket, tmp_path):
    from seeknal_spark.serving.remote import list_keys

    s3 = s3_endpoint.options

    src = ServingSource.from_feature_group(groups["ints"])
    target = f"s3://{bucket}/race"
    publish_online_table(src, "t", target=target, storage_options=s3, cache_dir=str(tmp_path / "c0"))
    n = 3
    barrier = threading.Barrier(n)
    results, errors = [], []

    def publish(i):
        try:
            barrier.wait()
            results.append(publish_online_table(src, "t", target=target, storage_options=s3, keep=10,
                                                cache_dir=str(tmp_path / f"c{i + 1}")).version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    names = [k.rsplit("/", 1)[-1] for k in list_keys(s3_endpoint.client(), bucket, "race/t/")]
    files = sorted(name for name in names if name.endswith(".duckdb"))
    versions = [int(name[1:7]) for name in files]
    assert versions == [1, 2, 3, 4], files  # every publish its own version, none duplicated
    current = OnlineFeatures.open(target + "/t", storage_options=s3, cache_dir=str(tmp_path / "reader"))
    assert current.version == 4  # the pointer never moves back to a slower publisher's older version


def test_missing_s3_bucket_is_a_store_error_naming_it(groups, s3_endpoint, tmp_path):
    s3 = s3_endpoint.options
    with pytest.raises(StoreError, match="S3 bucket 'no-such-bucket' does not exist.*AWS_ENDPOINT_URL"):
        OnlineFeatures.open("s3://no-such-bucket/p/t", storage_options=s3, cache_dir=str(tmp_path))
    with pytest.raises(StoreError, match="S3 bucket 'no-such-bucket' does not exist"):
        publish_online_table(ServingSource.from_feature_group(groups["ints"]), "t", target="s3://no-such-bucket/p",
                             storage_options=s3, cache_dir=str(tmp_path))


# -- a publish with keep=0 racing a reader --------------------------------------------------------------------------
class _PublishAfterFetch(LocalDir):
    """A reader whose open is overtaken by a publish (keep=0) right after it chose and checked the file."""

    def __init__(self, directory, publish):
        super().__init__(directory)
        self.publish, self.raced = publish, 0

    def fetch(self, version, verify, manifest=None):
        found = super().fetch(version, verify, manifest)
        if not self.raced:
            self.raced += 1
            self.publish()  # prunes the file just fetched
        return found


@pytest.mark.parametrize("index", ["memory", "duckdb"])
@pytest.mark.parametrize("verify", [True, False])
def test_open_during_a_keep0_publish_retries(groups, tmp_path, index, verify):
    first = _publish_local(groups, tmp_path, keep=0)
    directory = os.path.dirname(first.path)
    first.close()
    location = _PublishAfterFetch(directory, lambda: _publish_local(groups, tmp_path, keep=0).close())
    table = OnlineFeatures(location, index=index, verify=verify)
    assert location.raced == 1 and table.version == 2  # the pruned version 1 was skipped for the new pointer
    assert table.get_features([{"user_id": 3}]) == [{"user_id": 3, "spend": 30.0}]
    # a file that is gone while the pointer still names it: a StoreError, never a raw duckdb error
    os.unlink(table.path)
    with pytest.raises(StoreError):
        OnlineFeatures.open(directory, index=index, verify=verify)


def test_corrupt_file_under_duckdb_index_is_a_store_error(tmp_path, spark):
    from pyspark.sql import functions as F

    store = OfflineStore(value=FeatureStoreFileOutput(path=str(tmp_path / "off")))
    fg = FeatureGroup("big", entity=Entity("e", ["k"]), materialization=Materialization(
        event_time_col="ts", offline_materialization=OfflineMaterialization(store=store)))
    fg.set_dataframe(spark.range(200_000).select(F.col("id").alias("k"), F.lit(dt.datetime(2024, 1, 1)).alias("ts"),
                                                 (F.col("id") * 1.5).alias("x"))).write()
    table = publish_online_table(ServingSource.from_feature_group(fg), "big", store_root=str(tmp_path / "on"))
    size = os.path.getsize(table.path)
    table.close()
    keys = [{"k": k} for k in range(200_000)]
    failures = []
    for step in range(2, 10):
        copy = tmp_path / f"corrupt{step}.duckdb"
        shutil.copy(table.path, copy)
        with open(copy, "r+b") as fh:  # a 64 KiB hole of garbage at 20%, 30%, ... 90% of the file
            fh.seek(size * step // 10)
            fh.write(os.urandom(64 << 10))
        try:
            served = OnlineFeatures.open(str(copy), verify=False, index="duckdb")
            served.get_features(keys)
        except StoreError as exc:  # a DefinitionError or a raw duckdb error fails the test
            failures.append(exc)
    assert failures  # the garbage was noticed, always as a StoreError (never DefinitionError or a duckdb error)
