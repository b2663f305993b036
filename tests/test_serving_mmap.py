"""The memory-mapped online index (index="mmap") serves exactly what the in-process memory index serves.

The sidecar is built once per published version and shared: a second process maps the same file without
rebuilding it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest

from seeknal_spark import Entity, FeatureGroup, Materialization, OfflineMaterialization
from seeknal_spark.errors import DefinitionError
from seeknal_spark.serving import OnlineFeatures, ServingSource, publish_online_table
from seeknal_spark.serving.mmap_index import sidecar_path
from test_serving import KEYS, lookup, offline, oracle, spend_source, t  # noqa: F401  (module fixture)

UTC = dt.timezone.utc


@pytest.mark.parametrize("as_of", [t(0, 12), t(1, 12), t(2, 10), t(5)])
def test_mmap_index_serves_what_memory_serves(offline, tmp_path, as_of):  # noqa: F811
    root = str(tmp_path)
    mapped = publish_online_table([spend_source(offline)], "spend", as_of=as_of, store_root=root, index="mmap")
    assert os.path.isfile(sidecar_path(mapped.path))
    mem = OnlineFeatures.open("spend", store_root=root)
    for keys in (KEYS, KEYS * 3, [5, 1, 6, 1], [4], [999, 1]):
        assert lookup(mapped, keys) == lookup(mem, keys)
        assert lookup(mapped, keys, feature_names=["tier", "amount"]) == \
            lookup(mem, keys, feature_names=["tier", "amount"])
    assert lookup(mapped) == oracle(as_of)
    got = lookup(mapped)
    assert [type(r["orders"]) for r in got] == [type(r["orders"]) for r in lookup(mem)]  # ints stay ints
    with pytest.raises(DefinitionError, match="stored as BIGINT .* str '1'"):
        mapped.get_features(keys=[{"user_id": "1"}])
    assert mapped.get_features(keys=[{"user_id": None}])[0]["amount"] is None


def test_mmap_string_composite_keys_and_types(offline, tmp_path, spark):  # noqa: F811
    store = offline["spend"].materialization.offline_materialization.store
    mat = Materialization(event_time_col="ts", offline_materialization=OfflineMaterialization(store=store))
    fg = FeatureGroup("acct_kinds", entity=Entity(name="acct", join_keys=["acct"]), materialization=mat,
                      project="shop")
    rows = [(f"a{n}" if n % 3 else f"é{n}", dt.datetime(2024, 3, 1, n % 24, tzinfo=UTC),
             None if n % 4 == 0 else n * 0.5, n % 2 == 0, None if n % 5 == 0 else f"s{n}",
             dt.date(2024, 1, 1 + n % 28), n) for n in range(40)]
    fg.set_dataframe(spark.createDataFrame(
        rows, "acct string, ts timestamp, score double, flag boolean, label string, day date, n int")).write()
    sources = [ServingSource.from_feature_group(fg), ServingSource.from_feature_group(offline["store"]),
               spend_source(offline, features=["amount"])]
    root = str(tmp_path)
    mapped = publish_online_table(sources, "mixed", as_of=t(5), store_root=root, index="mmap")
    mem = OnlineFeatures.open("mixed", store_root=root)
    keys = [{"acct": r[0], "store_id": s, "region": g, "user_id": u}
            for r, (s, g), u in zip(rows + [("zz",)] * 3, [("s1", "eu"), ("s1", "us"), ("s2", "eu")] * 15,
                                    KEYS * 8)]
    assert mapped.get_features(keys) == mem.get_features(keys)
    assert mapped.get_features(keys[:1]) == mem.get_features(keys[:1])
    assert mapped.get_features(keys[3:4], feature_names=["label", "day"]) == \
        mem.get_features(keys[3:4], feature_names=["label", "day"])
    assert any(r["score"] is None for r in mapped.get_features(keys))
    assert mapped.get_features([{"acct": "é3", "store_id": "s1", "region": "eu", "user_id": 1}])[0]["n"] == 3


def test_second_process_maps_the_same_sidecar_without_rebuilding(offline, tmp_path):  # noqa: F811
    root = str(tmp_path)
    first = publish_online_table([spend_source(offline)], "spend", as_of=t(5), store_root=root, index="mmap")
    side = sidecar_path(first.path)
    before = os.stat(side)
    code = textwrap.dedent(f"""
        from seeknal_spark.serving import OnlineFeatures
        table = OnlineFeatures.open("spend", store_root={root!r}, index="mmap")
        print(table.get_features(keys=[{{"user_id": 1}}, {{"user_id": 3}}]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == repr(lookup(first, [1, 3]))
    after = os.stat(side)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # a stale or damaged sidecar is rebuilt, never served
    with open(side + ".bad", "wb") as fh:  # replaced, not truncated in place: `first` keeps its mapping
        fh.write(b"not an index")
    os.replace(side + ".bad", side)
    again = OnlineFeatures.open("spend", store_root=root, index="mmap")
    assert lookup(again) == lookup(first) == oracle(t(5))
    # republish: refresh() maps the new version's own sidecar
    publish_online_table([spend_source(offline)], "spend", as_of=t(1, 12), store_root=root)
    assert again.refresh() and lookup(again) == oracle(t(1, 12))
    assert os.path.isfile(sidecar_path(again.path))
