"""Test-side reading of seeknal commit metadata straight from delta-rs history (independent of the library)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from deltalake import DeltaTable


def user_metadata(entry: Dict[str, Any]) -> Dict[str, Any]:
    """The seeknal part of one commit info: ``{"seeknal.state": ..., "seeknal.write": ...}`` or {}."""
    raw = entry.get("userMetadata")
    return json.loads(raw) if raw else {}


def write_info(entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    return user_metadata(entry).get("seeknal.write")


def writes(table_path: str) -> List[Dict[str, Any]]:
    """Commit infos of seeknal data commits, newest first, each with its ``seeknal.write`` under "write"."""
    out = []
    for entry in DeltaTable(table_path).history():
        info = write_info(entry)
        if info is not None:
            out.append({**entry, "write": info})
    return out
