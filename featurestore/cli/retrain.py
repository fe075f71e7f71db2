"""``featurestore retrain``: queue (and optionally wait for) a retraining job."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ..retrain import BACKENDS, MODELS, run_job
from ._common import add_store_options, feature_store_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="retrain a model (local or SageMaker backend)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--model", required=True, choices=sorted(MODELS))
    p.add_argument("--backend", default="local",
                   help=f"training backend: {', '.join(BACKENDS)}, or the dotted class path of "
                        "a TrainingBackend (default: local)")
    p.add_argument("--tune", action="store_true", help="hyperparameter search / tuning job")
    p.add_argument("--as-of", help="last as-of date of the training set (YYYY-MM-DD)")
    p.add_argument("--export-url", help="train on an existing export instead of a new one")
    p.add_argument("--wait", action="store_true",
                   help="run in this process and print the final job record (exit 1 if failed)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "write")
    record = fs.new_job(args.model, backend=args.backend, tune=args.tune, as_of=args.as_of,
                        export_url=args.export_url)
    if args.wait:
        final = run_job(fs.offline_store, record["job_id"], fs.settings)
        print_json(final)
        return 0 if final["status"] == "completed" else 1
    # Detached worker: the command returns now; follow with GET /retrain/{job_id}.
    env = {**os.environ, "FEATURESTORE_RETRAIN_SETTINGS": fs.settings.model_dump_json()}
    subprocess.Popen([sys.executable, "-m", "featurestore.retrain.worker", record["job_id"]],
                     env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    print_json({"job_id": record["job_id"], "status": record["status"]})
    return 0
