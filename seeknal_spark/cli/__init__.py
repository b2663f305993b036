"""Building blocks of the ``seeknal-spark`` command line: group specs (reference or YAML), time ranges and chunks,
and the commands themselves. Nothing here calls ``sys.exit`` or configures logging (``seeknal_spark.cli`` does).
"""

from __future__ import annotations

from seeknal_spark.jobs_lib.spec import (
    GroupSpec,
    UsageError,
    chunk_run_id,
    load_group_spec,
    parse_duration,
    plan_chunks,
)

__all__ = ["GroupSpec", "UsageError", "chunk_run_id", "load_group_spec", "parse_duration", "plan_chunks"]
