"""The writer lease rule between native (Delta JVM) and portable (delta-rs) writers of an S3 table, on the loopback
S3 endpoint (moto's server, tests/support/s3.py) with real boto3 requests; no Spark here (the real-process race of
the two write paths is tests/test_s3_jvm_mixed.py).

- a portable commit marker held: a native writer that takes the lease waits until the marker is released;
- a native writer's lease held: a portable commit (and the portable write's early check) refuses, naming the table;
- portable writers hold their markers at the same time (they never wait for each other);
- a marker whose writer died is stale after ``ttl`` (the server's clock) and removed; a marker that stays fresh
  longer than ``ttl`` makes the native writer give up with the same error, releasing its lease.
"""

from __future__ import annotations

import threading
import time

import pytest

from seeknal_spark.errors import ConcurrentWriteError
from seeknal_spark.offline.writer_lease import (COMMITS_DIR, LEASE_NAME, PortableCommit, WriterLease,
                                                refuse_if_native_writer)
from tests.support.s3 import all_objects, make_bucket


def _keys(endpoint, bucket):
    return sorted(all_objects(endpoint, bucket))


def test_native_writer_waits_for_a_portable_commit_then_portable_commits_refuse(s3_endpoint):
    bucket = make_bucket(s3_endpoint, "lease")
    uri, opts = f"s3://{bucket}/fs/default/g", s3_endpoint.options
    events = []
    marker = PortableCommit(uri, opts, ttl=30).acquire()
    other = PortableCommit(uri, opts, ttl=30).acquire()      # portable writers do not exclude each other
    assert len([k for k in _keys(s3_endpoint, bucket) if f"/{COMMITS_DIR}/" in k]) == 2
    other.release()

    def finish_commit():
        time.sleep(1.5)
        events.append("portable commit done")
        marker.release()

    threading.Thread(target=finish_commit).start()
    with WriterLease(uri, opts, ttl=30) as lease:            # waits for the running portable commit
        events.append("native lease taken")
        lease.ensure_held()
        assert _keys(s3_endpoint, bucket) == [f"fs/default/g/{LEASE_NAME}"]
        for refuse in (lambda: PortableCommit(uri, opts, ttl=30).acquire(),
                       lambda: refuse_if_native_writer(uri, opts)):
            with pytest.raises(ConcurrentWriteError) as err:
                refuse()
            assert uri in str(err.value) and "Re-run this write when it is done" in str(err.value)
        assert _keys(s3_endpoint, bucket) == [f"fs/default/g/{LEASE_NAME}"]   # the refused marker is gone
    assert events == ["portable commit done", "native lease taken"]
    assert _keys(s3_endpoint, bucket) == []
    with PortableCommit(uri, opts, ttl=30) as held:        # the lease is released: portable commits go on
        held.ensure_held()
    refuse_if_native_writer(uri, opts)


def test_stale_marker_is_removed_and_a_marker_held_too_long_makes_the_native_writer_give_up(s3_endpoint):
    bucket = make_bucket(s3_endpoint, "lease")
    uri, opts = f"s3://{bucket}/t", s3_endpoint.options
    dead = f"t/{COMMITS_DIR}/dead-writer.json"            # a portable writer killed mid-commit left this
    s3_endpoint.client().put_object(Bucket=bucket, Key=dead, Body=b"{}")
    time.sleep(2.2)
    with WriterLease(uri, opts, ttl=1):                   # stale by the server's clock: ignored and removed
        assert _keys(s3_endpoint, bucket) == [f"t/{LEASE_NAME}"]

    with PortableCommit(uri, opts, ttl=1):               # heartbeating: stays fresh
        with pytest.raises(ConcurrentWriteError) as err:
            WriterLease(uri, opts, ttl=1).acquire()
        assert uri in str(err.value) and "portable writers kept committing" in str(err.value)
        assert f"t/{LEASE_NAME}" not in _keys(s3_endpoint, bucket)   # the native writer released its lease
