"""The docs cannot drift from the code: every ```python block of docs/*.md runs, in order, one namespace per file.

The preamble is only what a reader's environment provides: an active Spark session (the test session; the docs
find it with ``get_spark()``), the offline and online store roots (``SEEKNAL_OFFLINE_STORE`` /
``SEEKNAL_ONLINE_STORE``, as a deployment sets them) and a scratch working directory for the files the guides
write (models, manifests, Parquet). The data are the package's generators (``seeknal_spark.examples.retail``).

The README's Python examples use the reader's own DataFrames; ``tests/test_readme.py`` runs them with a preamble
that provides those, and here they are also compiled and their imports from seeknal_spark checked.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path):
    """(first line number, code) of every ```python block of a markdown file, in order."""
    text = path.read_text()
    return [(text[:m.start()].count("\n") + 2, m.group(1)) for m in _BLOCK.finditer(text)]


def _run_blocks(path: Path) -> dict:
    namespace = {"__name__": f"docs.{path.stem}"}
    for line, code in python_blocks(path):
        # Pad with newlines so tracebacks point at the markdown line of the failing statement.
        compiled = compile("\n" * (line - 1) + code, str(path), "exec")
        exec(compiled, namespace)  # noqa: S102 - the docs' own code blocks
    return namespace


@pytest.fixture
def reader_env(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("SEEKNAL_OFFLINE_STORE", str(tmp_path / "store" / "offline"))
    monkeypatch.setenv("SEEKNAL_ONLINE_STORE", str(tmp_path / "store" / "online"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def test_docs_exist_and_hold_code():
    names = {p.name for p in DOCS}
    assert {"training-to-serving.md", "training-serving-parity.md", "reference.md"} <= names
    for path in DOCS:
        assert python_blocks(path), f"{path.name} has no python block"


def test_training_to_serving_guide_runs(reader_env):
    ns = _run_blocks(REPO / "docs" / "training-to-serving.md")
    assert 0.0 <= ns["auc"] <= 1.0
    assert list(ns["training_df"].columns[:3]) == ["user_id", "label_time", "will_order_big"]
    assert len(ns["results"]) == 4 and all(0.0 <= p <= 1.0 for p in ns["results"]["probability"])
    assert ns["features"][-1]["user_id"] == 9999 and ns["features"][-1]["order_count"] is None
    assert not ns["report"].has_skew and ns["report"].keys_checked == 100  # online == point-in-time offline
    assert [v.label for v in ns["user_features"].versions()] == ["2024-03"]
    assert (reader_env / "work" / "models" / "churn" / "train.json").is_file()


def test_training_serving_parity_guide_runs(reader_env):
    ns = _run_blocks(REPO / "docs" / "training-serving-parity.md")
    assert ns["again"].equals(ns["training_df"])            # the v1 training set survives the v2 write
    assert ns["changed"] > 0                               # ... which the latest version does see
    assert len(ns["training_data"]) == len(ns["label_df"])  # the guide's merge pairs every label
    assert [v.label for v in ns["fg"].versions()] == ["v1", "v2"]
    assert ns["online_table"].metadata["sources"][0]["label"] == "v1"
    assert ns["lookup"]["label"] == "v1"
    assert ns["prediction"] in (0, 1) and 0.0 <= ns["probability"] <= 1.0


def test_reference_runs(reader_env):
    ns = _run_blocks(REPO / "docs" / "reference.md")
    assert ns["write"]["label"] == "v1" and ns["write"]["run_id"] == "example-run"
    assert ns["state"]["watermarks"] == ["2024-03-01", "2024-03-02"]


def test_readme_examples_compile_and_import_real_names():
    import seeknal_spark

    readme = REPO / "README.md"
    text = readme.read_text()
    for doc in ("docs/training-to-serving.md", "docs/training-serving-parity.md", "docs/reference.md"):
        assert doc in text, f"README does not link {doc}"
    blocks = python_blocks(readme)
    assert blocks
    for line, code in blocks:
        tree = ast.parse("\n" * (line - 1) + code, str(readme))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seeknal_spark"):
                module = __import__(node.module, fromlist=["_"])
                missing = [a.name for a in node.names if not hasattr(module, a.name)]
                assert not missing, f"README line {node.lineno}: {node.module} has no {missing}"
    assert hasattr(seeknal_spark.FeatureGroup, "versions")
