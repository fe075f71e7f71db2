"""``featurestore tables``: the feature tables of a store, their columns, as-of range, row
counts and freshness."""

from __future__ import annotations

import argparse

from ._common import add_store_options, feature_store_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="list feature tables", description=__doc__)
    add_store_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "read")
    infos = fs.tables()
    if args.json:
        # each table also carries its source's declared columns (SPEC §3a): from which date
        # each is complete, and which of its features read it
        columns = fs.table_columns()
        print_json([{**t.to_dict(), "declared_columns": columns.get(t.name, {})}
                    for t in infos])
        return 0
    if not infos:
        print("no feature tables yet: run featurestore ingest")
    for t in infos:
        print(f"{t.name}  key ({', '.join(t.key_columns)})  as-of {t.as_of_range[0]} .. "
              f"{t.as_of_range[1]} ({t.as_of_count} dates)  {t.rows_latest} rows at latest  "
              f"written {t.last_written}")
        for col, dtype in t.features.items():
            print(f"    {col:<34} {dtype}")
    _print_declared(fs.declared_columns())
    return 0


def _print_declared(columns: dict) -> None:
    """The events table's declared columns (SPEC §3a) and from which date each is complete."""
    if not columns:
        return
    print("events  declared columns")
    for col, info in columns.items():
        if info.get("pending"):
            since = ("not yet in the events ingested before it was declared: run "
                     "featurestore backfill")
        elif info["complete_from"]:
            since = f"complete from {info['complete_from']} (raw files of earlier dates gone)"
        else:
            since = "complete"
        print(f"    {col:<34} {info['type']:<7} {since}")
