"""``featurestore jobs``: the retrain and training-set export jobs the store records; with an
ID, that job's record; with ``--follow``, print each status change until it ends (exit 0
completed, 1 failed)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .._exceptions import ConfigError
from ._common import add_json_option, add_store_options, feature_store_from, print_json

if TYPE_CHECKING:
    from ..job_records import JobView


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="list and follow retrain and export jobs",
                       description=__doc__)
    p.add_argument("job_id", nargs="?", metavar="ID", help="one job (as printed by retrain)")
    add_store_options(p)
    p.add_argument("--follow", action="store_true",
                   help="wait for job ID to end, printing each status change")
    p.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between reads of the job record with --follow")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="with --follow, give up after this long (exit 1; default: no limit)")
    add_json_option(p)
    p.set_defaults(handler=run)


def _line(job: JobView) -> str:
    when = (job.submitted_at or "-")[:19]
    error = f"  {job.error}" if job.error else ""
    return f"{job.job_id}  {job.kind:<12} {job.status:<9} {when}  {job.what}{error}"


def run(args: argparse.Namespace) -> int:
    if args.follow and not args.job_id:  # a usage error, before the store is touched
        raise ConfigError("--follow needs a job ID: featurestore jobs lists them")
    fs = feature_store_from(args, "read")
    if args.job_id is None:
        jobs = fs.jobs()
        if args.json:
            print_json({"jobs": [j.to_dict() for j in jobs]})
            return 0
        if not jobs:
            print("no jobs recorded yet: featurestore retrain --model MODEL starts one")
        for job in jobs:
            print(_line(job))
        return 0
    if not args.follow:
        job = fs.job(args.job_id)
        if args.json:
            print_json(job.to_dict())
        else:
            print(_line(job))
        return 0 if job.status != "failed" else 1

    def changed(job: JobView) -> None:
        if not args.json:
            print(_line(job), flush=True)

    from ..job_records import FINAL_STATUSES

    final = fs.follow_job(args.job_id, changed, poll=args.poll, timeout=args.timeout)
    if args.json:
        print_json(final.to_dict())
    if final.status not in FINAL_STATUSES:
        if not args.json:
            print(f"still {final.status} after {args.timeout:g} s; follow again with "
                  f"featurestore jobs {final.job_id} --follow")
        return 1
    return 0 if final.status == "completed" else 1
