"""A native (Delta JVM) writer and a portable (delta-rs) writer on one S3 table at the same time: no lost commit.

Delta's default S3 LogStore commits with a check followed by an unconditional PUT, so a portable commit landing
in between would be overwritten. Real processes on the loopback S3 endpoint (tests/support/s3.py): the native
writer is a child with Delta's jars and hadoop-aws (tests/support/s3_jvm.py) that reaches S3 through a holding
proxy (tests/support/s3_hold.py), which keeps its commit PUT on the wire while the portable writer (a child with
hadoop-aws only) tries to commit. The table must hold exactly the writes reported as written, each once (an
independent reader, DuckDB's delta extension, against a plain-Python oracle).
"""

from __future__ import annotations

import subprocess

from tests.support.independent import read_delta
from tests.support.jvm import REPO
from tests.support.s3 import all_objects, make_bucket, s3_child_command
from tests.support.s3_hold import HoldingProxy
from tests.support.s3_jvm import reap, result_of, s3_jvm_command, wait_for
from tests.test_s3_jvm import _ROLE, _download

_PORTABLE = _ROLE + '''
from seeknal_spark.session import has_delta_jvm
out["native_path"] = has_delta_jvm(spark)
write(1)                                        # creates the table (portable)
def hold(staged):                               # staged against version 0; commit when the test says so
    mark("p_staged")
    wait("p_go")
try:
    write(2, hold)                              # the native writer's commit PUT is held right now
    out["during_native_commit"] = "written"
except ConcurrentWriteError as exc:
    out["during_native_commit"] = f"ConcurrentWriteError: {exc}"
mark("p_first_done")
wait("n_done")
out["after_native"] = attempt(4)
print("RESULT " + json.dumps(out), flush=True)
'''

_NATIVE = _ROLE + '''
from seeknal_spark.session import has_delta_jvm
out["native_path"] = has_delta_jvm(spark)
# the test holds this writer's commit PUT for a few seconds: no SDK request timeout may fire meanwhile
spark.sparkContext._jsc.hadoopConfiguration().set("fs.s3a.connection.request.timeout", "900s")
wait("p_staged")
out["native"] = attempt(3)
mark("n_done")
print("RESULT " + json.dumps(out), flush=True)
'''


def _row(user: int):
    return [user, f"2024-03-01T{user:02d}:00:00", user]


def test_native_and_portable_writers_on_one_s3_table_lose_no_commit(s3_endpoint, tmp_path):
    bucket = make_bucket(s3_endpoint, "mixed")
    env = {"BUCKET": bucket, "DIR": str(tmp_path)}
    table_uri = f"s3://{bucket}/fs/default/g"
    logs, procs = [], []
    with HoldingProxy(s3_endpoint.url, rb"PUT [^ ]*/_delta_log/\d{20}\.json ") as proxy:
        try:
            native_options = {**s3_endpoint.options, "AWS_ENDPOINT_URL": proxy.url}
            for name, (argv, child_env) in (
                    ("portable", s3_child_command(_PORTABLE, env=env, options=s3_endpoint.options)),
                    ("native", s3_jvm_command(_NATIVE, "delta", env=env, options=native_options))):
                logs.append(open(tmp_path / f"{name}.log", "w"))
                procs.append(subprocess.Popen(argv, env=child_env, stdout=logs[-1], stderr=subprocess.STDOUT,
                                              text=True, cwd=str(REPO)))
            portable, native = procs
            wait_for(proxy.held, procs)                 # the native commit checked its version and is on the wire
            (tmp_path / "p_go").write_text("x")           # the portable writer commits now
            wait_for(tmp_path / "p_first_done", procs)
            proxy.release()                              # the native commit's PUT reaches S3
            for name, proc in (("portable", portable), ("native", native)):
                assert proc.wait(timeout=600) == 0, (tmp_path / f"{name}.log").read_text()[-6000:]
        finally:
            reap(procs, logs)
    port = result_of((tmp_path / "portable.log").read_text())
    nat = result_of((tmp_path / "native.log").read_text())
    assert (port["native_path"], nat["native_path"]) == (False, True)

    # the table holds exactly the writes reported as written, each once (plain-Python oracle, independent reader)
    written = [1] + [u for u, result in ((2, port["during_native_commit"]), (3, nat["native"]),
                                         (4, port["after_native"])) if result == "written"]
    copy = _download(s3_endpoint, bucket, "fs/default/g", tmp_path / "copy")
    stored = sorted([r["user"], r["ts"][:19], r["v"]] for r in read_delta(str(copy)))
    assert stored == sorted(_row(u) for u in written), f"stored users {[r[0] for r in stored]}, written {written}"

    # the portable writer refused while the native writer held the table, naming it and what to do
    refused = port["during_native_commit"]
    assert refused.startswith("ConcurrentWriteError") and table_uri in refused, refused
    assert "Re-run this write when it is done" in refused and "Nothing was written" in refused
    assert nat["native"] == "written" and port["after_native"] == "written"
    left = [k for k in all_objects(s3_endpoint, bucket) if "_seeknal_" in k]
    assert left == []                                    # the lease and every commit marker were released
