"""Model-quality figures for the retraining docs (local backend).

    python benchmarks/retrain_quality.py                 # synthetic exports (tests' fixture)
    python benchmarks/retrain_quality.py --generated     # + generate, ingest, materialize, export
    python benchmarks/retrain_quality.py --retail        # + shared Online Retail -> FM export
    python benchmarks/retrain_quality.py --retail --no-synthetic   # Online Retail only

Prints PR-AUC against the positive rate (and their ratio) for the purchase classifier, and the
FM's test RMSE against the item-mean baseline (and their ratio); with ``--retail`` issue #29's
protocol: every recommender (retail-als, retail-knn, the FM classifier) trained as its retrain
job trains it and scored on the last 30 days (2011-11-10..2011-12-09) beside "most popular" and
"buy again", both modes, with bootstrap intervals, the ratios and the targets. ``--generated`` and
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
    from featurestore.sources.weblog.ingest import ingest_weblog
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


def retail(work: Path, path: str, models: list[str], holdout_days: int = 30) -> None:
    """Issue #29's protocol on the whole Online Retail set: every recommender trained as its
    retrain job trains it (validation window for hyperparameters and the repeat weight, test
    window = the last ``holdout_days`` days: 2011-11-10..2011-12-09), beside "most popular"
    and "buy again" on the same test window, with bootstrap 95% intervals over customers."""
    from featurestore import training
    from featurestore.retrain.baseline import baseline_failure
    from featurestore.retrain.models import MODELS
    from featurestore.retrain.recommender import train_implicit
    from featurestore.sources.retail import ingest_retail
    from featurestore.storage import Store

    store = Store(str(work / "retail-store"))
    ingest_retail(path, store)
    runs, cpu_times = {}, {}
    for name in models:
        spec = MODELS[name]
        t, cpu = time.perf_counter(), time.process_time()
        if spec.kind == "implicit":
            export = training.export_purchases(store, str(work / name))
            exported, cpu_exported = time.perf_counter(), time.process_time()
            r = train_implicit(spec, export.out_url, holdout_days=holdout_days)
        else:
            export = training.export_fm_classifier(store, str(work / name),
                                                   holdout_days=holdout_days)
            exported, cpu_exported = time.perf_counter(), time.process_time()
            r = local.train_fm(export.out_url, holdout_days=holdout_days)
        # CPU seconds of this process beside the wall clock: on a shared, loaded machine the
        # wall clock is an upper bound, the CPU time (one thread: BLAS and implicit are
        # limited to 1) is close to what the job takes on an idle core
        cpu_times[name] = (cpu_exported - cpu, time.process_time() - cpu_exported)
        runs[name] = (r, exported - t, time.perf_counter() - exported)
    first = next(iter(runs.values()))[0]
    h = first.details["holdout"]
    print(f"\nOnline Retail, test window {h['test'][0]}..{h['test'][1]} (trained before it; "
          f"validation {h['validation'][0]}..{h['validation'][1]}); customers judged: "
          f"{h['customers']['any']:,} any item, {h['customers']['new']:,} new items")

    def cell(c: dict) -> str:
        return f"{c['value']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"

    print(f"{'ranking':<24}{'recall@10 any item':>26}{'recall@10 new items':>26}"
          f"{'NDCG@10 any / new':>20}{'hit@10 any / new':>20}{'train s':>9}")
    rows = [("most popular", first.details["holdout"]["table"]["popular"], None),
            ("buy again", first.details["holdout"]["table"]["buy_again"], None)]
    rows += [(name, r.details["holdout"]["table"]["model"], r) for name, (r, _, _) in
             runs.items()]
    for label, t, r in rows:
        any_, new = t.get("any"), t.get("new")
        print(f"{label:<24}{cell(any_['recall']) if any_ else '-':>26}"
              f"{cell(new['recall']) if new else '-':>26}"
              f"{(any_['ndcg']['value'] if any_ else float('nan')):>10.3f} /"
              f"{(new['ndcg']['value'] if new else float('nan')):>7.3f}"
              f"{(any_['hit_rate']['value'] if any_ else float('nan')):>10.3f} /"
              f"{(new['hit_rate']['value'] if new else float('nan')):>7.3f}"
              f"{runs[label][2] if label in runs else 0:>9.1f}")
    m0 = first.metrics
    pop, again = m0["popular_recall_at_10_new"], m0["buy_again_recall_at_10_any"]
    print(f"\nratios to the baselines measured here (most popular new items {pop:.4f}, buy "
          f"again any item {again:.4f}) and to issue #29's figures (0.020, 0.171):")
    for name, (r, export_s, train_s) in runs.items():
        m = r.metrics
        gate = baseline_failure(MODELS[name], m)
        print(f"  {name:<12} new items {m['recall_at_10_new'] / pop:5.2f}x most popular "
              f"({m['recall_at_10_new'] / 0.020:4.2f}x 0.020)   any item "
              f"{m['recall_at_10_any'] / again:5.3f}x buy again "
              f"({m['recall_at_10_any'] / 0.171:5.3f}x 0.171)   "
              f"{'promotable' if gate is None else 'NOT promoted: ' + gate}   "
              f"export {export_s:.0f} s (CPU {cpu_times[name][0]:.0f} s), train+judge+refit "
              f"{train_s:.0f} s (CPU {cpu_times[name][1]:.0f} s); chosen "
              + ", ".join(f"{k}={v}" for k, v in r.params.items()
                          if k not in ("holdout_days", "validation_days", "algorithm")))
    targets = []
    if "retail-als" in runs:
        m = runs["retail-als"][0].metrics
        targets += [("retail-als new items >= 2.5x most popular (0.050)",
                     m["recall_at_10_new"] >= 0.050),
                    ("retail-als any item >= 1.0x buy again (0.171)",
                     m["recall_at_10_any"] >= 0.171)]
    if "retail-fm" in runs:
        m = runs["retail-fm"][0].metrics
        targets.append(("retail-fm (classifier) new items >= 2.0x most popular (0.040)",
                        m["recall_at_10_new"] >= 0.040))
    targets += [(f"{n} trains in under 2 minutes (wall {s:.0f} s; CPU {cpu_times[n][1]:.0f} s, "
                 "the wall time on an idle core)", s < 120) for n, (_, _, s) in runs.items()]
    for text, ok in targets:
        print(f"  {'ok  ' if ok else 'MISS'} {text}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generated", action="store_true")
    p.add_argument("--days", type=int, default=75)
    p.add_argument("--customers", type=int, default=4000)
    p.add_argument("--rows-per-day", type=int, default=4000)
    p.add_argument("--retail", nargs="?", const=str(ROOT.parent / "shared" / "data" /
                                                    "online_retail.csv.gz"))
    p.add_argument("--no-synthetic", action="store_true", help="skip the synthetic exports")
    p.add_argument("--models", default="retail-als,retail-knn,retail-fm",
                   help="recommenders to run with --retail (comma-separated)")
    p.add_argument("--holdout-days", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_synthetic:
            synthetic(work)
        if args.generated:
            generated(work, args.days, args.customers, args.rows_per_day)
        if args.retail:
            retail(work, args.retail, args.models.split(","), args.holdout_days)


if __name__ == "__main__":
    main()
