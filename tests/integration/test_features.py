"""Feature tables against an independent plain-pandas computation from the raw drops."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import yaml

from featurestore import ConfigError, Store
from featurestore.features import load_feature_repo
from featurestore.features.definitions import DEFAULT_REPO
from featurestore.materialization import materialize
from featurestore.sources.weblog.ingest import ingest_weblog
from tests.reference import kept_hits, read_drops

ROOT = Path(__file__).resolve().parents[2]
DAYS = 34
COUNTS = ["page_views_1d", "page_views_7d", "page_views_30d", "product_views_7d",
          "product_views_30d", "distinct_products_viewed_30d", "cart_adds_7d", "purchases_7d",
          "purchases_30d", "active_days_30d", "days_since_last_visit"]


# -- the independent reference ----------------------------------------------------------------
def reference_hits(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counted hits and their (hit, product) pairs, from the raw drops with stdlib + pandas."""
    good, _ = read_drops(root)
    h = kept_hits(good)
    h = h[h["customer_id"] != ""].copy()
    for c in ("page_url", "post_page_event", "post_event_list", "post_product_list"):
        h[c] = h[c].replace("\\N", "")
    h["day"] = pd.to_datetime(h["event_date"]).dt.date
    h["events"] = h["post_event_list"].map(lambda s: set(s.split(",")) if s else set())
    h["path"] = h["page_url"].map(lambda u: urlsplit(u).path)
    h = h.reset_index(drop=True)
    pairs = []
    for i, plist in enumerate(h["post_product_list"]):
        for p in (p for p in plist.split(",") if p):
            f = p.split(";")
            pairs.append({"hit": i, "product_id": f[1], "price": float(f[3]) if f[3] else 0.0})
    pairs = pd.DataFrame(pairs)
    for c in ("customer_id", "day", "events"):
        pairs[c] = h[c].to_numpy()[pairs["hit"]]
    return h, pairs


def _win(df: pd.DataFrame, as_of: dt.date, days: int) -> pd.DataFrame:
    return df[(df["day"] > as_of - dt.timedelta(days)) & (df["day"] <= as_of)]


def _has(df: pd.DataFrame, event: str) -> pd.DataFrame:
    return df[df["events"].map(lambda s: event in s)]


def reference_customer(h: pd.DataFrame, pairs: pd.DataFrame, as_of: dt.date,
                       extra: bool = False) -> pd.DataFrame:
    upto = h[h["day"] <= as_of]
    out = pd.DataFrame(index=pd.Index(sorted(upto["customer_id"].unique()), name="customer_id"))

    def count(df, days):
        return _win(df, as_of, days).groupby("customer_id").size().reindex(
            out.index, fill_value=0).astype("int64")

    pv = h[h["post_page_event"] == "0"]
    views, buys = _has(pairs, "2"), _has(h, "1")
    out["page_views_1d"] = count(pv, 1)
    out["page_views_7d"] = count(pv, 7)
    out["page_views_30d"] = count(pv, 30)
    out["product_views_7d"] = count(views, 7)
    out["product_views_30d"] = count(views, 30)
    out["distinct_products_viewed_30d"] = _win(views, as_of, 30).groupby("customer_id")[
        "product_id"].nunique().reindex(out.index, fill_value=0).astype("int64")
    out["cart_adds_7d"] = count(_has(h, "12"), 7)
    out["purchases_7d"] = count(buys, 7)
    out["purchases_30d"] = count(buys, 30)
    out["revenue_30d"] = _win(_has(pairs, "1"), as_of, 30).groupby("customer_id")[
        "price"].sum().reindex(out.index, fill_value=0.0).astype("float64")
    out["active_days_30d"] = _win(h, as_of, 30).groupby("customer_id")["day"].nunique().reindex(
        out.index, fill_value=0).astype("int64")
    out["days_since_last_visit"] = upto.groupby("customer_id")["day"].max().map(
        lambda d: (as_of - d).days).reindex(out.index).astype("int64")
    last_buy = buys[buys["day"] <= as_of].groupby("customer_id")["day"].max()
    out["days_since_last_purchase"] = pd.array(
        [(as_of - last_buy[c]).days if c in last_buy.index else None for c in out.index],
        dtype="Int64")
    if extra:
        out["cart_adds_30d"] = count(_has(h, "12"), 30)
        out["sale_page_views_7d"] = count(pv[pv["path"].str.startswith("/sale/")], 7)
    return out.reset_index()


def reference_customer_product(pairs: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    views = _has(pairs, "2")
    v30 = _win(views, as_of, 30).groupby(["customer_id", "product_id"]).size()
    v7 = _win(views, as_of, 7).groupby(["customer_id", "product_id"]).size()
    out = pd.DataFrame({"product_views_7d": v7.reindex(v30.index, fill_value=0).astype("int64"),
                        "product_views_30d": v30.astype("int64")})
    return out[out["product_views_30d"] > 0].sort_index().reset_index()


def read_as_of(store: Store, table: str, as_of: dt.date) -> pd.DataFrame:
    return pd.read_parquet(store.uri(table, f"as_of={as_of.isoformat()}"))


def assert_same(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    ours = ours.reset_index(drop=True)
    theirs = theirs[list(ours.columns)].reset_index(drop=True)
    for c in ours.columns:
        if c in ("customer_id", "product_id"):
            assert ours[c].astype(str).tolist() == theirs[c].astype(str).tolist(), c
        elif ours[c].dtype == "float64":
            np.testing.assert_allclose(ours[c].to_numpy(), theirs[c].to_numpy(), rtol=1e-9,
                                       atol=1e-9, err_msg=c)
        else:  # counts: exact, nulls in the same places
            pd.testing.assert_series_equal(ours[c], theirs[c].astype(ours[c].dtype),
                                           check_names=False, obj=c)


def all_tables(store: Store) -> dict[str, pd.DataFrame]:
    out = {}
    for table in ("customer_features", "customer_product_features"):
        df = pd.read_parquet(store.uri(table))
        df["as_of"] = df["as_of"].astype(str)
        out[table] = df.sort_values(["as_of", *[c for c in ("customer_id", "product_id")
                                                if c in df]]).reset_index(drop=True)
    return out


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """34 days of drops (late hits, bad rows) and their reference hits/pairs."""
    from featurestore.generate import generate_weblog

    root = tmp_path_factory.mktemp("hist") / "raw"
    generate_weblog(str(root), days=DAYS, customers=1500, products=25, rows_per_day=300,
                    parts=2, seed=5, bad_rows=0.005, late_fraction=0.05)
    h, pairs = reference_hits(root)
    return root, h, pairs


@pytest.fixture(scope="module")
def built(history, tmp_path_factory, client):
    root, _, _ = history
    store = Store(str(tmp_path_factory.mktemp("built") / "store"))
    ingest_weblog(str(root), store, client=client)
    report = materialize(store, client=client)
    return store, report


# -- tests --------------------------------------------------------------------------------------
def test_customer_features_match_pandas_every_as_of(history, built):
    _, h, pairs = history
    store, report = built
    days = sorted(h["day"].unique())
    first = days[0]
    assert report.as_of_range == [first.isoformat(), days[-1].isoformat()]
    edges = dict.fromkeys(["d6_counts", "d7_not", "d29_counts", "d30_not", "idle", "null",
                           "not_null"], 0)
    for n in range(DAYS):
        as_of = first + dt.timedelta(n)
        ours = read_as_of(store, "customer_features", as_of)
        theirs = reference_customer(h, pairs, as_of)
        assert_same(ours, theirs)
        assert [str(ours[c].dtype) for c in COUNTS] == ["int64"] * len(COUNTS)
        assert str(ours["revenue_30d"].dtype) == "float64"
        assert str(ours["days_since_last_purchase"].dtype) == "Int64"
        # The data exercises the window edges, idle customers and nulls (else the test is weak).
        pv = h[h["post_page_event"] == "0"]
        on = lambda k: set(pv[pv["day"] == as_of - dt.timedelta(k)]["customer_id"])  # noqa
        inside7 = set(_win(pv, as_of, 7)["customer_id"])
        inside30 = set(_win(pv, as_of, 30)["customer_id"])
        edges["d6_counts"] += len(on(6) - set(_win(pv, as_of, 6)["customer_id"]))
        edges["d7_not"] += len(on(7) - inside7)
        edges["d29_counts"] += len(on(29) - set(_win(pv, as_of, 29)["customer_id"]))
        edges["d30_not"] += len(on(30) - inside30)
        edges["idle"] += int((ours["page_views_30d"] == 0).sum())
        edges["null"] += int(ours["days_since_last_purchase"].isna().sum())
        edges["not_null"] += int(ours["days_since_last_purchase"].notna().sum())
    assert all(v > 0 for v in edges.values()), edges


def test_customer_product_features_match_pandas(history, built):
    _, h, pairs = history
    store, _ = built
    first = min(h["day"])
    for n in (0, 5, 6, 7, 20, 29, 30, DAYS - 1):
        as_of = first + dt.timedelta(n)
        ours = read_as_of(store, "customer_product_features", as_of)
        assert_same(ours, reference_customer_product(pairs, as_of))
        assert (ours["product_views_30d"] > 0).all()
        assert str(ours["product_id"].dtype) == str(ours["customer_id"].dtype) == "string"


def test_readers_see_spec_dtypes(built, client):
    import dask.dataframe as ddf
    import duckdb
    import pyarrow.dataset as ds

    store, _ = built
    for table, nullable in (("customer_features", {"days_since_last_purchase"}),
                            ("customer_product_features", set())):
        frames = {
            "pandas": pd.read_parquet(store.uri(table)),
            "dask": ddf.read_parquet(store.uri(table)).compute(),
            "pyarrow": ds.dataset(store.uri(table), partitioning="hive").to_table().to_pandas(),
            "duckdb": duckdb.sql(f"SELECT * FROM read_parquet('{store.uri(table)}/*/*.parquet',"
                                 " hive_partitioning=1)").df(),
        }
        expected = len(frames["pandas"])
        for reader, df in frames.items():
            assert len(df) == expected > 0, reader
            for col in df.columns:
                dtype = df[col].dtype
                if col in ("customer_id", "product_id"):
                    assert pd.api.types.is_string_dtype(dtype), (reader, col, dtype)
                elif col == "as_of":
                    continue
                elif col == "revenue_30d":
                    assert dtype == "float64", (reader, col)
                elif col in nullable:
                    assert str(dtype) == "Int64", (reader, col, dtype)
                else:
                    assert dtype == "int64", (reader, col, dtype)


def _hold_back(root: Path, dest: Path, day: str) -> Path:
    """Copy the drops without one part of ``day``; return where that part is parked."""
    shutil.copytree(root, dest)
    parked = dest.parent / "parked.tsv.gz"
    shutil.move(dest / day / "hit_data-0001.tsv.gz", parked)
    return parked


def _mtimes(store: Store, table: str) -> dict[str, int]:
    folder = Path(store.path(table))
    return {p.parent.name: p.stat().st_mtime_ns for p in folder.glob("as_of=*/part-0.parquet")}


def test_late_file_recomputes_exactly_the_affected_as_of_dates(history, built, tmp_path,
                                                               client):
    root, h, pairs = history
    first = min(h["day"])
    late_day = first + dt.timedelta(20)
    raw = tmp_path / "raw"
    parked = _hold_back(root, raw, late_day.isoformat())
    store = Store(str(tmp_path / "store"))
    ingest_weblog(str(raw), store, client=client)
    materialize(store, client=client)
    before = {t: _mtimes(store, t) for t in ("customer_features", "customer_product_features")}

    shutil.move(parked, raw / late_day.isoformat() / "hit_data-0001.tsv.gz")  # arrives late
    ingest = ingest_weblog(str(raw), store, client=client)
    assert ingest.files_ingested == 1
    report = materialize(store, client=client)
    earliest = dt.date.fromisoformat(min(ingest.event_dates))
    expected = [(earliest + dt.timedelta(n)).isoformat()
                for n in range((first + dt.timedelta(DAYS - 1) - earliest).days + 1)]
    assert report.as_of_written["customer_features"] == expected
    assert report.as_of_written["customer_product_features"] == expected
    assert report.daily_dates == sorted(ingest.event_dates)
    for table, old in before.items():
        now = _mtimes(store, table)
        untouched = {d for d in old if d[6:] < expected[0]}
        assert untouched and all(now[d] == old[d] for d in untouched)
        assert all(now[d] != old[d] for d in old if d[6:] >= expected[0])
    # Identical to a from-scratch materialization, and right against pandas.
    scratch, _ = built
    for table, df in all_tables(store).items():
        pd.testing.assert_frame_equal(df, all_tables(scratch)[table])
    assert_same(read_as_of(store, "customer_features", late_day),
                reference_customer(h, pairs, late_day))
    # Nothing new: nothing rewritten.
    again = materialize(store, client=client)
    assert again.as_of_written == {} and again.daily_dates == []


def test_crash_then_rerun_gives_identical_tables(built, tmp_path, client):
    scratch, _ = built
    store = Store(str(tmp_path / "store"))
    # the store a clean ingest and materialization leave (a copy of ``built``: another
    # from-scratch run of them is test_cli_ingest_materializes_and_tables_show's, through the CLI)
    shutil.copytree(scratch.root, store.root)
    # A crash before the record is written: partitions of this run exist, the record does not;
    # some partitions were never published.
    Path(store.path("_state/materialize.json")).unlink()
    for p in sorted(Path(store.path("customer_features")).glob("as_of=*"))[-5:]:
        shutil.rmtree(p)
    materialize(store, client=client)
    for table, df in all_tables(store).items():
        pd.testing.assert_frame_equal(df, all_tables(scratch)[table])


def _user_repo(tmp_path: Path) -> Path:
    repo = yaml.safe_load(DEFAULT_REPO.read_text())
    feats = repo["tables"]["customer_features"]["features"]
    feats["cart_adds_30d"] = {"aggregation": "count", "filter": {"event_id": "12"},
                              "window_days": 30}
    feats["sale_page_views_7d"] = {"aggregation": "count", "window_days": 7,
                                   "filter": {"page_event": "0", "url_path_prefix": "/sale/"}}
    path = tmp_path / "repo.yaml"
    path.write_text(yaml.safe_dump(repo))
    return path


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``featurestore ARGS`` in process (what it prints and returns, issue #30: no interpreter
    and cluster start per call; the commands run on the session cluster via --scheduler)."""
    from tests._generated_store import cli_in_process

    return cli_in_process(*args, check=False, **(env or {}))


def test_user_feature_from_config_and_backfill(history, built, tmp_path, client):
    _, h, pairs = history
    scratch, _ = built
    store = tmp_path / "store"
    shutil.copytree(scratch.root, store)
    env = {"FEATURESTORE_FEATURE_REPO": str(_user_repo(tmp_path))}
    first = min(h["day"])
    lo, hi = first + dt.timedelta(10), first + dt.timedelta(12)
    out = _cli("backfill", "--store", str(store), "--from", lo.isoformat(), "--to",
               hi.isoformat(), "--scheduler", client.scheduler.address, "--json", env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    # A redefined table is rebuilt whole, whatever the range: it never holds partitions with
    # different columns (DuckDB refuses those; pandas drops the new columns).
    assert report["as_of_written"]["customer_features"] == [
        (first + dt.timedelta(n)).isoformat() for n in range(DAYS)]
    assert report["as_of_written"]["customer_product_features"] == [  # backfill recomputes
        (lo + dt.timedelta(n)).isoformat() for n in range(3)]
    s = Store(str(store))
    mid = read_as_of(s, "customer_features", lo + dt.timedelta(1))
    assert {"cart_adds_30d", "sale_page_views_7d"} <= set(mid.columns)
    assert "cart_adds_30d" in read_as_of(s, "customer_features", hi + dt.timedelta(1))
    # Nothing is left stale: the next materialization writes nothing.
    report = materialize(s, client=client, repo=env["FEATURESTORE_FEATURE_REPO"])
    assert report.as_of_written == {}
    for n in (0, 6, 7, 29, 30, DAYS - 1):
        as_of = first + dt.timedelta(n)
        ours = read_as_of(s, "customer_features", as_of)
        theirs = reference_customer(h, pairs, as_of, extra=True)
        assert_same(ours, theirs)
    assert read_as_of(s, "customer_features", first + dt.timedelta(DAYS - 1))[
        "sale_page_views_7d"].sum() > 0


@pytest.mark.parametrize(("change", "key"), [
    (lambda f: f.update(window_dayz=3), "features.page_views_1d.window_dayz"),
    # (no window_days is a lifetime window since SPEC §3a; a window of 0 days is an error)
    (lambda f: f.update(window_days=0), "features.page_views_1d.window_days"),
    (lambda f: f.update(aggregation="median"), "features.page_views_1d.aggregation"),
    (lambda f: f.update(filter={"event": "2"}), "features.page_views_1d.filter.event"),
    (lambda f: f.update(aggregation="sum", field="colour"), "features.page_views_1d.field"),
])
def test_config_errors_name_the_bad_key(tmp_path, change, key):
    repo = yaml.safe_load(DEFAULT_REPO.read_text())
    change(repo["tables"]["customer_features"]["features"]["page_views_1d"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(repo))
    with pytest.raises(ConfigError, match=f"tables.customer_features.{key}"):
        load_feature_repo(str(path))


def test_config_unknown_source_is_named(tmp_path):
    repo = yaml.safe_load(DEFAULT_REPO.read_text())
    repo["tables"]["customer_features"]["source"] = "clicks"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(repo))
    with pytest.raises(ConfigError, match=r"tables\.customer_features\.source: unknown source"):
        load_feature_repo(str(path))


def test_cli_ingest_materializes_and_tables_show(history, built, tmp_path, client):
    _, h, pairs = history
    scratch, _ = built
    root = tmp_path / "raw"
    shutil.copytree(history[0], root)
    store = tmp_path / "store"
    out = _cli("ingest", str(root), "--store", str(store), "--scheduler",
               client.scheduler.address, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["files_ingested"] == 2 * DAYS
    assert len(report["materialize"]["as_of_written"]["customer_features"]) == DAYS
    for table, df in all_tables(Store(str(store))).items():
        pd.testing.assert_frame_equal(df, all_tables(scratch)[table])

    out = _cli("tables", "--store", str(store), "--json")
    assert out.returncode == 0, out.stderr
    listed = {t["name"]: t for t in json.loads(out.stdout)}
    last = max(h["day"])
    cf = listed["customer_features"]
    assert cf["as_of_range"] == [min(h["day"]).isoformat(), last.isoformat()]
    assert cf["rows_latest"] == len(reference_customer(h, pairs, last))
    assert cf["key_columns"] == ["customer_id"]
    assert cf["features"]["days_since_last_purchase"] == "Int64"

    theirs = reference_customer(h, pairs, last - dt.timedelta(3)).iloc[7]
    out = _cli("show", "--store", str(store), "--table", "customer_features", "--customer",
               theirs["customer_id"], "--as-of", (last - dt.timedelta(3)).isoformat(), "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["customer_id"] == theirs["customer_id"]
    assert row["page_views_30d"] == theirs["page_views_30d"]
    assert row["purchases_30d"] == theirs["purchases_30d"]
    out = _cli("show", "--store", str(store), "--table", "customer_features", "--customer",
               "nobody")
    assert out.returncode != 0 and "nobody" in out.stderr


def test_materialize_on_s3_equals_local(drops, tmp_path, moto_server, s3_bucket, client):
    """The same tables on an S3 store (real moto server) as on local disk."""
    root, _ = drops
    local = Store(str(tmp_path / "store"))
    # Explicit options: the session's workers may predate the moto fixture's AWS_* variables.
    remote = Store(f"s3://{s3_bucket}/fs", {"key": "testing", "secret": "testing",
                                            "client_kwargs": {"endpoint_url": moto_server,
                                                              "region_name": "us-east-1"}})
    for store in (local, remote):
        ingest_weblog(str(root), store, client=client)
        report = materialize(store, client=client)
        assert len(report.as_of_written["customer_features"]) == 4
    for table in ("customer_features", "customer_product_features"):
        for as_of in local.partitions(table, "as_of"):
            ours = remote.read_parquet(table, f"as_of={as_of}", "part-0.parquet")
            pd.testing.assert_frame_equal(
                ours, local.read_parquet(table, f"as_of={as_of}", "part-0.parquet"))
    assert materialize(remote, client=client).as_of_written == {}
