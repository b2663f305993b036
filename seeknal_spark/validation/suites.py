"""Expectation suites: from Great Expectations objects, plain dicts, or JSON/YAML files in ``conf/``.

A suite is kept as a :class:`SuiteSpec`: a name and a list of expectation configurations in Great Expectations'
own JSON form (``{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}``), i.e. what
``ExpectationSuite.to_json_dict()`` returns. Loading a file does not import Great Expectations; the configurations
are turned into GX objects only when validation runs.

File format (YAML or JSON, the GX suite format)::

    name: user_spend
    expectations:
      - type: expect_column_values_to_be_between
        kwargs: {column: amount, min_value: 0, max_value: 10000}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from seeknal_spark.validation.errors import SuiteError

__all__ = ["SuiteSpec", "SuiteSource", "load_suite", "suite_from_dict", "resolve_suite_path"]

SuiteSource = Union[None, str, Path, Mapping[str, Any], "SuiteSpec", Any]  # Any: a gx.ExpectationSuite

_DROP_KWARGS = ("batch_id",)


@dataclass(frozen=True)
class SuiteSpec:
    """A named list of expectation configurations (GX JSON form) and where they came from.

    Example:
        >>> spec = suite_from_dict({"name": "s", "expectations": [
        ...     {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}]})
        >>> spec.expectations[0]["kwargs"]
        {'column': 'amount'}
    """

    name: str
    expectations: Tuple[Dict[str, Any], ...] = ()
    source: str = "python"
    meta: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "expectations": [dict(e) for e in self.expectations], "meta": dict(self.meta)}


def _normalise(expectation: Any, index: int, where: str) -> Dict[str, Any]:
    if not isinstance(expectation, Mapping):
        raise SuiteError(f"expectation #{index} of {where} is a {type(expectation).__name__}, not a mapping with "
                         "'type' and 'kwargs'")
    kind = expectation.get("type") or expectation.get("expectation_type")
    if not isinstance(kind, str) or not kind:
        raise SuiteError(f"expectation #{index} of {where} has no 'type' (e.g. type: expect_column_values_to_not_be_null)")
    kwargs = expectation.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise SuiteError(f"expectation #{index} ({kind}) of {where}: 'kwargs' must be a mapping, got {kwargs!r}")
    out: Dict[str, Any] = {"type": kind, "kwargs": {k: v for k, v in kwargs.items() if k not in _DROP_KWARGS}}
    if expectation.get("meta"):
        out["meta"] = dict(expectation["meta"])
    return out


def suite_from_dict(data: Mapping[str, Any], source: str = "python", default_name: str = "suite") -> SuiteSpec:
    """A :class:`SuiteSpec` from GX's suite JSON form (``name``, ``expectations``; ``meta`` optional)."""
    where = f"suite {source}" if source != "python" else "the suite"
    if not isinstance(data, Mapping):
        raise SuiteError(f"{where} must be a mapping with 'name' and 'expectations', got {type(data).__name__}")
    expectations = data.get("expectations")
    if not isinstance(expectations, list):
        raise SuiteError(f"{where} needs a list under 'expectations'")
    name = data.get("name") or data.get("expectation_suite_name") or default_name
    items = tuple(_normalise(e, i, where) for i, e in enumerate(expectations))
    return SuiteSpec(name=str(name), expectations=items, source=source, meta=dict(data.get("meta") or {}))


def resolve_suite_path(path: Union[str, Path]) -> Path:
    """An absolute suite path; relative paths are looked up in the working directory, then in ``conf/``."""
    from seeknal_spark.config import conf_dir

    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        tried = [candidate]
    else:
        base = conf_dir()
        tried = [candidate, base / candidate]
        if candidate.parts and candidate.parts[0] == "conf":
            tried.append(base / Path(*candidate.parts[1:]))
    for p in tried:
        if p.is_file():
            return p.resolve()
    raise SuiteError(f"expectation suite file {str(path)!r} not found (looked at {[str(p) for p in tried]}); "
                     "put it under conf/expectations/ or pass an absolute path")


def _read_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise SuiteError(f"expectation suite file {path} is not valid JSON: {exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SuiteError(f"expectation suite file {path} is not valid YAML: {exc}") from exc
    raise SuiteError(f"expectation suite file {path} must end in .json, .yaml or .yml")


def load_suite(source: SuiteSource) -> Optional[SuiteSpec]:
    """A :class:`SuiteSpec` from a GX ``ExpectationSuite``, a dict, a path (JSON/YAML), or None.

    Paths are resolved with :func:`resolve_suite_path` (relative ones also against ``conf/``).
    """
    if source is None or isinstance(source, SuiteSpec):
        return source
    if isinstance(source, (str, Path)):
        path = resolve_suite_path(source)
        return suite_from_dict(_read_file(path), source=str(source), default_name=path.stem)
    if isinstance(source, Mapping):
        return suite_from_dict(source)
    to_json = getattr(source, "to_json_dict", None)
    if callable(to_json) and hasattr(source, "expectations"):  # a great_expectations ExpectationSuite
        data = to_json()
        for item in data.get("expectations", []):
            item.pop("id", None)
        return suite_from_dict(data, default_name=str(getattr(source, "name", "suite")))
    raise SuiteError(f"cannot use {type(source).__name__} as an expectation suite: pass a "
                     "great_expectations.ExpectationSuite, a dict in GX suite JSON form, or a path to a JSON/YAML "
                     "file (e.g. 'expectations/user_spend.yaml' under conf/)")


def expectation_list(spec: Optional[SuiteSpec]) -> List[Dict[str, Any]]:
    return [dict(e) for e in spec.expectations] if spec else []
