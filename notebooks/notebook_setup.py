"""The setup notebooks 01-03 share: the ``store`` and ``project`` widgets and where the store lives.

A plain Python file (on Databricks a workspace file, not a notebook): keep it next to the notebooks. Databricks
Runtime 14 and later run a notebook in its own directory and put that directory on ``sys.path``, so the notebooks
find it with ``import notebook_setup``; the tests run them the same way.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

__all__ = ["StoreSettings", "default_store", "define_widgets", "store_settings"]

UC_VOLUME_STORE = "/Volumes/main/default/seeknal/seeknal_store"
LOCAL_STORE = "./seeknal_store"


class StoreSettings(NamedTuple):
    """The store root, its ``offline/`` and ``online/`` locations, and the project name."""

    store: str
    offline_store: str
    online_store: str
    project: str


def default_store() -> str:
    """Where the store lives by default: on Databricks a Unity Catalog volume (one path that Spark and the
    Spark-free readers, delta-rs and DuckDB, both open through the /Volumes mount); elsewhere ./seeknal_store."""
    return UC_VOLUME_STORE if os.environ.get("DATABRICKS_RUNTIME_VERSION") else LOCAL_STORE


def define_widgets(dbutils: Any) -> None:
    """Define the widgets every notebook has. Edit the ``store`` widget to use another location (another volume,
    or s3://... with credentials for Spark and delta-rs)."""
    dbutils.widgets.text("store", default_store(), "Store root (offline/ and online/ below it)")
    dbutils.widgets.text("project", "notebooks", "Project")


def store_settings(dbutils: Any) -> StoreSettings:
    """Read the ``store`` and ``project`` widgets; a blank store or a missing Unity Catalog volume is an error
    naming what to set or create."""
    store = dbutils.widgets.get("store").strip().rstrip("/")
    if not store:
        raise ValueError(f"the 'store' widget is empty: set it to the store root, e.g. {default_store()}")
    if "://" not in store:
        store = os.path.abspath(store)
    if store.startswith("/Volumes/") and not os.path.isdir("/".join(store.split("/")[:5])):
        volume = ".".join(store.split("/")[2:5])
        raise FileNotFoundError(f"Unity Catalog volume {volume} does not exist: create it (CREATE VOLUME {volume}) "
                                "or set the 'store' widget to a location you can write")
    return StoreSettings(store, f"{store}/offline", f"{store}/online", dbutils.widgets.get("project"))
