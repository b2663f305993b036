"""Exceptions raised by seeknal_spark.

Every error names the column, key or value at fault and says what to do about it.
"""

from __future__ import annotations

from typing import Sequence

__all__ = [
    "SeeknalError",
    "DefinitionError",
    "SchemaError",
    "DataError",
    "StoreError",
    "UnsupportedTableError",
    "ConcurrentWriteError",
    "VersionLabelError",
    "LabelExistsError",
    "ManifestError",
    "SpineMismatchError",
    "ParityError",
    "StoredDefinitionError",
]


class SeeknalError(Exception):
    """Base class of every error raised by seeknal_spark."""


class DefinitionError(SeeknalError, ValueError):
    """A feature group, entity, lookup or materialization is defined wrongly."""


class SchemaError(SeeknalError, TypeError):
    """A DataFrame's columns or types do not match what the feature group expects."""


class DataError(SeeknalError, ValueError):
    """Rows about to be written break a rule (null keys, duplicates, out-of-range times)."""


class StoreError(SeeknalError, RuntimeError):
    """The offline or online store is missing, unreadable or was changed underneath us."""


class UnsupportedTableError(StoreError):
    """A Delta table uses a feature the portable reader cannot honour."""


class ConcurrentWriteError(StoreError):
    """Another writer committed a conflicting change first and the write could not be reconciled; re-run it."""


class VersionLabelError(DefinitionError):
    """A feature-version label (``write(version=...)``, ``FeatureLookup(version=...)``) is malformed or unknown."""


class LabelExistsError(VersionLabelError):
    """A write reuses a version label that already names another commit of the group (labels are unique)."""

    def __init__(self, message: str, label: str, delta_version: int) -> None:
        super().__init__(message)
        self.label = label
        self.delta_version = delta_version


class ManifestError(DefinitionError):
    """A training-set manifest is malformed, or the stored groups no longer match what it records."""


class SpineMismatchError(DataError):
    """The spine given to rebuild a training set is not the spine the manifest was built from."""


class ParityError(SeeknalError):
    """A training manifest and an online table disagree; ``differences`` lists every disagreement."""

    def __init__(self, table: str, differences: Sequence[str]) -> None:
        self.differences = list(differences)
        super().__init__(f"online table {table} does not serve what the model was trained on "
                         f"({len(self.differences)} difference(s)):\n  - " + "\n  - ".join(self.differences)
                         + "\nrepublish the online table from the training set's lookups (same groups, features, "
                         "names, TTLs and schema versions), or retrain")


class StoredDefinitionError(SchemaError, DefinitionError):
    """The join keys or event-time column given (by a write, a lookup or ``get_or_create``) differ from the ones
    stored in the group's Delta log. A SchemaError and a DefinitionError, so either ``except`` catches it."""
