"""Errors raised by data validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from seeknal_spark.errors import DataError, DefinitionError, SeeknalError

if TYPE_CHECKING:  # pragma: no cover
    from seeknal_spark.validation.outcome import ValidationOutcome

__all__ = ["ValidationFailed", "GreatExpectationsMissing", "SuiteError"]

INSTALL_HINT = "pip install 'great-expectations==1.24.1'"


class ValidationFailed(DataError):
    """A write's rows failed expectations under the ``strict`` policy; nothing was committed.

    ``outcome`` holds every failed expectation with its column and observed values.
    """

    def __init__(self, message: str, outcome: Optional["ValidationOutcome"] = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class SuiteError(DefinitionError):
    """An expectation suite (GX object, dict or file in ``conf/``) cannot be loaded or is invalid."""


class GreatExpectationsMissing(SeeknalError, ImportError):
    """Validation was configured but Great Expectations is not installed."""
