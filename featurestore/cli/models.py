"""``featurestore models``: list registered models, one model's versions, or promote one."""

from __future__ import annotations

import argparse

from .._exceptions import ConfigError
from ._common import add_store_options, feature_store_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model registry", description=__doc__)
    add_store_options(p)
    p.add_argument("name", nargs="?", help="one model's versions")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--promote", metavar="VERSION", help="make VERSION of NAME production")
    p.set_defaults(handler=run)


def _fmt(metrics: dict) -> str:
    keys = [k for k in ("pr_auc", "roc_auc", "positive_rate", "rmse", "baseline_rmse")
            if k in metrics] or sorted(metrics)[:4]
    return " ".join(f"{k}={metrics[k]:.4g}" if metrics[k] is not None else f"{k}=-"
                    for k in keys)


def run(args: argparse.Namespace) -> int:
    from ..retrain import registry

    store = feature_store_from(args, "write" if args.promote else "read").offline_store
    if args.promote:
        if not args.name:
            raise ConfigError("--promote needs the model NAME: featurestore models NAME "
                              "--promote VERSION")
        record = registry.promote(store, args.name, args.promote)
        if args.json:
            print_json(record)
        else:
            print(f"{args.name} {args.promote} is now production")
        return 0
    summaries = ([registry.model_summary(store, args.name)] if args.name
                 else registry.list_summaries(store))
    if args.json:
        print_json(summaries[0] if args.name else {"models": summaries})
        return 0
    if not summaries:
        print("no models registered yet; train one with `featurestore retrain --model ...`")
    for s in summaries:
        damaged = f" (damaged: {s['production_damaged']})" if s["production_damaged"] else ""
        print(f"{s['name']} (production: {s['production'] or 'none'}{damaged})")
        for v in s["versions"]:
            if v["damaged"]:  # listed, never promoted: say why so it can be fixed
                print(f"   {v['version']}  damaged: {v['damaged']}")
                continue
            mark = "*" if v["production"] else " "
            print(f" {mark} {v['version']}  {v['created_at'][:19]}  {v['backend'] or '-':<9} "
                  f"{_fmt(v['metrics'])}")
    return 0
