"""``featurestore training-set``: a point-in-time training set, as XGBoost CSVs or parquet.

``--format csv`` writes the SageMaker XGBoost layout (train/validation/test CSVs split by as-of
date, label first, no header, plus metadata.json); ``--format parquet`` writes the plain
training set (one ``part-<as_of>.parquet`` per date plus ``_training_set.json``).
"""

from __future__ import annotations

import argparse

from ..cluster import dask_client
from ..feature_store import FeatureStore
from ..training import build_training_set, export_xgboost
from ..training.pointintime import HORIZON_DAYS
from ._common import (
    add_cluster_options,
    add_date_range,
    add_store_options,
    out_from,
    print_json,
    settings_from,
    store_from,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("training-set", help="export a point-in-time training set",
                       description=__doc__)
    add_store_options(p)
    add_cluster_options(p)
    add_date_range(p, first="the first feature partition",
                   last="the latest with a complete label window")
    p.add_argument("--out", required=True, help="output folder: path or s3://bucket/prefix")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv",
                   help="csv: XGBoost train/validation/test layout; parquet: the plain set")
    p.add_argument("--gap-days", type=int, default=HORIZON_DAYS,
                   help="as-of dates purged between splits (csv; default: the label horizon)")
    p.add_argument("--sample-fraction", type=float, default=1.0,
                   help="keep this fraction of customers per as-of date (parquet)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tables", metavar="TABLE,TABLE",
                   help="more customer-keyed feature tables of the repository to join at each "
                        "as-of date (default: customer_features only)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = store_from(settings, "read")
    _, options = out_from(store, args.out)
    tables = FeatureStore(settings).joinable_tables(args.tables.split(",")) if args.tables \
        else None
    with dask_client(settings.scheduler, settings.workers) as client:
        if args.format == "csv":
            res = export_xgboost(store, args.out, start=args.start, end=args.end,
                                 gap_days=args.gap_days, storage_options=options, client=client,
                                 tables=tables)
            print_json({"format": "csv", **res.to_dict()})
        else:
            fraction = args.sample_fraction
            ts = build_training_set(store, start=args.start, end=args.end,
                                    sample="all" if fraction >= 1 else "fraction",
                                    sample_fraction=fraction, seed=args.seed, client=client,
                                    output=args.out, storage_options=options, tables=tables)
            print_json({"format": "parquet", **ts.to_dict()})
    return 0
