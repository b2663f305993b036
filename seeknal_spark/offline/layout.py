"""Where things live inside the offline store, and how data files are named.

A group's table is ``<store root>/<project>/<group name>``. Data files are
``_event_date=YYYY-MM-DD/s<seq>-<writer id><tag>-<spark file name>``: ``seq`` is the Delta version the write
planned to commit (tables written by this version hold one row per (keys, event time), so it only orders rows of
older tables, where the later write wins), the writer id names the staging directory ``_staging/<writer id>/``
of the write that produced the file (used by cleanup to tell a live writer's files from a dead one's).
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import unquote, urlparse

from seeknal_spark.definitions import check_name
from seeknal_spark.errors import StoreError

__all__ = ["PARTITION_COL", "SEQ_COL", "STAGING_DIR", "table_uri", "data_file_name", "seq_of_file_name",
           "writer_of_file_name",
           "SEQ_FILE_PATTERN", "local_path"]

PARTITION_COL = "_event_date"
SEQ_COL = "_seq"
STAGING_DIR = "_staging"
SEQ_FILE_PATTERN = r"^s(\d+)-"
_SEQ_RE = re.compile(SEQ_FILE_PATTERN)


def table_uri(store_root: str, project: str, name: str) -> str:
    """The Delta table location of a feature group. Names are checked so they cannot leave the store."""
    check_name(project, "project")
    check_name(name, "feature group name")
    return f"{store_root.rstrip('/')}/{project}/{name}"


def data_file_name(seq: int, spark_file_name: str) -> str:
    """Final name of a data file written by write number ``seq``."""
    return f"s{seq:012d}-{spark_file_name}"


def seq_of_file_name(file_name: str) -> Optional[int]:
    """The write sequence number encoded in a data file's name (None for files written by other engines)."""
    match = _SEQ_RE.match(file_name.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


_WRITER_RE = re.compile(r"^s\d+-([0-9a-f]{32})")


def writer_of_file_name(file_name: str) -> Optional[str]:
    """The writer id (its ``_staging/<id>`` directory) encoded in a data file's name, or None."""
    match = _WRITER_RE.match(file_name.rsplit("/", 1)[-1])
    return match.group(1) if match else None


def local_path(uri: str) -> str:
    """A local filesystem path for a table or file URI; remote URIs are refused with an explanation."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return unquote(parsed.path) if parsed.scheme == "file" else uri
    raise StoreError(f"online export reads local Delta tables only; {uri} is remote: materialize to a local or "
                     "mounted path, or copy the table's files locally first")
