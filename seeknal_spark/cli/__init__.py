"""The ``seeknal-spark`` command line, the one interface package: ``main`` (argument parsing, exit codes, logging:
``cli/main.py``) and its building blocks: group specs (reference or YAML), time ranges and chunks (``spec``), the
Spark jobs (``commands``), the operator commands without Spark (``operate``, ``report``) and the spark-submit
planner (``submit_plan``). ``jobs/`` holds the thin spark-submit entry points that call ``main``.
"""

from __future__ import annotations

from seeknal_spark.cli.main import main
from seeknal_spark.cli.spec import (
    GroupSpec,
    UsageError,
    chunk_run_id,
    load_group_spec,
    parse_duration,
    plan_chunks,
)

__all__ = ["main", "GroupSpec", "UsageError", "chunk_run_id", "load_group_spec", "parse_duration", "plan_chunks"]
