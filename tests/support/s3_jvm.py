"""Spark children for S3 tests beyond the portable classic session: Delta-JVM sessions and Spark Connect.

A JVM holds one SparkContext and the test process's own session has neither Delta's jars nor hadoop-aws, so each
of these runs in a child Python (like :func:`tests.support.s3.run_with_s3_session`):

- ``kind="delta"``: a classic session with Delta's JVM jars *and* the hadoop-aws jars (``spark.jars`` of both
  ``scripts/jars.py`` profiles for the installed pyspark) plus Delta's SQL extension and catalog: the library
  takes its native write path (Spark's ``format("delta")``) on ``s3a://``;
- ``kind="connect"``: a classic session with the hadoop-aws jars (no Delta jars: the portable path) that also
  serves Spark Connect on a free loopback port; ``spark`` is the Connect client session (what Databricks
  serverless runs), ``classic`` the server's session.

Storage options travel as the JSON environment variable ``SEEKNAL_TEST_S3_OPTIONS`` (global ``OPTIONS``), never
on a command line. Missing Maven skips outside CI and fails in CI (the jar helpers decide).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import pytest

from tests.support.jvm import REPO, delta_session_conf
from tests.support.s3 import s3_jars

__all__ = ["s3_jvm_command", "run_s3_jvm", "result_of"]

_PREAMBLE = """\
import json, os, sys
sys.path.insert(0, {repo!r})
for _k, _v in {names!r}.items():
    globals()[_k] = _v
OPTIONS = json.loads(os.environ.get("SEEKNAL_TEST_S3_OPTIONS") or "{{}}")
from seeknal_spark.session import local_session
_settings = {{"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}}
_settings.update({conf!r})
"""

_DELTA = """\
spark = local_session(app_name="seeknal_spark_s3_delta", extra=_settings)
"""

_CONNECT = """\
_settings["spark.connect.grpc.binding.port"] = {port!r}
classic = local_session(app_name="seeknal_spark_s3_connect", extra=_settings)
classic._jvm.org.apache.spark.sql.connect.service.SparkConnectService.start(classic._jsc.sc())
os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # pyspark.sql.functions then builds Connect columns
from pyspark.sql.connect.session import SparkSession as _ConnectSession
spark = _ConnectSession.builder.remote("sc://127.0.0.1:{port}").getOrCreate()
spark.conf.set("spark.sql.session.timeZone", "UTC")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_conf(kind: str) -> Dict[str, str]:
    jars = s3_jars()
    if kind == "connect":
        return {"spark.jars": ",".join(jars)}
    if kind != "delta":
        raise ValueError(f"kind must be 'delta' or 'connect', not {kind!r}")
    conf = delta_session_conf()
    conf["spark.jars"] = ",".join([*conf["spark.jars"].split(","), *jars])
    return conf


def s3_jvm_command(script: str, kind: str = "delta", env: Optional[Mapping[str, str]] = None,
                   options: Optional[Mapping[str, str]] = None) -> Tuple[List[str], Dict[str, str]]:
    """(argv, environment) of a child running ``script`` with ``spark`` bound as ``kind`` says (for Popen)."""
    if kind == "connect":
        import pyspark

        if int(pyspark.__version__.split(".")[0]) < 4:
            pytest.skip(f"pyspark {pyspark.__version__} ships no Spark Connect server jar")
    names = dict(env or {})
    body = (_DELTA if kind == "delta" else _CONNECT.format(port=str(_free_port())))
    code = _PREAMBLE.format(repo=str(REPO), names=names, conf=_session_conf(kind)) + body + textwrap.dedent(script)
    child_env = {**os.environ, **names, "SEEKNAL_TEST_S3_OPTIONS": json.dumps(dict(options or {})),
                 "SEEKNAL_CONF_DIR": os.environ.get("SEEKNAL_CONF_DIR", str(REPO / "conf")), "TZ": "UTC"}
    child_env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    child_env.pop("SPARK_REMOTE", None)
    return [sys.executable, "-c", code], child_env


def run_s3_jvm(script: str, kind: str = "delta", env: Optional[Mapping[str, str]] = None,
               options: Optional[Mapping[str, str]] = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run :func:`s3_jvm_command`'s child to the end; a failing child fails the test with its output."""
    argv, child_env = s3_jvm_command(script, kind, env, options)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=child_env, cwd=str(REPO))
    if done.returncode != 0:
        pytest.fail(f"S3 {kind} child failed (exit {done.returncode}):\n--- stdout\n{done.stdout[-4000:]}"
                    f"\n--- stderr\n{done.stderr[-8000:]}")
    return done


def result_of(stdout: str) -> dict:
    """The JSON a child printed last as ``RESULT {...}``."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def wait_for(what: Any, procs: Sequence[subprocess.Popen], timeout: float = 600) -> None:
    """Wait until ``what`` (a path, or an event with ``is_set``) exists or is set; fail when a child exits first."""
    start = time.time()
    while not (what.is_set() if hasattr(what, "is_set") else what.exists()):
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, f"a writer exited early (exit {dead[0].returncode}) before {what}"
        assert time.time() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.2)


def reap(procs: Sequence[subprocess.Popen], logs: Sequence[IO[Any]]) -> None:
    """Kill the children still running and close their log files (a test's ``finally``)."""
    import signal

    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    for log in logs:
        log.close()
