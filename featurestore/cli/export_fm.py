"""``featurestore export-fm``: factorization-machines recordIO-protobuf from retail transactions."""

from __future__ import annotations

import argparse

from ..training import export_fm
from ._common import add_store_options, print_json, settings_from, store_from
from .training_set import out_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-fm", help="export the retail FM data set (recordIO-protobuf)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--out", required=True, help="output folder: path or s3://bucket/prefix")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = store_from(settings)
    res = export_fm(store, args.out, test_fraction=args.test_fraction, seed=args.seed,
                    storage_options=out_options(store, args.out))
    print_json(res.to_dict())
    return 0
