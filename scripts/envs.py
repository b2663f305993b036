#!/usr/bin/env python3
"""Cached side environments the tests run in, built on first use and reused while their pins are unchanged.

Usage::

    python scripts/envs.py spark35      # prints the venv path, building it first if missing
    python scripts/envs.py --python dbr154

Environments (each ``<cache>/venv-<name>-<hash>``, the hash over everything that decides its contents):

``spark35``
    The Spark 3.5 line: pyspark 3.5 (latest patch) and delta-spark 3.3.2 plus the project's ``[test]``
    dependencies, pinned by ``constraints.txt`` with the overrides of ``constraints-spark35.txt``. The project
    itself is *not* installed (the venv is shared by checkouts): run it with ``PYTHONPATH=<checkout>``.
``dbr154``
    A Databricks Runtime 15.4-like Python: pyspark 3.5, pyarrow 14.0.1, pandas 1.5.3, numpy 1.26.4, nothing
    else. The install check (tests/test_runtime_install.py) runs ``pip install <checkout>`` into it.
``duckdelta``
    An independent Delta reader: DuckDB and its delta extension wheel (delta-kernel based, not delta-rs).

A venv is built in a temporary directory beside its final name and renamed when complete, so a half-built venv
is never used (always run it as ``<venv>/bin/python -m ...``: script shebangs keep the temporary path). The cache
root is ``$SEEKNAL_SPARK_CACHE`` or ``~/.cache/seeknal_spark``. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
SPARK35_PYSPARK = "pyspark==3.5.9"
DBR154_PINS = [SPARK35_PYSPARK, "pyarrow==14.0.1", "pandas==1.5.3", "numpy==1.26.4"]
DUCKDELTA_PINS = ["duckdb==1.5.5", "duckdb-extension-delta==1.5.5",  # the extension pins that duckdb exactly
                  "pytz==2026.6"]  # DuckDB returns TIMESTAMP WITH TIME ZONE values through pytz


class EnvBuildError(RuntimeError):
    """A cached environment could not be built."""


def cache_root() -> Path:
    """``$SEEKNAL_SPARK_CACHE`` or ``~/.cache/seeknal_spark``."""
    return Path(os.environ.get("SEEKNAL_SPARK_CACHE") or Path.home() / ".cache" / "seeknal_spark")


def _req_name(line: str) -> Optional[str]:
    line = line.split("#", 1)[0].strip()
    match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def merged_constraints(base: Path, override: Path) -> str:
    """``base`` with every package named in ``override`` replaced by the override's line."""
    overrides = {_req_name(l): l.strip() for l in override.read_text().splitlines() if _req_name(l)}
    kept = [l.strip() for l in base.read_text().splitlines() if _req_name(l) and _req_name(l) not in overrides]
    return "\n".join(kept + sorted(overrides.values())) + "\n"


def _spec(name: str) -> Dict[str, object]:
    """What decides a venv's contents: pip steps and any file text they use (hashed, then written)."""
    if name == "spark35":
        constraints = merged_constraints(REPO / "constraints.txt", REPO / "constraints-spark35.txt")
        return {"files": {"constraints.txt": constraints, "setup.cfg": (REPO / "setup.cfg").read_text()},
                "steps": [["-c", "{env}/constraints.txt", SPARK35_PYSPARK, "delta-spark==3.3.2", "{repo}[test]"]],
                "drop_project": True}
    if name == "dbr154":
        return {"files": {}, "steps": [DBR154_PINS], "drop_project": False}
    if name == "duckdelta":
        return {"files": {}, "steps": [DUCKDELTA_PINS], "drop_project": False}
    raise EnvBuildError(f"unknown environment {name!r}; known: spark35, dbr154, duckdelta")


def env_hash(name: str) -> str:
    """First 16 hex digits of the sha256 of the environment's spec and the Python minor version."""
    spec = _spec(name)
    text = json.dumps({"spec": spec, "python": list(sys.version_info[:2])}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def env_dir(name: str) -> Path:
    """Where the venv lives (it may not exist yet)."""
    return cache_root() / f"venv-{name}-{env_hash(name)}"


def ensure(name: str, log=sys.stderr) -> Path:
    """The venv directory of ``name``, built first when missing. Raises ``EnvBuildError`` if pip fails."""
    target = env_dir(name)
    if (target / "bin" / "python").exists():
        return target
    spec = _spec(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    start = time.monotonic()
    print(f"[envs] building {target.name} (first use; cached afterwards)", file=log, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
        py = str(tmp / "bin" / "python")
        for rel, text in spec["files"].items():
            (tmp / rel).write_text(text)
        _pip(py, ["install", "--quiet", "--upgrade", "pip"])
        for step in spec["steps"]:
            _pip(py, ["install", "--quiet"] + [a.format(env=tmp, repo=REPO) for a in step])
        if spec["drop_project"]:
            _pip(py, ["uninstall", "--quiet", "--yes", "seeknal_spark"])
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "bin" / "python").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"[envs] built {target.name} in {time.monotonic() - start:.0f} s", file=log, flush=True)
    return target


def _pip(py: str, args: List[str]) -> None:
    done = subprocess.run([py, "-m", "pip", "--disable-pip-version-check"] + args, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise EnvBuildError(f"pip {' '.join(args)} failed (exit {done.returncode}):\n{tail}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=["spark35", "dbr154", "duckdelta"])
    parser.add_argument("--python", action="store_true", help="print the venv's python instead of its directory")
    args = parser.parse_args(argv)
    try:
        path = ensure(args.name)
    except (EnvBuildError, subprocess.CalledProcessError) as exc:
        print(f"envs.py: {exc}", file=sys.stderr)
        return 1
    print(path / "bin" / "python" if args.python else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
