"""A writer process for concurrency tests: its own Spark session (own JVM), commands as JSON lines on stdin.

Each command writes rows to one feature group and answers one JSON line on stdout. ``barrier`` makes the write
wait, after its rows are staged and before it plans its commit, until ``parties`` writers reached that point
(files in a directory), so the commit windows of writers in different processes overlap for certain.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import traceback


def _barrier(path: str, parties: int, me: str, timeout: float = 120.0):
    def check(staged):  # a user check: runs on the staged rows before the commit is planned
        os.makedirs(path, exist_ok=True)
        open(os.path.join(path, me), "w").close()
        deadline = time.time() + timeout
        while len(os.listdir(path)) < parties:
            if time.time() > deadline:
                raise TimeoutError(f"barrier {path}: only {os.listdir(path)} arrived")
            time.sleep(0.02)
        return None
    return check


def _signal_and_sleep(path: str):
    def check(staged):
        open(path, "w").close()
        time.sleep(600)
    return check


def main() -> None:
    from seeknal_spark import (Entity, FeatureGroup, FeatureStoreFileOutput, Materialization,
                               OfflineMaterialization, OfflineStore, OfflineStoreEnum)
    from seeknal_spark.session import local_session

    spark = local_session(extra={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            store = OfflineStore(kind=OfflineStoreEnum.FILE, name="t", value=FeatureStoreFileOutput(path=cmd["store"]))
            m = Materialization("event_time", offline_materialization=OfflineMaterialization(store=store))
            fg = FeatureGroup(cmd["group"], entity=Entity("user", ["user_id"]), materialization=m, project="c")
            features = cmd.get("features", ["amount"])
            schema = "user_id long, event_time timestamp, " + ", ".join(f"{f} double" for f in features)
            rows = [(r[0], dt.datetime.fromisoformat(r[1]), *r[2:]) for r in cmd["rows"]]
            fg.set_dataframe(spark.createDataFrame(rows, schema)).set_features(features)
            if cmd.get("barrier"):
                fg.add_check("barrier", _barrier(cmd["barrier"], cmd["parties"], cmd["me"]))
            if cmd.get("hang"):
                fg.add_check("hang", _signal_and_sleep(cmd["hang"]))
            result = fg.write(cmd.get("start"), cmd.get("end"), mode=cmd.get("mode", "append"),
                              run_id=cmd.get("run_id"), version=cmd.get("version"))
            out = {"ok": True, "version": result.version, "skipped": result.skipped, "retries": result.retries}
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out = {"ok": False, "error": type(exc).__name__, "message": str(exc),
                   "trace": traceback.format_exc()[-2000:]}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
