"""A real S3 endpoint on loopback (moto's server) and Spark sessions that can reach it (hadoop-aws jars).

::

    from tests.support.s3 import make_bucket, run_with_s3_session, s3_endpoint  # s3_endpoint: a fixture

    def test_x(s3_endpoint):
        bucket = make_bucket(s3_endpoint, "warehouse")
        done = run_with_s3_session('''
            print(spark.range(3).count())
        ''', env={"ROOT": f"s3://{bucket}/fs"}, options=s3_endpoint.options)

``s3_endpoint`` is session-scoped: one ``ThreadedMotoServer(ip_address="127.0.0.1", port=0)`` for the whole run.
A process holds one SparkContext and the main test process's session has no hadoop-aws, so Spark-on-S3 code runs
in a child process whose classic session loads the jars of ``scripts/jars.py``'s S3 profile for the installed
pyspark (``S3_PROFILES``: ``s3-hadoop350`` for 4.2, ``s3-hadoop334`` for 3.5). The storage options reach the
child as the JSON environment variable ``SEEKNAL_TEST_S3_OPTIONS`` (global ``OPTIONS``), never on a command line.

When Maven is missing or cannot resolve the jars, tests skip outside CI (with the reason) and fail in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import pytest

from tests.support.jvm import REPO, jars_module, pyspark_line

__all__ = ["S3Endpoint", "s3_endpoint", "make_bucket", "s3_jars", "s3_session", "run_with_s3_session",
           "s3_child_command", "all_objects", "TEST_SECRET"]

# Distinctive credentials: tests grep every artifact for the secret.
TEST_KEY_ID = "AKIASEEKNALTESTKEY01"
TEST_SECRET = "sk-SEEKNAL-s3cr3t-9f27c1d4e8b6"


@dataclass(frozen=True)
class S3Endpoint:
    """The loopback S3 server: its URL and the delta-rs storage options that reach it."""

    url: str

    @property
    def options(self) -> Dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": TEST_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": TEST_SECRET, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=TEST_KEY_ID,
                            aws_secret_access_key=TEST_SECRET, region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_endpoint():  # type: ignore[no-untyped-def]
    """A moto S3 server on 127.0.0.1 (random port) for the whole test session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto[server] is in the test extra
        if os.environ.get("CI"):
            pytest.fail(f"moto[server] missing in CI: {exc}")
        pytest.skip(f"moto[server] not installed outside CI (pip install -e .[test]): {exc}")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Endpoint(f"http://{host}:{port}")
    finally:
        server.stop()


def make_bucket(endpoint: S3Endpoint, prefix: str = "bkt") -> str:
    """Create a fresh bucket (a unique name starting with ``prefix``) and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}".lower()
    endpoint.client().create_bucket(Bucket=name)
    return name


def all_objects(endpoint: S3Endpoint, bucket: str) -> Dict[str, bytes]:
    """Every object of ``bucket``: key -> bytes."""
    client = endpoint.client()
    out: Dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", ()):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def s3_jars(spark_line: Optional[str] = None) -> List[str]:
    """hadoop-aws + AWS SDK jars for a Spark line (default: installed pyspark's), resolved with Maven."""
    jars = jars_module()
    line = spark_line or pyspark_line()
    try:
        profile = jars.S3_PROFILES[line]
        return jars.resolve(profile)
    except (KeyError, jars.JarResolutionError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"hadoop-aws jars for Spark {line} could not be resolved in CI: {exc}")
        pytest.skip(f"hadoop-aws jars for Spark {line} unavailable outside CI (they need Maven): {exc}")


def s3_session(jars: List[str], extra: Optional[Mapping[str, str]] = None):  # type: ignore[no-untyped-def]
    """A classic local session whose JVM has the hadoop-aws jars. Only in a process with no SparkContext yet.

    No ``fs.s3a.*`` setting is made here: the library passes its S3 options per read/write.
    """
    from seeknal_spark.session import local_session

    settings = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2", **(extra or {}),
                "spark.jars": ",".join(jars)}
    return local_session(app_name="seeknal_spark_s3", extra=settings)


_PREAMBLE = """\
import json, os, sys
sys.path.insert(0, {repo!r})
for _k, _v in {names!r}.items():
    globals()[_k] = _v
OPTIONS = json.loads(os.environ.get("SEEKNAL_TEST_S3_OPTIONS") or "{{}}")
from tests.support.s3 import s3_session
spark = s3_session({jars!r})
"""


def s3_child_command(script: str, env: Optional[Mapping[str, str]] = None,
                     options: Optional[Mapping[str, str]] = None, spark_line: Optional[str] = None,
                     python: Optional[str] = None) -> Tuple[List[str], Dict[str, str]]:
    """(argv, environment) of the child :func:`run_with_s3_session` runs (for ``subprocess.Popen``)."""
    jars = s3_jars(spark_line)
    names = dict(env or {})
    code = _PREAMBLE.format(repo=str(REPO), names=names, jars=jars) + textwrap.dedent(script)
    child_env = {**os.environ, **names, "SEEKNAL_TEST_S3_OPTIONS": json.dumps(dict(options or {})),
                 "SEEKNAL_CONF_DIR": os.environ.get("SEEKNAL_CONF_DIR", str(REPO / "conf"))}
    child_env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    child_env.pop("SPARK_REMOTE", None)
    return [python or sys.executable, "-c", code], child_env


def run_with_s3_session(script: str, env: Optional[Mapping[str, str]] = None,
                        options: Optional[Mapping[str, str]] = None, spark_line: Optional[str] = None,
                        timeout: float = 900, check: bool = True,
                        python: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run ``script`` in a child Python with ``spark`` bound to a classic session that has hadoop-aws.

    ``env`` entries become environment variables and globals of the script; ``options`` (storage options)
    become the global ``OPTIONS``. With ``check`` a failing child fails the test, showing its output.
    """
    argv, child_env = s3_child_command(script, env, options, spark_line, python)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=child_env, cwd=str(REPO))
    if check and done.returncode != 0:
        pytest.fail(f"S3 Spark child failed (exit {done.returncode}):\n--- stdout\n{done.stdout[-4000:]}"
                    f"\n--- stderr\n{done.stderr[-8000:]}")
    return done
