"""``featurestore features``: the feature catalogue - every feature of the store's repository
with its definition, description, owner, tags, type, the latest as-of's numbers, freshness and
lineage (source -> table -> the training sets and model versions that used it, with its
importance in each). The same as ``/dashboard/catalogue`` and ``/dashboard/api/catalogue``."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import add_store_options, feature_store_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="the feature catalogue: what each feature means, "
                       "its numbers and who uses it", description=__doc__)
    add_store_options(p)
    p.add_argument("--table", help="only this table's features")
    p.add_argument("--search", metavar="WORDS",
                   help="only features whose name, table, description, owner or tags hold "
                        "every word")
    p.add_argument("--model", help="only the features this model used")
    p.add_argument("--version", help="with --model: only this version's features")
    p.add_argument("--json", action="store_true",
                   help="print the catalogue as one JSON document (as /dashboard/api/catalogue)")
    p.set_defaults(handler=run)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _numbers(f: dict[str, Any]) -> str:
    if f["type"] is None:
        return "no data yet (the table has no as-of partition)"
    null = "-" if f["null_share"] is None else f"{100 * f['null_share']:.1f}%"
    head = f"as of {f['as_of']}: {f['rows']} rows, null {null}"
    if f["top"] is not None:
        top = ", ".join(f"{t['value']} ({t['count']})" for t in f["top"]) or "-"
        return f"{head}, top {top}"
    return f"{head}, min {_number(f['min'])}, mean {_number(f['mean'])}, max {_number(f['max'])}"


def _used_by(f: dict[str, Any]) -> str:
    models = f["lineage"]["models"]
    sets = f["lineage"]["training_sets"]
    if not models and not sets:
        return "used by: no training set or model yet"
    parts = []
    for m in models:
        details = [f"rank {m['rank']} of {m['of']}" if m["rank"] is not None else None,
                   None if m["importance_share"] is None
                   else f"importance {100 * m['importance_share']:.1f}%",
                   "production" if m["production"] else None]
        shown = ", ".join(d for d in details if d)
        parts.append(f"{m['model']} {m['version']}" + (f" ({shown})" if shown else ""))
    return (f"used by: {'; '.join(parts) or 'no model'}; "
            f"{len(sets)} training set{'s' if len(sets) != 1 else ''}")


def _describe(indent: str, item: dict[str, Any]) -> None:
    """The description on one line, then owner and tags on the next (when given)."""
    if item["description"]:
        print(f"{indent}{item['description']}")
    meta = [item["owner"] and f"owner: {item['owner']}",
            item["tags"] and f"tags: {', '.join(item['tags'])}"]
    if any(meta):
        print(indent + "; ".join(m for m in meta if m))


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "read")
    data = fs.catalogue(table=args.table, search=args.search, model=args.model,
                        version=args.version)
    if args.json:
        print_json(data)
        return 0
    by_table: dict[str, list[dict[str, Any]]] = {}
    for f in data["features"]:
        by_table.setdefault(f["table"], []).append(f)
    for t in data["tables"]:
        features = by_table.get(t["table"])
        if not features:
            continue
        lag = "" if t["lag_days"] is None else f", {t['lag_days']} day(s) behind its source"
        print(f"{t['table']}  (source {t['source']} -> {t['source_table']}, key "
              f"{', '.join(t['keys'])}; latest as-of {t['latest_as_of'] or 'none yet'}, "
              f"{t['rows']} rows{lag})")
        _describe("  ", t)
        for f in features:
            print(f"  {f['name']}  {f['type'] or ''}".rstrip())
            print(f"      {f['definition']}")
            _describe("      ", f)
            print(f"      {_numbers(f)}")
            print(f"      {_used_by(f)}")
    shown = len(data["features"])
    if not shown:
        print("no feature matches " + ", ".join(
            f"--{k} {v}" for k, v in data["filters"].items() if v) + "; "
            "`featurestore features` lists every one")
    else:
        print(f"{shown} of {data['total']} features")
    return 0
