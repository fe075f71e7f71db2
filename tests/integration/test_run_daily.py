"""run-daily: ingest new drops, (materialize), retrain when due, notify on failures."""

from __future__ import annotations

import datetime as dt

from featurestore.retrain import list_jobs, registry
from featurestore.retrain.daily import run_daily
from featurestore.settings import Settings
from featurestore.sources.weblog.ingest import ledger_entries
from featurestore.storage import Store
from tests import _retrain_fixtures as fx
from tests._receivers import WebhookReceiver

MONDAY = dt.date(2026, 3, 2)


def test_run_daily_retrains_on_weekday_only(drops_copy, tmp_path, client):
    raw, _ = drops_copy
    store = Store(str(tmp_path / "store"))
    export = fx.make_xgb_export(tmp_path / "xgb", rows=(3000, 1000, 2000), seed=9)
    with WebhookReceiver() as hook:
        settings = Settings(store=store.url, retrain_weekday=0, alert_webhook_url=hook.url)
        exports = {"purchase-xgboost": str(export)}
        tuesday = run_daily(store, str(raw), settings=settings, today=MONDAY + dt.timedelta(1),
                            client=client, export_urls=exports)
        assert tuesday["retrain_due"] is False and tuesday["retrain"] == []
        assert tuesday["ingest"]["files_ingested"] == len(ledger_entries(store)) > 0
        assert tuesday["materialize"]["status"] in ("done", "skipped")
        assert list_jobs(store) == []

        monday = run_daily(store, str(raw), settings=settings, today=MONDAY, client=client,
                           export_urls=exports)
        assert monday["ingest"]["files_ingested"] == 0  # exactly once: nothing new
        assert monday["retrain_due"] is True and monday["ok"] is True
        [job] = monday["retrain"]
        assert job["status"] == "completed" and job["model_version"] == "v0001"
        assert registry.production_version(store, "purchase-xgboost") == "v0001"

        # Forced on a Tuesday, with a broken export: the job fails and run-daily notifies.
        forced = run_daily(store, str(raw), settings=settings, today=MONDAY + dt.timedelta(1),
                           client=client, force_retrain=True,
                           export_urls={"purchase-xgboost": str(tmp_path / "missing")})
        assert forced["ok"] is False and forced["retrain"][0]["status"] == "failed"
        assert [h["json"]["event"] for h in hook.received] == ["run_daily_problem"]
        assert forced["retrain"][0]["job_id"] in hook.received[0]["json"]["problems"][0]


def test_cronjob_manifest_runs_a_valid_command():
    """deploy/k8s/run-daily-cronjob.yaml: the container args parse as a featurestore command."""
    from pathlib import Path

    import yaml

    from featurestore.cli import build_parser

    manifest = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy" / "k8s" /
                               "run-daily-cronjob.yaml").read_text())
    assert manifest["kind"] == "CronJob" and manifest["spec"]["concurrencyPolicy"] == "Forbid"
    container = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    argv = list(container.get("command", [])[1:]) + list(container["args"])
    if argv and argv[0] == "featurestore":  # args naming the program (image entrypoint)
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    assert args.command == "run-daily" and args.raw.startswith("s3://")
    env = {e["name"] for e in container["env"]}
    from featurestore.settings import Settings

    known = {f"FEATURESTORE_{name.upper()}" for name in Settings.model_fields}
    assert {e for e in env if e.startswith("FEATURESTORE_")} <= known


def test_run_daily_alerts_on_an_incomplete_drop(drops_copy, tmp_path, client):
    """A file the manifest names but that never arrived makes run-daily not ok and reaches the
    alert channel (before, only rejected files did: an incomplete day was silent)."""
    import json

    raw, _ = drops_copy
    drop = sorted(p for p in raw.iterdir() if p.is_dir())[-1]
    manifest = json.loads((drop / "manifest.json").read_text())
    missing = manifest["files"][0]["name"]
    (drop / missing).unlink()
    store = Store(str(tmp_path / "store"))
    with WebhookReceiver() as hook:
        settings = Settings(store=store.url, retrain_weekday=0, alert_webhook_url=hook.url,
                            predict_schedule="never")
        report = run_daily(store, str(raw), settings=settings, client=client,
                           today=MONDAY + dt.timedelta(1))
        assert report["ok"] is False
        [alert] = [h["json"] for h in hook.received]
        assert alert["event"] == "run_daily_problem"
        assert any(p.startswith("missing ") and missing in p for p in alert["problems"])


def test_run_daily_partials_follow_the_configured_repository(drops_copy, tmp_path, client,
                                                             monkeypatch):
    """A repository given by the setting (not applied) reaches run-daily's ingest: the
    partials it writes are built for that repository's daily columns, so its materialization
    sums them instead of reading the day's events again (before, run-daily's ingest wrote
    partials for the built-in repository and every materialization fell back to events)."""
    from featurestore.cli import main
    from featurestore.features.daily import daily_plan
    from featurestore.features.definitions import DEFAULT_REPO, load_feature_repo
    from featurestore.features.partials import partials_fingerprint

    raw, _ = drops_copy
    anchor = "      days_since_last_purchase: {aggregation: recency, filter: {event_id: \"1\"}}\n"
    text = DEFAULT_REPO.read_text()
    assert anchor in text  # a filter no built-in feature has: a new daily column
    repo = tmp_path / "repo.yaml"
    repo.write_text(text.replace(anchor, anchor + "      checkouts_7d: {aggregation: count, "
                                 "filter: {event_id: \"11\"}, window_days: 7}\n"))
    wanted = partials_fingerprint(daily_plan(load_feature_repo(str(repo))))
    assert wanted != partials_fingerprint(daily_plan(load_feature_repo(None)))
    monkeypatch.setenv("FEATURESTORE_FEATURE_REPO", str(repo))
    store = tmp_path / "store"
    assert main(["run-daily", "--store", str(store), "--raw", str(raw), "--scheduler",
                 client.scheduler.address, "--today", "2026-03-03"]) == 0
    names = [p.name for p in (store / "_partials").rglob("*.arrow")]
    assert names and all(n.endswith(f"-{wanted}.arrow") for n in names), names[:3]
    features = Store(str(store)).read_parquet("customer_features")
    assert "checkouts_7d" in features.columns


def test_run_daily_skips_a_retrain_short_of_history_on_every_weekday(tmp_path, client, capsys):
    """Issue #31: on the retrain weekday a store of three days has no as-of date with a complete
    30-day label window. The due retrain is a skip that says how many more days it needs (exit
    0, ok, no alert), never a failed run; every weekday, through the real CLI with --today."""
    import json

    from featurestore.cli import main
    from featurestore.generate import generate_weblog

    raw = tmp_path / "raw"
    generate_weblog(str(raw), days=3, customers=60, products=10, rows_per_day=300, parts=1,
                    seed=5, start=dt.date(2026, 3, 1))
    store = tmp_path / "store"
    with WebhookReceiver() as hook:
        env = {"FEATURESTORE_ALERT_WEBHOOK_URL": hook.url, "FEATURESTORE_RETRAIN_WEEKDAY": "0",
               "FEATURESTORE_PREDICT_SCHEDULE": "never"}
        import os

        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            seen = {}
            for offset in range(7):
                today = dt.date(2026, 3, 4) + dt.timedelta(days=offset)
                rc = main(["run-daily", "--store", str(store), "--raw", str(raw), "--scheduler",
                           client.scheduler.address, "--today", today.isoformat(), "--json"])
                out = capsys.readouterr().out
                report = json.loads(out[out.index("{"):])
                assert rc == 0 and report["ok"] is True, report
                seen[today.weekday()] = report
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        assert hook.received == []  # a skip is no problem to alert on
    assert sorted(seen) == list(range(7))
    for weekday, report in seen.items():
        assert report["retrain_due"] is (weekday == 0)
        if weekday != 0:
            assert report["retrain"] == []
    [skip] = seen[0]["retrain"]
    # 2026-03-01..03 ingested: a time split needs three as-of dates D with D+30 on or before
    # the latest data date, so the data must reach 2026-04-02: 30 more days
    assert skip == {"model": "purchase-xgboost", "status": "skipped", "need_days": 30,
                    "reason": "need 30 more days of history", "job_id": None}, skip
    assert list_jobs(Store(str(store))) == []

    # the person's summary says it in one line
    rc = main(["run-daily", "--store", str(store), "--raw", str(raw), "--scheduler",
               client.scheduler.address, "--today", "2026-03-09"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert "  retrain purchase-xgboost: retrain skipped: need 30 more days of history" in lines
