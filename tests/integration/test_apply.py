"""``featurestore apply``: the store remembers its repository; every later command uses it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from featurestore.cli import main
from featurestore.features.definitions import DEFAULT_REPO

EXTRA = """
      cart_adds_30d: {aggregation: count, filter: {event_id: "12"}, window_days: 30}
"""
NEW_TABLE = """
  customer_engagement:
    source: weblog
    entity: customer
    features:
      purchases_14d: {aggregation: count, filter: {event_id: "1"}, window_days: 14}
      page_views_14d: {aggregation: count, filter: {page_event: "0"}, window_days: 14}
"""


def custom_repo(path: Path) -> Path:
    """The default repository plus a feature in customer_features and a whole new table."""
    text = DEFAULT_REPO.read_text()
    anchor = "      days_since_last_purchase: {aggregation: recency, filter: {event_id: \"1\"}}\n"
    assert anchor in text
    text = text.replace(anchor, anchor + EXTRA.lstrip("\n"))
    pairs = "\n  customer_product_features:"
    text = text.replace(pairs, NEW_TABLE + pairs)
    path.write_text(text)
    return path


def _columns(store: Path, table: str) -> set[frozenset[str]]:
    """The column sets of every partition file of a table (one set when consistent)."""
    return {frozenset(ds.dataset(str(f)).schema.names)
            for f in (store / table).glob("as_of=*/*.parquet")}


def test_apply_then_every_command_uses_the_recorded_repo(drops_copy, tmp_path, client,
                                                         monkeypatch, capsys):
    raw, _ = drops_copy
    store = tmp_path / "store"
    repo = custom_repo(tmp_path / "repo.yaml")
    sched = ["--scheduler", client.scheduler.address]
    monkeypatch.delenv("FEATURESTORE_FEATURE_REPO", raising=False)

    assert main(["apply", "--repo", str(repo), "--store", str(store)]) == 0
    assert "customer_engagement" in capsys.readouterr().out

    # ingest and run-daily name no repository: the recorded one holds
    assert main(["ingest", str(raw), "--store", str(store), *sched, "--no-progress"]) == 0
    assert _columns(store, "customer_features") and all(
        "cart_adds_30d" in cols for cols in _columns(store, "customer_features"))
    engagement = pd.read_parquet(store / "customer_engagement")
    assert len(engagement) > 0 and {"purchases_14d", "page_views_14d"} <= set(engagement)
    assert main(["run-daily", "--store", str(store), "--raw", str(raw), *sched,
                 "--today", "2026-03-03"]) == 0
    assert all("cart_adds_30d" in cols for cols in _columns(store, "customer_features"))

    _served_generically(store)

    # a different repository given by the environment is refused, naming the difference
    monkeypatch.setenv("FEATURESTORE_FEATURE_REPO", str(DEFAULT_REPO))
    capsys.readouterr()
    assert main(["backfill", "--store", str(store), *sched]) == 2
    err = capsys.readouterr().err
    assert "differs from the one recorded" in err and "cart_adds_30d removed" in err
    assert "table customer_engagement removed" in err and "featurestore apply" in err


def test_changed_table_is_rebuilt_whole_even_for_a_ranged_backfill(drops_copy, tmp_path,
                                                                   client, monkeypatch, capsys):
    raw, _ = drops_copy
    store = tmp_path / "store"
    sched = ["--scheduler", client.scheduler.address]
    monkeypatch.delenv("FEATURESTORE_FEATURE_REPO", raising=False)
    assert main(["ingest", str(raw), "--store", str(store), *sched, "--no-progress"]) == 0
    dates = sorted(p.name for p in (store / "customer_features").glob("as_of=*"))
    assert len(dates) >= 3

    assert main(["apply", "--repo", str(custom_repo(tmp_path / "repo.yaml")),
                 "--store", str(store)]) == 0
    assert "feature cart_adds_30d added" in capsys.readouterr().out
    middle = dates[len(dates) // 2].split("=")[1]
    assert main(["backfill", "--store", str(store), "--from", middle, "--to", middle,
                 *sched]) == 0
    # every partition has the new column: DuckDB and pandas read one schema
    assert [set(c) for c in _columns(store, "customer_features")] == [
        set(next(iter(_columns(store, "customer_features"))))]
    assert "cart_adds_30d" in next(iter(_columns(store, "customer_features")))
    import duckdb

    query = (f"select count(cart_adds_30d) from read_parquet("
             f"'{store}/customer_features/*/*.parquet', hive_partitioning=1)")
    n = duckdb.sql(query).fetchall()[0][0]
    assert n == len(pd.read_parquet(store / "customer_features"))


def test_a_store_with_nothing_recorded_uses_the_default(tmp_path):
    from featurestore.repository import recorded_repo, resolve_repo
    from featurestore.storage import Store

    store = Store(str(tmp_path / "s"))
    assert recorded_repo(store) is None
    assert set(resolve_repo(store, None).tables) == {
        "customer_features", "customer_product_features", "customer_retail_features"}


def test_apply_rejects_an_invalid_repository(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_REPO.read_text().replace("window_days: 7}", "window_days: -7}", 1))
    assert main(["apply", "--repo", str(bad), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "window_days" in err and "Traceback" not in err
    assert not (tmp_path / "s" / "_meta").exists()


def test_a_repo_table_joins_into_a_training_set(tmp_path, client, monkeypatch):
    """A table that exists only in the test's repository file ends up in the training set,
    with the values stored in its own partition of the same as-of date."""
    from featurestore.generate import generate_weblog

    monkeypatch.delenv("FEATURESTORE_FEATURE_REPO", raising=False)
    raw, store, out = tmp_path / "raw", tmp_path / "store", tmp_path / "ts"
    generate_weblog(str(raw), days=34, customers=60, products=10, rows_per_day=150, parts=1,
                    seed=3)
    sched = ["--scheduler", client.scheduler.address]
    assert main(["apply", "--repo", str(custom_repo(tmp_path / "repo.yaml")),
                 "--store", str(store)]) == 0
    assert main(["ingest", str(raw), "--store", str(store), *sched, "--no-progress"]) == 0
    assert main(["training-set", "--store", str(store), "--out", str(out), "--format",
                 "parquet", "--tables", "customer_engagement", *sched]) == 0
    ts = pd.read_parquet(out)
    assert len(ts) > 0 and {"purchases_14d", "page_views_14d", "cart_adds_30d"} <= set(ts)
    assert str(ts["purchases_14d"].dtype) == "Int64"
    for as_of, part in ts.groupby("as_of"):
        table = pd.read_parquet(store / "customer_engagement" / f"as_of={as_of}")
        joined = part[["customer_id", "purchases_14d"]].merge(
            table[["customer_id", "purchases_14d"]], on="customer_id", how="left",
            suffixes=("", "_table"))
        assert (joined["purchases_14d"].fillna(-1).astype(int)
                == joined["purchases_14d_table"].fillna(-1).astype(int)).all()
    # a customer x product table cannot be joined onto customers
    assert main(["training-set", "--store", str(store), "--out", str(tmp_path / "x"),
                 "--tables", "customer_product_features", *sched]) == 2


def _served_generically(store: Path) -> None:
    """``featurestore serve`` (a real server process, no repository named) serves the table
    that exists only in the applied repository, and a two-key table, by their keys."""
    import sys

    import httpx

    from tests.serving_helpers import serve_subprocess

    command = [sys.executable, "-m", "featurestore", "serve", "--store", str(store)]
    with serve_subprocess({}, timeout=60, command=command, ready_path="/ready",
                          drop_env=("FEATURESTORE_FEATURE_REPO",)) as base:
        latest = sorted(p.name for p in (store / "customer_engagement").glob("as_of=*"))[-1]
        table = pd.read_parquet(store / "customer_engagement" / latest)
        row = table.iloc[0]
        r = httpx.get(f"{base}/tables/customer_engagement/features",
                      params={"customer_id": row["customer_id"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body == {"table": "customer_engagement", "as_of": latest.split("=")[1],
                        "keys": {"customer_id": row["customer_id"]},
                        "features": {"purchases_14d": int(row["purchases_14d"]),
                                     "page_views_14d": int(row["page_views_14d"])}}
        r = httpx.post(f"{base}/tables/customer_engagement/batch",
                       json={"entities": [{"customer_id": row["customer_id"]},
                                          {"customer_id": "nobody"}],
                             "features": ["purchases_14d"]})
        assert r.status_code == 200 and [x["found"] for x in r.json()["results"]] == [True, False]
        assert r.json()["results"][0]["features"] == {"purchases_14d": int(row["purchases_14d"])}

        pairs = pd.read_parquet(store / "customer_product_features" / latest).iloc[3]
        r = httpx.get(f"{base}/tables/customer_product_features/features",
                      params={"customer_id": pairs["customer_id"],
                              "product_id": pairs["product_id"]})
        assert r.status_code == 200, r.text
        assert r.json()["features"]["product_views_30d"] == int(pairs["product_views_30d"])
        r = httpx.get(f"{base}/tables/customer_product_features/features",
                      params={"customer_id": pairs["customer_id"]})
        assert r.status_code == 400 and "product_id" in r.json()["detail"]
        r = httpx.get(f"{base}/tables/nope/features", params={"customer_id": "x"})
        assert r.status_code == 404 and "nope" in r.json()["detail"]
        # the customer routes stay exactly as they are
        r = httpx.get(f"{base}/customers/{row['customer_id']}/features")
        assert r.status_code == 200 and "cart_adds_30d" in r.json()["features"]
