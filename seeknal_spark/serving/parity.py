"""Training-serving parity of an online table: :func:`validate_parity` (Spark-free).

It compares what a model was trained on (a training-set manifest) with what an online table serves: feature names
and order, types, stored names, source groups (table, join keys, event time, TTL) and their schema versions, as
lookup specs (``serving/spec_parity.py``), and raises :class:`~seeknal_spark.errors.ParityError` listing every
difference. The Spark-based value comparison is ``seeknal_spark.workflows.skew.check_skew``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Union

from seeknal_spark.errors import DefinitionError, ParityError
from seeknal_spark.serving.online import OnlineFeatures
from seeknal_spark.vocabulary.manifest_file import load_manifest

__all__ = ["ParityError", "validate_parity", "open_online"]


def open_online(online_table: Any, store_root: Optional[str]) -> OnlineFeatures:
    """``online_table`` itself when it is an OnlineFeatures, else the table of that name / path / URI, opened."""
    if isinstance(online_table, OnlineFeatures):
        return online_table
    if isinstance(online_table, (str, os.PathLike)):
        return OnlineFeatures.open(os.fspath(online_table), store_root=store_root)
    raise DefinitionError(f"online_table must be an OnlineFeatures or a table name/path, got "
                          f"{type(online_table).__name__}")


def validate_parity(manifest: Union[Mapping[str, Any], str, "os.PathLike[str]"], online_table: Any, *,
                    check_delta_versions: bool = False, store_root: Optional[str] = None) -> None:
    """Raise ParityError unless ``online_table`` serves exactly the features of the training-set ``manifest``.

    Compared: the set and order of feature names (the online order: features grouped by join keys, lookups in
    order), each feature's type, stored name and source group, and per source group its table, join keys,
    event-time column, TTL and schema version. Delta versions normally differ (the online table is built from
    newer data); ``check_delta_versions=True`` requires them to be equal too.

    Args:
        manifest: a training-set manifest (dict, JSON path or JSON text).
        online_table: an ``OnlineFeatures``, or a table name / directory / ``s3://`` URI to open.
        check_delta_versions: also require the online sources' Delta versions to equal the training ones.
        store_root: online store root used to open ``online_table`` by name.

    Example:
        >>> validate_parity("models/churn/train.json", OnlineFeatures.open("churn_features"))  # doctest: +SKIP
    """
    open_online(online_table, store_root).validate_parity(load_manifest(manifest),
                                                          check_delta_versions=check_delta_versions)
