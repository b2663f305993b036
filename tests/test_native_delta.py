"""The native (Delta-JVM) path's tests, run in their own pytest process with Delta Lake's jars in the session.

This process' JVM was started without Delta's jars (one JVM per process), so tests/native/ runs in a child pytest
whose session loads them (resolved with Maven by scripts/jars.py, see tests/support/jvm.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_native_delta_contract_in_a_delta_jvm_session():
    from tests.support.jvm import delta_jars

    delta_jars()  # resolved here first: outside CI a missing Maven skips (saying why), in CI it fails
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(REPO / "tests" / "native" / "delta_contract.py")],
                          cwd=REPO, capture_output=True, text=True, timeout=1800, env=env)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, tail
