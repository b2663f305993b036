"""How ``spark-submit.sh`` layers the project's Spark settings under the cluster's (standard library only).

spark-submit reads one properties file: ``--properties-file`` when given, else ``$SPARK_CONF_DIR/spark-defaults.conf``
(``$SPARK_HOME/conf``). Passing the project's file as ``--properties-file`` would replace the cluster's settings
(its master, memory, addresses), so instead the project's settings are passed as ``--conf`` for the keys that
neither the cluster's file nor the user's own arguments set:

- keys in ``LOCAL_ONLY`` (master, driver address and memory, shuffle partitions, UI) only when no master is
  configured anywhere (user arguments, the cluster's file, ``$MASTER``): a run on this machine;
- every other key of the project's file (time zone, Parquet timestamp type, ...) whenever it is not set already;
- the user's ``--py-files`` / ``--jars`` / ``--packages`` are extended, never replaced;
- Delta (``WITH_DELTA=1``): the artifact matching the Spark and Scala version of the Spark being submitted to.

Run as a script by ``spark-submit.sh`` (``python submit_plan.py ...``), it prints ``local`` or ``cluster`` and then
the spark-submit options, NUL-separated; ``plan`` is the same logic as a function.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["LOCAL_ONLY", "read_properties", "user_settings", "delta_artifact", "spark_version", "plan"]

LOCAL_ONLY = ("spark.master", "spark.driver.host", "spark.driver.bindAddress", "spark.driver.memory",
              "spark.sql.shuffle.partitions", "spark.ui.enabled")
DELTA_CONF = {"spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
              "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog"}
# Spark (major.minor) -> Delta artifact (checked against Maven Central; see PLATFORM.md).
DELTA_ARTIFACTS = {"3.5": "io.delta:delta-spark_2.12:3.3.2", "4.0": "io.delta:delta-spark_4.0_2.13:4.0.1",
                   "4.1": "io.delta:delta-spark_4.1_2.13:4.1.0", "4.2": "io.delta:delta-spark_4.2_2.13:4.4.0"}
# spark-submit options that set a property (option -> key).
_OPTION_KEYS = {"--master": "spark.master", "--driver-memory": "spark.driver.memory",
                "--deploy-mode": "spark.submit.deployMode", "--executor-memory": "spark.executor.memory",
                "--name": "spark.app.name"}
_LIST_OPTIONS = ("--py-files", "--jars", "--packages")
_CORE_JAR = re.compile(r"^spark-core_(\d+\.\d+)-(\d+\.\d+)\.\d+.*\.jar$")


def read_properties(path: Optional[Path]) -> Dict[str, str]:
    """A spark-defaults.conf file as a dict (``key value`` or ``key=value`` lines, ``#`` comments); {} if absent."""
    settings: Dict[str, str] = {}
    if path is None or not path.is_file():
        return settings
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        match = re.match(r"^(\S+?)(?:\s*[=:]\s*|\s+)(.*)$", line)
        if match:
            settings[match.group(1)] = match.group(2).strip()
    return settings


def user_settings(args: Sequence[str]) -> Tuple[List[str], Dict[str, str], Dict[str, str], Optional[str]]:
    """Split the user's spark-submit options: (other args, properties set, list options, --properties-file)."""
    rest: List[str] = []
    props: Dict[str, str] = {}
    lists: Dict[str, str] = {}
    properties_file: Optional[str] = None
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        takes = name in _OPTION_KEYS or name in _LIST_OPTIONS or name in ("--conf", "-c", "--properties-file")
        value = inline if eq and takes else (args[i + 1] if takes and i + 1 < len(args) else None)
        step = 1 if (eq and takes) or not takes else 2
        if name in ("--conf", "-c") and value is not None:
            key, _, val = value.partition("=")
            props[key] = val
            rest += [arg] if step == 1 else [arg, value]
        elif name in _OPTION_KEYS and value is not None:
            props[_OPTION_KEYS[name]] = value
            rest += [arg] if step == 1 else [arg, value]
        elif name in _LIST_OPTIONS and value is not None:
            lists[name] = f"{lists[name]},{value}" if name in lists else value
        elif name == "--properties-file" and value is not None:
            properties_file = value
            rest += [arg] if step == 1 else [arg, value]
        else:
            rest.append(arg)
            step = 1
        i += step
    return rest, props, lists, properties_file


def spark_version(spark_home: Optional[Path]) -> Optional[Tuple[str, str]]:
    """(Spark major.minor, Scala binary version) from ``$SPARK_HOME/jars/spark-core_<scala>-<ver>.jar``."""
    if spark_home is None or not (spark_home / "jars").is_dir():
        return None
    for name in sorted(os.listdir(spark_home / "jars")):
        match = _CORE_JAR.match(name)
        if match:
            return match.group(2), match.group(1)
    return None


def delta_artifact(spark: str, scala: str) -> str:
    """The Delta Lake artifact for Spark ``spark`` (major.minor) built for Scala ``scala``."""
    artifact = DELTA_ARTIFACTS.get(spark)
    if artifact is None or (spark.startswith("3.") and scala != "2.12"):
        known = ", ".join(f"Spark {k}" for k in DELTA_ARTIFACTS)
        raise ValueError(f"no known Delta artifact for Spark {spark} (Scala {scala}); known: {known}. "
                         "Set DELTA_PACKAGE=io.delta:<artifact>:<version> explicitly")
    return artifact


def plan(project: Dict[str, str], cluster: Dict[str, str], user_args: Sequence[str], archive: str, *,
         env_master: Optional[str] = None, delta_jars: Optional[str] = None, delta_package: Optional[str] = None,
         log4j: Optional[str] = None) -> Tuple[List[str], bool]:
    """spark-submit options (before the application) and whether the run is local (no master configured).

    ``log4j`` (a file on this machine) configures the driver's logging unless the driver runs elsewhere
    (``--deploy-mode cluster``) or ``spark.driver.extraJavaOptions`` is set already.
    """
    rest, props, lists, properties_file = user_settings(user_args)
    base = read_properties(Path(properties_file)) if properties_file else cluster
    configured = {**base, **props}
    local = not (configured.get("spark.master") or env_master)
    project = dict(project)
    if log4j and configured.get("spark.submit.deployMode", "client") != "cluster":
        project.setdefault("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
    out = list(rest)
    for key, value in project.items():
        if key in configured or (key in LOCAL_ONLY and not local):
            continue
        out += ["--conf", f"{key}={value}"]
    if delta_jars or delta_package:
        for key, value in DELTA_CONF.items():
            if key not in configured:
                out += ["--conf", f"{key}={value}"]
    if delta_jars:
        lists["--jars"] = f"{lists['--jars']},{delta_jars}" if "--jars" in lists else delta_jars
    elif delta_package:
        lists["--packages"] = f"{lists['--packages']},{delta_package}" if "--packages" in lists else delta_package
    lists["--py-files"] = f"{lists['--py-files']},{archive}" if "--py-files" in lists else archive
    for option in _LIST_OPTIONS:
        if option in lists:
            out += [option, lists[option]]
    return out, local


def _main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="print spark-submit options, NUL-separated")
    parser.add_argument("--project", required=True, help="the project's spark-defaults.conf")
    parser.add_argument("--cluster", help="the cluster's spark-defaults.conf (may be missing)")
    parser.add_argument("--archive", required=True)
    parser.add_argument("--delta-jars", help="comma-separated Delta jars (WITH_DELTA, resolved by Maven)")
    parser.add_argument("--delta-package", help="Delta Maven coordinate for --packages (WITH_DELTA)")
    parser.add_argument("--log4j", help="log4j2 configuration file for the driver (a default like the others)")
    parser.add_argument("--mode", choices=["options", "delta-artifact"], default="options")
    parser.add_argument("--spark-home")
    parser.add_argument("user_args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    user = ns.user_args[1:] if ns.user_args[:1] == ["--"] else ns.user_args
    if ns.mode == "delta-artifact":
        found = spark_version(Path(ns.spark_home)) if ns.spark_home else None
        if found is None:
            print(f"submit_plan: cannot tell the Spark version (no spark-core jar under {ns.spark_home}/jars); "
                  "set DELTA_PACKAGE=io.delta:<artifact>:<version>", file=sys.stderr)
            return 2
        try:
            print(delta_artifact(*found))
        except ValueError as exc:
            print(f"submit_plan: {exc}", file=sys.stderr)
            return 2
        return 0
    out, local = plan(read_properties(Path(ns.project)), read_properties(Path(ns.cluster) if ns.cluster else None),
                      user, ns.archive, env_master=os.environ.get("MASTER"), delta_jars=ns.delta_jars,
                      delta_package=ns.delta_package, log4j=ns.log4j)
    sys.stdout.write("".join(f"{item}\0" for item in ["local" if local else "cluster", *out]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
