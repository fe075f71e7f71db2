"""The dashboard's numbers (featurestore.dashboard) and its JSON and pages over a real uvicorn
server, on a store built by the generator and the CLI (ingest, retrain)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from featurestore import NotFoundError
from featurestore.dashboard import cluster, drift, feature_profile, ingestion, overview, psi
from featurestore.feature_store import FeatureStore
from featurestore.generate import generate_weblog
from featurestore.settings import Settings


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``featurestore ARGS`` in process (``featurestore.cli.main``: the store the commands
    leave, without an interpreter start per command); fails on a non-zero exit."""
    from tests._generated_store import cli_in_process

    return cli_in_process(*args)


def build_store(base: Path, scheduler: str) -> dict[str, Any]:
    """A store as an operator makes it: generated drops, ``featurestore ingest``, then two
    ``featurestore retrain`` runs (a good model, then a worse one that alerts).

    Returns:
        ``{"store", "raw", "report"}``: paths and the ingest ``--json`` report.
    """
    from tests._retrain_fixtures import make_xgb_export

    raw, store = base / "raw", base / "store"
    generate_weblog(str(raw), days=4, customers=300, products=30, rows_per_day=1500, parts=2,
                    seed=11, bad_rows=0.01, late_fraction=0.05)
    report = json.loads(run_cli("ingest", str(raw), "--store", str(store), "--scheduler",
                                scheduler, "--json").stdout)
    for i, informative in enumerate((True, False)):
        export = make_xgb_export(base / f"export{i}", seed=i, rows=(3000, 1000, 1500),
                                 informative=informative)
        run_cli("retrain", "--store", str(store), "--model", "purchase-xgboost",
                "--export-url", str(export), "--wait")
    (base / "report.json").write_text(json.dumps(report))
    return {"store": store, "raw": raw, "report": report}


@pytest.fixture(scope="module")
def built(dashboard_store) -> dict[str, Any]:
    """The store of :func:`build_store`, shared with the browser tests (read-only: copy it)."""
    return dashboard_store


@pytest.fixture(scope="module")
def fs(built) -> FeatureStore:
    return FeatureStore(Settings(store=str(built["store"])))


# -- library ----------------------------------------------------------------------------------
def test_psi_is_zero_for_the_same_values_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    base = pd.Series(rng.poisson(5, 2000))
    assert psi(base, base) == 0.0
    assert psi(base, pd.Series(rng.poisson(5, 2000))) < 0.1  # same distribution: stable
    assert psi(base, base + 5) > 0.25  # a clear shift
    # a constant baseline still shows values moving above it, and nulls appearing
    assert psi(pd.Series([1] * 100), pd.Series([1, 2, 3, 4] * 25)) > 0.25
    with_nulls = pd.Series([1.0, None] * 50, dtype="Float64")
    assert psi(pd.Series([1.0] * 100), with_nulls) > 0.25


def test_overview_matches_the_partitions(fs, built):
    data = overview(fs.offline_store, fs.repo)
    names = [t["table"] for t in data["tables"]]
    assert names == sorted(fs.repo.tables)  # from the repository, not a list in the code
    newest_drop = max(p.name for p in built["raw"].iterdir() if p.is_dir())
    for t in data["tables"]:
        if t["source"] != "weblog":
            assert t["latest_as_of"] is None and t["rows_per_as_of"] == []
            continue
        folder = built["store"] / t["table"]
        dates = sorted(p.name.split("=", 1)[1] for p in folder.iterdir())
        assert t["latest_as_of"] == dates[-1] and t["as_of_count"] == len(dates)
        assert t["source_latest"] == newest_drop and t["lag_days"] == 0 and not t["behind"]
        for point in t["rows_per_as_of"]:
            rows = len(pd.read_parquet(folder / f"as_of={point['as_of']}"))
            assert point["rows"] == rows and point["generation"] >= 1


def test_overview_marks_a_table_behind_its_source(fs, built, tmp_path):
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(built["store"], copy)
    # the newest as-of of one table is gone: it now lags its source by a day
    latest = overview(fs.offline_store, fs.repo)["tables"][0]
    shutil.rmtree(copy / latest["table"] / f"as_of={latest['latest_as_of']}")
    other = FeatureStore(Settings(store=str(copy)))
    row = next(t for t in overview(other.offline_store, other.repo)["tables"]
               if t["table"] == latest["table"])
    assert row["behind"] and row["lag_days"] == 1


def test_ingestion_matches_the_ledger_and_the_quarantine(fs, built):
    data = ingestion(fs.offline_store)
    report = built["report"]
    assert sum(d["rows_ingested"] for d in data["days"]) == report["rows_ingested"]
    assert sum(d["files_ingested"] for d in data["days"]) == report["files_ingested"]
    by_reason: dict[str, int] = {}
    for day in data["days"]:
        quarantined = pd.read_parquet(built["store"] / "_quarantine" / "weblog"
                                      / f"drop={day['drop']}")
        assert day["rows_quarantined"] == day["quarantine_rows_on_disk"] == len(quarantined)
        assert day["quarantine_location"].endswith(f"drop={day['drop']}")
        for reason, n in day["quarantined_by_reason"].items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    assert by_reason == {k: v for k, v in report["quarantined_by_reason"].items() if v}
    assert data["reasons"] == sorted(by_reason)


def test_ingestion_counts_files_held_back(built, tmp_path, client):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(built["raw"], raw)
    drop = max(p for p in raw.iterdir() if p.is_dir())
    # a new drop whose one file is a zero-byte placeholder: nothing ingested, one held back
    late = raw / "2026-01-09"
    late.mkdir()
    shutil.copy(drop / "column_headers.tsv", late)
    (late / next(p.name for p in drop.iterdir() if p.name.endswith(".gz"))).write_bytes(b"")
    # ... and one whose file is a truncated gzip: rejected whole, with its reason
    corrupt = raw / "2026-01-10"
    corrupt.mkdir()
    shutil.copy(drop / "column_headers.tsv", corrupt)
    source = next(p for p in sorted(drop.iterdir()) if p.name.endswith(".gz"))
    (corrupt / source.name).write_bytes(source.read_bytes()[:len(source.read_bytes()) // 2])
    store = tmp_path / "store"
    shutil.copytree(built["store"], store)
    # in process on the session cluster: what the run reports and records
    from tests._generated_store import cli_in_process

    proc = cli_in_process("ingest", str(raw), "--store", str(store), "--scheduler",
                          client.scheduler.address, "--json", check=False)
    assert proc.returncode != 0  # a placeholder and a corrupt file are not accounted for
    report = json.loads(proc.stdout)
    other = FeatureStore(Settings(store=str(store)))
    days = {d["drop"]: d for d in ingestion(other.offline_store)["days"]}
    day = days["2026-01-09"]
    assert day["files_placeholder"] == 1 and day["files_rejected"] == 0
    assert not day["complete"] and day["files_ingested"] == 0
    # the page shows what the run reported: the rejected file and its reason (the store
    # records them with the drop's status, since a rejected file has no ledger record)
    day = days["2026-01-10"]
    assert day["files_rejected"] == 1 and day["files_ingested"] == 0
    [rejected] = report["rejected"]
    assert day["rejected"] == [{"file": source.name, "reason": rejected["reason"]}]


def test_feature_profile_counts_every_row(fs, built):
    table = "customer_features"
    data = feature_profile(fs.offline_store, fs.repo, table)
    frame = pd.read_parquet(built["store"] / table / f"as_of={data['as_of']}")
    assert data["rows"] == len(frame)
    assert [f["name"] for f in data["features"]] == list(fs.repo.tables[table].features)
    for f in data["features"]:
        assert sum(f["counts"]) == frame[f["name"]].notna().sum()
        assert f["null_share"] == pytest.approx(frame[f["name"]].isna().mean(), abs=1e-6)
        assert len(f["edges"]) == len(f["counts"]) + 1 or not f["counts"]


def test_drift_sorts_the_largest_movers_first(fs):
    data = drift(fs.offline_store, fs.repo, "customer_features")
    dates = fs.offline_store.partitions("customer_features", "as_of")
    assert data["as_of"] == dates[-1] and data["baseline"] == dates[0]
    scores = [f["psi"] for f in data["features"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.1
    same = drift(fs.offline_store, fs.repo, "customer_features", dates[-1], dates[-1])
    assert all(f["psi"] == 0 for f in same["features"])


def test_unknown_table_or_as_of_is_not_found(fs):
    with pytest.raises(NotFoundError, match="no table 'nope' in the feature repository"):
        feature_profile(fs.offline_store, fs.repo, "nope")
    with pytest.raises(NotFoundError, match="has no as-of 1999-01-01"):
        drift(fs.offline_store, fs.repo, "customer_features", "1999-01-01")


def test_cluster_link():
    assert cluster(None) == {"scheduler": None, "dashboard_url": None}
    assert cluster("tcp://sched.internal:8786")["dashboard_url"] == (
        "http://sched.internal:8787/status")


# -- API over a real server -------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(built):
    from api.main import create_app
    from tests.serving_helpers import serve

    with serve(create_app(Settings(store=str(built["store"])))) as base:
        yield base


def test_json_endpoints(server, fs):
    models = httpx.get(f"{server}/dashboard/api/models").json()
    (model,) = models["models"]
    assert model["name"] == "purchase-xgboost" and model["production"] == "v0001"
    assert [v["version"] for v in model["versions"]] == ["v0001", "v0002"]
    recorded = json.loads((Path(fs.offline_store.root) / "_models" / "purchase-xgboost" / "v0002"
                           / "metrics.json").read_text())
    assert model["versions"][1]["metrics"] == {k: recorded[k] for k in ("pr_auc", "roc_auc")}
    assert [j["status"] for j in models["jobs"]] == ["completed", "completed"]
    (alert,) = models["alerts"]  # the worse model alerted and was not promoted
    assert alert["version"] == "v0002" and alert["promoted"] is False
    # the baseline gate's verdict, as the version's retrain job recorded it
    jobs = [json.loads(p.read_text()) for p in (Path(fs.offline_store.root) / "_jobs")
            .glob("*.json")]
    below = {j["model_version"]: j["alert"]["below_baseline"] for j in jobs}
    assert [v["refused"] for v in model["versions"]] == [below["v0001"], below["v0002"]]
    assert below["v0001"] is None and "chance" in below["v0002"]
    assert model["versions"][1]["refused_label"].startswith("refused: ")
    assert model["versions"][1]["not_promoted_reason"] == below["v0002"]
    assert httpx.get(f"{server}/dashboard/api/overview").json() == overview(
        fs.offline_store, fs.repo)
    tables = httpx.get(f"{server}/dashboard/api/tables").json()["tables"]
    assert [t["table"] for t in tables] == sorted(fs.repo.tables)
    feats = httpx.get(f"{server}/dashboard/api/features/customer_features").json()
    assert feats["rows"] > 0
    assert httpx.get(f"{server}/dashboard/api/cluster").json()["scheduler"] is None
    ingest = httpx.get(f"{server}/dashboard/api/ingestion").json()
    assert ingest["quarantine_root"] == "<store>/_quarantine/weblog"  # no host path to readers
    assert all(d["quarantine_location"] == f"<store>/_quarantine/weblog/drop={d['drop']}"
               for d in ingest["days"])


def test_pr_curve_of_the_production_version(server, fs):
    data = httpx.get(f"{server}/dashboard/api/pr-curves").json()
    (curve,) = data["curves"]
    folder = Path(fs.offline_store.root) / "_models" / "purchase-xgboost"
    production = json.loads((folder / "production.json").read_text())["version"]
    recorded = json.loads((folder / production / "version.json").read_text())["details"]
    metrics = json.loads((folder / production / "metrics.json").read_text())
    assert (curve["model"], curve["version"]) == ("purchase-xgboost", production)
    assert curve["pr_auc"] == metrics["pr_auc"]
    for k in ("precision", "recall", "threshold"):
        assert curve[k] == recorded["pr_curve"][k], k
    recall = np.array(curve["recall"])
    assert len(recall) > 2 and recall[0] == 1.0 and recall[-1] == 0.0
    assert (np.diff(recall) <= 0).all()  # sklearn's order: recall descending
    assert data["without_curve"] == []


def test_errors_are_json(server):
    r = httpx.get(f"{server}/dashboard/api/features/nope")
    assert r.status_code == 404 and "no table 'nope'" in r.json()["detail"]
    r = httpx.get(f"{server}/dashboard/api/drift/customer_features", params={"as_of": "x"})
    assert r.status_code == 404 and "has no as-of x" in r.json()["detail"]
    r = httpx.get(f"{server}/dashboard/nope")
    assert r.status_code == 404 and "pages: overview" in r.json()["detail"]
    assert httpx.get(f"{server}/dashboard/static/../../main.py").status_code == 404


def test_pages_and_assets_come_from_the_package(server):
    r = httpx.get(f"{server}/dashboard", follow_redirects=True)
    assert r.status_code == 200 and 'data-page="overview"' in r.text
    for page in ("overview", "catalogue", "ingestion", "features", "models", "cluster", "docs",
                 "redoc"):
        path = f"/dashboard/{page}" if page not in ("docs", "redoc") else f"/{page}"
        text = httpx.get(server + path).text
        assert "cdn" not in text.lower() and "https://" not in text, (page, text[:500])
    assert httpx.get(f"{server}/dashboard/static/catalogue.js").status_code == 200
    plotly = httpx.get(f"{server}/dashboard/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert httpx.get(f"{server}/docs-assets/{asset}").status_code == 200
    docs = httpx.get(f"{server}/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs


def test_pr_curve_notes_only_classifiers_without_a_curve(tmp_path):
    """Only a classifier (a version with PR-AUC) is expected to have a curve; one without says
    why (SageMaker reports final metrics only; a local record from before curves); a
    recommender's production version is no "trained before PR curves" case."""
    from featurestore.dashboard import pr_curves
    from featurestore.retrain import registry
    from featurestore.storage import Store

    store = Store(str(tmp_path / "store"))

    def promoted(name: str, metrics: dict[str, float], backend: str) -> str:
        version = registry.register_version(
            store, name, metrics=metrics, model_bytes=b"x", model_filename="model.json",
            training_set={"url": "-", "metadata": {}}, features=["f"],
            info={"job_id": None, "backend": backend, "params": {}, "artifact": None,
                  "details": {}})
        registry.promote(store, name, version)
        return version

    promoted("retail-knn", {"recall_at_10_new": 0.1, "recall_at_10_any": 0.2}, "local")
    assert pr_curves(store) == {"curves": [], "without_curve": []}
    old = promoted("purchase-xgboost", {"pr_auc": 0.4, "roc_auc": 0.7}, "local")
    [missing] = pr_curves(store)["without_curve"]
    assert (missing["model"], missing["version"]) == ("purchase-xgboost", old)
    assert "trained before PR curves were recorded" in missing["reason"]
    sagemaker = promoted("purchase-xgboost", {"pr_auc": 0.5}, "sagemaker")
    [missing] = pr_curves(store)["without_curve"]
    assert missing["version"] == sagemaker and "SageMaker" in missing["reason"]
    assert "before PR curves" not in missing["reason"]


def test_refusal_badges_name_the_baseline_gates_verdict():
    """Each sentence the baseline gate writes gets a badge with its verdict phrase."""
    from featurestore.dashboard import refusal_label
    from featurestore.retrain.baseline import baseline_failure
    from featurestore.retrain.models import MODELS

    xgb, knn, fm = MODELS["purchase-xgboost"], MODELS["retail-knn"], MODELS["retail-fm"]
    cases = [
        (baseline_failure(xgb, {"roc_auc": 0.49}), "no better than chance"),
        (baseline_failure(xgb, {"roc_auc": 0.56}, {"roc_auc": [0.45, 0.6] * 50}),
         "not distinguishable from chance"),
        (baseline_failure(xgb, {"pr_auc": 0.1, "positive_rate": 0.2}),
         "no better than a random ranking"),
        (baseline_failure(knn, {"recall_at_10_new": 0.1, "popular_recall_at_10_new": 0.2,
                                "recall_at_10_any": 0.3, "buy_again_recall_at_10_any": 0.2}),
         "no better than the baseline"),
        (baseline_failure(fm, {"rmse": 2.0, "baseline_rmse": 1.0}),
         "no better than predicting"),
        (baseline_failure(xgb, {"roc_auc": float("nan")}), "not a number"),
    ]
    for reason, phrase in cases:
        assert reason is not None and refusal_label(reason) == f"refused: {phrase}", reason
    assert refusal_label("something else") == "refused: below the trivial baseline"
