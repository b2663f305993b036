"""Embedded-default configuration: where the stores live.

Resolution order for each setting: environment variable, then ``seeknal.ini`` in the configuration directory
(``$SEEKNAL_CONF_DIR``, else ``./conf``), then a built-in default under ``./seeknal_store``.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Optional

__all__ = ["conf_dir", "default_offline_store_path", "default_online_store_path"]

ENV_CONF_DIR = "SEEKNAL_CONF_DIR"
ENV_OFFLINE = "SEEKNAL_OFFLINE_STORE"
ENV_ONLINE = "SEEKNAL_ONLINE_STORE"


def conf_dir() -> Path:
    """The configuration directory: ``$SEEKNAL_CONF_DIR`` or ``./conf``."""
    return Path(os.environ.get(ENV_CONF_DIR) or "conf")


def _ini_value(section: str, option: str) -> Optional[str]:
    path = conf_dir() / "seeknal.ini"
    if not path.is_file():
        return None
    parser = configparser.ConfigParser()
    parser.read(path)
    value = parser.get(section, option, fallback=None)
    return value or None


def _resolve(env: str, option: str, default: str) -> str:
    value = os.environ.get(env) or _ini_value("store", option) or default
    if "://" in value:
        return value
    return str(Path(value).expanduser().resolve())


def default_offline_store_path() -> str:
    """Root of the embedded offline store (a directory of Delta tables)."""
    return _resolve(ENV_OFFLINE, "offline_path", "seeknal_store/offline")


def default_online_store_path() -> str:
    """Root of the embedded online store (a directory of DuckDB lookup files)."""
    return _resolve(ENV_ONLINE, "online_path", "seeknal_store/online")
