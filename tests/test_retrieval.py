"""Point-in-time retrieval against a plain-Python oracle over the raw rows that were written."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from seeknal_spark import Entity, FeatureGroup, Materialization, OfflineMaterialization
from seeknal_spark.retrieval import FeatureLookup, FillNull, HistoricalFeatures
from tests.support.oracle import latest_as_of

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)
USERS = list(range(8))
STORE_ITEMS = [("s1", 1), ("s1", 2), ("s2", 1), ("s3", 7)]


# -- data: raw rows kept in Python, each tagged with the number of the write that stored it -----------------------
def _group(store, name, keys, ts):
    return FeatureGroup(name, entity=Entity(name=f"{name}_entity", join_keys=keys),
                        materialization=Materialization(event_time_col=ts, offline_materialization=
                                                        OfflineMaterialization(store=store, mode="append")))


def _write(spark, group, rows, write_no, raw, schema):
    pdf = pd.DataFrame(rows)
    group.set_dataframe(spark.createDataFrame(pdf, schema=schema)).write()
    raw.extend({**r, "_write": write_no} for r in rows)


def _user_rows(rng, times, write_no):
    rows = []
    for u in USERS:
        for t in times(u):
            rows.append({"user_id": u, "ts": t,
                         "amount": None if rng.random() < 0.25 else round(rng.uniform(0, 100), 2),
                         "cnt": rng.randrange(0, 50) if rng.random() > 0.1 else None,
                         "seg": rng.choice(["a", "b", None]), "_w": write_no})
    return rows


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """Three groups: two keyed by user (ties across writes, nulls), one keyed by (store_id, item_id)."""
    from seeknal_spark import FeatureStoreFileOutput, OfflineStore

    store = OfflineStore(name="pit", value=FeatureStoreFileOutput(path=str(tmp_path_factory.mktemp("pit"))))
    rng = random.Random(7)
    raw = {"user_stats": [], "user_profile": [], "store_item": []}

    stats = _group(store, "user_stats", ["user_id"], "ts")
    schema = "user_id long, ts timestamp, amount double, cnt long, seg string"
    first = {u: sorted(rng.sample(range(0, 10 * 24), 6)) for u in USERS}
    rows1 = [{k: v for k, v in r.items() if k != "_w"}
             for r in _user_rows(rng, lambda u: [T0 + h * HOUR for h in first[u]], 1)]
    _write(spark, stats, rows1, 1, raw["user_stats"], schema)
    # second write: some identical (user_id, ts) pairs with new values (ties: the later write must win) + new rows
    rows2 = [{k: v for k, v in r.items() if k != "_w"} for r in _user_rows(
        rng, lambda u: [T0 + h * HOUR for h in rng.sample(first[u], 3)] + [T0 + (240 + u) * HOUR], 2)]
    _write(spark, stats, rows2, 2, raw["user_stats"], schema)

    profile = _group(store, "user_profile", ["user_id"], "updated_at")
    prof_rows = [{"user_id": u, "updated_at": T0 + h * HOUR, "tier": rng.choice(["gold", "silver", None])}
                 for u in USERS[:6] for h in sorted(rng.sample(range(0, 10 * 24, 12), 4))]
    _write(spark, profile, prof_rows, 1, raw["user_profile"], "user_id long, updated_at timestamp, tier string")

    items = _group(store, "store_item", ["store_id", "item_id"], "event_time")
    item_rows = [{"store_id": s, "item_id": i, "event_time": T0 + h * HOUR,
                  "price": None if rng.random() < 0.2 else float(rng.randrange(1, 20)), "stock": rng.randrange(9)}
                 for s, i in STORE_ITEMS for h in sorted(rng.sample(range(0, 10 * 24), 5))]
    item_schema = "store_id string, item_id int, event_time timestamp, price double, stock int"
    _write(spark, items, item_rows, 1, raw["store_item"], item_schema)
    ties = [dict(r, price=-1.0, stock=99) for r in item_rows[::4]]
    _write(spark, items, ties, 2, raw["store_item"], item_schema)

    spine = []
    for n in range(70):
        u = rng.choice(USERS + [99])  # 99 has no features at all
        s, i = rng.choice(STORE_ITEMS + [("s9", 9)])
        if n % 5 == 0:  # exactly at some stored event time (inclusive as-of)
            t = rng.choice(raw["user_stats"] + raw["store_item"])
            t = t.get("ts") or t.get("event_time")
        elif n % 7 == 0:  # before any feature row
            t = T0 - rng.randrange(1, 48) * HOUR
        else:
            t = T0 + dt.timedelta(minutes=rng.randrange(0, 11 * 24 * 60))
        spine.append({"user_id": u, "store_id": s, "item_id": i, "label_time": t, "label": n % 2})
    spine += spine[:6]  # duplicate spine rows stay duplicates
    return {"store": store, "raw": raw, "spine": spine, "groups": {"user_stats": stats, "user_profile": profile,
                                                                      "store_item": items}}


# -- oracle ----------------------------------------------------------------------------------------------------
def oracle_asof(raw_rows, keys, ts_col, spine_keys, t, ttl=None):
    """The stored row with the same keys, event time <= t (and >= t - ttl), latest time then latest write."""
    return latest_as_of(raw_rows, lambda row: all(row[k] == v for k, v in zip(keys, spine_keys)),
                        lambda row: row[ts_col], t, ttl=ttl, rank=lambda row: row["_write"])


def oracle(world, spine, specs, fills=None):
    """specs: (group, keys, ts_col, {stored: output}, ttl). Returns sorted tuples (spine cols..., features...)."""
    out = []
    for s in spine:
        row = [s["user_id"], s["store_id"], s["item_id"], s["label_time"], s["label"]]
        for group, keys, ts_col, names, ttl in specs:
            hit = oracle_asof(world["raw"][group], keys, ts_col, [s[k] for k in keys], s["label_time"], ttl)
            for stored, output in names.items():
                value = hit[stored] if hit is not None else None
                if value is None and fills and output in fills:
                    value = fills[output]
                row.append(value)
        out.append(tuple(row))
    return sorted(out, key=repr)


def as_tuples(df, time_col="label_time"):
    """Sorted row tuples; the time column as an aware UTC datetime (collected as epoch micros, zone-free)."""
    from pyspark.sql import functions as F

    rows = []
    for r in df.withColumn(time_col, F.unix_micros(time_col)).collect():
        d = r.asDict()
        d[time_col] = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=d[time_col])
        rows.append(tuple(d.values()))
    return sorted(rows, key=repr)


SPECS = [
    ("user_stats", ["user_id"], "ts", {"amount": "amount", "cnt": "cnt", "seg": "seg"}, None),
    ("user_profile", ["user_id"], "updated_at", {"tier": "p_tier"}, dt.timedelta(days=2)),
    ("store_item", ["store_id", "item_id"], "event_time", {"price": "item_price", "stock": "stock"}, None),
]


def _lookups(world):
    g = world["groups"]
    return [FeatureLookup(source=g["user_stats"]),
            FeatureLookup(source=g["user_profile"], ttl=dt.timedelta(days=2), prefix="p_"),
            FeatureLookup(source=g["store_item"], rename={"price": "item_price"})]


# -- tests -----------------------------------------------------------------------------------------------------
def test_training_set_matches_oracle(any_spark, world):
    """Ties, null values, duplicates, composite keys, two entities, TTL, early spine rows; classic and Connect."""
    spine = pd.DataFrame(world["spine"])
    hist = HistoricalFeatures(lookups=_lookups(world), fill_nulls=[FillNull("none", "string", columns=["p_tier"])])
    df = hist.using_spine(spine, date_col="label_time", keep_cols=["label"], spark=any_spark) \
        .to_dataframe_with_spine()
    assert df.sparkSession is any_spark
    assert df.columns == ["user_id", "store_id", "item_id", "label_time", "label",
                          "amount", "cnt", "seg", "p_tier", "item_price", "stock"]
    got = as_tuples(df)
    want = oracle(world, world["spine"], SPECS, fills={"p_tier": "none"})
    assert len(got) == len(world["spine"]) == 76
    assert got == want
    # the data really exercises the hard cases
    assert any(r[5] is None and r[6] is not None for r in want)  # a stored null amount is that row's value
    assert any(all(v is None for v in r[5:8]) for r in want)  # no row yet / unknown key
    assert any(r[9] == -1.0 for r in want)  # a tie won by the second write



@pytest.mark.parametrize("copies, plan_marks", [(1, ("LeftOuter",)), (12, ("Window", "last("))])
def test_both_as_of_passes_match_oracle(spark, world, capsys, copies, plan_marks):
    """Few spine rows per key take the interval pass (a left join on validity intervals); many take the windowed
    pass (the union carried forward). Both give the oracle's rows, ties, stored nulls, TTL and duplicates included."""
    spine = world["spine"] * copies  # 12 copies: more than 64 spine rows for every key of both key sets
    hist = HistoricalFeatures(lookups=_lookups(world), fill_nulls=[FillNull("none", "string", columns=["p_tier"])])
    df = hist.using_spine(pd.DataFrame(spine), date_col="label_time", keep_cols=["label"], spark=spark) \
        .to_dataframe_with_spine()
    capsys.readouterr()
    df.explain()
    plan = capsys.readouterr().out
    assert all(mark in plan for mark in plan_marks), plan
    if copies == 1:
        assert "last(" not in plan, plan
    assert as_tuples(df) == oracle(world, spine, SPECS, fills={"p_tier": "none"})

def test_later_write_wins_on_ties(spark, world):
    raw = world["raw"]["store_item"]
    tie = next(r for r in raw if r["_write"] == 2)
    spine = pd.DataFrame([{"store_id": tie["store_id"], "item_id": tie["item_id"], "t": tie["event_time"]}])
    hist = HistoricalFeatures([FeatureLookup(source=world["groups"]["store_item"])])
    rows = hist.using_spine(spine, "t", spark=spark).to_dataframe_with_spine().collect()
    assert [(r["price"], r["stock"]) for r in rows] == [(-1.0, 99)]


def test_date_spine_and_non_utc_session(spark, world, tz):
    """DATE spine values mean midnight UTC; TIMESTAMP spine values are instants whatever the session zone."""
    tz("America/Los_Angeles")
    days = [dt.date(2024, 1, d) for d in range(1, 12)]
    spine = [{"user_id": u, "d": d} for u in USERS for d in days]
    hist = HistoricalFeatures([FeatureLookup(source=world["groups"]["user_stats"], features=["amount", "seg"])])
    df = hist.using_spine(pd.DataFrame(spine), "d", spark=spark).to_dataframe_with_spine()
    got = sorted(((r["user_id"], r["d"], r["amount"], r["seg"]) for r in df.collect()), key=repr)
    want = []
    for s in spine:
        t = dt.datetime(s["d"].year, s["d"].month, s["d"].day, tzinfo=UTC)
        hit = oracle_asof(world["raw"]["user_stats"], ["user_id"], "ts", [s["user_id"]], t)
        want.append((s["user_id"], s["d"], hit and hit["amount"], hit and hit["seg"]))
    assert got == sorted(want, key=repr)

    # aware timestamps in another zone, read by Spark with a non-UTC session zone
    tokyo = dt.timezone(dt.timedelta(hours=9))
    stamps = [{"user_id": u, "at": (T0 + dt.timedelta(hours=h, minutes=30)).astimezone(tokyo)}
              for u in USERS for h in range(0, 260, 13)]
    df = hist.using_spine(pd.DataFrame(stamps), "at", spark=spark).to_dataframe_with_spine()
    got = sorted(((r["user_id"], r["amount"], r["seg"]) for r in df.collect()), key=repr)
    want = []
    for s in stamps:
        hit = oracle_asof(world["raw"]["user_stats"], ["user_id"], "ts", [s["user_id"]], s["at"])
        want.append((s["user_id"], hit and hit["amount"], hit and hit["seg"]))
    assert got == sorted(want, key=repr)


def test_fill_nulls_by_type_and_by_column(spark, world):
    spine = pd.DataFrame(world["spine"])
    hist = HistoricalFeatures(lookups=_lookups(world),
                              fill_nulls=[FillNull(-5, "long", columns=["cnt"]), FillNull("0.5", "double"),
                                          FillNull(0, "int")])
    df = hist.using_spine(spine, "label_time", keep_cols="label", spark=spark).to_dataframe_with_spine()
    fills = {"cnt": -5, "amount": 0.5, "item_price": 0.5, "stock": 0}
    assert as_tuples(df) == oracle(world, world["spine"], SPECS, fills=fills)
    assert dict(df.dtypes)["cnt"] == "bigint" and dict(df.dtypes)["stock"] == "int"


def test_to_dataframe_without_spine(spark, world):
    """Each stored (user, time) row of either user group, with both groups' features as of that time."""
    g = world["groups"]
    hist = HistoricalFeatures([FeatureLookup(source=g["user_stats"], features=["amount", "cnt"]),
                               FeatureLookup(source=g["user_profile"], ttl=dt.timedelta(days=2))])
    start, end = T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=7, hours=5)
    df = hist.to_dataframe(start, end, spark=spark)
    assert df.columns == ["user_id", "ts", "amount", "cnt", "tier"]
    got = as_tuples(df, "ts")
    points = {(r["user_id"], r[c]) for grp, c in (("user_stats", "ts"), ("user_profile", "updated_at"))
              for r in world["raw"][grp] if start <= r[c] <= end}
    want = []
    for u, t in points:
        a = oracle_asof(world["raw"]["user_stats"], ["user_id"], "ts", [u], t)
        p = oracle_asof(world["raw"]["user_profile"], ["user_id"], "updated_at", [u], t, dt.timedelta(days=2))
        want.append((u, t, a and a["amount"], a and a["cnt"], p and p["tier"]))
    assert got == sorted(want, key=repr)


def test_empty_spine(spark, world):
    empty = spark.createDataFrame([], "user_id long, at timestamp")
    hist = HistoricalFeatures([FeatureLookup(source=world["groups"]["user_stats"])])
    df = hist.using_spine(empty, "at").to_dataframe_with_spine()
    assert df.columns == ["user_id", "at", "amount", "cnt", "seg"] and df.collect() == []


def test_lookup_exposes_what_serving_needs(world):
    g = world["groups"]
    lookup = FeatureLookup(source=g["store_item"], features=["stock", "price"], ttl=dt.timedelta(hours=3),
                           prefix="si_", rename={"price": "unit_price"})
    hist = HistoricalFeatures([lookup])
    assert hist.lookups == [lookup] and lookup.source is g["store_item"]
    assert lookup.features == ["stock", "price"]
    assert lookup.output_names == ["si_stock", "unit_price"]
    assert lookup.join_keys == ["store_id", "item_id"] and lookup.ttl == dt.timedelta(hours=3)
    assert FeatureLookup(source=g["user_stats"]).features == ["amount", "cnt", "seg"]


# -- the DuckDB engine: same rows as the oracle and as the Spark engine, same manifest ---------------------------
def arrow_tuples(table):
    """Sorted row tuples of an Arrow table; timestamps as aware UTC datetimes."""
    rows = []
    for d in table.to_pylist():
        rows.append(tuple(v.astimezone(UTC) if isinstance(v, dt.datetime) else v for v in d.values()))
    return sorted(rows, key=repr)


def test_duckdb_engine_matches_oracle_spark_and_manifest(spark, world, tmp_path):
    fills = [FillNull("none", "string", columns=["p_tier"]), FillNull(-5, "long", columns=["cnt"])]
    spine = pd.DataFrame(world["spine"])
    duck = HistoricalFeatures(lookups=_lookups(world), fill_nulls=fills, engine="duckdb")
    bound = duck.using_spine(spine, date_col="label_time", keep_cols=["label"])
    table = bound.to_arrow_with_spine(manifest_path=tmp_path / "duck.json")
    assert table.column_names == ["user_id", "store_id", "item_id", "label_time", "label",
                                  "amount", "cnt", "seg", "p_tier", "item_price", "stock"]
    assert [str(t) for t in table.schema.types][5:] == ["double", "int64", "string", "string", "double", "int32"]
    want = oracle(world, world["spine"], SPECS, fills={"p_tier": "none", "cnt": -5})
    assert arrow_tuples(table) == want
    # spine order and duplicates are kept
    assert [r["label"] for r in table.select(["label"]).to_pylist()] == [s["label"] for s in world["spine"]]

    spark_bound = HistoricalFeatures(lookups=_lookups(world), fill_nulls=fills) \
        .using_spine(spine, date_col="label_time", keep_cols=["label"], spark=spark)
    assert as_tuples(spark_bound.to_dataframe_with_spine()) == want
    same = lambda m: {k: v for k, v in m.items() if k != "created_at"}  # noqa: E731
    assert same(bound.manifest()) == same(spark_bound.manifest())  # same fingerprint, versions, types

    # a manifest written by one engine rebuilds with the other
    again = HistoricalFeatures.from_manifest(str(tmp_path / "duck.json"))
    assert as_tuples(again.using_spine(spine, spark=spark).to_dataframe_with_spine()) == want
    pdf = HistoricalFeatures.from_manifest(spark_bound.manifest(), engine="duckdb") \
        .using_spine(spine).to_dataframe_with_spine()
    assert list(pdf.columns) == table.column_names and len(pdf) == len(world["spine"])


def test_engines_agree_on_random_spines(spark, world):
    """Random spines (exact event times, early rows, unknown keys) and TTLs: DuckDB == Spark == oracle."""
    rng = random.Random(11)
    g = world["groups"]
    stamps = [r["ts"] for r in world["raw"]["user_stats"]] + [r["event_time"] for r in world["raw"]["store_item"]]
    for case in range(3):
        ttl = [None, dt.timedelta(hours=rng.randrange(1, 60)), dt.timedelta(0)][case]
        spine = []
        for n in range(40):
            t = rng.choice(stamps) if n % 3 == 0 else T0 + dt.timedelta(minutes=rng.randrange(-600, 12 * 24 * 60))
            s, i = rng.choice(STORE_ITEMS + [("s9", 9)])
            spine.append({"user_id": rng.choice(USERS + [42]), "store_id": s, "item_id": i, "label_time": t,
                          "label": n})
        spine += rng.sample(spine, 5)
        lookups = [FeatureLookup(source=g["user_stats"], ttl=ttl),
                   FeatureLookup(source=g["store_item"], ttl=ttl, rename={"price": "item_price"})]
        specs = [("user_stats", ["user_id"], "ts", {"amount": "amount", "cnt": "cnt", "seg": "seg"}, ttl),
                 ("store_item", ["store_id", "item_id"], "event_time", {"price": "item_price", "stock": "stock"},
                  ttl)]
        want = oracle(world, spine, specs)
        duck = HistoricalFeatures(lookups, engine="duckdb").using_spine(pd.DataFrame(spine), "label_time",
                                                                         keep_cols="label")
        assert arrow_tuples(duck.to_arrow_with_spine()) == want, f"case {case} (ttl={ttl})"
        on_spark = HistoricalFeatures(lookups).using_spine(pd.DataFrame(spine), "label_time", keep_cols="label",
                                                           spark=spark)
        assert as_tuples(on_spark.to_dataframe_with_spine()) == want, f"case {case} (ttl={ttl})"


def test_duckdb_engine_date_spine_fills_and_empty_spine(spark, world):
    import pyarrow as pa

    days = [dt.date(2024, 1, d) for d in range(1, 12)]
    spine = [{"user_id": u, "d": d} for u in USERS for d in days]
    lookup = FeatureLookup(source=world["groups"]["user_stats"], features=["amount", "seg"])
    fills = [FillNull("0.5", "double"), FillNull("?", "string")]
    got = HistoricalFeatures([lookup], fills, engine="duckdb").using_spine(pd.DataFrame(spine), "d") \
        .to_arrow_with_spine()
    want = []
    for s in spine:
        t = dt.datetime(s["d"].year, s["d"].month, s["d"].day, tzinfo=UTC)
        hit = oracle_asof(world["raw"]["user_stats"], ["user_id"], "ts", [s["user_id"]], t)
        amount, seg = (hit["amount"], hit["seg"]) if hit else (None, None)
        want.append((s["user_id"], s["d"], 0.5 if amount is None else amount, "?" if seg is None else seg))
    assert arrow_tuples(got) == sorted(want, key=repr)
    on_spark = HistoricalFeatures([lookup], fills).using_spine(pd.DataFrame(spine), "d", spark=spark) \
        .to_dataframe_with_spine()
    assert sorted(((r["user_id"], r["d"], r["amount"], r["seg"]) for r in on_spark.collect()), key=repr) == \
        sorted(want, key=repr)

    empty = pa.table({"user_id": pa.array([], pa.int64()), "at": pa.array([], pa.timestamp("us", tz="UTC"))})
    out = HistoricalFeatures([lookup], engine="duckdb").using_spine(empty, "at").to_arrow_with_spine()
    assert out.column_names == ["user_id", "at", "amount", "seg"] and out.num_rows == 0


def test_duckdb_fingerprint_equals_sparks_for_every_spine_type(spark, world):
    """The spine fingerprint (Spark's xxhash64, recomputed with numpy) is the same for many column types."""
    import decimal

    rows = []
    for n in range(30):
        rows.append({"user_id": n % 9, "at": T0 + dt.timedelta(minutes=37 * n, microseconds=n),
                     "i32": None if n % 7 == 0 else n * 1000 - 15000, "f64": [0.0, -0.0, 1.5, None, -2e300][n % 5],
                     "txt": [None, "", "é", "x" * 31, "long string " * (n % 6), "ab\x00c"][n % 6],
                     "flag": [True, False, None][n % 3], "day": dt.date(2023, 12, 1 + n % 28),
                     "dec": decimal.Decimal(n * 37 - 300).scaleb(-2)})
    pdf = pd.DataFrame(rows).astype({"i32": "Int32"})
    keep = ["i32", "f64", "txt", "flag", "day", "dec"]
    lookup = FeatureLookup(source=world["groups"]["user_stats"], features=["cnt"])
    duck = HistoricalFeatures([lookup], engine="duckdb").using_spine(pdf, "at", keep_cols=keep)
    duck.to_arrow_with_spine()
    on_spark = HistoricalFeatures([lookup]).using_spine(pdf, "at", keep_cols=keep, spark=spark)
    on_spark.to_dataframe_with_spine()
    assert duck.manifest()["spine"] == on_spark.manifest()["spine"]
    changed = pdf.copy()
    changed.loc[3, "txt"] = "other"
    other = HistoricalFeatures([lookup], engine="duckdb").using_spine(changed, "at", keep_cols=keep)
    other.to_arrow_with_spine()
    assert other.manifest()["spine"]["fingerprint"] != duck.manifest()["spine"]["fingerprint"]


def test_duckdb_engine_runs_without_pyspark(world, tmp_path):
    """A process that cannot import pyspark builds the same training set and manifest with engine="duckdb"."""
    import json
    import subprocess
    import sys

    g = world["groups"]["user_stats"]
    spine = pd.DataFrame(world["spine"])[["user_id", "label_time"]]
    spine.to_parquet(tmp_path / "spine.parquet")
    code = f"""
import sys
sys.modules["pyspark"] = None  # any import of pyspark fails
import json, pandas as pd
from seeknal_spark import Entity, FeatureGroup, Materialization, OfflineMaterialization
from seeknal_spark import FeatureStoreFileOutput, OfflineStore
from seeknal_spark.retrieval import FeatureLookup, HistoricalFeatures
store = OfflineStore(name="pit", value=FeatureStoreFileOutput(path={world["store"].value.path!r}))
group = FeatureGroup("user_stats", entity=Entity(name="user_stats_entity", join_keys=["user_id"]),
                     materialization=Materialization(event_time_col="ts", offline_materialization=
                                                     OfflineMaterialization(store=store)))
bound = HistoricalFeatures([FeatureLookup(source=group)], engine="duckdb").using_spine(
    pd.read_parquet({str(tmp_path / "spine.parquet")!r}), "label_time")
table = bound.to_arrow_with_spine()
print(json.dumps({{"rows": table.num_rows, "amount": table.column("amount").to_pylist(),
                  "manifest": bound.manifest()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    want = [(oracle_asof(world["raw"]["user_stats"], ["user_id"], "ts", [s["user_id"]], s["label_time"]) or {})
            .get("amount") for s in world["spine"]]
    assert got["rows"] == len(world["spine"]) and got["amount"] == want
    here = HistoricalFeatures([FeatureLookup(source=g)], engine="duckdb").using_spine(spine, "label_time")
    here.to_arrow_with_spine()
    for part in ("output_columns", "spine", "features"):  # types spelled without pyspark as Spark spells them
        assert got["manifest"][part] == here.manifest()[part]
