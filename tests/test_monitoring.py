"""Freshness and drift monitoring against hand-computed figures."""

from __future__ import annotations

import datetime as dt
import math
import random
import warnings

import pytest

from seeknal_spark import Entity, FeatureGroup, Materialization, OfflineMaterialization
from seeknal_spark.monitoring import freshness, population_stability_index
from seeknal_spark.monitoring.charts import save_drift_charts
from seeknal_spark.monitoring.freshness import StaleFeatureWarning

UTC = dt.timezone.utc


@pytest.fixture
def written_group(spark, store):
    rng = random.Random(5)
    rows = []
    for day in range(1, 29):
        for user in range(40):
            shift = 30.0 if day > 14 and user % 2 == 0 else 0.0  # half the users drift in the second fortnight
            seg = "vip" if (day > 14 and user % 4 == 0) else ("new" if user % 3 else "regular")
            rows.append((user, dt.datetime(2024, 2, day, 6 + user % 12), rng.gauss(50, 5) + shift, seg,
                         float(user % 7)))
    df = spark.createDataFrame(rows, "user_id long, ts timestamp, spend double, segment string, stable double")
    m = Materialization("ts", offline_materialization=OfflineMaterialization(store=store))
    fg = FeatureGroup("activity", entity=Entity("user", ["user_id"]), materialization=m)
    fg.set_dataframe(df).write()
    return fg, rows


def test_freshness_reads_the_newest_event_time_from_the_log_and_warns_when_stale(written_group):
    fg, rows = written_group
    newest = max(r[1] for r in rows).replace(tzinfo=UTC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = freshness(fg.table_path, fg.name, "ts", threshold=dt.timedelta(days=2),
                          now=newest + dt.timedelta(hours=3))
    assert fresh.newest_event_time == newest and not fresh.stale and fresh.age == dt.timedelta(hours=3)
    with pytest.warns(StaleFeatureWarning, match="activity is stale"):
        stale = fg.freshness(threshold=dt.timedelta(days=2), now=newest + dt.timedelta(days=3))
    assert stale.stale and stale.newest_watermark == dt.date(2024, 2, 28)


def _oracle_psi(base, cur, edges):
    def shares(values):
        counts = [0] * (len(edges) + 1)
        for v in values:
            counts[sum(1 for e in edges if v > e)] += 1
        return [c / len(values) for c in counts]
    b, c = shares(base), shares(cur)
    return sum((max(y, 1e-4) - max(x, 1e-4)) * math.log(max(y, 1e-4) / max(x, 1e-4)) for x, y in zip(b, c))


def test_drift_flags_the_shifted_features_and_writes_charts(spark, written_group, tmp_path):
    fg, rows = written_group
    report = fg.drift(baseline=("2024-02-01", "2024-02-14T23:59:59"), current=("2024-02-15", "2024-02-28T23:59:59"),
                      threshold=0.2, spark=spark)
    by_name = {f.feature: f for f in report.features}
    assert report.drifted == ["spend", "segment"]
    assert by_name["stable"].psi < 0.05
    base = [r[2] for r in rows if r[1].day <= 14]
    cur = [r[2] for r in rows if r[1].day > 14]
    assert by_name["spend"].mean_change == pytest.approx(sum(cur) / len(cur) - sum(base) / len(base))
    # PSI against a plain-Python computation over the same bin edges.
    edges = by_name["spend"].edges
    assert len(edges) == 9
    assert by_name["spend"].psi == pytest.approx(_oracle_psi(base, cur, edges), rel=1e-3)
    seg_base = [r[3] for r in rows if r[1].day <= 14]
    seg_cur = [r[3] for r in rows if r[1].day > 14]
    cats = sorted(set(seg_base) | set(seg_cur))
    expected = population_stability_index([seg_base.count(c) / len(seg_base) for c in cats],
                                          [seg_cur.count(c) / len(seg_cur) for c in cats])
    assert by_name["segment"].psi == pytest.approx(expected)
    table = report.to_pandas()
    assert list(table["feature"]) == ["spend", "segment", "stable"]
    charts = save_drift_charts(report, str(tmp_path / "charts"))
    assert fg.drift(("2024-02-01", "2024-02-07"), ("2024-02-08", "2024-02-14"), features=["stable"],
                    chart_dir=str(tmp_path / "none"), spark=spark).drifted == []
    assert set(charts) == {"spend", "segment"}
    for path in charts.values():
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
