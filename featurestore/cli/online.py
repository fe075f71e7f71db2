"""``featurestore online push|status``: the shared online store (Redis, the ``online_store``
setting).

``push`` brings Redis up to the latest committed as-of of every table (what ``ingest``,
``backfill`` and ``run-daily`` do after their commit; run it after one of them reported the
online store behind, or after Redis lost its data). ``status`` compares what the offline store
committed with what Redis serves (exit 1 when behind).
"""

from __future__ import annotations

import argparse

from .._exceptions import ConfigError
from ._common import add_cluster_options, add_store_options, feature_store_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("online", help="push to / check the shared online store (Redis)",
                       description=__doc__)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True,
                               help="push: write Redis now; status: committed vs served")
    for name, text in (("push", "push the latest committed as-of of every table to Redis"),
                       ("status", "compare committed and served as-of dates (exit 1: behind)")):
        a = actions.add_parser(name, help=text, description=text)
        add_store_options(a)
        a.add_argument("--online-store", metavar="URL",
                       help="redis://[:password@]host:port/db or rediss:// (default: the "
                            "online_store setting, FEATURESTORE_ONLINE_STORE)")
        # also accepted after the action (SUPPRESS: never resets a --json given before it)
        a.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print one JSON object")
        if name == "push":
            add_cluster_options(a)
        a.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "write" if args.action == "push" else "read",
                            online_store=args.online_store)
    if fs.online_url is None:
        raise ConfigError("no shared online store is configured (online_store is "
                          f"{fs.settings.online_store!r}): give --online-store redis://host:port/0 "
                          "or set FEATURESTORE_ONLINE_STORE")
    if args.action == "push":
        report = fs.push_online()
        if args.json:
            print_json(report.to_dict())
        else:
            for table, info in report.tables.items():
                print(f"{table}: as of {info['as_of']} (generation {info['generation']}), "
                      f"{info['mode']}: {info['written']:,} customer(s) written, "
                      f"{info['deleted']:,} deleted, slot {info['slot']}")
            print(f"pushed to {report.url} in {report.seconds:.1f} s")
        return 0
    status = fs.online_status()
    if args.json:
        print_json(status)
    else:
        for table, info in status.items():
            committed, served = info["committed"], info["served"]
            print(f"{table}: committed {_date(committed)}, served {_date(served)}"
                  + ("  BEHIND: run featurestore online push" if info["behind"] else ""))
    return 1 if any(i["behind"] for i in status.values()) else 0


def _date(info: dict | None) -> str:
    return "nothing" if info is None else f"{info['as_of']} (generation {info['generation']})"
