"""Plain-text rendering of the operator commands' results (``seeknal-spark list|describe|history|vacuum``).

``--json`` prints the same data as JSON instead; this text is for people and may change between versions.
"""

from __future__ import annotations

from typing import Any, Dict, List

__all__ = ["render"]


def _table(headers: List[str], rows: List[List[Any]]) -> str:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def _list(groups: List[Dict[str, Any]]) -> str:
    if not groups:
        return "no feature groups in this store\n"
    return _table(["GROUP", "ROWS", "FILES", "SCHEMA", "DELTA", "DAYS", "LAST COMMIT"],
                  [[f"{g['project']}/{g['name']}", g["rows"], g["files"], g["schema_version"], g["delta_version"],
                    f"{g['first_watermark']}..{g['last_watermark']}" if g["first_watermark"] else None,
                    g["last_commit"]] for g in groups])


def _writes(writes: List[Dict[str, Any]]) -> str:
    def outcome(w: Dict[str, Any]) -> str:
        return {True: "passed", False: "FAILED", None: "-"}[w.get("validation")]

    return _table(["VERSION", "TIME", "MODE", "ROWS", "RANGE", "VALIDATION", "RUN ID"],
                  [[w["version"], w["timestamp"], w["mode"], w["rows"], f"{w['start']} .. {w['end']}",
                    outcome(w), w["run_id"]] for w in writes])


def _describe(d: Dict[str, Any]) -> str:
    fresh = d["freshness"]
    marks = d["watermarks"]
    out = [f"{d['project']}/{d['name']}  ({d['table']})"]
    if d.get("description"):
        out.append(f"  {d['description']}")
    out.append(f"entity: {d['entity']['name']}  keys: {', '.join(f'{k} {t}' for k, t in d['key_types'].items())}"
               f"  event time: {d['event_time_col']}")
    out.append(f"Delta version {d['delta_version']}, {d['rows']} rows in {d['files']} files, "
               f"{d['writes_total']} writes")
    out.append("schema versions:")
    for s in d["schema_versions"]:
        out.append(f"  v{s['version']}: " + ", ".join(f"{n} {t}" for n, t in s["features"].items()))
    out.append(f"watermarks: {len(marks)} days" + (f", {marks[0]} .. {marks[-1]}" if marks else ""))
    state = "STALE" if fresh["stale"] else "fresh"
    age = fresh["age_seconds"]
    out.append(f"freshness: {state}: newest event time {fresh['newest_event_time']}"
               + (f", {age / 3600:.1f} h old" if age is not None else "")
               + f" (threshold {fresh['threshold_seconds'] / 3600:.1f} h)")
    out.append("last writes:")
    return "\n".join(out) + "\n" + _writes(d["last_writes"])


def _history(commits: List[Dict[str, Any]]) -> str:
    rows = []
    for c in commits:
        w = c["write"] or {}
        rows.append([c["version"], c["timestamp"], c["operation"], w.get("mode"), w.get("rows"),
                     f"{w['start']} .. {w['end']}" if w else None, w.get("run_id")])
    return _table(["VERSION", "TIME", "OPERATION", "MODE", "ROWS", "RANGE", "RUN ID"], rows)


def _vacuum(v: Dict[str, Any]) -> str:
    files = v.get("files") or []
    verb = "would delete" if v.get("dry_run") else "deleted"
    return f"{v.get('table')}: {verb} {len(files)} file(s)\n" + "".join(f"  {f}\n" for f in files)


def render(command: str, data: Any) -> str:
    """The text shown for ``command``'s result ``data``."""
    return {"list": _list, "describe": _describe, "history": _history, "vacuum": _vacuum}[command](data)
