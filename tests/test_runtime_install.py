"""Installing the library into a Databricks-like runtime keeps the runtime's own packages and works there.

The runtime is a cached venv (scripts/envs.py ``dbr154``): pyspark 3.5, pyarrow 14.0.1, pandas 1.5.3 and
numpy 1.26.4, installed before the library. ``pip install <checkout>`` (no extras) must leave those four as they
were, and one write/read/point-in-time/serve round trip must run there, importing the installed package.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.venvs import envs_module, venv_python

REPO = Path(__file__).resolve().parents[1]
RUNTIME = ("pyspark", "pyarrow", "pandas", "numpy")
pytestmark = pytest.mark.runtime_install


def _versions(python: str) -> dict:
    code = ("import json, importlib.metadata as m; "
            f"print(json.dumps({{n: m.version(n) for n in {list(RUNTIME)!r}}}))")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory):
    python = venv_python("dbr154")
    before = _versions(python)
    pins = dict(p.split("==") for p in envs_module().DBR154_PINS)
    assert before == pins
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
                          capture_output=True, text=True, cwd=str(tmp_path_factory.mktemp("pip")))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return python, before


def test_install_leaves_the_runtime_packages_as_they_were(runtime_python):
    python, before = runtime_python
    assert _versions(python) == before
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_round_trip_runs_in_the_runtime(runtime_python, tmp_path):
    python, before = runtime_python
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_CONNECT_MODE_ENABLED")}
    env["SEEKNAL_CONF_DIR"] = str(REPO / "conf")
    done = subprocess.run([python, str(REPO / "tests" / "support" / "runtime_roundtrip.py"), str(tmp_path)],
                          capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-6000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["module"].startswith(str(Path(python).parents[1]))  # the installed package, not the checkout
    assert out["versions"] == before and out["spark"].startswith("3.5.")
    assert out["read"] == [[1, "2024-03-01T10:00:00+00:00", 1.5, "a"], [1, "2024-03-02T10:00:00+00:00", 2.5, "b"],
                           [2, "2024-03-01T12:00:00+00:00", 7.0, None], [2, "2024-03-02T12:00:00+00:00", 8.0, "z"]]
    # As of each label time, the latest row at or before it; none before the first row.
    assert out["trained"] == [[1, "2024-03-01T23:00:00+00:00", 0, 1.5, "a"],
                              [1, "2024-03-03T00:00:00+00:00", 1, 2.5, "b"],
                              [2, "2024-02-28T00:00:00+00:00", 1, None, None],
                              [2, "2024-03-01T13:00:00+00:00", 0, 7.0, None]]
    assert out["served"] == [{"user_id": 1, "amount": 2.5, "tier": "b"}, {"user_id": 2, "amount": 8.0, "tier": "z"},
                             {"user_id": 3, "amount": None, "tier": None}]
