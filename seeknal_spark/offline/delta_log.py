"""Reading and committing Delta transactions with delta-rs (no JVM).

This module is the only place that talks to the Delta log. It knows nothing about Spark.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import DeltaTable, Schema
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    Transaction,
    create_table_with_add_actions,
)

from seeknal_spark import storage
from seeknal_spark.errors import StoreError, UnsupportedTableError
from seeknal_spark.offline.layout import PARTITION_COL, seq_of_file_name
from seeknal_spark.offline.state import STATE_KEY, GroupState, decode_commit_metadata

__all__ = ["LiveFile", "CommitActions", "VersionTaken", "open_table", "check_portable", "read_state", "live_files",
           "commit_files", "commit_actions", "filesystem", "set_properties", "app_version", "history",
           "commit_schema_json", "read_files_arrow", "options_of"]

_UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping", "v2Checkpoint"}


@dataclass(frozen=True)
class LiveFile:
    """A data file of a Delta snapshot."""

    uri: str
    path: str  # relative to the table root, as in the log
    date: Optional[dt.date]
    seq: Optional[int]
    size: int
    num_records: Optional[int]


def _delta_table(uri: str, storage_options: Optional[Mapping[str, str]], version: Optional[int] = None
                 ) -> DeltaTable:
    """delta-rs' table at ``uri`` (``s3a://`` read as ``s3://``; S3 commits with ``conditional_put=etag``)."""
    try:
        return DeltaTable(storage.object_store_uri(uri), version=version,
                          storage_options=storage.delta_rs_options(uri, storage_options))
    except TableNotFoundError:
        raise
    except OSError as exc:  # object-store failures: a missing bucket, denied access, an unreachable endpoint
        raise storage.store_error(exc, uri, f"open the Delta table {uri}", storage_options) from exc


def open_table(uri: str, version: Optional[int] = None,
               storage_options: Optional[Mapping[str, str]] = None) -> Optional[DeltaTable]:
    """The Delta table at ``uri`` (at ``version`` when given), or None when no table exists there."""
    try:
        table = _delta_table(uri, storage_options)
    except TableNotFoundError:
        storage.check_bucket(uri, storage_options, f"open the Delta table {uri}")  # no table, or no bucket?
        return None
    if version is not None:
        if version > table.version() or version < 0:
            raise StoreError(f"Delta table {uri} has no version {version} (latest is {table.version()})")
        table.load_as_version(version)
    return table


def check_portable(table: DeltaTable) -> None:
    """Raise UnsupportedTableError when the table uses Delta features the portable reader would misread."""
    protocol = table.protocol()
    features = set(protocol.reader_features or ())
    config = table.metadata().configuration or {}
    if config.get("delta.columnMapping.mode", "none") not in ("none", None):
        features.add("columnMapping")
    bad = sorted(features & _UNSUPPORTED_READER_FEATURES)
    if bad:
        raise UnsupportedTableError(
            f"Delta table {table.table_uri} uses {', '.join(bad)}, which the portable (delta-rs) reader cannot "
            "honour; read it on a Spark session with Delta Lake installed (Databricks, or --packages "
            "io.delta:delta-spark), or rewrite the table without those features"
        )


def history(table: DeltaTable, limit: Optional[int] = None) -> List[Dict[str, object]]:
    """Commit infos, newest first."""
    return list(table.history(limit))


def read_state(table: DeltaTable) -> Optional[GroupState]:
    """The feature-group state as of the table's loaded version."""
    version = table.version()
    # delta-rs reads history from the newest commit but numbers it down from the *loaded* version, so for an
    # older loaded version read the history of a freshly opened (latest) table.
    latest = DeltaTable(table.table_uri, storage_options=options_of(table))  # already delta-rs options
    entries = history(latest, None) if version < latest.version() else history(table, 3)
    for entry in entries:
        if int(entry.get("version", -1)) > version:
            continue
        state, _ = decode_commit_metadata(entry)
        if state is not None:
            return state
    config = table.metadata().configuration or {}
    if STATE_KEY in config and config[STATE_KEY]:
        return GroupState.from_json(str(config[STATE_KEY]))
    return None


def options_of(table: DeltaTable) -> Optional[Dict[str, str]]:
    """The (delta-rs) storage options ``table`` was opened with."""
    return getattr(table, "_storage_options", None)


def live_files(table: DeltaTable, start_date: Optional[dt.date] = None,
               end_date: Optional[dt.date] = None) -> List[LiveFile]:
    """Data files of the loaded snapshot whose partition date lies in [start_date, end_date] (bounds optional)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    paths = actions.column("path").to_pylist()
    sizes = actions.column("size_bytes").to_pylist()
    records = actions.column("num_records").to_pylist() if "num_records" in actions.column_names else [None] * len(paths)
    part_name = f"partition.{PARTITION_COL}"
    dates = actions.column(part_name).to_pylist() if part_name in actions.column_names else [None] * len(paths)
    root = table.table_uri.rstrip("/")
    out = []
    for path, size, recs, date in zip(paths, sizes, records, dates):
        if isinstance(date, str):
            date = dt.date.fromisoformat(date)
        if date is not None and ((start_date and date < start_date) or (end_date and date > end_date)):
            continue
        out.append(LiveFile(uri=f"{root}/{path}", path=path, date=date, seq=seq_of_file_name(path),
                            size=int(size), num_records=recs))
    out.sort(key=lambda f: f.path)
    return out


def app_version(uri: str, app_id: str, storage_options: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """The last idempotent-write version recorded for ``app_id`` (Delta ``txn`` action), or None."""
    table = open_table(uri, storage_options=storage_options)
    return None if table is None else table.transaction_version(app_id)


def filesystem(uri: str, storage_options: Optional[Mapping[str, str]] = None) -> Tuple[pafs.FileSystem, str]:
    """The pyarrow file system of a table URI and the path on it (see :func:`seeknal_spark.storage.filesystem`)."""
    return storage.filesystem(uri, storage_options)


def read_files_arrow(table: DeltaTable, files: Sequence[LiveFile], file_col: str) -> pa.Table:
    """The rows of ``files`` (live files of ``table``) read with pyarrow, in the table's data schema (columns a
    file lacks read as null), plus ``file_col``: each row's file path. For tables DuckDB cannot read directly
    (S3: no DuckDB extension is downloaded at run time)."""
    import pyarrow.dataset as ds

    schema = pa.schema(table.schema().to_arrow())
    schema = pa.schema([f for f in schema if f.name != PARTITION_COL])
    fs, _ = storage.filesystem(table.table_uri, options_of(table))
    paths = [storage.fs_path(f.uri) for f in files]
    try:
        dataset = ds.dataset(paths, schema=schema, format="parquet", filesystem=fs)
        parts = []
        for fragment in dataset.get_fragments():
            part = fragment.to_table(schema=schema)
            parts.append(part.append_column(file_col, pa.array([fragment.path] * part.num_rows, pa.string())))
        empty = schema.empty_table().append_column(file_col, pa.array([], pa.string()))
        return pa.concat_tables([empty] + parts)
    except OSError as exc:
        raise storage.store_error(exc, table.table_uri, f"read the data files of {table.table_uri}",
                                  options_of(table)) from exc


class VersionTaken(Exception):
    """The version a commit was planned for was committed by another writer first."""


@dataclass(frozen=True)
class CommitActions:
    """What one commit changed: partition dates of its added/removed files, txn app ids, a schema change."""

    version: int
    days: FrozenSet[dt.date]
    app_ids: FrozenSet[str]
    metadata_changed: bool
    label: Optional[str] = None  # the seeknal version label of the commit, if any


def commit_files(uri: str, schema_json: str, adds: Sequence[AddAction], *, version: int,
                 replace_days: Sequence[dt.date], user_metadata: str,
                 app_txn: Optional[Tuple[str, int]] = None,
                 storage_options: Optional[Mapping[str, str]] = None) -> int:
    """Commit ``adds`` as version ``version + 1`` (``version`` -1: create the table), removing every live file of
    ``replace_days`` at ``version``, in one Delta transaction. Returns the committed version.

    No automatic retries: when another writer committed ``version + 1`` first, raises :class:`VersionTaken` and
    nothing is committed. A schema that differs from the table's is written in the same commit.
    """
    schema = Schema.from_json(schema_json)
    props = CommitProperties(custom_metadata={"userMetadata": user_metadata}, max_commit_retries=0,
                             app_transactions=[Transaction(app_txn[0], app_txn[1])] if app_txn else None)
    try:
        if version < 0:
            create_table_with_add_actions(storage.object_store_uri(uri), schema, list(adds), mode="error",
                                          partition_by=[PARTITION_COL], commit_properties=props,
                                          storage_options=storage.delta_rs_options(uri, storage_options))
        else:
            table = _delta_table(uri, storage_options, version)
            filters = ([(PARTITION_COL, "in", [d.isoformat() for d in replace_days])] if replace_days
                       else [(PARTITION_COL, "=", "0001-01-01")])  # matches nothing: only adds (and the schema)
            table.create_write_transaction(list(adds), "overwrite", schema, partition_by=[PARTITION_COL],
                                           partition_filters=filters, commit_properties=props)
    except Exception as exc:  # noqa: BLE001 - decided below from the log, not from delta-rs' message
        latest = open_table(uri, storage_options=storage_options)
        if latest is not None and latest.version() > version:
            raise VersionTaken(storage.redact(str(exc), storage_options)) from exc
        if isinstance(exc, OSError):  # object-store failures (a missing bucket, denied access)
            raise storage.store_error(exc, uri, f"commit to the Delta table {uri}", storage_options) from exc
        raise
    return version + 1


def commit_actions(uri: str, version: int, storage_options: Optional[Mapping[str, str]] = None) -> CommitActions:
    """Read one commit file of the log (``_delta_log/<version>.json``): what it changed."""
    fs, root = filesystem(uri, storage_options)
    with fs.open_input_stream(f"{root.rstrip('/')}/_delta_log/{version:020d}.json") as handle:
        lines = handle.read().decode("utf-8").splitlines()
    days: set = set()
    app_ids: set = set()
    metadata = False
    label = None
    for line in lines:
        if not line.strip():
            continue
        action = json.loads(line)
        for kind in ("add", "remove"):
            if kind in action:
                value = (action[kind].get("partitionValues") or {}).get(PARTITION_COL)
                if value:
                    days.add(dt.date.fromisoformat(value))
        if "txn" in action:
            app_ids.add(str(action["txn"].get("appId")))
        if "metaData" in action:
            metadata = True
        if "commitInfo" in action:
            _, write = decode_commit_metadata(action["commitInfo"])
            label = (write or {}).get("label")
    return CommitActions(version, frozenset(days), frozenset(app_ids), metadata, label)


def set_properties(uri: str, state: GroupState, storage_options: Optional[Mapping[str, str]] = None) -> None:
    """Mirror ``state`` into the ``seeknal.*`` table properties (a metadata-only commit)."""
    table = _delta_table(uri, storage_options)
    current = table.metadata().configuration or {}
    wanted = state.table_properties()
    if all(current.get(k) == v for k, v in wanted.items()):
        return
    table.alter.set_table_properties(
        wanted, raise_if_not_exists=False,
        commit_properties=CommitProperties(custom_metadata={"seeknal.operation": "properties"}),
    )


def commit_schema_json(fields: Sequence[Tuple[str, object]]) -> str:
    """Delta schemaString for ordered (name, Spark ``DataType.jsonValue()``) columns; all nullable."""
    return json.dumps({"type": "struct", "fields": [
        {"name": name, "type": type_json, "nullable": True, "metadata": {}} for name, type_json in fields]})
