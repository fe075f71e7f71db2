"""Batch scoring throughput: customers scored per second per core by ``featurestore predict``.

Generates web-log drops, ingests them (one as-of snapshot per day), registers an XGBoost model
trained on a synthetic export with the store's feature names, then times ``FeatureStore.predict``
on a LocalCluster of ``--workers`` single-threaded processes (the scoring alone: model load,
read of the snapshot's part files, predict, rank, one atomic write and the commit record).

    PYTHONPATH=. python benchmarks/predict.py --customers 20000 --workers 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from featurestore import FeatureStore, Settings, generate_weblog
from featurestore.cluster import local_cluster
from featurestore.retrain import new_job, run_job
from featurestore.storage import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best is reported)")
    args = parser.parse_args()

    from distributed import Client

    from tests._retrain_fixtures import make_xgb_export

    with tempfile.TemporaryDirectory() as tmp, local_cluster(args.workers) as cluster, \
            Client(cluster) as client:
        raw, store = Path(tmp) / "raw", Store(str(Path(tmp) / "store"))
        generate_weblog(str(raw), days=args.days, customers=args.customers, products=40,
                        rows_per_day=args.customers * 3, parts=1, seed=3, columns=20)
        fs = FeatureStore(Settings(store=store.url), client=client)
        assert fs.ingest(str(raw)).ok
        export = make_xgb_export(Path(tmp) / "export", rows=(3000, 1000, 1000))
        job = run_job(store, new_job(store, "purchase-xgboost", "local",
                                     export_url=str(export))["job_id"], Settings(store=store.url))
        assert job["status"] == "completed", job["error"]
        best = float("inf")
        rows = 0
        for _ in range(args.repeat):
            store.remove("_state", "predictions", "purchase-xgboost.json")  # score again
            start = time.perf_counter()
            report = fs.predict()
            best = min(best, time.perf_counter() - start)
            rows = report.rows
    print(json.dumps({"date": dt.date.today().isoformat(), "customers": rows,
                      "workers": args.workers, "seconds": round(best, 3),
                      "customers_per_second": round(rows / best),
                      "customers_per_second_per_core": round(rows / best / args.workers)}))


if __name__ == "__main__":
    main()
