"""The as-of passes: one exchange and sort per side of the join keys, then a linear pass or a bounded join.

Two passes compute the same rows; :mod:`~seeknal_spark.retrieval.spark_engine` picks one per set of join keys.

**Interval pass** (:func:`interval_pass`, used when every key has at most :data:`INTERVAL_MAX_SPINE_ROWS` spine
rows). Each stored row is valid from its event time until the next row of its keys: ``lead(time)`` over the rows
of a key ordered by ``(time, write seq)``. A left sort-merge join on the keys with
``time <= spine time < next time`` then finds each spine row's as-of row directly. Details that make it correct:

* the intervals of one key do not overlap, so each spine row matches at most one stored row and yields exactly one
  output row (duplicates included); a row stamped exactly at the spine time counts (``<=``);
* among rows with the same keys and time, every row but the one with the largest write sequence number (the later
  write) has an empty interval ``[t, t)`` and never matches;
* the matched row's values are taken as stored: a stored null stays null.

The join compares each spine row with every stored row of its key, so its cost is about
``spine rows per key x stored rows``: linear in the stored rows while spine rows per key are bounded, which is why
the engine falls back to the windowed pass for spines with more rows per key. Nothing is unioned, carried or
sorted twice, which makes this pass the faster one when keys have few rows each.

**Windowed pass** (:func:`asof_pass`). Spine rows and feature rows are unioned, partitioned by the join keys and
ordered by ``(time, side, write seq)``; ``last(struct, ignorenulls=True)`` over an unbounded-preceding window
carries the latest feature row forward to every spine row. Details that make it correct:

* feature rows sort before spine rows at the same time, so a row stamped exactly at the spine time counts;
* among feature rows of one group with the same keys and time, the larger write sequence number sorts last and
  wins (the later write);
* the whole stored row is carried as a non-null struct, so a stored null stays a (null) value of that row
  instead of falling back to an older row;
* every spine row is a row of the union, so each one yields exactly one output row (duplicates included) and
  nothing is joined back;
* several groups with the same join keys share one pass (one struct column per group).

Skew: both passes hash-partition by the join keys and sort each partition. In the windowed pass a hot key costs one
task the sort of its own rows, and the window streams through them (its buffer spills to disk), so memory and time
are bounded independently of the key's size; the interval pass is used only while the spine rows per key are few.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType

__all__ = ["FeatureSide", "asof_pass", "interval_pass", "qcol", "KEY_PREFIX", "INTERVAL_MAX_SPINE_ROWS"]

KEY_PREFIX = "__sk_k"
_T = "__sk_t"
_SIDE = "__sk_side"
_SEQ = "__sk_seq"
_ET = "__sk_et"
_FEATURE_SIDE, _SPINE_SIDE = 0, 1

#: The interval pass is used while no key has more spine rows than this: its join then compares at most
#: this many (spine row, stored row) pairs per stored row.
INTERVAL_MAX_SPINE_ROWS = 64


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


def interval_pass(spine: "DataFrame", spine_keys: Sequence[str], spine_time_col: str,
                  key_types: Sequence["DataType"], sides: Sequence[FeatureSide]) -> "DataFrame":
    """The rows of :func:`asof_pass` (same arguments, same result) by one interval join per side.

    Meant for spines with few rows per key (see the module docstring for the cost)."""
    from functools import reduce

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = [f"{KEY_PREFIX}{i}" for i in range(len(spine_keys))]
    spine_cols = list(spine.columns)
    frame = spine.select(*[qcol(c) for c in spine_cols],
                         *[qcol(k).cast(t).alias(a) for k, t, a in zip(spine_keys, key_types, keys)])
    for g, side in enumerate(sides):
        stored_keys = [f"__sk_g{g}_k{i}" for i in range(len(keys))]
        start, end, values = f"__sk_g{g}_t", f"__sk_g{g}_next", [f"__sk_g{g}_f{i}" for i in range(len(side.features))]
        rows = side.df.select(
            *[qcol(k).cast(t).alias(a) for k, t, a in zip(side.keys, key_types, stored_keys)],
            F.unix_micros(qcol(side.event_time_col)).alias(start), qcol(side.seq_col).cast("long").alias(_SEQ),
            *[qcol(f).alias(v) for f, v in zip(side.features, values)])
        order = Window.partitionBy(*[F.col(k) for k in stored_keys]).orderBy(F.col(start), F.col(_SEQ))
        rows = rows.select(*stored_keys, start, F.lead(F.col(start)).over(order).alias(end), *values)
        spine_t = qcol(spine_time_col)
        on = reduce(lambda a, b: a & b, [F.col(k) == F.col(s) for k, s in zip(keys, stored_keys)])
        on = on & (F.col(start) <= spine_t) & (F.col(end).isNull() | (F.col(end) > spine_t))
        joined = frame.join(rows, on, "left")
        present = F.col(start).isNotNull()
        if side.ttl_micros is not None:
            present = present & ((spine_t - F.col(start)) <= F.lit(side.ttl_micros))
        carried = [c for c in frame.columns if c not in spine_cols and c not in keys]  # earlier sides' outputs
        frame = joined.select(*[qcol(c) for c in spine_cols], *keys, *[F.col(c) for c in carried],
                              *[F.when(present, F.col(v)).alias(f"__sk_o{g}_{i}") for i, v in enumerate(values)])
    done = [f"__sk_o{g}_{i}" for g, side in enumerate(sides) for i in range(len(side.features))]
    names = [out for side in sides for out in side.outputs]
    return frame.select(*[qcol(c) for c in spine_cols], *[F.col(c).alias(n) for c, n in zip(done, names)])
