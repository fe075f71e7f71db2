"""``run_daily``: what cron runs once a day.

1. ingest every new drop under ``raw_root`` (exactly once; see :mod:`featurestore.ingest`);
2. materialize the feature tables of the store's feature repository through the latest drop;
3. on ``settings.retrain_weekday`` (0 = Monday), or when forced, retrain every model in
   ``settings.retrain_models`` with ``settings.retrain_backend`` - each job compares itself with
   production and alerts on its own (:mod:`.alerts`);
4. notify (same webhook/SNS) when a file was rejected or a job failed.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from distributed import Client

from ..cluster import dask_client
from ..features.definitions import FeatureRepo
from ..ingest import ingest_weblog
from ..materialization import materialize_locked
from ..repository import resolve_repo
from ..settings import Settings
from ..storage import Store
from .alerts import notify
from .jobs import new_job, run_job

__all__ = ["run_daily"]


def run_daily(store: Store, raw_root: str, *, settings: Settings, force_retrain: bool = False,
              today: dt.date | None = None, client: Client | None = None,
              export_urls: dict[str, str] | None = None,
              repo: FeatureRepo | None = None) -> dict[str, Any]:
    """Run the daily pipeline; returns a JSON-able report with ``ok``.

    ``export_urls`` (model -> existing export) skips building training sets, for tests and
    for users who build exports elsewhere. ``repo``: the feature repository to materialize
    (callers pass :attr:`FeatureStore.repo`; None resolves the store's recorded one).
    """
    if repo is None:
        repo = resolve_repo(store, settings.feature_repo)
    start = time.monotonic()
    today = today or dt.datetime.now(dt.UTC).date()
    report: dict[str, Any] = {"today": today.isoformat(), "ingest": None, "materialize": None,
                              "retrain": [], "ok": True}
    with dask_client(settings.scheduler, settings.workers, client) as c, \
            store.lock("run-daily: ingest + materialize"):
        ingest = ingest_weblog(raw_root, store, client=c, max_late_days=settings.max_late_days)
        report["ingest"] = ingest.to_dict()
        report["ok"] &= ingest.ok
        report["materialize"] = {"status": "done", "result": materialize_locked(
            store, client=c, repo=repo).to_dict()}
    due = force_retrain or today.weekday() == settings.retrain_weekday
    report["retrain_due"] = due
    if due:
        for model in settings.retrain_models:
            record = new_job(store, model, settings.retrain_backend, tune=settings.retrain_tune,
                             export_url=(export_urls or {}).get(model))
            final = run_job(store, record["job_id"], settings)
            report["retrain"].append({k: final[k] for k in (
                "job_id", "model", "status", "metrics", "error", "model_version", "alert")})
            report["ok"] &= final["status"] == "completed"
    problems = [f"rejected {r['file']}: {r['reason']}" for r in ingest.rejected]
    problems += [f"job {j['job_id']} failed: {j['error']}" for j in report["retrain"]
                 if j["status"] != "completed"]
    if problems:
        report["notified"] = notify(settings, {"event": "run_daily_problem",
                                               "model": "run-daily", "store": store.url,
                                               "today": today.isoformat(),
                                               "problems": problems})
    report["seconds"] = round(time.monotonic() - start, 2)
    return report
