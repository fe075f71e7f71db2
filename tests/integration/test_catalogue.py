"""The feature catalogue and ``featurestore init --example``, as a newcomer meets them.

One store, built through the real CLI: the session's generated 45-day store copied, then
``featurestore init --example`` (a repository with custom features), ``apply``, ``backfill``,
the Online Retail sample ingested, a training set joining the custom table, a ``retrain`` on
it and a training-set export job. Checked: the custom features' values against pandas, the
catalogue's JSON through a real uvicorn server against pandas and the registry, the CLI
(``featurestore features``), and the page in real Chromium (search, the models page's link).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from featurestore.example_repo import EXAMPLE_FEATURES, EXAMPLE_TABLE
from featurestore.feature_store import FeatureStore
from featurestore.features.definitions import parse_feature_repo
from featurestore.settings import Settings
from tests._generated_store import ONLINE_RETAIL, cli
from tests._generated_store import cli_in_process as run

MODEL = "purchase-xgboost"
TOKEN = "secret"
#: the module's store is eight CLI commands on a 45-day store: minutes on a loaded 2-core box
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def built(tmp_path_factory, generated_data, client) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("catalogue")
    data = work / "featurestore-data"
    shutil.copytree(generated_data, data)
    store = data / "store"
    sched = ["--scheduler", client.scheduler.address]
    # in process: these check what the commands leave, not how a process behaves
    init = run("init", "--store", str(store), "--example", cwd=work)
    run("apply", "--repo", str(data / "feature_repo.yaml"), "--store", str(store), cwd=work)
    run("backfill", "--store", str(store), *sched, "--no-progress", cwd=work)
    # the Online Retail file's first 30,000 rows (December 2010-January 2011): a retail
    # table with a text feature for the catalogue; the whole year proves nothing more here
    retail = work / "online_retail.csv.gz"
    lines = gzip.decompress(ONLINE_RETAIL.read_bytes()).split(b"\n")[:30_001]
    retail.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    run("ingest", str(retail), "--source", "retail", "--store", str(store), *sched,
        "--no-progress", cwd=work)
    run("training-set", "--store", str(store), "--out", str(work / "ts"), "--tables",
        EXAMPLE_TABLE, *sched, "--no-progress", cwd=work)
    run("retrain", "--store", str(store), "--model", MODEL, "--export-url", str(work / "ts"),
        "--wait", cwd=work)
    fs = FeatureStore(Settings(store=str(store), scheduler=client.scheduler.address))
    export = fs.export_training_set(wait=True)
    return {"work": work, "data": data, "store": store, "init": init, "export": export}


@pytest.fixture(scope="module")
def server(built):
    from api.main import create_app
    from tests.serving_helpers import serve

    with serve(create_app(Settings(store=str(built["store"]), api_token=TOKEN))) as base:
        yield base


def _get(base: str, token: str | None = None, **params: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"{base}/dashboard/api/catalogue", params=params, headers=headers,
                  timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _latest(store: Path, table: str) -> tuple[str, pd.DataFrame]:
    part = max((store / table).iterdir())
    return part.name.split("=", 1)[1], pd.read_parquet(part)


# -- featurestore init --example ----------------------------------------------------------------
def test_init_example_writes_the_repository_and_the_next_three_commands(built):
    out = built["init"].stdout
    path = built["data"] / "feature_repo.yaml"
    store = built["store"]
    assert f"wrote the example feature repository {path}" in out
    commands = [line.strip() for line in out.splitlines()[out.splitlines().index("next:") + 1:]]
    assert commands == [f"featurestore apply --repo {path} --store {store}",
                        f"featurestore backfill --store {store}",  # the store has data
                        f"featurestore features --store {store} --table {EXAMPLE_TABLE}"]
    text = path.read_text()
    repo = parse_feature_repo(text, str(path))
    assert [f for f in repo.tables[EXAMPLE_TABLE].features] == [f.name for f in EXAMPLE_FEATURES]
    assert text.count("\n# ") > 10 and "      # recency:" in text  # commented throughout


def test_init_example_never_overwrites_another_file(tmp_path):
    (tmp_path / "feature_repo.yaml").write_text("mine: true\n")
    r = run("init", "--store", str(tmp_path / "store"), "--example", check=False)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "exists and is not the example repository" in r.stderr
    assert (tmp_path / "feature_repo.yaml").read_text() == "mine: true\n"
    # --repo puts it elsewhere; a second run keeps the same file
    other = tmp_path / "repos" / "example.yaml"
    for verb in ("wrote", "kept (unchanged)"):
        r = run("init", "--store", str(tmp_path / "store"), "--example", "--repo", str(other))
        assert f"{verb} the example feature repository {other}" in r.stdout
    assert "featurestore ingest RAW_ROOT --store" in r.stdout  # an empty store: ingest next


def test_example_features_equal_pandas_on_the_events(built):
    """Every custom feature of the latest as-of, recomputed from the events with pandas."""
    store = built["store"]
    as_of, table = _latest(store, EXAMPLE_TABLE)
    day = pd.Timestamp(as_of)
    ev = pd.read_parquet(store / "events")
    ev = ev[ev["customer_id"].fillna("") != ""].copy()
    ev["date"] = pd.to_datetime(ev["event_date"].astype(str))
    ev = ev[ev["date"] <= day]
    events = ev["post_event_list"].fillna("").str.split(",")
    has = {e: events.map(lambda items, e=e: e in items) for e in ("1", "12")}
    path = ev["page_url"].map(lambda u: urllib.parse.urlsplit(u).path)
    sale = path.str.startswith("/sale")

    def window(days: int) -> pd.Series:
        return ev["date"] > day - pd.Timedelta(days=days)

    def per_customer(values: pd.Series) -> pd.Series:
        return values.reindex(table["customer_id"]).fillna(0).astype("int64").to_numpy()

    qty = ev["post_product_list"].fillna("").map(
        lambda s: sum(int(p.split(";")[2]) for p in s.split(",") if p.count(";") >= 3))
    carted = ev[has["12"] & window(30)].assign(
        product=ev["post_product_list"].fillna("").str.split(",")).explode("product")
    carted["product"] = carted["product"].str.split(";").str[1]
    expected = {
        "sale_page_views_14d": per_customer(ev[sale & window(14)].groupby("customer_id").size()),
        "link_clicks_7d": per_customer(ev[(ev["post_page_event"] == "100") & window(7)]
                                       .groupby("customer_id").size()),
        "items_bought_30d": per_customer(qty[has["1"] & window(30)]
                                         .groupby(ev["customer_id"]).sum()),
        "products_carted_30d": per_customer(carted.dropna(subset=["product"])
                                            .groupby("customer_id")["product"].nunique()),
        "sale_days_30d": per_customer(ev[sale & window(30)].groupby("customer_id")["date"]
                                      .nunique()),
    }
    assert set(table["customer_id"]) == set(ev["customer_id"])  # one row per customer seen
    for name, values in expected.items():
        assert np.array_equal(table[name].to_numpy(dtype="int64"), values), name
        assert values.sum() > 0, f"{name} is 0 for everyone: the check would prove nothing"
    last = ev[has["12"]].groupby("customer_id")["date"].max()
    since = (day - last).dt.days.reindex(table["customer_id"])
    got = table["days_since_last_cart_add"].astype("Float64").to_numpy(na_value=np.nan)
    assert np.array_equal(got, since.to_numpy(dtype="float64"), equal_nan=True)
    assert since.isna().any() and since.notna().any()


# -- the catalogue's JSON over a real server ----------------------------------------------------
def test_catalogue_lists_every_feature_with_its_meaning_and_numbers(server, built):
    data = _get(server)
    repo = FeatureStore(Settings(store=str(built["store"]))).repo
    assert [f["id"] for f in data["features"]] == [
        f"{t}.{f}" for t in sorted(repo.tables) for f in repo.tables[t].features]
    assert data["total"] == len(data["features"])
    by_id = {f["id"]: f for f in data["features"]}
    for example in EXAMPLE_FEATURES:
        f = by_id[f"{EXAMPLE_TABLE}.{example.name}"]
        assert f["description"] == example.description
        assert f["owner"] == "growth-analytics"  # the table's owner holds for its features
        assert f["tags"] == [*example.tags, "example"]  # then the table's tags
    f = by_id[f"{EXAMPLE_TABLE}.items_bought_30d"]
    assert f["definition"] == ("sum of quantity over the products where event list has 1, "
                               "over the 30 days ending on the as-of date")
    assert (f["aggregation"], f["window_days"], f["filter"]) == ("sum", 30, {"event_id": "1"})
    # numbers of the latest as-of, against pandas on the same partition
    for table in (EXAMPLE_TABLE, "customer_features"):
        as_of, frame = _latest(built["store"], table)
        for name in repo.tables[table].features:
            f = by_id[f"{table}.{name}"]
            assert (f["as_of"], f["rows"], f["type"]) == (as_of, len(frame), str(frame[name].dtype))
            assert f["null_share"] == pytest.approx(frame[name].isna().mean(), abs=1e-6)
            if not pd.api.types.is_numeric_dtype(frame[name].dtype):
                # text (first/last) and lists (top_k: each item counted) list top values
                values = frame[name].dropna()
                if len(values) and not isinstance(values.iloc[0], str):
                    values = values.explode().dropna()
                counts = values.astype(str).value_counts()
                assert [t["count"] for t in f["top"]] == counts.head(5).tolist(), name
                assert f["min"] is None and f["mean"] is None
                continue
            values = frame[name].dropna().astype("float64")
            assert (f["min"], f["max"]) == (pytest.approx(values.min(), rel=1e-6, abs=1e-6),
                                            pytest.approx(values.max(), rel=1e-6, abs=1e-6))
            assert f["mean"] == pytest.approx(values.mean(), abs=1e-6)
            assert f["top"] is None
    # a text feature lists its most frequent values instead
    as_of, retail = _latest(built["store"], "customer_retail_features")
    country = by_id["customer_retail_features.country"]
    counts = retail["country"].value_counts()
    assert [t["count"] for t in country["top"]] == counts.head(5).tolist()
    assert country["top"][0]["value"] == counts.index[0]
    assert country["min"] is None and country["type"] == str(retail["country"].dtype)
    # freshness: the latest as-of is the source's newest date
    drops = sorted(p.name for p in (built["data"] / "raw").iterdir() if p.is_dir())
    fresh = by_id["customer_features.page_views_7d"]["freshness"]
    assert (fresh["latest_as_of"], fresh["source_latest"], fresh["lag_days"]) == (
        drops[-1], drops[-1], 0)
    assert fresh["last_written"]
    tables = {t["table"]: t for t in data["tables"]}
    assert tables[EXAMPLE_TABLE]["owner"] == "growth-analytics"
    assert tables[EXAMPLE_TABLE]["source_table"] == "events"


def test_lineage_names_the_training_sets_and_model_versions_with_importance(server, built):
    data = _get(server)
    by_id = {f["id"]: f for f in data["features"]}
    version_dir = built["store"] / "_models" / MODEL / "v0001"
    columns = json.loads((version_dir / "features.json").read_text())
    gains = json.loads((version_dir / "version.json").read_text())["details"]["feature_importance"]
    total = sum(gains.values())
    ranked = sorted(gains, key=lambda c: -gains[c])
    pointer = version_dir.parent / "production.json"
    production = pointer.exists() and json.loads(pointer.read_text())["version"] == "v0001"
    # the custom table's numeric columns joined the base table's (none collided: plain
    # names); text and list features (first/last/top_k) are not XGBoost CSV columns
    numeric = {f.name for f in EXAMPLE_FEATURES
               if by_id[f"{EXAMPLE_TABLE}.{f.name}"]["top"] is None}
    assert len(numeric) < len(EXAMPLE_FEATURES)
    assert {f"{EXAMPLE_TABLE}.{name}" for name in numeric} <= {
        v for m in data["models"] for v in m["features"]}
    for column in columns:
        table = EXAMPLE_TABLE if column in {f.name for f in EXAMPLE_FEATURES} \
            else "customer_features"
        lineage = by_id[f"{table}.{column}"]["lineage"]
        assert (lineage["source"], lineage["source_table"], lineage["table"]) == (
            "weblog", "events", table)
        [used] = [m for m in lineage["models"] if m["model"] == MODEL]
        assert used["version"] == "v0001" and used["production"] is production
        assert used["importance"] == pytest.approx(gains[column])
        assert used["importance_share"] == pytest.approx(gains[column] / total, abs=1e-6)
        assert used["rank"] == ranked.index(column) + 1 and used["of"] == len(columns)
        sets = {t["name"]: t for t in lineage["training_sets"]}
        assert sets[f"training set of {MODEL} v0001"]["used_by"] == [f"{MODEL} v0001"]
        # where a training set lies is for operators only (as on /models)
        assert used["training_set"] is None
        assert all(t["url"] is None for t in lineage["training_sets"])
    # the export's training set (customer_features only) is listed for its columns
    page_views = by_id["customer_features.page_views_7d"]["lineage"]["training_sets"]
    assert [t["name"] for t in page_views if t["kind"] == "export"] == [
        f"export {built['export']['id']}"]
    assert not [t for t in by_id[f"{EXAMPLE_TABLE}.link_clicks_7d"]["lineage"]
                ["training_sets"] if t["kind"] == "export"]
    # with the write token: the locations, the store's own as logical <store>/... names
    operator = {f["id"]: f for f in _get(server, token=TOKEN)["features"]}
    lineage = operator["customer_features.page_views_7d"]["lineage"]
    [used] = [m for m in lineage["models"] if m["model"] == MODEL]
    assert used["training_set"] == str(built["work"] / "ts")  # outside the store: as given
    [export] = [t for t in lineage["training_sets"] if t["kind"] == "export"]
    assert export["url"] == "<store>/_exports/" + built["export"]["id"]
    assert (built["store"] / "_exports" / built["export"]["id"] / "metadata.json").exists()
    # features no model used say so
    assert by_id["customer_retail_features.country"]["lineage"]["models"] == []


def test_search_table_and_model_filters(server, built):
    discount = _get(server, search="discount")
    assert [f["name"] for f in discount["features"]] == [
        f.name for f in EXAMPLE_FEATURES if "discount" in f.tags]
    assert discount["total"] > len(discount["features"])
    assert [f["name"] for f in _get(server, search="Cart BASKET")["features"]] == [
        "products_carted_30d"]
    assert [f["name"] for f in _get(server, search="distinct products cart")["features"]] == [
        "products_carted_30d"]  # words of the description
    only = _get(server, table="customer_retail_features")
    assert {f["table"] for f in only["features"]} == {"customer_retail_features"}
    version = _get(server, model=MODEL, version="v0001")
    columns = json.loads((built["store"] / "_models" / MODEL / "v0001" / "features.json")
                         .read_text())
    assert sorted(f["name"] for f in version["features"]) == sorted(columns)
    assert [(m["model"], m["version"]) for m in version["models"]] == [(MODEL, "v0001")]
    for params, status in (({"table": "nope"}, 404), ({"model": MODEL, "version": "v0099"}, 404),
                           ({"search": "x" * 500}, 422)):
        r = httpx.get(f"{server}/dashboard/api/catalogue", params=params, timeout=30)
        assert r.status_code == status and "detail" in r.json(), (params, r.text)


# -- featurestore features ----------------------------------------------------------------------
def test_features_command_prints_the_catalogue(server, built):
    store = str(built["store"])
    r = cli("features", "--store", store, "--search", "discount")
    lines = r.stdout.splitlines()
    assert lines[0] == f"store: {store}"
    names = [f.name for f in EXAMPLE_FEATURES if "discount" in f.tags]
    shown = [m.group(1) for line in lines if (m := re.match(r"^  (\w+)  \S+$", line))]
    assert shown == names
    total = _get(server)["total"]
    assert lines[-1] == f"{len(names)} of {total} features"
    assert "Views of sale pages in the last 14 days: interest in discounts." in r.stdout
    assert "owner: growth-analytics; tags: marketing, discount, example" in r.stdout
    # the JSON is the API's document (the API hides the store's location)
    as_json = json.loads(run("features", "--store", store, "--table", EXAMPLE_TABLE,
                             "--json").stdout)
    api = _get(server, table=EXAMPLE_TABLE)
    assert [f["id"] for f in as_json["features"]] == [f["id"] for f in api["features"]]
    for mine, theirs in zip(as_json["features"], api["features"]):
        for key in ("definition", "description", "owner", "tags", "null_share", "min", "mean",
                    "max", "type", "freshness"):
            assert mine[key] == theirs[key], key
        assert [m["importance"] for m in mine["lineage"]["models"]] == [
            m["importance"] for m in theirs["lineage"]["models"]]
    # the model's features, with its rank in the text
    r = run("features", "--store", store, "--model", MODEL, "--version", "v0001")
    assert "rank 1 of" in r.stdout and "importance" in r.stdout
    # bad input: one line, exit 2
    r = run("features", "--store", store, "--table", "nope", check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "no table 'nope'" in r.stderr
    r = run("features", "--store", store, "--search", "no-such-word-anywhere")
    assert "no feature matches --search no-such-word-anywhere" in r.stdout


# -- the page, in Chromium -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from tests.integration.test_dashboard_browser import Browser, _chromium

    b = Browser(_chromium(), tmp_path_factory.mktemp("chromium-catalogue"))
    yield b
    b.close()


VISIBLE = ("[...document.querySelectorAll('section.feature')].filter(s => !s.hidden)"
           ".map(s => s.dataset.feature)")


def test_catalogue_page_searches_and_finds_a_feature(browser, server, built, tmp_path_factory):
    shots = tmp_path_factory.mktemp("catalogue-screenshots")
    browser.open(f"{server}/dashboard/catalogue", "document.body.dataset.ready")
    assert browser.evaluate("document.body.dataset.ready") == "true"
    assert browser.errors() == []
    assert not [u for u in browser.requested() if not u.startswith((server, "data:"))]
    everything = _get(server)
    assert browser.evaluate(VISIBLE) == [f["id"] for f in everything["features"]]
    # type into the search box as a user does
    browser.evaluate("document.getElementById('catalogue-search').focus()")
    browser.call("Input.insertText", text="cart basket")
    found = browser.evaluate(VISIBLE)
    assert found == [f"{EXAMPLE_TABLE}.products_carted_30d"]
    card = f"{EXAMPLE_TABLE}.products_carted_30d"
    ids = browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('[data-testid]')]"
        ".filter(e => !e.closest('[hidden]')).map(e => [e.dataset.testid, e.textContent]))")
    entry = next(f for f in everything["features"] if f["id"] == card)
    assert ids[f"description-{card}"] == entry["description"]
    assert ids[f"definition-{card}"] == entry["definition"]
    assert ids[f"owner-{card}"] == "growth-analytics"
    assert ids[f"null-{card}"] == f"{100 * entry['null_share']:.1f}%"
    assert ids[f"models-{card}"] == f"{len(entry['lineage']['models'])} model version(s)"
    assert ids["catalogue-count"] == f"1 of {everything['total']} features"
    assert "search=cart+basket" in browser.evaluate("location.search")
    browser.screenshot(shots / "catalogue-search.png")
    assert browser.errors() == []


def test_models_page_links_every_version_to_its_features(browser, server, built,
                                                           tmp_path_factory):
    shots = tmp_path_factory.mktemp("catalogue-model-screenshots")
    browser.open(f"{server}/dashboard/models", "document.body.dataset.ready")
    link = browser.evaluate(f"document.querySelector('[data-testid=features-{MODEL}-v0001]')"
                            ".getAttribute('href')")
    assert link == f"/dashboard/catalogue?model={MODEL}&version=v0001"
    browser.open(server + link, "document.body.dataset.ready")
    assert browser.evaluate("document.body.dataset.ready") == "true"
    assert browser.errors() == []
    columns = json.loads((built["store"] / "_models" / MODEL / "v0001" / "features.json")
                         .read_text())
    shown = browser.evaluate(VISIBLE)
    assert sorted(s.split(".", 1)[1] for s in shown) == sorted(columns)
    drawn = browser.evaluate("document.getElementById('importance').data[0].y")
    gains = json.loads((built["store"] / "_models" / MODEL / "v0001" / "version.json")
                       .read_text())["details"]["feature_importance"]
    top = max(gains, key=gains.get)
    assert drawn[0].endswith(f".{top}") and shown[0].endswith(f".{top}")  # ranked first
    marks = browser.evaluate("document.querySelectorAll('#importance .barlayer path').length")
    assert marks > 0
    browser.screenshot(shots / "catalogue-model.png")
