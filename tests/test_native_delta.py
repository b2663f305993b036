"""The native (Delta-JVM) path's tests, run in their own pytest process with Delta Lake's jars in the session.

This process' JVM was started without Delta's jars (one JVM per process), so tests/native/ runs in a child pytest
whose session loads them (resolved with Maven into ~/.cache/seeknal_spark, see tests/native/jars.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_native_delta_contract_in_a_delta_jvm_session():
    if shutil.which("mvn") is None and not os.environ.get("CI"):
        pytest.skip("mvn is not on PATH: Delta's jars cannot be resolved here (CI has Maven and runs this)")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(REPO / "tests" / "native" / "delta_contract.py")],
                          cwd=REPO, capture_output=True, text=True, timeout=1800, env={**os.environ})
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, tail
