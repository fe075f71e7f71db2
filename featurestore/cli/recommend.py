"""``featurestore recommend``: the top-k products for one customer from the production
version of the recommender the setting ``recommendation_model`` names, with their
descriptions. ``--exclude-purchased false`` ranks every item (repeats included), as the HTTP
parameter does."""

from __future__ import annotations

import argparse

from ._common import add_store_options, feature_store_from, print_json


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 1000")
    return value


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="top-k products for a customer (the production "
                       "version of recommendation_model)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--customer", required=True, help="customer id")
    p.add_argument("--k", type=_positive, default=10, help="products to show (default 10)")
    p.add_argument("--exclude-purchased", type=_boolean, default=True, metavar="true|false",
                   help="leave out products the customer already bought (default true; false: "
                   "any item, repeats ranked with the repeat-purchase term)")
    p.add_argument("--include-purchased", action="store_true",
                   help="the same as --exclude-purchased false")
    p.add_argument("--json", action="store_true",
                   help="print the recommendations as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    answer = feature_store_from(args, "read").recommend(
        args.customer, k=args.k,
        exclude_purchased=args.exclude_purchased and not args.include_purchased)
    if args.json:
        print_json(answer)
        return 0
    print(f"customer {answer['customer_id']}: {answer['model']} {answer['version']}")
    for rank, item in enumerate(answer["items"], 1):
        print(f"{rank:>3}. {item['product_id']:<10} {item['score']:>9.4f}  {item['description']}")
    return 0
