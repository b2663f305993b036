"""One condition, one error: a definition that differs from the one stored in a group's Delta log (join keys or
event-time column) raises StoredDefinitionError from a write, from get_or_create and from an online publish."""

from __future__ import annotations

import datetime as dt

import pytest

from seeknal_spark import Entity, FeatureGroup, Materialization, OfflineMaterialization
from seeknal_spark.definitions import FeatureStoreFileOutput, OfflineStore
from seeknal_spark.errors import DefinitionError, SchemaError, StoredDefinitionError
from seeknal_spark.serving import ServingSource, publish_online_table

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)


def _group(store, keys=("user_id",), ts="ts"):
    return FeatureGroup("spend", entity=Entity("user", list(keys)),
                        materialization=Materialization(event_time_col=ts, offline_materialization=
                                                        OfflineMaterialization(store=store)))


def test_a_differing_definition_raises_one_error_type_everywhere(spark, tmp_path):
    store = OfflineStore(value=FeatureStoreFileOutput(path=str(tmp_path / "offline")))
    fg = _group(store)
    fg.set_dataframe(spark.createDataFrame([(1, 2, T0, 1.0)], "user_id long, shop long, ts timestamp, amount double"))
    fg.write()

    other_keys = _group(store, keys=("user_id", "shop"))
    with pytest.raises(StoredDefinitionError, match=r"stored with join keys \['user_id'\]; this definition uses"):
        other_keys.get_or_create()
    other_ts = _group(store, ts="amount_ts")
    with pytest.raises(StoredDefinitionError, match="stored with event-time column 'ts'; this definition uses"):
        other_ts.get_or_create()
    write = _group(store, keys=("user_id", "shop")).set_dataframe(
        spark.createDataFrame([(1, 2, T0, 3.0)], "user_id long, shop long, ts timestamp, amount double"))
    with pytest.raises(StoredDefinitionError, match="this write uses"):
        write.write()
    source = ServingSource(table_uri=fg.table_path, project="default", name="spend", join_keys=["shop"],
                           event_time_col="ts")
    with pytest.raises(StoredDefinitionError, match="the lookup uses"):
        publish_online_table([source], "spend", as_of=T0, store_root=str(tmp_path / "online"))
    assert issubclass(StoredDefinitionError, SchemaError) and issubclass(StoredDefinitionError, DefinitionError)
    assert FeatureGroup("spend", store=store).get_or_create().materialization.event_time_col == "ts"  # unchanged
