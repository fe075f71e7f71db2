"""``featurestore export-fm``: factorization-machines recordIO-protobuf from retail transactions."""

from __future__ import annotations

import argparse

from ._common import add_store_options, feature_store_from, out_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-fm", help="export the retail FM data set (recordIO-protobuf)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--out", required=True, help="output folder: path or s3://bucket/prefix")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "read")
    _, options = out_from(fs.offline_store, args.out)
    print_json(fs.export_fm(args.out, test_fraction=args.test_fraction, seed=args.seed,
                            storage_options=options))
    return 0
