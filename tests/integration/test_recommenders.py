"""Recommenders judged the way they are used (issue #29), on a slice of the real Online Retail
data: a version is scored on a time holdout beside "most popular" and "buy again" (figures
checked against an independent pandas computation), the figures are stored with the version,
a version that loses to a baseline is registered but never promoted (with an alert), and the
production version of ``recommendation_model`` serves both modes on the routes and the CLI,
equal to a plain numpy scoring of its stored arrays.

Real pieces: real transactions in the store layout, the real purchases export and retrain job,
a real webhook receiver, a real uvicorn server, the CLI (in process).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from featurestore import Settings
from featurestore.retrain import new_job, registry, run_job
from featurestore.storage import Store
from tests._receivers import WebhookReceiver
from tests._retail_slice import retail_slice, write_transactions
from tests.serving_helpers import serve


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    """A store holding 400 real customers' transactions (read-only: tests copy it)."""
    root = tmp_path_factory.mktemp("recommenders")
    store = Store(str(root / "store"))
    tx = retail_slice(400)
    write_transactions(store, tx)
    return store, tx


@pytest.fixture(scope="module")
def knn_job(retail, tmp_path_factory):
    """One retail-knn retrain job on a copy of the store."""
    src, tx = retail
    root = tmp_path_factory.mktemp("knn")
    shutil.copytree(src.url, root / "store")
    store = Store(str(root / "store"))
    record = run_job(store, new_job(store, "retail-knn", "local")["job_id"],
                     Settings(store=store.url))
    assert record["status"] == "completed", record["error"]
    return store, record, tx


def _pandas_baselines(tx: pd.DataFrame, test_start: dt.date) -> dict[str, float]:
    """Most popular (new items) and buy again (any item) recall@10, computed independently."""
    tx = tx.assign(day=pd.to_datetime(tx["invoice_date"]).dt.date)
    fit, test = tx[tx["day"] < test_start], tx[tx["day"] >= test_start]
    inv = (fit.drop_duplicates(["customer_id", "stock_code", "invoice_no"])
           .groupby(["customer_id", "stock_code"]).size())
    buyers = fit.groupby("stock_code")["customer_id"].nunique().to_dict()
    # most popular first; ties by stock code (the column order)
    ranking = sorted(buyers, key=lambda s: (-buyers[s], s))
    max_pop = max(buyers.values())
    new_r, any_r = [], []
    for cid, g in test.groupby("customer_id"):
        if cid not in inv.index.get_level_values(0):
            continue  # the model does not know them
        own = inv.loc[cid].to_dict()
        truth = set(g["stock_code"])
        new_truth = truth - set(own)
        if new_truth:
            top = [s for s in ranking if s not in own][:10]
            new_r.append(len(new_truth & set(top)) / len(new_truth))
        again = sorted(buyers, key=lambda s: (-(own.get(s, 0) + buyers[s] / (max_pop + 1)),
                                              s))[:10]
        any_r.append(len(truth & set(again)) / len(truth))
    return {"popular_recall_at_10_new": float(np.mean(new_r)),
            "buy_again_recall_at_10_any": float(np.mean(any_r)), "new": len(new_r),
            "any": len(any_r)}


def test_holdout_figures_stored_with_the_version_and_match_pandas(knn_job):
    store, record, tx = knn_job
    version = registry.get_version(store, "retail-knn", record["model_version"])
    m, details = version["metrics"], version["details"]
    holdout = details["holdout"]
    last = pd.to_datetime(tx["invoice_date"]).dt.date.max()
    assert holdout["test"] == [(last - dt.timedelta(days=29)).isoformat(), last.isoformat()]
    expected = _pandas_baselines(tx, dt.date.fromisoformat(holdout["test"][0]))
    assert holdout["customers"] == {"any": expected["any"], "new": expected["new"]}
    for key in ("popular_recall_at_10_new", "buy_again_recall_at_10_any"):
        assert m[key] == pytest.approx(expected[key], rel=1e-9), key
    for model in ("model", "popular"):
        for mode in ("any", "new"):
            for metric in ("recall", "ndcg", "hit_rate"):
                cell = holdout["table"][model][mode][metric]
                assert cell["low"] <= cell["value"] <= cell["high"], (model, mode, metric)
    assert set(holdout["table"]["buy_again"]) == {"any"}
    # chosen on the validation window, recorded with the version
    params = version["params"]
    assert {"K", "repeat_weight", "repeat_half_life_days"} <= set(params)
    val = holdout["validation"]
    assert val[1] < holdout["test"][0]
    assert any("validation_recall_at_10_new" in t for t in details["trials"])
    assert details["refit"] is True
    assert len(details["bootstrap"]["recall_at_10_new"]) == 200


def test_a_version_is_promoted_only_when_it_beats_both_baselines(knn_job):
    store, record, _ = knn_job
    m = record["metrics"]
    beats = (m["recall_at_10_new"] > m["popular_recall_at_10_new"]
             and m["recall_at_10_any"] > m["buy_again_recall_at_10_any"])
    assert record["alert"]["promoted"] is beats
    if not beats:
        assert "no better than the baseline" in record["alert"]["not_promoted_reason"]


def test_a_deliberately_weak_model_is_registered_not_promoted_and_alerts(retail, tmp_path):
    src, _ = retail
    shutil.copytree(src.url, tmp_path / "store")
    store = Store(str(tmp_path / "store"))
    with WebhookReceiver() as hook:
        settings = Settings(store=store.url, alert_webhook_url=hook.url)
        record = run_job(store, new_job(store, "retail-als",
                                        "tests._weak_recommender.WeakBackend")["job_id"],
                         settings)
        assert record["status"] == "completed", record["error"]
        m = record["metrics"]
        assert m["recall_at_10_new"] < m["popular_recall_at_10_new"]
        alert = record["alert"]
        assert alert["promoted"] is False
        assert alert["not_promoted_reason"].startswith("holdout new-items recall@10 ")
        assert "<= most popular" in alert["not_promoted_reason"]
        assert "<= buy again" in alert["not_promoted_reason"]
        assert registry.production_version(store, "retail-als") is None
        assert registry.get_version(store, "retail-als", record["model_version"])
        events = [r["json"] for r in hook.received]
        assert [e["event"] for e in events if e["event"] == "model_below_baseline"] == [
            "model_below_baseline"]


def _plain_numpy(store: Store, model: str, version: str, customer: str, exclude: bool
                 ) -> list[tuple[str, float]]:
    """Scores straight from the stored recommender.npz: x_c S (item-kNN); bought items left
    out, or learned / max|learned| + w log1p(repeat counts)."""
    z = dict(np.load(io.BytesIO(registry.load_model_bytes(store, model, version))))
    c = list(z["customers"]).index(customer)

    def row(name: str, r: int) -> np.ndarray:
        ptr = z[f"{name}_indptr"]
        out = np.zeros(int(z[f"{name}_shape"][1]))
        out[z[f"{name}_indices"][ptr[r]:ptr[r + 1]]] = z[f"{name}_data"][ptr[r]:ptr[r + 1]]
        return out

    x = row("user_items", c)
    sim = np.vstack([row("similarity", i) for i in range(int(z["similarity_shape"][0]))])
    learned = x @ sim
    counts = row("counts", c)
    if exclude:
        pairs = [(str(z["items"][i]), learned[i]) for i in range(len(learned)) if counts[i] == 0]
    else:
        w = float(z["repeat_weight"][0])
        s = learned / np.abs(learned).max() + w * np.log1p(counts)
        pairs = [(str(z["items"][i]), s[i]) for i in range(len(s))]
    return sorted(pairs, key=lambda t: (-t[1], t[0]))


def test_routes_and_cli_serve_recommendation_model_in_both_modes(knn_job, tmp_path):
    from api.main import create_app

    src, record, tx = knn_job
    shutil.copytree(src.url, tmp_path / "store")
    store = Store(str(tmp_path / "store"))
    version = record["model_version"]
    registry.promote(store, "retail-knn", version)  # whatever the gate said: scoring is tested
    customer = str(tx["customer_id"].iloc[0])
    settings = Settings(store=store.url, snapshot_poll_seconds=0.0,
                        recommendation_model="retail-knn")
    with serve(create_app(settings), ready_path="/health") as base:
        for exclude in (True, False):
            expected = _plain_numpy(store, "retail-knn", version, customer, exclude)
            r = httpx.get(f"{base}/customers/{customer}/recommendations",
                          params={"k": 10, "exclude_purchased": str(exclude).lower()})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model"] == "retail-knn" and body["version"] == version
            assert [i["product_id"] for i in body["items"]] == [e[0] for e in expected[:10]]
            np.testing.assert_allclose([i["score"] for i in body["items"]],
                                       [e[1] for e in expected[:10]], rtol=1e-5)
            bought = set(tx.loc[tx["customer_id"] == customer, "stock_code"])
            served = {i["product_id"] for i in body["items"]}
            assert not bought & served if exclude else bought & served
            r = httpx.post(f"{base}/recommendations/batch",
                           json={"customer_ids": ["nobody", customer], "k": 10,
                                 "exclude_purchased": exclude})
            results = r.json()["results"]
            assert [x["found"] for x in results] == [False, True]
            assert results[1]["items"] == body["items"]
        assert httpx.get(f"{base}/customers/nobody/recommendations").status_code == 404
    # the default recommendation_model (retail-als) has no production version: 503
    with serve(create_app(Settings(store=store.url)), ready_path="/health") as base:
        r = httpx.get(f"{base}/customers/{customer}/recommendations")
        assert r.status_code == 503 and "retail-als" in r.json()["detail"]

    from tests._generated_store import cli_in_process  # what the command prints and returns

    expected = _plain_numpy(store, "retail-knn", version, customer, False)
    proc = cli_in_process("recommend", "--store", store.url, "--customer", customer, "--k", "5",
                          "--exclude-purchased", "false", "--json", check=False,
                          FEATURESTORE_RECOMMENDATION_MODEL="retail-knn")
    assert proc.returncode == 0, proc.stderr
    assert [i["product_id"] for i in json.loads(proc.stdout)["items"]] == \
        [e[0] for e in expected[:5]]


def test_fm_classifier_job_recordio_holdout_and_served_factors(tmp_path, monkeypatch):
    """retail-fm through a real job: the export's recordIO train channel is bought pairs (1)
    and sampled unbought items (0) before the test window; the version is judged on the
    holdout and serves the refitted FM's own equation. (120 customers: the FM is the slowest
    of the three to fit.)"""
    from featurestore.recommend import FMRecommender, load_version
    from featurestore.recsys.artifact import FILENAME, ServedRecommender
    from featurestore.retrain import fm_recommender
    from featurestore.training.recordio import read_recordio_protobuf

    runs = []  # the real solver, counted: the grid's pass counts share one run (not a mock)
    real = fm_recommender.fit_adagrad

    def counted(X, y, **kw):
        runs.append(kw["epochs"])
        return real(X, y, **kw)

    monkeypatch.setattr(fm_recommender, "fit_adagrad", counted)
    tx = retail_slice(120, seed=1)
    store = Store(str(tmp_path / "store"))
    write_transactions(store, tx)
    record = run_job(store, new_job(store, "retail-fm", "local")["job_id"],
                     Settings(store=store.url))
    assert record["status"] == "completed", record["error"]
    export = Path(record["export_url"])
    meta = json.loads((export / "metadata.json").read_text())
    assert meta["predictor_type"] == "binary_classifier" and meta["split"]["method"] == "time"
    test_start = dt.date.fromisoformat(meta["split"]["test"][0])
    with open(export / "train" / "train.protobuf", "rb") as f:
        X, y = read_recordio_protobuf(f)
    with np.load(export / "index.npz") as npz:  # each npz[key] reads and inflates anew
        ix = {key: npz[key] for key in npz.files}
    (c0, c1), (i0, i1) = ix["blocks"][0], ix["blocks"][1]
    cust = np.asarray(X[:, c0:c1].argmax(1)).ravel()
    item = np.asarray(X[:, i0:i1].argmax(1)).ravel()
    day = pd.to_datetime(tx["invoice_date"]).dt.date
    before = tx[day < test_start]
    bought = set(zip(before["customer_id"], before["stock_code"]))
    positives = {p for p, label in zip(zip(ix["customers"][cust].astype(str),
                                           ix["items"][item].astype(str)), y) if label == 1}
    assert positives == bought  # every pair bought before the test window, nothing else
    negatives = [(str(ix["customers"][c]), str(ix["items"][i]))
                 for c, i, label in zip(cust, item, y) if label == 0]
    assert negatives and not set(negatives) & bought
    assert 3.5 * len(bought) <= len(negatives) <= 4 * len(bought)

    version = record["model_version"]
    m = record["metrics"]
    assert {"recall_at_10_new", "popular_recall_at_10_new", "recall_at_10_any",
            "buy_again_recall_at_10_any"} <= set(m)
    assert record["alert"]["primary_metric"] == "recall_at_10_new"
    served = load_version(store, "retail-fm", version)
    assert isinstance(served, ServedRecommender)
    fm = FMRecommender.from_bytes(registry.load_model_bytes(store, "retail-fm", version),
                                  registry.load_file_bytes(store, "retail-fm", version,
                                                           "index.npz"))
    rows = np.arange(5)
    learned = served.model.scores(rows)
    np.testing.assert_allclose(learned, fm.scores(rows), rtol=1e-5, atol=1e-6)
    assert FILENAME in registry.get_version(store, "retail-fm", version)["files_sha256"]
    # passes, step and L2 chosen on the validation window from one shared run, recorded
    stored = registry.get_version(store, "retail-fm", version)
    params = stored["params"]
    assert params["solver"] == "adagrad" and params["predictor_type"] == "binary_classifier"
    grid = fm_recommender.FM_GRID
    assert params["epochs"] in {g["epochs"] for g in grid} and params["lr"] == grid[0]["lr"]
    scored = [t["params"]["epochs"] for t in stored["details"]["trials"] if "params" in t]
    assert sorted(scored) == sorted(g["epochs"] for g in grid)
    # one run on the sub-fit window for the whole grid, then the fit window and the refit
    assert len(runs) == 3 and set(runs[0]) == set(scored)
    assert set(runs[1]) == set(runs[2]) == {params["epochs"]}
