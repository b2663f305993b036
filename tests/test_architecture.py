"""Structural rules of the package, checked on its source (imports inside functions count too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "seeknal_spark"


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_private_name_is_imported_across_modules():
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("seeknal_spark"):
                offenders += [f"{path.relative_to(PACKAGE)}:{node.lineno} {node.module}.{a.name}"
                              for a in node.names if a.name.startswith("_") and a.name != "__version__"]
    assert offenders == []


def test_no_library_module_is_over_400_lines():
    long = [f"{p.relative_to(PACKAGE)}: {n}" for p in _modules() if (n := len(p.read_text().splitlines())) > 400]
    assert long == []


def test_the_spark_free_layers_never_import_pyspark():
    """Vocabulary, table metadata read by delta-rs, and serving are imported by Spark-free processes."""
    spark_free = ["definitions.py", "errors.py", "timeutil.py", "typenames.py", "offline/state.py",
                  "offline/metadata.py", "offline/metadata_deltars.py", "offline/delta_log.py", "offline/layout.py",
                  "offline/cleanup.py", "offline/labels.py", "offline/provided.py", "storage.py",
                  "sqltypes.py", "atomic.py", "version.py"] + [
        str(p.relative_to(PACKAGE)) for p in (PACKAGE / "vocabulary").glob("*.py")] + [
        str(p.relative_to(PACKAGE)) for p in (PACKAGE / "serving").glob("*.py")]
    offenders = []
    for rel in spark_free:
        path = PACKAGE / rel
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{rel}:{node.lineno} {n}" for n in names if n.split(".")[0] == "pyspark"]
    assert offenders == []


def test_the_import_contracts_hold():
    """.importlinter: the layer order, serving and the vocabulary never importing pyspark or Great Expectations
    (directly or through other modules), no import cycles between sibling modules."""
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), "import-linter is missing: install the dev extra (pip install -e '.[dev]')"
    run = subprocess.run([str(lint), "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
