"""``featurestore training-set``: a point-in-time training set, as XGBoost CSVs or parquet.

``--format csv`` writes the SageMaker XGBoost layout (train/validation/test CSVs split by as-of
date, label first, no header, plus metadata.json); ``--format parquet`` writes the plain
training set (one ``part-<as_of>.parquet`` per date plus ``_training_set.json``).
"""

from __future__ import annotations

import argparse

from .._exceptions import ConfigError
from ..training.split_policy import DEFAULT_SPLIT_POLICY, POLICIES
from ._common import (
    add_cluster_options,
    add_date_range,
    add_store_options,
    add_json_option,
    feature_store_from,
    out_from,
    print_json,
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
    p.add_argument("--gap-days", type=int, default=None,
                   help="as-of dates purged between splits (csv; default: the label horizon, "
                        "30 days)")
    p.add_argument("--split-policy", choices=list(POLICIES), default=DEFAULT_SPLIT_POLICY,
                   help="csv: where validation comes from: time (dates after train), grouped "
                        "(a customer-grouped holdout inside the training period), auto "
                        "(grouped for short histories); see docs/retraining.md")
    p.add_argument("--sample-fraction", type=float, default=1.0,
                   help="keep this fraction of customers per as-of date (parquet)")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample-fraction")
    p.add_argument("--tables", metavar="TABLE,TABLE",
                   help="more customer-keyed feature tables of the repository to join at each "
                        "as-of date (default: customer_features only)")
    add_json_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "read")
    _, options = out_from(fs.offline_store, args.out)
    if args.start and args.end and args.start > args.end:
        raise ConfigError(f"--from {args.start} is after --to {args.end}: swap them")
    if args.format == "csv" and args.sample_fraction < 1:
        raise ConfigError("--sample-fraction applies to --format parquet only: the csv "
                          "layout keeps every customer (drop the flag or use parquet)")
    tables = args.tables.split(",") if args.tables else None
    result = fs.training_set(args.out, fmt=args.format, start=args.start, end=args.end,
                             gap_days=args.gap_days, sample_fraction=args.sample_fraction,
                             split_policy=args.split_policy,
                             seed=args.seed, tables=tables, storage_options=options)
    if args.json:
        print_json(result)
    else:
        print(summary(result))
    return 0


def summary(result: dict) -> str:
    """One line for a person: where the set went, its rows and label balance.

    Args:
        result: what :meth:`FeatureStore.training_set` returned.

    Returns:
        The line.
    """
    if result["format"] == "csv":
        meta = result["metadata"]
        rows = ", ".join(f"{k} {v:,}" for k, v in meta["rows"].items())
        rate = ", ".join(f"{k} {v:.4f}" for k, v in meta.get("positive_rate", {}).items())
        return (f"wrote the XGBoost csv layout to {result['out']}: rows {rows}; positive "
                f"rate {rate}; {meta.get('excluded_incomplete_label', 0):,} rows left out "
                "(incomplete label window); metadata.json beside them")
    rate = result.get("positive_rate")
    return (f"wrote {result.get('rows', 0):,} rows to {result.get('output')}: "
            f"{result.get('positives', 0):,} positive ({rate:.4f})" if rate is not None else
            f"wrote {result.get('rows', 0):,} rows to {result.get('output')}") + \
        f"; {result.get('excluded_incomplete_label', 0):,} left out (incomplete label window)"
