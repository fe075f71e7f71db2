"""``featurestore retrain``: queue (and optionally wait for) a retraining job."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ..plugins import TRAINING_BACKEND_CLASS_FOR_TYPE as BACKENDS
from ..retrain.models import MODELS
from ._common import add_json_option, add_store_options, feature_store_from, iso_date, print_json
from ._progress import job_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="retrain a model (local or SageMaker backend)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--model", required=True, choices=sorted(MODELS), help="model to retrain")
    p.add_argument("--backend", default="local",
                   help=f"training backend: {', '.join(BACKENDS)}, or the dotted class path of "
                        "a TrainingBackend (default: local)")
    p.add_argument("--tune", action="store_true", help="hyperparameter search / tuning job")
    p.add_argument("--as-of", type=iso_date, metavar="YYYY-MM-DD",
                   help="last as-of date of the training set (default: the latest)")
    p.add_argument("--export-url", help="train on an existing export instead of a new one")
    p.add_argument("--wait", action="store_true",
                   help="run in this process and print the outcome (exit 1 if failed); "
                        "without it the job runs detached: follow it with featurestore jobs")
    add_json_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "write")
    as_of = args.as_of.isoformat() if args.as_of else None
    record = fs.new_job(args.model, backend=args.backend, tune=args.tune, as_of=as_of,
                        export_url=args.export_url)
    if args.wait:
        from ..retrain import run_job

        with job_progress(fs.offline_store, record["job_id"], enabled=not args.json):
            final = run_job(fs.offline_store, record["job_id"], fs.settings)
        if args.json:
            print_json(final)
        else:
            print(outcome(final))
        return 0 if final["status"] == "completed" else 1
    # Detached worker: the command returns now; follow with GET /retrain/{job_id}.
    env = {**os.environ, "FEATURESTORE_RETRAIN_SETTINGS": fs.settings.model_dump_json()}
    subprocess.Popen([sys.executable, "-m", "featurestore.retrain.worker", record["job_id"]],
                     env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    if args.json:
        print_json({"job_id": record["job_id"], "status": record["status"]})
    else:
        print(f"queued job {record['job_id']} (runs detached); follow it with: featurestore "
              f"jobs {record['job_id']} --follow --store {fs.offline_store.url}")
    return 0


def outcome(job: dict) -> str:
    """A finished job for a person: status, metrics, version and what happened to it.

    Args:
        job: the final job record.

    Returns:
        One or two lines.
    """
    if job["status"] != "completed":
        return f"job {job['job_id']}: {job['status']}: {job.get('error')}"
    metrics = " ".join(f"{k}={v:.4g}" for k, v in (job.get("metrics") or {}).items()
                       if isinstance(v, (int, float)) and k in (
                           "pr_auc", "roc_auc", "positive_rate", "rmse", "baseline_rmse"))
    alert = job.get("alert") or {}
    if alert.get("promoted"):
        fate = "promoted to production"
    else:
        fate = "not promoted" + (f": {alert['not_promoted_reason']}"
                                 if alert.get("not_promoted_reason") else "")
    return (f"job {job['job_id']}: completed, {job['model']} version {job['model_version']} "
            f"({metrics}); {fate}")
