"""Running Great Expectations on a Spark DataFrame with an ephemeral context.

Great Expectations is imported here, inside functions, only when a validation runs.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from seeknal_spark.validation.errors import INSTALL_HINT, GreatExpectationsMissing, SuiteError
from seeknal_spark.validation.outcome import ValidationOutcome, failure_from_result

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

__all__ = ["import_gx", "run_expectations", "RESULT_FORMAT"]


# SUMMARY: counts plus up to 20 example unexpected values per failed column-map expectation.
RESULT_FORMAT = "SUMMARY"
# First pass: success flags from aggregate metrics only.
FAST_FORMAT = "BOOLEAN_ONLY"


def import_gx() -> Any:
    """The ``great_expectations`` module, or a clear error saying how to install it."""
    try:
        import great_expectations as gx
    except ImportError as exc:
        raise GreatExpectationsMissing(
            f"data validation needs Great Expectations, which is not installed ({exc}); install it with "
            f"{INSTALL_HINT} (seeknal_spark declares it as a dependency), or turn validation off with "
            "FeatureGroup.set_validation(enabled=False)") from exc
    return gx


def _build(expectations: Sequence[Dict[str, Any]], suite_label: str) -> List[Any]:
    """GX Expectation objects; an invalid configuration raises SuiteError naming it (GX would drop it silently)."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    out = []
    user_index = 0
    for item in expectations:
        builtin = bool(((item.get("meta") or {}).get("seeknal") or {}).get("builtin"))
        i = "built-in" if builtin else f"#{user_index}"
        user_index += 0 if builtin else 1
        try:
            config = ExpectationConfiguration(type=item["type"], kwargs=dict(item.get("kwargs") or {}),
                                              meta=dict(item.get("meta") or {}))
            out.append(config.to_domain_obj())
        except Exception as exc:  # noqa: BLE001 - GX raises pydantic and its own errors here
            raise SuiteError(f"expectation {i} ({item.get('type')}, kwargs {item.get('kwargs')}) of "
                             f"{suite_label} is invalid: {exc}") from exc
    return out


def _context(gx: Any) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(), analytics_enabled=False,
                               progress_bars=ProgressBarsConfig(globally=False))
    return gx.get_context(project_config=config, mode="ephemeral")


def _run(gx: Any, context: Any, batch: Any, df: "DataFrame", name: str, objects: List[Any],
         result_format: str) -> Tuple[List[Any], Dict[str, Any]]:
    """Run one suite; returns the suite's expectations (with their ids) and GX's result as a JSON dict."""
    token = uuid.uuid4().hex[:8]
    gx_suite = context.suites.add(gx.ExpectationSuite(name=f"{name}-{token}", expectations=objects))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"seeknal-{token}", data=batch, suite=gx_suite))
    result = definition.run(batch_parameters={"dataframe": df}, result_format=result_format)
    return list(gx_suite.expectations), result.to_json_dict()


def run_expectations(df: "DataFrame", expectations: Sequence[Dict[str, Any]], *, suite: Optional[str],
                     source: Optional[str], policy: str) -> ValidationOutcome:
    """Validate ``df`` against ``expectations`` (GX JSON form) and return a compact outcome.

    Two passes keep the passing case cheap: every expectation runs with ``BOOLEAN_ONLY`` (aggregate metrics only,
    a few Spark jobs); only the expectations that failed run again with ``SUMMARY`` to collect observed values and
    counts. The DataFrame is not persisted here (the GX datasource uses ``persist=False``, which would otherwise
    cache it and never release it); callers decide (see ``validate_frame``).
    """
    gx = import_gx()
    label = f"suite {suite!r}" if suite else "the built-in expectations"
    objects = _build(expectations, label)  # refuses invalid configurations before anything runs
    started = time.perf_counter()
    context = _context(gx)
    batch = (context.data_sources.add_spark(f"seeknal-{uuid.uuid4().hex[:8]}", persist=False)
             .add_dataframe_asset("rows").add_batch_definition_whole_dataframe("all"))
    name = suite or "seeknal-builtin"
    added, first = _run(gx, context, batch, df, name, objects, FAST_FORMAT)
    by_id = {e.id: spec for e, spec in zip(added, expectations)}
    failed_specs = [by_id[r["expectation_config"]["id"]] for r in first.get("results") or []
                    if not r.get("success") and r.get("expectation_config", {}).get("id") in by_id]
    results: List[Dict[str, Any]] = []
    if failed_specs:
        _, second = _run(gx, context, batch, df, name, _build(failed_specs, label), RESULT_FORMAT)
        results = second.get("results") or []
    failures = tuple(failure_from_result(r) for r in results if not r.get("success"))
    if failed_specs and not failures:  # flaky data source between passes: keep the first pass's verdict
        failures = tuple(failure_from_result(r) for r in first.get("results") or [] if not r.get("success"))
    rows = next((r["result"]["element_count"] for r in results
                 if isinstance(r.get("result"), dict) and "element_count" in r["result"]), None)
    stats = first.get("statistics") or {}
    evaluated = int(stats.get("evaluated_expectations", len(expectations)))
    return ValidationOutcome(
        success=not failures, policy=policy, suite=suite, source=source, rows=rows, evaluated=evaluated,
        successful=evaluated - len(failures), failures=failures,
        seconds=round(time.perf_counter() - started, 3), gx_version=gx.__version__)
