"""Cached side environments for tests (built by scripts/envs.py on first use; see its docstring).

``cached_venv(name)`` returns the venv directory; if it cannot be built the calling test skips outside CI (with
the reason) and fails in CI.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]

__all__ = ["cached_venv", "envs_module", "venv_python"]


def envs_module() -> ModuleType:
    """``scripts/envs.py`` imported as a module."""
    name = "seeknal_spark_scripts_envs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "envs.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def cached_venv(name: str) -> Path:
    """The cached venv ``name`` (``spark35``, ``dbr154``, ``duckdelta``), built first when missing."""
    envs = envs_module()
    try:
        return envs.ensure(name)
    except Exception as exc:  # pip/venv failures of any kind: the environment is unavailable
        if os.environ.get("CI"):
            pytest.fail(f"cached environment {name} could not be built in CI: {exc}")
        pytest.skip(f"cached environment {name} unavailable outside CI (needs PyPI access): {exc}")


def venv_python(name: str) -> str:
    """The python of cached venv ``name``."""
    return str(cached_venv(name) / "bin" / "python")
