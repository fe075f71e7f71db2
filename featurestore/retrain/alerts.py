"""Compare a new version with production; notify (webhook JSON, SNS) and apply the promotion rule.

* The primary metric is the model's (``pr_auc`` for purchase-xgboost, ``rmse`` for retail-fm).
* A change is *significant* when the production value of the primary metric lies outside the
  new version's bootstrap confidence interval (``alert_confidence_level``, default 0.95; the
  interval comes from the held-out bootstrap samples stored with the version,
  :mod:`.quality`); a significant change alerts, either way - a big improvement is news too (it
  often means a data change), and ``direction`` says which way it went. The alert carries the
  intervals of both versions. A version without bootstrap samples (trained elsewhere, or
  before they existed) falls back to the fixed rule ``|relative_change| > alert_threshold``,
  with ``relative_change = (new - production) / |production|``; ``rule`` says which applied.
* Promotion: with ``auto_promote`` the new version becomes production when there is no
  production version yet or when it is strictly better on the primary metric; otherwise
  production moves only through ``featurestore models NAME --promote VERSION``. A version no
  better than the trivial baseline (:mod:`.baseline`: ROC-AUC <= 0.5, RMSE >= the item-mean
  baseline) is never auto-promoted: the comparison's ``not_promoted_reason`` says why and a
  ``model_below_baseline`` alert is sent.
* Notification failures never fail the job; they are recorded in the job's ``alert`` field.
* Damaged registry records (``registry.damage_report``) are reported once per retrain with a
  ``registry_damaged`` event and skipped: a damaged production counts as no production.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from ..settings import Settings
from ..storage import Store
from . import quality, registry
from .baseline import baseline_checked, baseline_failure
from .models import ModelSpec

__all__ = ["compare", "notify", "evaluate_and_promote", "judged_metric"]

#: A recommender version with time-holdout figures is compared on this (higher is better).
HOLDOUT_METRIC = "recall_at_10_new"


def judged_metric(spec: ModelSpec, metrics: dict[str, Any]) -> tuple[str, bool]:
    """The metric a version is compared on and whether higher is better: the spec's primary
    metric, except for a recommender version judged on the time holdout (#29), compared on
    new-items recall@10 (an FM classifier has no RMSE)."""
    if spec.recommender and metrics.get(HOLDOUT_METRIC) is not None:
        return HOLDOUT_METRIC, True
    return spec.primary_metric, spec.higher_is_better

log = logging.getLogger(__name__)


def compare(spec: ModelSpec, new: dict[str, Any], production: dict[str, Any] | None,
            threshold: float, *, new_bootstrap: dict[str, list[float]] | None = None,
            production_bootstrap: dict[str, list[float]] | None = None,
            level: float = 0.95) -> dict[str, Any]:
    """The comparison record (no side effects).

    Args:
        spec: the model (its primary metric and direction).
        new: the new version's metrics.
        production: the production version's metrics (None: no production).
        threshold: the relative change that alerts when the new version has no bootstrap.
        new_bootstrap: the new version's bootstrap samples per metric.
        production_bootstrap: production's, for the alert's second interval.
        level: the confidence level of the intervals.

    Returns:
        ``alert`` (significant), ``rule`` (``bootstrap`` or ``threshold``), both versions'
        ``intervals``, the values, ``relative_change``, ``direction``, ``better``.
    """
    metric, higher = judged_metric(spec, new)
    samples = (new_bootstrap or {}).get(metric)
    out: dict[str, Any] = {"primary_metric": metric, "threshold": threshold,
                           "new_value": new.get(metric), "production_value": None,
                           "relative_change": None, "direction": None, "alert": False,
                           "better": None, "rule": "bootstrap" if samples else "threshold",
                           "confidence_level": level,
                           "new_intervals": quality.intervals(new_bootstrap, level),
                           "production_intervals": quality.intervals(production_bootstrap,
                                                                     level)}
    new_value = new.get(metric)
    if production is None or new_value is None:
        return out
    old = production.get(metric)
    out["production_value"] = old
    if old is None or not all(math.isfinite(float(x)) for x in (old, new_value)):
        return out
    old, new_value = float(old), float(new_value)
    rel = (new_value - old) / abs(old) if old else (0.0 if new_value == old else math.inf)
    better = new_value > old if higher else new_value < old
    if samples:  # significant: production's value is outside the new version's interval
        low, high = quality.interval(samples, level)
        alert = not low <= old <= high
    else:
        alert = abs(rel) > threshold
    out.update(relative_change=rel, better=better,
               direction="unchanged" if new_value == old else ("better" if better else "worse"),
               alert=alert)
    return out


def _bootstrap(record: dict[str, Any] | None) -> dict[str, list[float]] | None:
    """A version's bootstrap samples (``details.bootstrap`` of version.json), if any."""
    details = (record or {}).get("details")
    value = details.get("bootstrap") if isinstance(details, dict) else None
    return value if isinstance(value, dict) else None


def notify(settings: Settings, payload: dict[str, Any]) -> dict[str, Any]:
    """POST ``payload`` to the webhook and publish it to SNS, as configured; report each."""
    sent: dict[str, Any] = {}
    if settings.alert_webhook_url:
        import httpx

        try:
            r = httpx.post(settings.alert_webhook_url, json=payload, timeout=10.0)
            sent["webhook"] = {"status_code": r.status_code, "ok": r.is_success}
        except httpx.HTTPError as exc:
            log.warning("alert webhook %s failed: %s", settings.alert_webhook_url, exc)
            sent["webhook"] = {"ok": False, "error": str(exc)}
    if settings.alert_sns_topic_arn:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            arn = settings.alert_sns_topic_arn
            region = settings.sagemaker_region or (arn.split(":")[3] if arn.count(":") >= 5
                                                   else None)
            sns = boto3.client("sns", region_name=region or None)
            subject = f"featurestore: {payload.get('model')} {payload.get('event')}"[:100]
            r = sns.publish(TopicArn=arn, Subject=subject,
                            Message=json.dumps(payload, default=str))
            sent["sns"] = {"ok": True, "message_id": r.get("MessageId")}
        except (BotoCoreError, ClientError) as exc:
            log.warning("alert SNS publish to %s failed: %s", settings.alert_sns_topic_arn, exc)
            sent["sns"] = {"ok": False, "error": str(exc)}
    return sent


def evaluate_and_promote(store: Store, settings: Settings, spec: ModelSpec, version: str,
                         metrics: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Compare with production, notify on a change beyond the threshold, promote by the rule.

    Damaged registry records are skipped: a damaged production (or production.json) counts as
    no production, so this version can be promoted, and one ``registry_damaged`` alert names
    what is damaged.

    Args:
        store: the store holding the registry.
        settings: alert channels, threshold and ``auto_promote``.
        spec: the model.
        version: the version just registered.
        metrics: its held-out metrics.
        job_id: the retrain job.

    Returns:
        The comparison record (``promoted``, ``notified``, and ``damage`` when any).
    """
    health = registry.damage_report(store, spec.name)
    prod = health["production"]
    prod_record = (registry.get_version(store, spec.name, prod)
                   if prod and prod != version else None)
    new_record = registry.get_version(store, spec.name, version)
    result = compare(spec, metrics, prod_record["metrics"] if prod_record else None,
                     settings.alert_threshold,
                     new_bootstrap=_bootstrap(new_record),
                     production_bootstrap=_bootstrap(prod_record),
                     level=settings.alert_confidence_level)
    result["production_version"] = prod
    promoted = False
    below = baseline_failure(spec, metrics, _bootstrap(new_record),
                             settings.alert_confidence_level)
    result["below_baseline"] = below
    result["baseline_checked"] = baseline_checked(spec, metrics)
    if below is not None:
        result["not_promoted_reason"] = below
    elif not settings.auto_promote:
        result["not_promoted_reason"] = "auto_promote is off"
    elif prod is not None and not result["better"]:
        result["not_promoted_reason"] = (f"{result['primary_metric']} not better than "
                                         f"production {prod}")
    if below is None and settings.auto_promote and (prod is None or result["better"]):
        if health["production_damaged"]:
            reason = f"production record damaged ({health['production_damaged']})"
        else:
            reason = ("first version" if prod is None
                      else f"auto: better {result['primary_metric']}")
        registry.promote(store, spec.name, version, reason=reason)
        promoted = True
    result["promoted"] = promoted
    if result["alert"]:
        payload = {"event": "model_metric_change", "model": spec.name, "version": version,
                   "job_id": job_id, **{k: result[k] for k in (
                       "primary_metric", "new_value", "production_value", "production_version",
                       "relative_change", "direction", "threshold", "promoted", "rule",
                       "confidence_level", "new_intervals", "production_intervals")},
                   "metrics": metrics}
        result["notified"] = notify(settings, payload)
    if below is not None:
        log.warning("model %s version %s not promoted: %s", spec.name, version, below)
        result["baseline_notified"] = notify(settings, {
            "event": "model_below_baseline", "model": spec.name, "version": version,
            "job_id": job_id, "reason": below, "production_version": prod,
            "promoted": False, "metrics": metrics})
    if health["production_damaged"] or health["damaged_versions"]:
        damage = {k: health[k] for k in ("production_damaged", "damaged_versions")}
        log.warning("model %s registry is damaged: %s", spec.name, damage)
        result["damage"] = damage
        result["damage_notified"] = notify(settings, {
            "event": "registry_damaged", "model": spec.name, "version": version,
            "job_id": job_id, **damage, "production_version": prod, "promoted": promoted})
    return result
