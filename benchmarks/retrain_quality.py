"""Model-quality figures for the retraining docs (local backend).

    python benchmarks/retrain_quality.py                 # synthetic exports (tests' fixture)
    python benchmarks/retrain_quality.py --generated     # + generate, ingest, materialize, export
    python benchmarks/retrain_quality.py --retail        # + shared Online Retail -> FM export
    python benchmarks/retrain_quality.py --retail --no-synthetic   # Online Retail only

Prints PR-AUC against the positive rate (and their ratio) for the purchase classifier, and the
FM's test RMSE against the item-mean baseline (and their ratio); with ``--retail`` also the
FM's recall@10 / NDCG@10 on held-out purchases against the popularity baseline. ``--generated`` and
``--retail`` need featurestore.features and featurestore.training (merged branches).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featurestore.retrain import local  # noqa: E402
from featurestore.training.recordio import read_recordio_protobuf  # noqa: E402
from tests import _retrain_fixtures as fx  # noqa: E402


def _xgb_line(name: str, m: dict, seconds: float) -> None:
    print(f"{name:<38} PR-AUC {m['pr_auc']:.3f}  positive rate {m['positive_rate']:.4f}  "
          f"ratio {m['pr_auc'] / m['positive_rate']:5.1f}x  ROC-AUC {m['roc_auc']:.3f}  "
          f"recall@1% {m['recall_at_top_1pct']:.3f}  ({seconds:.1f} s)")


def _fm_line(name: str, m: dict, seconds: float) -> None:
    print(f"{name:<38} RMSE {m['rmse']:.3f}  item-mean baseline {m['baseline_rmse']:.3f}  "
          f"ratio {m['rmse'] / m['baseline_rmse']:.2f}  ({seconds:.1f} s)")


def synthetic(work: Path) -> None:
    export = fx.make_xgb_export(work / "xgb", seed=1)
    for tune in (False, True):
        t = time.perf_counter()
        r = local.train_xgboost(str(export), tune=tune)
        _xgb_line(f"synthetic xgboost-csv (tune={tune})", r.metrics, time.perf_counter() - t)
    fm = fx.make_fm_export(work / "fm", seed=2)
    t = time.perf_counter()
    r = local.train_fm(str(fm), reader=read_recordio_protobuf)
    _fm_line("synthetic low-rank fm-recordio", r.metrics, time.perf_counter() - t)


def generated(work: Path, days: int, customers: int, rows_per_day: int) -> None:
    from distributed import Client, LocalCluster

    from featurestore import features, training
    from featurestore.generate import generate_weblog
    from featurestore.ingest import ingest_weblog
    from featurestore.storage import Store

    generate_weblog(str(work / "raw"), days=days, customers=customers, products=40,
                    rows_per_day=rows_per_day, parts=1, seed=21, columns=60)
    store = Store(str(work / "store"))
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        ingest_weblog(str(work / "raw"), store, client=client)
        features.materialize(store, client=client)
        # Skip the first 30 as-of dates (incomplete 30-day windows); short purge gap so a
        # small run still has several as-of dates per split.
        training.export_xgboost(store, str(work / "export"), client=client, gap_days=7,
                                split=(0.6, 0.2, 0.2),
                                start=dt.date(2026, 1, 1) + dt.timedelta(days=29))
    t = time.perf_counter()
    r = local.train_xgboost(str(work / "export"))
    _xgb_line(f"generated {days}d x {customers} customers", r.metrics, time.perf_counter() - t)


def retail(work: Path, path: str) -> None:
    from featurestore import training
    from featurestore.sources.retail import ingest_retail
    from featurestore.storage import Store

    store = Store(str(work / "retail-store"))
    ingest_retail(path, store)
    training.export_fm(store, str(work / "fm-retail"))
    t = time.perf_counter()
    r = local.train_fm(str(work / "fm-retail"))
    _fm_line("Online Retail (shared) fm-recordio", r.metrics, time.perf_counter() - t)
    recommendations(work / "fm-retail", r.model_bytes)


def recommendations(export: Path, model_bytes: bytes) -> None:
    """Recall@10 / NDCG@10 of the trained FM against the popularity baseline on the export's
    held-out purchases: the evaluation a retail-fm version stores at registration."""
    import json

    from featurestore.recommend import FMRecommender, evaluate

    meta = json.loads((export / "metadata.json").read_text())
    index = (export / meta["index"]).read_bytes()
    rec = FMRecommender.from_bytes(model_bytes, index)
    t = time.perf_counter()
    m = evaluate(rec)
    print(f"{'Online Retail recommendations (k=10)':<38} FM recall@10 {m['recall_at_10']:.4f}  "
          f"NDCG@10 {m['ndcg_at_10']:.4f}  |  popularity recall@10 "
          f"{m['popularity_recall_at_10']:.4f}  NDCG@10 {m['popularity_ndcg_at_10']:.4f}  "
          f"({int(m['eval_customers']):,} customers with held-out purchases, "
          f"{len(rec.items):,} products; {time.perf_counter() - t:.1f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generated", action="store_true")
    p.add_argument("--days", type=int, default=75)
    p.add_argument("--customers", type=int, default=4000)
    p.add_argument("--rows-per-day", type=int, default=4000)
    p.add_argument("--retail", nargs="?", const=str(ROOT.parent / "shared" / "data" /
                                                    "online_retail.csv.gz"))
    p.add_argument("--no-synthetic", action="store_true", help="skip the synthetic exports")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_synthetic:
            synthetic(work)
        if args.generated:
            generated(work, args.days, args.customers, args.rows_per_day)
        if args.retail:
            retail(work, args.retail)


if __name__ == "__main__":
    main()
