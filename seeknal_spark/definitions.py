"""Plain-Python definitions of the seed workflow: entities and materialization settings.

Nothing in this module imports Spark.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from seeknal_spark.errors import DefinitionError
from seeknal_spark.storage import StorageOptions, as_options

__all__ = [
    "Entity",
    "OfflineStoreEnum",
    "FeatureStoreFileOutput",
    "OfflineStore",
    "OfflineMaterialization",
    "Materialization",
    "check_name",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")
WRITE_MODES = ("overwrite", "append")


def check_name(value: str, what: str) -> str:
    """Return ``value`` if it is a safe name (letters, digits, ``_`` and ``-``), else raise.

    Names become directory names of the store, so they may not contain path separators, dots, control
    characters or a trailing newline (the whole string must match, ``$`` alone would accept ``"name\\n"``).
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise DefinitionError(
            f"{what} {value!r} is not a valid name: use letters, digits, '_' or '-', "
            "starting with a letter or '_' (at most 128 characters)"
        )
    return value


@dataclass(frozen=True)
class Entity:
    """The thing features describe, identified by one or more join keys.

    Example:
        >>> user = Entity(name="user", join_keys=["user_id"])
        >>> store_item = Entity(name="store_item", join_keys=["store_id", "item_id"])
    """

    name: str
    join_keys: Sequence[str]
    description: Optional[str] = None

    def __post_init__(self) -> None:
        check_name(self.name, "entity name")
        keys = [self.join_keys] if isinstance(self.join_keys, str) else list(self.join_keys)
        if not keys:
            raise DefinitionError(f"entity {self.name!r} needs at least one join key")
        if len(set(keys)) != len(keys):
            raise DefinitionError(f"entity {self.name!r} lists a join key twice: {keys}")
        for key in keys:
            if not isinstance(key, str) or not key:
                raise DefinitionError(f"entity {self.name!r}: join key {key!r} must be a non-empty string")
        object.__setattr__(self, "join_keys", tuple(keys))


class OfflineStoreEnum(str, enum.Enum):
    """Kinds of offline store. ``FILE`` is a directory of Delta tables (local path or URI)."""

    FILE = "file"


@dataclass(frozen=True)
class FeatureStoreFileOutput:
    """Location of a file-based offline store: a directory holding one Delta table per feature group.

    ``path`` is local or ``s3://bucket/prefix``. ``storage_options`` (S3 only, optional) are delta-rs keys:
    ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``,
    ``AWS_ALLOW_HTTP``; without them the standard AWS chain (environment, profile, instance role) is used. They
    are never shown by repr and never compared (see :mod:`seeknal_spark.storage`).
    """

    path: str
    storage_options: Optional[Mapping[str, str]] = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "storage_options", as_options(self.storage_options))


@dataclass(frozen=True)
class OfflineStore:
    """An offline store: a kind, a name and where it lives.

    Example:
        >>> store = OfflineStore(kind=OfflineStoreEnum.FILE, name="local",
        ...                      value=FeatureStoreFileOutput(path="/tmp/feature_store"))
    """

    kind: OfflineStoreEnum = OfflineStoreEnum.FILE
    name: Optional[str] = None
    value: Optional[FeatureStoreFileOutput] = None

    def root(self) -> str:
        """The store's root directory, falling back to the configured embedded default."""
        if self.value is not None and self.value.path:
            return str(self.value.path)
        from seeknal_spark.config import default_offline_store_path

        return default_offline_store_path()

    def storage_options(self) -> StorageOptions:
        """The store's storage options (empty: the standard AWS chain, or a local store)."""
        return as_options(self.value.storage_options if self.value is not None else None)


@dataclass(frozen=True)
class OfflineMaterialization:
    """How a feature group is written to its offline store."""

    store: Optional[OfflineStore] = None
    mode: str = "overwrite"

    def __post_init__(self) -> None:
        if self.mode not in WRITE_MODES:
            raise DefinitionError(f"write mode {self.mode!r} is not one of {WRITE_MODES}")

    def resolved_store(self) -> OfflineStore:
        return self.store if self.store is not None else OfflineStore()


@dataclass(frozen=True)
class Materialization:
    """Where and how a feature group is materialized.

    Example:
        >>> m = Materialization(event_time_col="event_time")
        >>> m.offline_materialization.mode
        'overwrite'
    """

    event_time_col: str
    offline: bool = True
    online: bool = False
    offline_materialization: OfflineMaterialization = field(default_factory=OfflineMaterialization)

    def __post_init__(self) -> None:
        if not isinstance(self.event_time_col, str) or not self.event_time_col:
            raise DefinitionError("Materialization needs event_time_col, the name of the event-time column")
