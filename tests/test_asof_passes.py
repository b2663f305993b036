"""The two as-of passes of the Spark engine (retrieval/asof.py) on hand-built stored rows, against a plain-Python
oracle: physical ties across writes (same keys and time, different write numbers), stored nulls, TTL, duplicate
spine rows, keys with no rows, two groups on the same keys. The writer never stores such ties; tables written by
other tools or older versions can."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from seeknal_spark.retrieval.asof import FeatureSide, asof_pass, interval_pass
from tests.support.oracle import latest_as_of

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, tzinfo=UTC)


def _stored(rng, keys, n, value_name):
    rows, used = [], set()
    while len(rows) < n:
        k, minute, seq = rng.choice(keys), rng.randrange(0, 200), rng.randrange(0, 4)
        if (k, minute, seq) in used:  # (keys, time, write) is unique; (keys, time) may repeat across writes
            continue
        used.add((k, minute, seq))
        rows.append({"k": k, "t": T0 + dt.timedelta(minutes=minute), "seq": seq,
                     value_name: None if rng.random() < 0.2 else rng.randrange(1000)})
    return rows


@pytest.mark.parametrize("pass_fn", [interval_pass, asof_pass], ids=["interval", "windowed"])
def test_as_of_passes_match_the_oracle(spark, pass_fn):
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    rng = random.Random(11)
    keys = list(range(6))
    a_rows, b_rows = _stored(rng, keys, 120, "a"), _stored(rng, keys[:4], 60, "b")
    spine = [{"k": rng.choice(keys + [99]), "at": T0 + dt.timedelta(minutes=rng.randrange(-10, 220))}
             for _ in range(80)]
    spine += spine[:5]  # duplicates stay duplicates
    spine += [{"k": r["k"], "at": r["t"]} for r in a_rows[:10]]  # exactly at a stored time (inclusive)
    ties = sorted({(r["k"], r["t"]) for r in a_rows
                   if sum(1 for o in a_rows if (o["k"], o["t"]) == (r["k"], r["t"])) > 1})
    assert ties, "the data must hold ties across writes"
    spine += [{"k": k, "at": t} for k, t in ties]  # the later write's row must win
    ttl = dt.timedelta(minutes=30)

    def frame(rows, schema):
        return spark.createDataFrame(rows, schema)

    a = frame(a_rows, "k long, t timestamp, seq long, a long")
    b = frame(b_rows, "k long, t timestamp, seq long, b long")
    sides = [FeatureSide(df=a, keys=["k"], event_time_col="t", seq_col="seq", features=["a"], outputs=["a_out"]),
             FeatureSide(df=b, keys=["k"], event_time_col="t", seq_col="seq", features=["b"], outputs=["b_out"],
                         ttl_micros=int(ttl / dt.timedelta(microseconds=1)))]
    s = frame(spine, "k long, at timestamp").withColumn("us", F.unix_micros("at"))
    out = pass_fn(s, ["k"], "us", [LongType()], sides)
    assert out.columns == ["k", "at", "us", "a_out", "b_out"]
    order = lambda r: (r[0], r[1], r[2] is None, r[2] or 0, r[3] is None, r[3] or 0)  # noqa: E731
    got = sorted(((r["k"], r["at"].astimezone(UTC), r["a_out"], r["b_out"]) for r in out.collect()), key=order)

    want = []
    for row in spine:
        hit_a = latest_as_of(a_rows, lambda r: r["k"] == row["k"], lambda r: r["t"], row["at"],
                             rank=lambda r: r["seq"])
        hit_b = latest_as_of(b_rows, lambda r: r["k"] == row["k"], lambda r: r["t"], row["at"], ttl=ttl,
                             rank=lambda r: r["seq"])
        want.append((row["k"], row["at"], hit_a["a"] if hit_a else None, hit_b["b"] if hit_b else None))
    assert got == sorted(want, key=order)
    assert any(w[2] is None for w in want) and any(w[3] is None for w in want)  # stored nulls, no row, TTL
