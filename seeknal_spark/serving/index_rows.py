"""Online lookups through the in-process index (``index="memory"`` or ``"mmap"``): keys are found with a dict or
a memory-mapped sorted index, features read from Python lists or mapped columns. One of the two ``KeyLookup`` s
(``serving/snapshot.py``); the other is ``serving/duckdb_rows.py``."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from seeknal_spark.errors import DefinitionError
from seeknal_spark.serving.snapshot import Snapshot, has_key, missing_key

__all__ = ["index_rows"]


def index_rows(snap: Snapshot, plan: list, keys: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """One dict per key dict (join keys and the planned features, null when the key is unknown), in order."""
    n = len(keys)
    per_table = []
    for table, knames, _, names, picker, nulls in plan:
        index = table.index
        single = len(knames) == 1
        k0 = knames[0]
        key_values: List[Any] = []
        hit_pos: List[int] = []
        hit_idx: List[int] = []
        if single and len(keys) > 1:
            try:  # fast path for a single join key; errors are reported by the loop below
                key_values = [kd[k0] for kd in keys]
                many = getattr(index, "get_many", None)  # the mmap index searches a batch at once
                found = many(key_values) if many is not None else list(map(index.get, key_values))
            except (KeyError, TypeError):
                key_values = []
            else:
                table.check_single(key_values)  # also on hits: True / 1.0 would find key 1
                for j, i in enumerate(found):
                    if i is not None:
                        hit_pos.append(j)
                        hit_idx.append(i)
        for j, kd in enumerate(keys if not key_values else ()):
            try:
                key = kd[k0] if single else tuple([kd[k] for k in knames])
            except (KeyError, TypeError):
                raise missing_key(kd, next((k for k in knames if not has_key(kd, k)), k0),
                                   snap.join_keys) from None
            problem = table.bad_key(key)  # before the lookup: True / 1.0 would find key 1
            if problem:
                raise DefinitionError(problem)
            try:
                i = index.get(key)
            except TypeError:
                raise DefinitionError(f"key {dict(kd)!r} has an unhashable join-key value") from None
            if i is not None:
                hit_pos.append(j)
                hit_idx.append(i)
            key_values.append(key)
        values: List[Any] = [nulls] * n
        if hit_idx:
            fetched = table.fetch(hit_idx)
            if picker is not None:
                fetched = [picker(v) for v in fetched]
            for j, v in zip(hit_pos, fetched):
                values[j] = v
        per_table.append((knames, single, names, key_values, values))
    if len(per_table) == 1 and per_table[0][1]:
        knames, _, names, key_values, values = per_table[0]
        columns = (knames[0],) + names
        return [dict(zip(columns, (k, *v))) for k, v in zip(key_values, values)]
    out = []
    for j in range(n):
        row: Dict[str, Any] = {}
        for knames, single, names, key_values, values in per_table:
            if single:
                row[knames[0]] = key_values[j]
            else:
                row.update(zip(knames, key_values[j]))
            row.update(zip(names, values[j]))
        out.append(row)
    return out

