"""What a job runs: a feature group given by reference or YAML definition, time ranges, chunks and run ids.

Everything here is checked without Spark, so ``--dry-run`` can validate a job completely before a cluster runs it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from seeknal_spark.config import conf_dir
from seeknal_spark.definitions import WRITE_MODES, FeatureStoreFileOutput, OfflineStore
from seeknal_spark.errors import DefinitionError
from seeknal_spark.feature_group import FeatureGroup
from seeknal_spark.timeutil import check_range as check_time_range, to_utc
from seeknal_spark.transform import FeatureTransform, load_reference

__all__ = ["UsageError", "GroupSpec", "load_group_spec", "parse_duration", "parse_time", "plan_chunks",
           "chunk_run_id"]

YAML_KEYS = {"transform", "name", "project", "description", "store", "mode", "sources", "validation", "features"}
VALIDATION_KEYS = {"suite", "policy", "builtins", "enabled"}
_DURATION = re.compile(r"^\s*(\d+)\s*([wdhms])\s*$")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_ONE_MICRO = dt.timedelta(microseconds=1)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UsageError(DefinitionError):
    """A command-line argument or job definition is wrong (exit code 2)."""


def parse_duration(value: str, what: str = "duration") -> dt.timedelta:
    """``"7d"``, ``"12h"``, ``"2w"``, ``"30m"``, ``"90s"`` -> timedelta (positive)."""
    match = _DURATION.match(str(value))
    if not match or int(match.group(1)) <= 0:
        raise UsageError(f"{what} {value!r} must be a positive number followed by w, d, h, m or s (e.g. 7d)")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_time(value: Optional[str], what: str, end_exclusive: bool = False,
               is_end: bool = False) -> Optional[dt.datetime]:
    """An ISO-8601 date or datetime argument as aware UTC (naive = UTC).

    Ends are inclusive: an exclusive end (``end_exclusive``) becomes the microsecond before it, and an end given
    as a date alone (``is_end``) means the last microsecond of that day.
    """
    if value is None or value == "":
        return None
    try:
        parsed = to_utc(value, what)
    except DefinitionError as exc:
        raise UsageError(f"{what} {value!r} is not an ISO-8601 date or datetime "
                         "(e.g. 2024-03-01 or 2024-03-01T00:00:00+00:00)") from exc
    if end_exclusive:
        return parsed - _ONE_MICRO  # type: ignore[operator]
    if is_end and _DATE_ONLY.match(value.strip()):
        return parsed + (dt.timedelta(days=1) - _ONE_MICRO)  # type: ignore[operator]  # 9999-12-31: no overflow
    return parsed


def check_range(start: Optional[dt.datetime], end: Optional[dt.datetime]) -> None:
    """Refuse --start after --end (a UsageError: exit code 2)."""
    check_time_range(start, end, "--start", "--end", error=UsageError)


def plan_chunks(start: dt.datetime, end: dt.datetime, chunk: dt.timedelta) -> List[Tuple[dt.datetime, dt.datetime]]:
    """Split the inclusive range [start, end] into consecutive inclusive ranges of at most ``chunk``."""
    check_range(start, end)
    chunks: List[Tuple[dt.datetime, dt.datetime]] = []
    lo = start
    while lo <= end:
        hi = min(lo + chunk - _ONE_MICRO, end)
        chunks.append((lo, hi))
        lo = hi + _ONE_MICRO
    return chunks


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def chunk_run_id(base: str, start: dt.datetime, end: dt.datetime) -> str:
    """The run id of one backfill chunk: the same base and bounds always give the same id (resumable reruns)."""
    return f"{base}/{_stamp(start)}-{_stamp(end)}"


@dataclass
class GroupSpec:
    """A feature group to materialize: its transformation plus job settings (store, mode, validation)."""

    transform: FeatureTransform
    origin: str
    store: Optional[str] = None
    mode: Optional[str] = None
    validation: Optional[Dict[str, Any]] = None

    @property
    def name(self) -> str:
        return self.transform.name

    @property
    def label(self) -> str:
        return f"{self.transform.project}/{self.transform.name}"

    def offline_store(self, override: Optional[str] = None) -> Optional[OfflineStore]:
        path = override or self.store
        return OfflineStore(value=FeatureStoreFileOutput(path=path)) if path else None

    def feature_group(self, store: Optional[str] = None) -> FeatureGroup:
        """The FeatureGroup (with validation settings from the definition), no DataFrame set."""
        group = self.transform.feature_group(self.offline_store(store))
        if self.validation:
            group.set_validation(**self.validation)
        return group


def _as_transform(obj: Any, reference: str) -> FeatureTransform:
    if not isinstance(obj, FeatureTransform):
        raise UsageError(f"reference {reference!r} is a {type(obj).__name__}, not a feature transform; "
                         "declare it with @feature_transform(...)")
    return obj


def _resolve_source(value: Any, base: Path, key: str, path: Path) -> Any:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{path}: sources.{key} must be a path or a 'package.module:name' reference")
    if ":" in value and "://" not in value and not os.path.exists(value):
        return load_reference(value)
    if "://" in value or os.path.isabs(value):
        return value
    return str((base / value).resolve())


def load_yaml_spec(path: Path) -> GroupSpec:
    """Read a feature-group definition file (see ``conf/feature_groups/``)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read feature group definition {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a feature group definition is a mapping with at least 'transform:'")
    unknown = sorted(set(data) - YAML_KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(YAML_KEYS)}")
    reference = data.get("transform")
    if not isinstance(reference, str):
        raise UsageError(f"{path}: 'transform:' must name the transformation as 'package.module:name'")
    transform = _as_transform(load_reference(reference), reference)
    changes: Dict[str, Any] = {k: data[k] for k in ("name", "project", "description", "features") if k in data}
    sources = data.get("sources")
    if sources is not None:
        if not isinstance(sources, Mapping):
            raise UsageError(f"{path}: 'sources:' must map source names to paths")
        unknown_src = sorted(set(sources) - set(transform.sources))
        if unknown_src and transform.sources:
            raise UsageError(f"{path}: sources {unknown_src} are not sources of {reference} "
                             f"(it reads {sorted(transform.sources)})")
        merged = dict(transform.sources)
        merged.update({k: _resolve_source(v, path.parent, k, path) for k, v in sources.items()})
        changes["sources"] = merged
    if changes:
        transform = dataclasses.replace(transform, **changes)
    mode = data.get("mode")
    if mode is not None and mode not in WRITE_MODES:
        raise UsageError(f"{path}: mode {mode!r} is not one of {WRITE_MODES}")
    validation = data.get("validation")
    if validation is not None:
        if not isinstance(validation, Mapping) or set(validation) - VALIDATION_KEYS:
            raise UsageError(f"{path}: 'validation:' takes the keys {sorted(VALIDATION_KEYS)}")
        validation = dict(validation)
    store = data.get("store")
    if store is not None and not isinstance(store, str):
        raise UsageError(f"{path}: 'store:' must be a path or URI")
    return GroupSpec(transform=transform, origin=str(path), store=store, mode=mode, validation=validation)


def load_group_spec(value: str) -> GroupSpec:
    """A group given as ``package.module:name``, a YAML file, or the name of ``<conf>/feature_groups/<name>.yaml``."""
    if not value:
        raise UsageError("a feature group is required: 'package.module:name', a YAML file or a name in "
                         "conf/feature_groups/")
    path = Path(value)
    if value.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise UsageError(f"feature group definition {value!r} does not exist")
        return load_yaml_spec(path)
    if ":" in value:
        try:
            return GroupSpec(transform=_as_transform(load_reference(value), value), origin=value)
        except UsageError:
            raise
        except DefinitionError as exc:
            raise UsageError(str(exc)) from exc
    candidate = conf_dir() / "feature_groups" / f"{value}.yaml"
    if candidate.is_file():
        return load_yaml_spec(candidate)
    raise UsageError(f"feature group {value!r} is neither 'package.module:name', a YAML file, nor a definition "
                     f"in {candidate.parent}")
