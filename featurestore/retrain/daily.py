"""``run_daily``: what cron runs once a day.

1. ingest every new drop under ``raw_root`` (exactly once; see :mod:`featurestore.sources.weblog.ingest`);
2. materialize the feature tables of the store's feature repository through the latest drop;
3. on ``settings.retrain_weekday`` (0 = Monday), or when forced, retrain every model in
   ``settings.retrain_models`` with ``settings.retrain_backend`` - each job compares itself with
   production and alerts on its own (:mod:`.alerts`); a model the store has too little history
   for is skipped, saying how many more days it needs (:mod:`.history`), not failed;
4. on ``settings.predict_schedule`` (daily, weekly, monthly, never), score every customer of the
   latest snapshot with each of ``settings.predict_models`` (:mod:`featurestore.predict`,
   exactly once per version and as-of);
5. notify (same webhook/SNS) when a file was rejected or a job failed.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from distributed import Client

from ..cluster import dask_client
from ..features.definitions import FeatureRepo
from ..materialization import materialize_locked
from ..repository import resolve_repo
from ..settings import Settings
from ..sources.weblog.source import WeblogSource
from ..storage import Store
from .alerts import notify
from .history import history_shortfall
from .jobs import new_job, run_job
from .models import MODELS

__all__ = ["run_daily", "predict_due"]


def predict_due(schedule: str, today: dt.date, weekday: int) -> bool:
    """Whether ``run-daily`` scores customers ``today`` under ``schedule``.

    Args:
        schedule: ``daily``, ``weekly`` (on ``weekday``, 0 = Monday, the retrain day),
            ``monthly`` (on the 1st) or ``never``.
        today: the day run-daily acts as.
        weekday: the weekly day.

    Returns:
        True when due.
    """
    return (schedule == "daily" or (schedule == "weekly" and today.weekday() == weekday)
            or (schedule == "monthly" and today.day == 1))


def _predict(store: Store, model: str, client: Client, settings: Settings) -> dict[str, Any]:
    """One model's batch scoring for the daily report; no production version yet is not a
    failure (nothing to score with), any other error is."""
    from .._exceptions import FeatureStoreError, ModelUnavailableError
    from ..predict import predict

    try:
        return predict(store, model=model, client=client, settings=settings).to_dict()
    except ModelUnavailableError as exc:
        return {"model": model, "status": "no_production_version", "error": str(exc)}
    except FeatureStoreError as exc:
        return {"model": model, "status": "failed", "error": str(exc)}


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
                              "retrain": [], "predict": [], "ok": True}
    with dask_client(settings.scheduler, settings.workers, client) as c:
        with store.lock("run-daily: ingest + materialize"):
            # the weblog source's own ingest: every ingest setting, and the partials built
            # for the repository commands resolve (not the built-in one)
            ingest = WeblogSource(store, settings).ingest(raw_root, client=c,
                                                          raw_storage_options=None,
                                                          progress=None)
            report["ingest"] = ingest.to_dict()
            report["ok"] &= ingest.ok
            report["materialize"] = {"status": "done", "result": materialize_locked(
                store, client=c, repo=repo).to_dict()}
        due = force_retrain or today.weekday() == settings.retrain_weekday
        report["retrain_due"] = due
        if due:
            for model in settings.retrain_models:
                short = (None if (export_urls or {}).get(model) or model not in MODELS
                         else history_shortfall(  # unknown: the job fails
                             store, MODELS[model], settings.recommendation_holdout_days,
                             settings.recommendation_validation_days))
                if short is not None:  # a young store: a skip with a date in sight, no alert
                    report["retrain"].append({"job_id": None, "model": model,
                                              "status": "skipped", "need_days": short.need_days,
                                              "reason": short.reason})
                    continue
                record = new_job(store, model, settings.retrain_backend,
                                 tune=settings.retrain_tune,
                                 export_url=(export_urls or {}).get(model))
                final = run_job(store, record["job_id"], settings)
                report["retrain"].append({k: final[k] for k in (
                    "job_id", "model", "status", "metrics", "error", "model_version", "alert")})
                report["ok"] &= final["status"] == "completed"
        # after the retrain: a version promoted today scores today
        report["predict_due"] = predict_due(settings.predict_schedule, today,
                                            settings.retrain_weekday)
        report["predict"] = ([_predict(store, model, c, settings) for model in settings.predict_models]
                             if report["predict_due"] else [])
        report["ok"] &= all(p["status"] != "failed" for p in report["predict"])
    problems = ingest.problems()  # rejected, bad folders, changed, placeholders, missing
    problems += [f"job {j['job_id']} failed: {j['error']}" for j in report["retrain"]
                 if j["status"] not in ("completed", "skipped")]
    problems += [f"predict {p['model']} failed: {p['error']}" for p in report["predict"]
                 if p["status"] == "failed"]
    if problems:
        report["notified"] = notify(settings, {"event": "run_daily_problem",
                                               "model": "run-daily", "store": store.url,
                                               "today": today.isoformat(),
                                               "problems": problems})
    report["seconds"] = round(time.monotonic() - start, 2)
    return report
