"""``featurestore export-fm``: factorization-machines recordIO-protobuf from retail transactions."""

from __future__ import annotations

import argparse

from ._common import (
    add_json_option,
    add_store_options,
    feature_store_from,
    out_from,
    print_json,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-fm", help="export the retail FM data set (recordIO-protobuf)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--out", required=True, help="output folder: path or s3://bucket/prefix")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="share of each customer's purchases held out for the test channel")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    add_json_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..progress import spinner

    fs = feature_store_from(args, "read")
    _, options = out_from(fs.offline_store, args.out)
    with spinner("featurestore export-fm"):  # runs in this process, not as Dask tasks
        result = fs.export_fm(args.out, test_fraction=args.test_fraction, seed=args.seed,
                              storage_options=options)
    if args.json:
        print_json(result)
        return 0
    counts = {k: v for k, v in result.items() if isinstance(v, (int, float))
              and not isinstance(v, bool)}
    print(f"wrote the factorization-machines recordIO-protobuf export to "
          f"{result.get('out') or result.get('out_url') or args.out}"
          + (": " + ", ".join(f"{k} {v:,}" for k, v in counts.items()) if counts else ""))
    return 0
