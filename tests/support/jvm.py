"""Delta Lake's JVM side for tests: jars resolved with Maven (scripts/jars.py) and sessions that load them.

A JVM process holds one SparkContext, and the main test process already runs the portable classic session
(tests/conftest.py), so a Delta-JVM session runs in a child process::

    from tests.support.jvm import run_with_delta_session

    done = run_with_delta_session('''
        spark.range(3).write.format("delta").save(OUT)
        print(spark.read.format("delta").load(OUT).count())
    ''', env={"OUT": str(tmp_path / "t")})      # names in env become Python globals of the script
    assert done.stdout.strip().splitlines()[-1] == "3"

Inside such a child (or any fresh process) ``delta_session()`` builds the session itself:
``local_session(extra=delta_session_conf(line))`` i.e. the library's local settings plus
``spark.jars`` = the Delta jars of the installed pyspark's line, ``spark.sql.extensions`` =
``io.delta.sql.DeltaSparkSessionExtension`` and ``spark.sql.catalog.spark_catalog`` =
``org.apache.spark.sql.delta.catalog.DeltaCatalog``.

When Maven is missing or cannot resolve, tests skip outside CI (with the reason) and fail in CI.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Mapping, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
DELTA_SQL_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

__all__ = ["delta_jars", "delta_session_conf", "delta_session", "run_with_delta_session", "pyspark_line",
           "jars_module"]


def jars_module() -> ModuleType:
    """``scripts/jars.py`` imported as a module (it is a script, not part of the package)."""
    name = "seeknal_spark_scripts_jars"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "jars.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def pyspark_line() -> str:
    """The installed pyspark's ``major.minor`` (``"4.2"``)."""
    import pyspark

    return jars_module().spark_line(pyspark.__version__)


def delta_jars(spark_line: Optional[str] = None) -> List[str]:
    """The Delta jars for a Spark line (``"3.5"``/``"4.2"``, default: the installed pyspark's), via Maven.

    Skips the calling test outside CI when Maven is missing or fails; fails it in CI.
    """
    jars = jars_module()
    try:
        return jars.delta_jars(spark_line or pyspark_line())
    except jars.JarResolutionError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Delta jars could not be resolved in CI: {exc}")
        pytest.skip(f"Delta jars unavailable outside CI (the Delta-JVM tests need Maven): {exc}")


def delta_session_conf(spark_line: Optional[str] = None) -> Dict[str, str]:
    """``spark.jars`` + Delta's SQL extension and catalog: the settings of a classic Delta-JVM session."""
    return {"spark.jars": ",".join(delta_jars(spark_line)),
            "spark.sql.extensions": DELTA_SQL_EXTENSION,
            "spark.sql.catalog.spark_catalog": DELTA_CATALOG}


def delta_session(spark_line: Optional[str] = None, extra: Optional[Mapping[str, str]] = None):
    """A classic local session with Delta's JVM side. Only in a process that has no SparkContext yet."""
    from seeknal_spark.session import local_session

    settings = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2", **(extra or {})}
    settings.update(delta_session_conf(spark_line))
    return local_session(app_name="seeknal_spark_delta_jvm", extra=settings)


_PREAMBLE = """\
import os, sys
sys.path.insert(0, {repo!r})
for _k, _v in {names!r}.items():
    globals()[_k] = _v
from tests.support.jvm import delta_session
spark = delta_session({line!r})
"""


def run_with_delta_session(script: str, env: Optional[Mapping[str, str]] = None, spark_line: Optional[str] = None,
                           python: Optional[str] = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``script`` in a child Python with ``spark`` bound to a Delta-JVM session; fail the test if it fails.

    ``env`` entries become both environment variables and globals of the script. Jars are resolved in the
    parent first, so a missing Maven skips/fails the test here rather than in the child.
    """
    delta_jars(spark_line)  # resolve (or skip/fail) in the test process
    names = dict(env or {})
    code = _PREAMBLE.format(repo=str(REPO), names=names, line=spark_line) + textwrap.dedent(script)
    child_env = {**os.environ, **names, "SEEKNAL_CONF_DIR": os.environ.get("SEEKNAL_CONF_DIR", str(REPO / "conf"))}
    child_env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    child_env.pop("SPARK_REMOTE", None)
    done = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=child_env, cwd=str(REPO))
    if done.returncode != 0:
        pytest.fail(f"Delta-JVM child failed (exit {done.returncode}):\n--- stdout\n{done.stdout[-4000:]}"
                    f"\n--- stderr\n{done.stderr[-8000:]}")
    return done
