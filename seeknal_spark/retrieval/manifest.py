"""Training-set manifests: what a training set was built from, so it can be rebuilt exactly later.

A manifest is a JSON-ready dict written by ``HistoricalFeaturesWithSpine.to_dataframe_with_spine(manifest_path=...)``
(or returned by ``.manifest()``). It records:

* every lookup: the feature group (project, name, table path, entity, join keys and their types, event-time
  column), the **Delta version** that was read (and its version **label** when the lookup named one), the
  **schema version** the features come from, the features
  (stored name, output name, type), the TTL, prefix and renames;
* the fill rules (``FillNull``);
* the spine: ``date_col``, ``keep_cols``, the columns the result takes from it (with types), its row count and a
  fingerprint (sha256 over the column names/types, the row count and an order-independent sum of per-row
  ``xxhash64`` values, computed by Spark in the same job that already scans the spine; no rows are collected);
* the output columns of the training set, in order, with their types.

``HistoricalFeatures.from_manifest(manifest)`` turns it back into lookups pinned to the recorded Delta versions
(Delta time travel), so the same spine gives the same rows after any number of later writes, as long as the
table's old data files and log entries have not been vacuumed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Sequence, Tuple, Union

from seeknal_spark.errors import DefinitionError, ManifestError, SpineMismatchError
from seeknal_spark.retrieval.lookup import FeatureLookup, FillNull, ResolvedLookup
from seeknal_spark.vocabulary import GroupRef, LookupSpec
from seeknal_spark.vocabulary.manifest_file import FORMAT, FORMAT_VERSION, load_manifest

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, Row
    from pyspark.sql.types import DataType

__all__ = ["FORMAT", "FORMAT_VERSION", "ManifestError", "SpineMismatchError", "load_manifest", "save_manifest",
           "build_manifest", "lookups_from_manifest", "check_resolved", "fingerprint_aggregates",
           "fingerprint_totals", "spine_fingerprint", "check_spine"]

_ROWS, _LO, _HI = "__sk_fp_rows", "__sk_fp_lo", "__sk_fp_hi"


# -- spine fingerprint ---------------------------------------------------------------------------------------
def fingerprint_aggregates(types: Mapping[str, "DataType"], columns: Sequence[str]) -> List["Column"]:
    """Aggregate expressions (to add to an existing ``agg``) for the fingerprint of ``columns`` (``types``:
    column name -> Spark type of the DataFrame aggregated).

    Each row hashes to ``xxhash64(columns..., array(isnull flags))`` (the flags make ``(null, 1)`` and
    ``(1, null)`` differ); the 64-bit hashes are summed as two 32-bit halves in LONGs, which is exact (no
    overflow) below 2^31 rows and independent of row order and partitioning.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    from seeknal_spark.retrieval.asof import qcol

    values = [F.to_json(qcol(c)) if isinstance(types[c], MapType) else qcol(c) for c in columns]
    nulls = F.array(*[qcol(c).isNull() for c in columns])
    h = F.xxhash64(*values, nulls)
    return [F.count(F.lit(1)).alias(_ROWS),
            F.sum(F.shiftrightunsigned(h, 32)).alias(_HI),
            F.sum(h.bitwiseAND(F.lit(0xFFFFFFFF))).alias(_LO)]


def fingerprint_totals() -> List["Column"]:
    """Aggregates that combine rows of :func:`fingerprint_aggregates` (computed per group, e.g. per key) into the
    fingerprint of all rows; the sums are exact, so the fingerprint does not depend on the grouping."""
    from pyspark.sql import functions as F

    return [F.sum(F.col(c)).alias(c) for c in (_ROWS, _HI, _LO)]


def spine_fingerprint(row: "Row", columns: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """``{"rows", "fingerprint"}`` from the collected aggregate row of :func:`fingerprint_aggregates`;
    ``columns`` are the (name, simple type string) pairs that were hashed."""
    rows = int(row[_ROWS] or 0)
    payload = json.dumps({"columns": [[c, t] for c, t in columns], "rows": rows,
                          "hi": int(row[_HI] or 0), "lo": int(row[_LO] or 0)}, separators=(",", ":"))
    return {"rows": rows, "fingerprint": hashlib.sha256(payload.encode("utf-8")).hexdigest()}


def check_spine(manifest: Mapping[str, Any], columns: Sequence[Tuple[str, str]], fingerprint: Mapping[str, Any]
                ) -> None:
    """Raise SpineMismatchError unless the spine's columns, row count and fingerprint equal the manifest's."""
    spine = manifest["spine"]
    want_cols = [tuple(c) for c in spine["columns"]]
    got_cols = [tuple(c) for c in columns]
    hint = ("rebuild with the exact spine the training set was built from (same rows, same column values and "
            "types)")
    if want_cols != got_cols:
        raise SpineMismatchError(f"the spine's columns {got_cols} differ from the manifest's {want_cols} "
                                 f"(date_col={spine['date_col']!r}, keep_cols={spine['keep_cols']}); {hint}")
    if int(fingerprint["rows"]) != int(spine["rows"]):
        raise SpineMismatchError(f"the spine has {fingerprint['rows']} row(s) but the training set in the manifest "
                                 f"was built from {spine['rows']}; {hint}")
    if fingerprint["fingerprint"] != spine["fingerprint"]:
        raise SpineMismatchError(f"the spine's fingerprint {fingerprint['fingerprint'][:16]}... differs from the "
                                 f"manifest's {str(spine['fingerprint'])[:16]}... although both have "
                                 f"{spine['rows']} rows: some values of {[c for c, _ in got_cols]} differ; {hint}")


# -- building ------------------------------------------------------------------------------------------------
def _fill_json(fill: FillNull) -> Dict[str, Any]:
    value = fill.value
    native = isinstance(value, (bool, int, float, str))
    return {"value": value if native else str(value), "value_is_text": not native, "type": fill.type_name,
            "columns": fill.columns}


def _lookup_json(r: ResolvedLookup) -> Dict[str, Any]:
    """The lookup's spec (the vocabulary's keys and units, as online metadata writes them) plus what only a
    rebuild needs: the entity, key types, whether the schema version was pinned, the requested features, the
    prefix and renames."""
    lookup, entity = r.lookup, r.lookup.source.entity
    entry = r.spec.to_dict()
    entry["group"].update(entity=entity.name if entity is not None else None,
                          key_types=[list(kt) for kt in r.key_types])
    entry.update(schema_version_pinned=lookup.schema_version is not None,
                 requested_features=lookup.requested_features,
                 ttl=str(r.ttl) if r.ttl is not None else None, prefix=lookup.prefix, rename=dict(lookup.rename))
    return entry


def build_manifest(resolved: Sequence[ResolvedLookup], fills: Sequence[FillNull], *, date_col: str,
                   keep_cols: Sequence[str], spine_columns: Sequence[Tuple[str, str]],
                   fingerprint: Mapping[str, Any], output_types: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """The manifest dict of one built training set (see the module docstring)."""
    from seeknal_spark.version import __version__

    features = [{"name": o, "stored_name": f, "type": t, "source": f"{r.lookup.source.project}/{r.name}"}
                for r in resolved for (f, t), o in zip(r.feature_types, r.output_names)]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "seeknal_version": __version__,
        "lookups": [_lookup_json(r) for r in resolved],
        "fill_nulls": [_fill_json(f) for f in fills],
        "features": features,
        "spine": {"date_col": date_col, "keep_cols": list(keep_cols), "columns": [list(c) for c in spine_columns],
                  "rows": int(fingerprint["rows"]), "fingerprint": fingerprint["fingerprint"]},
        "output_columns": [{"name": n, "type": t} for n, t in output_types],
    }


def save_manifest(path: Union[str, "os.PathLike[str]"], manifest: Mapping[str, Any]) -> str:
    """Write ``manifest`` as JSON to the local file ``path`` atomically (temp file, fsync, rename)."""
    from seeknal_spark.atomic import write_json_atomic

    target = os.fspath(path)
    if "://" in target and not target.startswith("file://"):
        raise DefinitionError(f"manifest_path {target!r} is remote; write the manifest to a local path (or "
                              "take .manifest() and upload the JSON yourself)")
    target = os.path.abspath(target[len("file://"):] if target.startswith("file://") else target)
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    write_json_atomic(target, dict(manifest))
    return target


# -- rebuilding ----------------------------------------------------------------------------------------------
def _group(info: Mapping[str, Any]) -> Any:
    from seeknal_spark.definitions import (
        Entity,
        FeatureStoreFileOutput,
        Materialization,
        OfflineMaterialization,
        OfflineStore,
    )
    from seeknal_spark.feature_group import FeatureGroup

    group = GroupRef.from_dict(info)
    path, project, name = group.table_uri, group.project, group.name
    suffix = f"/{project}/{name}"
    if not path.rstrip("/").endswith(suffix):
        raise ManifestError(f"manifest lookup {project}/{name}: table_uri {path!r} does not end with {suffix!r}")
    root = path.rstrip("/")[: -len(suffix)]
    store = OfflineStore(value=FeatureStoreFileOutput(path=root))
    mat = Materialization(event_time_col=str(info["event_time_col"]),
                          offline_materialization=OfflineMaterialization(store=store))
    entity = Entity(str(info.get("entity") or f"{name}_entity"), list(info["join_keys"]))
    return FeatureGroup(name, entity=entity, materialization=mat, project=project)


def lookups_from_manifest(manifest: Mapping[str, Any]) -> Tuple[List[FeatureLookup], List[FillNull]]:
    """Lookups pinned to the manifest's Delta (and schema) versions with its exact output names, and its fills."""
    lookups = []
    for entry in manifest["lookups"]:
        spec = LookupSpec.from_dict(entry)
        lookups.append(FeatureLookup(
            source=_group(entry["group"]), features=[f.stored_name for f in spec.features],
            ttl=spec.ttl, rename={f.stored_name: f.output_name for f in spec.features},
            schema_version=int(entry["schema_version"]) if entry.get("schema_version_pinned") else None,
            delta_version=int(entry["delta_version"]), version=entry.get("label")))
    fills = [FillNull(f["value"], f["type"], columns=f.get("columns")) for f in manifest["fill_nulls"]]
    return lookups, fills


def check_resolved(manifest: Mapping[str, Any], resolved: Sequence[ResolvedLookup]) -> None:
    """Raise ManifestError when the pinned snapshots no longer match the manifest (e.g. a table was recreated)."""
    problems = []
    for entry, r in zip(manifest["lookups"], resolved):
        label = f"{entry['group']['project']}/{entry['group']['name']}@v{entry['delta_version']}"
        want = [(f.stored_name, f.output_name, f.type) for f in LookupSpec.from_dict(entry).features]
        got = [(f.stored_name, f.output_name, f.type) for f in r.spec.features]
        if want != got:
            problems.append(f"{label}: features {got} but the manifest records {want}")
        if list(r.join_keys) != list(entry["group"]["join_keys"]):
            problems.append(f"{label}: join keys {list(r.join_keys)} but the manifest records "
                            f"{entry['group']['join_keys']}")
        if r.event_time_col != entry["group"]["event_time_col"]:
            problems.append(f"{label}: event-time column {r.event_time_col!r} but the manifest records "
                            f"{entry['group']['event_time_col']!r}")
        if r.schema_version != entry["schema_version"]:
            problems.append(f"{label}: schema version {r.schema_version} but the manifest records "
                            f"{entry['schema_version']}")
    if problems:
        raise ManifestError("the feature groups no longer match the training-set manifest (was a table deleted "
                            "and rewritten?):\n  " + "\n  ".join(problems))
