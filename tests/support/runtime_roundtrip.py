"""One write/read/point-in-time/serve round trip, run as a script in another environment's Python.

``python tests/support/runtime_roundtrip.py <work dir>`` prints one JSON line: where seeknal_spark was imported
from, the versions seen, and the rows read, trained and served. The test that runs it owns the oracle.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path


def main(work: Path) -> dict:
    import seeknal_spark
    from seeknal_spark import (Entity, FeatureGroup, FeatureLookup, FeatureStoreFileOutput, HistoricalFeatures,
                               Materialization, OfflineMaterialization, OfflineStore, OfflineStoreEnum)
    from seeknal_spark.session import local_session

    spark = local_session(app_name="seeknal_runtime_roundtrip", extra={"spark.sql.shuffle.partitions": "2"})
    utc = dt.timezone.utc
    store = OfflineStore(kind=OfflineStoreEnum.FILE, name="rt", value=FeatureStoreFileOutput(path=str(work / "off")))
    mat = Materialization(event_time_col="ts",
                          offline_materialization=OfflineMaterialization(store=store, mode="append"))
    fg = FeatureGroup("spend", entity=Entity(name="user", join_keys=["user_id"]), materialization=mat, project="rt")
    schema = "user_id long, ts timestamp, amount double, tier string"
    fg.set_dataframe(spark.createDataFrame([(1, dt.datetime(2024, 3, 1, 10, tzinfo=utc), 1.5, "a"),
                                            (1, dt.datetime(2024, 3, 2, 10, tzinfo=utc), 2.5, "b"),
                                            (2, dt.datetime(2024, 3, 1, 12, tzinfo=utc), 7.0, None)], schema)).write()
    fg.set_dataframe(spark.createDataFrame([(2, dt.datetime(2024, 3, 2, 12, tzinfo=utc), 8.0, "z")], schema)).write()
    read = sorted([r.user_id, r.ts.astimezone(utc).isoformat(), r.amount, r.tier]
                  for r in fg.to_dataframe().collect())
    spine = spark.createDataFrame([(1, dt.datetime(2024, 3, 1, 23, tzinfo=utc), 0),
                                   (1, dt.datetime(2024, 3, 3, tzinfo=utc), 1),
                                   (2, dt.datetime(2024, 2, 28, tzinfo=utc), 1),
                                   (2, dt.datetime(2024, 3, 1, 13, tzinfo=utc), 0)],
                                  "user_id long, label_time timestamp, label int")
    hist = HistoricalFeatures(lookups=[FeatureLookup(source=fg)])
    train = hist.using_spine(spine, date_col="label_time", keep_cols=["label"]).to_dataframe_with_spine()
    trained = sorted([r.user_id, r.label_time.astimezone(utc).isoformat(), r.label, r.amount, r.tier]
                     for r in train.collect())
    online = hist.serve(name="rt_online", feature_end_time="2024-03-31", store_root=str(work / "online"))
    served = online.get_features(keys=[{"user_id": 1}, {"user_id": 2}, {"user_id": 3}])
    import numpy, pandas, pyarrow, pyspark
    return {"module": seeknal_spark.__file__, "spark": spark.version, "read": read, "trained": trained,
            "served": served, "versions": {"pyspark": pyspark.__version__, "pyarrow": pyarrow.__version__,
                                           "pandas": pandas.__version__, "numpy": numpy.__version__}}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), default=str))
