"""The training-set manifest file: its format marker and its one reader (Spark-free; parity reads it too).

Writing a manifest needs the resolved lookups and the spine, so it lives with retrieval
(``seeknal_spark.retrieval.manifest``); every reader of a manifest file goes through :func:`load_manifest`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Union

from seeknal_spark.errors import ManifestError

__all__ = ["FORMAT", "FORMAT_VERSION", "load_manifest"]

FORMAT = "seeknal.training_set"
FORMAT_VERSION = 2  # 2: lookups spelled as vocabulary LookupSpecs (1 is still read)


_REQUIRED = ("format", "format_version", "lookups", "fill_nulls", "features", "spine")


def load_manifest(manifest: Union[Mapping[str, Any], str, "os.PathLike[str]"]) -> Dict[str, Any]:
    """A manifest from a dict, a JSON file path, or a JSON string; checked for the fields rebuilding needs."""
    if isinstance(manifest, Mapping):
        data = dict(manifest)
        where = "the manifest dict"
    else:
        text = os.fspath(manifest)
        if text.lstrip().startswith("{"):
            where, raw = "the manifest JSON text", text
        else:
            where = text
            try:
                with open(text, encoding="utf-8") as fh:
                    raw = fh.read()
            except OSError as exc:
                raise ManifestError(f"cannot read training-set manifest {text}: {exc}") from exc
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ManifestError(f"{where} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{where} is not a seeknal training-set manifest (format {FORMAT!r} expected)")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ManifestError(f"{where} lacks {missing}; it is truncated or was edited")
    if int(data["format_version"]) > FORMAT_VERSION:
        raise ManifestError(f"{where} has format_version {data['format_version']}; this seeknal_spark reads up to "
                            f"{FORMAT_VERSION}: upgrade seeknal_spark")
    return data
