"""Randomized S3 fault trials of ``featurestore ingest`` (issue #13), for long runs.

    python benchmarks/reliability_s3.py [--trials 10] [--seed 0] [--max-attempts 3] [--json]

Starts a moto S3 server on 127.0.0.1 and a 2-worker LocalCluster, uploads small generated
drops, and ingests them once without faults into a fresh bucket (the reference). Each trial
then runs the real CLI into a fresh bucket through ``tests/reliability/s3_fault_proxy.py``
with a random fault rate (5-30% of requests: 500, 503, SlowDown, dropped connections, slow
answers, PUTs applied but unanswered) on every operation; the run must succeed, or fail with
one error line and no traceback, and leave no half-published table. A fault-free re-run
follows, after which the store must equal the reference: no row lost, none duplicated.
``--max-attempts`` lowers botocore's attempts (default settings: 8) so runs do fail, and the
failure path is exercised too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability import s3_fault_proxy as faults  # noqa: E402
from tests.reliability.s3_fault_proxy import OPS, FaultRule  # noqa: E402

__all__ = ["run_s3_fault_trials"]

_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1"}


def _rules(rng: random.Random, rate: float) -> list[FaultRule]:
    """Faults on every operation adding up to ``rate``, split at random between the kinds."""
    weights = [rng.random() for _ in range(6)]
    share = [rate * w / sum(weights) for w in weights]
    return [FaultRule(OPS, "500", share[0]), FaultRule(OPS, "503", share[1]),
            FaultRule(OPS, "slowdown", share[2]), FaultRule(OPS, "drop", share[3]),
            FaultRule(["PUT"], "drop_after", share[4]),
            FaultRule(OPS, "slow", share[5], delay=rng.uniform(0.05, 0.5))]


def run_s3_fault_trials(trials: int, seed: int, max_attempts: int = 3) -> dict[str, Any]:
    """Run ``trials`` fault-injected ingests (each followed by a fault-free re-run).

    Args:
        trials: number of trials.
        seed: seeds each trial's fault rate, mix and the proxy's coin flips.
        max_attempts: botocore attempts per request during the faulty run.

    Returns:
        ``trials``, ``faults_injected``, ``requests``, ``runs_succeeded``,
        ``runs_failed_cleanly`` (exit non-zero with one error line), ``runs_failed_badly``
        (a traceback, several lines, or a hang), ``reruns_failed``, ``rows_lost``,
        ``rows_duplicated`` (after the re-run, against a clean run), ``partial_tables``
        (problems a reader could see right after the faulty run), and the median and
        maximum seconds of the faulty runs.
    """
    import boto3
    import fsspec
    from distributed import Client
    from moto.server import ThreadedMotoServer

    from featurestore import Store
    from featurestore.cluster import local_cluster
    from featurestore.generate import generate_weblog
    from featurestore.materialization import materialize
    from featurestore.sources.weblog.ingest import ingest_weblog

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    for key, value in _AWS.items():
        os.environ.setdefault(key, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)  # every run names its endpoint explicitly
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    options = {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": moto, "region_name": "us-east-1"}}
    s3 = boto3.client("s3", endpoint_url=moto)

    def bucket() -> str:
        name = f"trial-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=name)
        return name

    figures: dict[str, Any] = dict.fromkeys(
        ["faults_injected", "requests", "runs_succeeded", "runs_failed_cleanly",
         "runs_failed_badly", "reruns_failed", "rows_lost", "rows_duplicated",
         "partial_tables"], 0)
    seconds = []
    rng = random.Random(seed)
    try:
        with tempfile.TemporaryDirectory() as tmp, local_cluster(2) as cluster, \
                Client(cluster) as client:
            generate_weblog(f"{tmp}/raw", days=3, customers=200, products=20, rows_per_day=800,
                            parts=2, seed=seed, bad_rows=0.01, late_fraction=0.05)
            raw = f"s3://{bucket()}/raw"
            fsspec.filesystem("s3", **options).put(f"{tmp}/raw", raw[5:], recursive=True)
            reference = Store(f"s3://{bucket()}/store", options)
            ingest_weblog(raw, reference, client=client)
            materialize(reference, client=client)
            expected = faults.store_contents(reference)
            for _ in range(trials):
                rate = rng.uniform(0.05, 0.3)
                store = Store(f"s3://{bucket()}/store", options)
                rules, proxy_seed = _rules(rng, rate), rng.randrange(2**32)
                with faults.S3FaultProxy(moto, rules, seed=proxy_seed) as proxy:
                    try:
                        run = faults.ingest_cli(raw, store.url, proxy.url,
                                         scheduler=client.scheduler.address, timeout=600,
                                         options=[f"config_kwargs.retries.max_attempts="
                                                  f"{max_attempts}"])
                    except Exception:  # noqa: BLE001 - a hung run is a finding, not a crash
                        run = None
                    figures["faults_injected"] += proxy.faults_injected
                    figures["requests"] += sum(proxy.requests.values())
                lines = run.stderr.strip().splitlines() if run else []
                if run and run.returncode == 0:
                    figures["runs_succeeded"] += 1
                elif run and len(lines) == 1 and lines[0].startswith("featurestore ingest: "):
                    figures["runs_failed_cleanly"] += 1
                else:
                    figures["runs_failed_badly"] += 1
                if run:
                    seconds.append(run.seconds)
                figures["partial_tables"] += len(faults.partial_problems(store))
                rerun = faults.ingest_cli(raw, store.url, moto,
                                          scheduler=client.scheduler.address)
                figures["reruns_failed"] += rerun.returncode != 0
                diff = faults.compare_contents(expected, faults.store_contents(store))
                figures["rows_lost"] += diff["rows_lost"]
                figures["rows_duplicated"] += diff["rows_duplicated"]
    finally:
        server.stop()
    return {"trials": trials, **figures,
            "median_run_seconds": round(statistics.median(seconds), 1) if seconds else None,
            "max_run_seconds": round(max(seconds), 1) if seconds else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-attempts", type=int, default=3,
                        help="botocore attempts per request in the faulty runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run_s3_fault_trials(args.trials, args.seed, args.max_attempts)
    if args.json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
