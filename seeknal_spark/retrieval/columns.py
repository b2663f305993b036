"""The columns of a training set, shared by both engines: the spine columns it keeps, in order, and the check that
no lookup's output name collides with them."""

from __future__ import annotations

from typing import List, Sequence

from seeknal_spark.errors import DefinitionError
from seeknal_spark.retrieval.lookup import ResolvedLookup

__all__ = ["spine_columns"]


def spine_columns(resolved: Sequence[ResolvedLookup], date_col: str, keep_cols: Sequence[str]) -> List[str]:
    """Every lookup's join keys (first-seen order), ``date_col``, then ``keep_cols``; refuses an output feature name
    equal to one of them (DefinitionError naming the columns and the fix)."""
    key_order: List[str] = []
    for r in resolved:
        key_order += [k for k in r.join_keys if k not in key_order]
    base_cols = key_order + [date_col] + [c for c in keep_cols if c not in key_order and c != date_col]
    clash = sorted({o for r in resolved for o in r.output_names} & set(base_cols))
    if clash:
        raise DefinitionError(f"output feature column(s) {clash} collide with spine columns of the result "
                              f"{base_cols}; give the lookup a prefix= or rename={{...}}")
    return base_cols
