"""``featurestore generate``: synthetic web-log drops (SPEC §1) with a planted signal."""

from __future__ import annotations

import argparse
import datetime as dt

from ..generate import DEFAULT_FILLER_DENSITY, SPARSE_FILLER_DENSITY, generate_weblog
from ..storage import parse_storage_options
from ._common import add_json_option, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="write synthetic daily web-log drops",
                       description=__doc__)
    p.add_argument("raw_root", help="folder (or s3:// URL) to write <YYYY-MM-DD>/ drops into")
    p.add_argument("--days", type=int, default=30, help="daily drops to write")
    p.add_argument("--customers", type=int, default=2_000,
                   help="distinct customers (ids C000000, C000001, ...)")
    p.add_argument("--products", type=int, default=100,
                   help="distinct products (ids P00000, P00001, ...)")
    p.add_argument("--rows-per-day", type=int, default=10_000, help="hits per daily drop")
    p.add_argument("--parts", type=int, default=2, help="gzip files per drop")
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 1),
                   help="first day, YYYY-MM-DD")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same drops)")
    p.add_argument("--bad-rows", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of extra bad rows, every bad-row class in turn")
    p.add_argument("--late-fraction", type=float, default=0.0, metavar="F",
                   help="fraction of each day's hits delivered in the next day's drop")
    p.add_argument("--columns", type=int, default=1_057, help="columns per drop (1,000+)")
    p.add_argument("--filler-density", type=_fraction, default=DEFAULT_FILLER_DENSITY,
                   metavar="F", help="chance a filler field is non-empty (default 0.2; a real "
                   f"feed's sparse hits: {SPARSE_FILLER_DENSITY})")
    p.add_argument("--storage-option", action="append", metavar="KEY=VALUE", default=[],
                   help="fsspec option for RAW_ROOT, repeatable")
    add_json_option(p)
    p.set_defaults(handler=run)


def _fraction(text: str) -> float:
    """A number within 0..1 (argparse type: a usage error otherwise)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number within 0..1")
    return value


def run(args: argparse.Namespace) -> int:
    report = generate_weblog(
        args.raw_root, days=args.days, customers=args.customers, products=args.products,
        rows_per_day=args.rows_per_day, parts=args.parts, start=args.start, seed=args.seed,
        bad_rows=args.bad_rows, late_fraction=args.late_fraction, columns=args.columns,
        storage_options=parse_storage_options(args.storage_option),
        filler_density=args.filler_density,
    )
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"raw drops: {report.raw_root}")
    print(f"wrote {len(report.days)} daily drop(s) {report.days[0]} .. {report.days[-1]}: "
          f"{report.files} files, {report.lines:,} lines of {report.columns} columns, "
          f"{sum(report.bad.values())} bad rows, {report.late} late hits")
    return 0
