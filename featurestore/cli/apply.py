"""``featurestore apply``: validate a feature repository and record it in the store.

Every later command on that store uses the recorded repository without being told again; a
command given a different repository (flag, FEATURESTORE_FEATURE_REPO or config file) refuses,
naming the difference. Tables whose definition changed are rebuilt whole by the next
``ingest``, ``backfill`` or ``run-daily``."""

from __future__ import annotations

import argparse

from ._common import add_store_options, announce_store, print_json, settings_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="validate a feature repository and record it in the store",
                       description=__doc__)
    p.add_argument("--repo", help="feature repository YAML (default: the built-in one)")
    add_store_options(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..feature_store import FeatureStore

    settings = settings_from(args)
    # apply is the one command that may change the recorded repository: the configured
    # feature_repo (env, config file) is what it records when --repo is not given.
    repo = args.repo if args.repo is not None else settings.feature_repo
    settings = settings.model_copy(update={"feature_repo": None})
    fs = FeatureStore(settings)
    announce_store(args, fs.offline_store.url)  # the absolute URL, as every command prints
    result = fs.apply(repo)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"recorded feature repository {repo or '(built-in)'} in {fs.offline_store.url} "
          f"(fingerprint {result.fingerprint}): tables {', '.join(result.tables)}")
    for change in result.changes:
        print(f"  {change}")
    if result.changes:
        print("changed tables are rebuilt whole by the next ingest, backfill or run-daily")
    return 0
