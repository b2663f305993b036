"""The windowed as-of join: one exchange, one sort and a linear pass per set of join keys.

Spine rows and feature rows are unioned, partitioned by the join keys and ordered by
``(time, side, write seq)``; ``last(struct, ignorenulls=True)`` over an unbounded-preceding window carries the
latest feature row forward to every spine row. Details that make it correct:

* feature rows sort before spine rows at the same time, so a row stamped exactly at the spine time counts;
* among feature rows of one group with the same keys and time, the larger write sequence number sorts last and
  wins (the later write);
* the whole stored row is carried as a non-null struct, so a stored null stays a (null) value of that row
  instead of falling back to an older row;
* every spine row is a row of the union, so each one yields exactly one output row (duplicates included) and
  nothing is joined back;
* several groups with the same join keys share one pass (one struct column per group).

Skew: Spark hash-partitions the union by the join keys and sorts each partition; a hot key costs one task the
sort of its own rows, and the window streams through them (its buffer spills to disk), so memory is bounded
independently of the key's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType

__all__ = ["FeatureSide", "asof_pass", "qcol", "KEY_PREFIX"]

KEY_PREFIX = "__sk_k"
_T = "__sk_t"
_SIDE = "__sk_side"
_SEQ = "__sk_seq"
_ET = "__sk_et"
_FEATURE_SIDE, _SPINE_SIDE = 0, 1


def qcol(name: str) -> "Column":
    """A column reference that takes ``name`` literally (dots and backticks are not parsed)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


@dataclass(frozen=True)
class FeatureSide:
    """The stored rows of one group entering a pass.

    ``df`` holds the group's join keys (``keys``, aligned with the pass's key order), ``event_time_col``
    (TIMESTAMP), ``seq_col`` (write sequence number) and the ``features``; ``outputs`` are the output column names.
    """

    df: "DataFrame"
    keys: Sequence[str]
    event_time_col: str
    seq_col: str
    features: Sequence[str]
    outputs: Sequence[str]
    ttl_micros: Optional[int] = None


def asof_pass(spine: "DataFrame", spine_keys: Sequence[str], spine_time_col: str,
              key_types: Sequence["DataType"], sides: Sequence[FeatureSide]) -> "DataFrame":
    """Every row and column of ``spine`` plus each side's features as of the row's time.

    ``spine_time_col`` holds the spine time as microseconds since the epoch (LONG, no nulls). Keys of both
    sides are cast to ``key_types`` (one per key) before comparing.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = [f"{KEY_PREFIX}{i}" for i in range(len(spine_keys))]
    carried_names = [f"__sk_f{g}" for g in range(len(sides))]
    spine_cols = list(spine.columns)
    union = spine.select(
        *[qcol(c) for c in spine_cols],
        *[qcol(k).cast(t).alias(a) for k, t, a in zip(spine_keys, key_types, keys)],
        qcol(spine_time_col).alias(_T), F.lit(_SPINE_SIDE).alias(_SIDE), F.lit(0).cast("long").alias(_SEQ))
    for name, side in zip(carried_names, sides):
        et_micros = F.unix_micros(qcol(side.event_time_col))
        rows = side.df.select(
            *[qcol(k).cast(t).alias(a) for k, t, a in zip(side.keys, key_types, keys)],
            et_micros.alias(_T), F.lit(_FEATURE_SIDE).alias(_SIDE), qcol(side.seq_col).cast("long").alias(_SEQ),
            F.struct(*([et_micros.alias(_ET)] if side.ttl_micros is not None else []),  # event time for the TTL
                     *[qcol(f).alias(f"f{i}") for i, f in enumerate(side.features)]).alias(name))
        union = union.unionByName(rows, allowMissingColumns=True)
    window = (Window.partitionBy(*[F.col(k) for k in keys]).orderBy(F.col(_T), F.col(_SIDE), F.col(_SEQ))
              .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    carried = union.select(
        *[qcol(c) for c in spine_cols], F.col(_SIDE), F.col(_T),
        *[F.last(F.col(n), ignorenulls=True).over(window).alias(n) for n in carried_names],
    ).where(F.col(_SIDE) == F.lit(_SPINE_SIDE))
    outputs: List["Column"] = []
    for name, side in zip(carried_names, sides):
        row = F.col(name)
        present = row.isNotNull()
        if side.ttl_micros is not None:
            present = present & ((F.col(_T) - row.getField(_ET)) <= F.lit(side.ttl_micros))
        for i, out in enumerate(side.outputs):
            outputs.append(F.when(present, row.getField(f"f{i}")).alias(out))
    return carried.select(*[qcol(c) for c in spine_cols], *outputs)
