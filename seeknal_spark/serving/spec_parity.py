"""Training-serving parity as a comparison of lookup specs (Spark-free, no table opened here).

A training manifest and an online table's metadata both record :class:`~seeknal_spark.vocabulary.LookupSpec` s;
:func:`parity_differences` reads both with the one spec reader and lists every difference: the set and order of
feature names (the online order: features grouped by join keys, lookups in order), each feature's type, stored
name and source group, and per group its table, join keys, event-time column, TTL, schema version (and Delta
version when asked).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

from seeknal_spark.vocabulary.specs import FeatureRef, LookupSpec, specs_of

__all__ = ["parity_differences"]


def _trained_features(specs: List[LookupSpec]) -> List[Tuple[FeatureRef, str]]:
    """(feature, source label) in the order an online table serves them: grouped by join-key set."""
    by_keys: Dict[frozenset, List[Tuple[FeatureRef, str]]] = {}
    for spec in specs:
        by_keys.setdefault(frozenset(spec.group.join_keys), []).extend((f, spec.group.label) for f in spec.features)
    return [pair for pairs in by_keys.values() for pair in pairs]


def parity_differences(manifest: Mapping[str, Any], meta: Mapping[str, Any], *,
                       check_delta_versions: bool = False) -> List[str]:
    """Every difference between a loaded training manifest and an online table's metadata (empty: parity)."""
    trained_specs = specs_of(manifest["lookups"])
    trained = _trained_features(trained_specs)
    served = [(FeatureRef.from_dict(f), f["source"]) for t in meta["tables"] for f in t["features"]]
    diffs: List[str] = []
    trained_names = [f.output_name for f, _ in trained]
    served_names = [f.output_name for f, _ in served]
    missing = [n for n in trained_names if n not in served_names]
    extra = [n for n in served_names if n not in trained_names]
    if missing:
        diffs.append(f"features trained on but not served: {missing}")
    if extra:
        diffs.append(f"features served but not trained on: {extra}")
    common_trained = [n for n in trained_names if n in served_names]
    common_served = [n for n in served_names if n in trained_names]
    if common_trained != common_served:
        diffs.append(f"feature order differs: trained {common_trained}, served {common_served}")
    by_name = {f.output_name: (f, source) for f, source in served}
    for f, source in trained:
        if f.output_name not in by_name:
            continue
        online, online_source = by_name[f.output_name]
        name = f.output_name
        if online.type != f.type:
            diffs.append(f"feature {name!r}: type {f.type} in training, {online.type} online")
        if online.stored_name != f.stored_name:
            diffs.append(f"feature {name!r}: stored feature {f.stored_name!r} in training, "
                         f"{online.stored_name!r} online")
        if online_source != source:
            diffs.append(f"feature {name!r}: from {source} in training, from {online_source} online")

    online_specs: Dict[str, List[LookupSpec]] = {}
    for spec in specs_of(meta["sources"]):
        online_specs.setdefault(spec.group.label, []).append(spec)
    for spec in trained_specs:
        candidates = online_specs.get(spec.group.label) or []
        if not candidates:
            diffs.append(f"feature group {spec.group.label} is not a source of the online table")
            continue
        diffs += spec.differences(candidates.pop(0), ours="in training", theirs="online",
                                  delta_versions=check_delta_versions)
    for label, rest in online_specs.items():
        diffs += [f"the online table has a source {label} that the training set did not use" for _ in rest]
    return diffs
