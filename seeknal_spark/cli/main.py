"""``seeknal-spark``: the command line behind spark-submit jobs, Airflow tasks and scripts.

Jobs: ``materialize``, ``backfill``, ``training-set``, ``publish-online``. Dates are ISO-8601 (templated by
Airflow as ``{{ data_interval_start }}``); ``--run-id`` makes writes idempotent; ``--dry-run`` checks arguments and
definitions without starting Spark. Operator commands (no Spark): ``list``, ``describe GROUP``, ``history GROUP``,
``vacuum GROUP``. ``--json`` prints the result as JSON on stdout (logs and progress go to stderr).
Exit codes: 0 success, 1 failure, 2 usage error, 3 data validation rejected.

Example:
    seeknal-spark materialize seeknal_spark.examples.retail:user_daily_orders \\
        --start 2024-03-01 --end 2024-03-02 --end-exclusive --run-id scheduled__2024-03-01
    seeknal-spark backfill conf/feature_groups/user_daily_orders.yaml --start 2024-01-01 --end 2024-04-30 --chunk 7d
    seeknal-spark list --store seeknal_store/offline --json
    seeknal-spark describe user_daily_orders
    seeknal-spark vacuum default/user_daily_orders --retention 7d --dry-run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import uuid
from typing import Any, List, Optional, Sequence

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_DATA"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_DATA = 0, 1, 2, 3
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
log = logging.getLogger("seeknal_spark.cli")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` returns the usage exit code."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        from seeknal_spark.cli.spec import UsageError

        raise UsageError(f"{self.prog}: {message}")


def _common(p: argparse.ArgumentParser, times: bool = True) -> None:
    p.add_argument("--run-id", help="idempotency key: a second write with the same run id is skipped "
                                    "(default: a new id per invocation; backfill derives one from its arguments)")
    p.add_argument("--store", help="offline store root (default: the definition's store, else conf/seeknal.ini)")
    p.add_argument("--dry-run", action="store_true", help="validate arguments and definitions; start no Spark work")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    if times:
        p.add_argument("--start", help="ISO-8601 start of the event-time range (inclusive; naive = UTC)")
        p.add_argument("--end", help="ISO-8601 end of the event-time range, inclusive (a date alone means the end "
                                     "of that day) unless --end-exclusive")
        p.add_argument("--end-exclusive", action="store_true",
                       help="treat --end as exclusive (Airflow's data_interval_end)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``seeknal-spark`` (errors raise UsageError instead of exiting)."""
    parser = _Parser(prog="seeknal-spark", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    group_help = "'package.module:name', a YAML definition file, or a name in conf/feature_groups/"

    m = sub.add_parser("materialize", help="compute a feature group for a time range and write it (one commit)")
    m.add_argument("group", help=group_help)
    m.add_argument("--mode", choices=["overwrite", "append"], help="write mode (default: the definition's)")
    _common(m)

    b = sub.add_parser("backfill", help="materialize a long range in chunks, one commit per chunk, resumable")
    b.add_argument("group", help=group_help)
    b.add_argument("--chunk", default="7d", help="chunk length: 7d, 12h, 2w ... (default 7d)")
    b.add_argument("--mode", choices=["overwrite", "append"], help="write mode (default: the definition's)")
    _common(b)

    t = sub.add_parser("training-set", help="point-in-time features for a spine file, written to --output")
    t.add_argument("--group", action="append", required=True, help=group_help + " (repeatable)")
    t.add_argument("--spine", required=True, help="spine file or directory (parquet, .csv, .json)")
    t.add_argument("--date-col", required=True, help="the spine's time column")
    t.add_argument("--output", required=True, help="output path (parquet unless it ends in .csv/.json)")
    t.add_argument("--keep-cols", default="", help="comma-separated spine columns to keep (e.g. the label)")
    t.add_argument("--ttl", help="maximum feature age (7d, 12h ...)")
    t.add_argument("--fill-null", action="append", default=[], metavar="VALUE:TYPE",
                   help="fill null features of TYPE with VALUE, e.g. 0:bigint, 0.0:double (repeatable)")
    t.add_argument("--spine-format", choices=["parquet", "csv", "json"])
    t.add_argument("--output-format", choices=["parquet", "csv", "json"])
    _common(t, times=False)

    p = sub.add_parser("publish-online", help="publish the latest feature values as a DuckDB online table")
    p.add_argument("--group", action="append", required=True, help=group_help + " (repeatable)")
    p.add_argument("--name", required=True, help="online table name")
    p.add_argument("--as-of", help="serve rows with event time <= this (default: --end, else now)")
    p.add_argument("--ttl", help="do not serve rows older than as_of - ttl (7d, 12h ...)")
    p.add_argument("--online-store", help="online store root (default: conf/seeknal.ini)")
    p.add_argument("--target", help="s3://bucket/prefix to publish to instead of the local online store")
    p.add_argument("--keep", type=int, default=3, help="older versions to keep (default 3)")
    _common(p)

    ref_help = ("a stored group: NAME (with --project), PROJECT/NAME, or a definition ('package.module:name', "
                "YAML file, name in conf/feature_groups/)")
    ls = sub.add_parser("list", help="the feature groups in a store")
    ls.add_argument("--project", help="only this project")
    _operator(ls)
    d = sub.add_parser("describe", help="definition, schema versions, watermarks, last writes, validation, "
                                        "freshness of a group")
    d.add_argument("group", help=ref_help)
    d.add_argument("--project", help="project of NAME (default: default)")
    d.add_argument("--freshness-threshold", default="1d", help="age after which the group is stale (default 1d)")
    d.add_argument("--writes", type=int, default=5, help="how many recent writes to show (default 5)")
    _operator(d)
    h = sub.add_parser("history", help="the Delta commits of a group, newest first")
    h.add_argument("group", help=ref_help)
    h.add_argument("--project", help="project of NAME (default: default)")
    h.add_argument("--limit", type=int, default=20, help="newest N commits (default 20; 0 = all)")
    _operator(h)
    v = sub.add_parser("vacuum", help="delete data files no table version within --retention needs")
    v.add_argument("group", help=ref_help)
    v.add_argument("--project", help="project of NAME (default: default)")
    v.add_argument("--retention", default="7d", help="keep files needed by versions newer than this (default 7d; "
                                        "0 deletes every unreferenced file now)")
    v.add_argument("--dry-run", action="store_true", help="list the files that would be deleted; delete nothing")
    _operator(v)
    return parser


OPERATOR_COMMANDS = ("list", "describe", "history", "vacuum")


def _operator(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="offline store root (default: the definition's store, else conf/seeknal.ini)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _fill_nulls(values: Sequence[str]) -> List[Any]:
    from seeknal_spark.cli.spec import UsageError
    from seeknal_spark.retrieval import FillNull

    fills = []
    for item in values:
        raw, sep, type_name = item.rpartition(":")
        if not sep or not raw or not type_name:
            raise UsageError(f"--fill-null {item!r} must be VALUE:TYPE, e.g. 0.0:double")
        value: Any = raw
        try:
            if type_name in ("double", "float"):
                value = float(raw)
            elif type_name in ("bigint", "int", "long", "integer", "smallint", "tinyint"):
                value = int(raw)
            elif type_name in ("boolean", "bool"):
                value = raw.lower() in ("1", "true", "yes")
        except ValueError as exc:
            raise UsageError(f"--fill-null {item!r}: {raw!r} is not a {type_name}") from exc
        fills.append(FillNull(value, type_name))
    return fills


def _group_ref(args: argparse.Namespace) -> Any:
    """The stored group an operator command names (see ``ref_help``)."""
    from seeknal_spark.config import default_offline_store_path
    from seeknal_spark.definitions import check_name
    from seeknal_spark.errors import DefinitionError
    from seeknal_spark.cli.operate import GroupRef
    from seeknal_spark.cli.spec import UsageError, load_group_spec

    value: str = args.group
    root = args.store or default_offline_store_path()
    try:
        if value.count("/") == 1 and ":" not in value and not value.endswith((".yaml", ".yml")):
            project, name = value.split("/")
            return GroupRef(root, check_name(project, "project"), check_name(name, "feature group name"))
        if ":" in value or value.endswith((".yaml", ".yml")) or "/" in value:
            group = load_group_spec(value).feature_group(args.store)
            return GroupRef(group.store.root(), group.project, group.name)
        check_name(value, "feature group name")
    except DefinitionError as exc:
        raise UsageError(str(exc)) from exc
    try:
        group = load_group_spec(value).feature_group(args.store)   # a definition in conf/feature_groups/
        if args.project in (None, group.project):
            return GroupRef(group.store.root(), group.project, group.name)
    except UsageError:
        pass
    return GroupRef(root, check_name(args.project or "default", "project"), value)


def run_operator(args: argparse.Namespace) -> Any:
    """Execute an operator command (list, describe, history, vacuum); returns JSON-ready data."""
    from seeknal_spark.config import default_offline_store_path
    from seeknal_spark.cli import operate
    from seeknal_spark.cli.spec import UsageError, parse_duration

    if args.command == "list":
        return operate.list_groups(args.store or default_offline_store_path(), args.project)
    ref = _group_ref(args)
    if args.command == "describe":
        if args.writes < 0:
            raise UsageError("--writes must be >= 0")
        return operate.describe_group(ref, parse_duration(args.freshness_threshold, "--freshness-threshold"),
                                      writes=args.writes)
    if args.command == "history":
        if args.limit < 0:
            raise UsageError("--limit must be >= 0")
        return operate.group_history(ref, args.limit or None)
    zero = args.retention.strip().rstrip("wdhms").strip() == "0"      # "0", "0h": vacuum everything unreferenced
    retention = dt.timedelta(0) if zero else parse_duration(args.retention, "--retention")
    return operate.vacuum_group(ref, retention, dry_run=args.dry_run)


def run(args: argparse.Namespace) -> Any:
    """Execute a parsed command (raises on failure)."""
    from seeknal_spark.cli import commands
    from seeknal_spark.cli.spec import UsageError, load_group_spec, parse_duration, parse_time

    start = parse_time(getattr(args, "start", None), "--start")
    end = parse_time(getattr(args, "end", None), "--end", end_exclusive=getattr(args, "end_exclusive", False),
                     is_end=True)
    if args.command == "materialize":
        return commands.materialize(load_group_spec(args.group), start, end, run_id=args.run_id, mode=args.mode,
                                    store=args.store, dry_run=args.dry_run)
    if args.command == "backfill":
        if start is None or end is None:
            raise UsageError("backfill needs both --start and --end")
        return commands.backfill(load_group_spec(args.group), start, end, parse_duration(args.chunk, "--chunk"),
                                 run_id=args.run_id, mode=args.mode, store=args.store, dry_run=args.dry_run)
    if args.command == "training-set":
        ttl = parse_duration(args.ttl, "--ttl") if args.ttl else None
        keep = [c.strip() for c in args.keep_cols.split(",") if c.strip()]
        return commands.training_set([load_group_spec(g) for g in args.group], args.spine, args.date_col,
                                     args.output, run_id=args.run_id, keep_cols=keep, ttl=ttl,
                                     fill_nulls=_fill_nulls(args.fill_null), store=args.store,
                                     spine_format=args.spine_format, output_format=args.output_format,
                                     dry_run=args.dry_run)
    if args.command == "publish-online":
        ttl = parse_duration(args.ttl, "--ttl") if args.ttl else None
        if args.keep < 0:
            raise UsageError("--keep must be >= 0")
        return commands.publish_online([load_group_spec(g) for g in args.group], args.name, run_id=args.run_id,
                                       as_of=parse_time(args.as_of, "--as-of"), start=start, end=end, ttl=ttl,
                                       store=args.store, online_root=args.online_store, target=args.target,
                                       keep=args.keep, dry_run=args.dry_run)
    if args.command in OPERATOR_COMMANDS:
        return run_operator(args)
    raise UsageError("a command is required: materialize, backfill, training-set, publish-online, list, "
                     "describe, history or vacuum")


def _default_run_id(args: argparse.Namespace) -> str:
    if args.command == "backfill":  # deterministic, so rerunning the same backfill resumes it
        return f"backfill:{args.group}:{args.start}..{args.end}{'[' if args.end_exclusive else ']'}:{args.chunk}"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"manual:{stamp}-{uuid.uuid4().hex[:8]}"


def exit_code(exc: BaseException) -> int:
    """The exit code for an error: 3 data rejected, 2 usage/definition error, 1 anything else."""
    from seeknal_spark.errors import DataError, DefinitionError

    if isinstance(exc, DataError):  # includes seeknal_spark.validation.ValidationFailed
        return EXIT_DATA
    if isinstance(exc, DefinitionError):  # includes UsageError and validation.SuiteError
        return EXIT_USAGE
    return EXIT_FAILURE


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``seeknal-spark`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code, never exits."""
    argv = list(sys.argv[1:] if argv is None else argv)
    package_logger = logging.getLogger("seeknal_spark")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    old_level, old_propagate = package_logger.level, package_logger.propagate
    package_logger.addHandler(handler)
    package_logger.propagate = False
    package_logger.setLevel(logging.INFO)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        except Exception as exc:  # noqa: BLE001 - usage errors
            log.error("usage error: %s (see seeknal-spark --help)", exc)
            return EXIT_USAGE
        if args.command is None:
            log.error("usage error: a command is required: materialize, backfill, training-set, publish-online, "
                      "list, describe, history or vacuum (see seeknal-spark --help)")
            return EXIT_USAGE
        package_logger.setLevel(args.log_level)
        if args.command in OPERATOR_COMMANDS:
            args.run_id = None
        else:
            args.run_id = args.run_id or _default_run_id(args)
        try:
            summary = run(args)
        except KeyboardInterrupt:
            log.error("run=%s step=interrupted", args.run_id)
            return 130
        except Exception as exc:  # noqa: BLE001 - every failure becomes an exit code
            code = exit_code(exc)
            kind = {EXIT_DATA: "data rejected", EXIT_USAGE: "usage error"}.get(code, "failed")
            log.error("run=%s step=%s %s: %s: %s", args.run_id or "-", args.command, kind, type(exc).__name__, exc,
                      exc_info=code == EXIT_FAILURE)
            return code
        if args.command in OPERATOR_COMMANDS:
            from seeknal_spark.cli.report import render

            sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n" if args.json
                             else render(args.command, summary))
            return EXIT_OK
        if args.json:
            sys.stdout.write(json.dumps(summary, default=str) + "\n")
        log.info("run=%s step=done %s %s", args.run_id, args.command, summary.get("status"))
        return EXIT_OK
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(old_level)
        package_logger.propagate = old_propagate


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
