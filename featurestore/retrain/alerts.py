"""Compare a new version with production; notify (webhook JSON, SNS) and apply the promotion rule.

* The primary metric is the model's (``pr_auc`` for purchase-xgboost, ``rmse`` for retail-fm).
* ``relative_change = (new - production) / |production|``; an alert fires when
  ``|relative_change| > alert_threshold`` - a big improvement is news too (it often means a data
  change), and ``direction`` says which way it went.
* Promotion: with ``auto_promote`` the new version becomes production when there is no
  production version yet or when it is strictly better on the primary metric; otherwise
  production moves only through ``featurestore models NAME --promote VERSION``.
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
from . import registry
from .models import ModelSpec

__all__ = ["compare", "notify", "evaluate_and_promote"]

log = logging.getLogger(__name__)


def compare(spec: ModelSpec, new: dict[str, Any], production: dict[str, Any] | None,
            threshold: float) -> dict[str, Any]:
    """The comparison record (no side effects)."""
    metric = spec.primary_metric
    out: dict[str, Any] = {"primary_metric": metric, "threshold": threshold,
                           "new_value": new.get(metric), "production_value": None,
                           "relative_change": None, "direction": None, "alert": False,
                           "better": None}
    new_value = new.get(metric)
    if production is None or new_value is None:
        return out
    old = production.get(metric)
    out["production_value"] = old
    if old is None or not all(math.isfinite(float(x)) for x in (old, new_value)):
        return out
    old, new_value = float(old), float(new_value)
    rel = (new_value - old) / abs(old) if old else (0.0 if new_value == old else math.inf)
    better = new_value > old if spec.higher_is_better else new_value < old
    out.update(relative_change=rel, better=better,
               direction="unchanged" if new_value == old else ("better" if better else "worse"),
               alert=abs(rel) > threshold)
    return out


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
    prod_metrics = (registry.get_version(store, spec.name, prod)["metrics"]
                    if prod and prod != version else None)
    result = compare(spec, metrics, prod_metrics, settings.alert_threshold)
    result["production_version"] = prod
    promoted = False
    if settings.auto_promote and (prod is None or result["better"]):
        if health["production_damaged"]:
            reason = f"production record damaged ({health['production_damaged']})"
        else:
            reason = "first version" if prod is None else f"auto: better {spec.primary_metric}"
        registry.promote(store, spec.name, version, reason=reason)
        promoted = True
    result["promoted"] = promoted
    if result["alert"]:
        payload = {"event": "model_metric_change", "model": spec.name, "version": version,
                   "job_id": job_id, **{k: result[k] for k in (
                       "primary_metric", "new_value", "production_value", "production_version",
                       "relative_change", "direction", "threshold", "promoted")},
                   "metrics": metrics}
        result["notified"] = notify(settings, payload)
    if health["production_damaged"] or health["damaged_versions"]:
        damage = {k: health[k] for k in ("production_damaged", "damaged_versions")}
        log.warning("model %s registry is damaged: %s", spec.name, damage)
        result["damage"] = damage
        result["damage_notified"] = notify(settings, {
            "event": "registry_damaged", "model": spec.name, "version": version,
            "job_id": job_id, **damage, "production_version": prod, "promoted": promoted})
    return result
