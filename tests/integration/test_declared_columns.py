"""Declared columns (SPEC §3a) through the real CLI: generate -> apply -> ingest -> typed
events, the report's counts against an independent pandas parse of the raw files; backfill of
a column declared after ingest equals a fresh ingest with it; a raw file gone is reported."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from featurestore.cli import main
from featurestore.dashboard import ingestion
from featurestore.feature_store import FeatureStore
from featurestore.features.definitions import DEFAULT_REPO
from featurestore.settings import Settings
from featurestore.storage import Store

COLUMNS = {"post_channel": "string", "visit_num": "int", "evar12": "float",
           "geo_country": "string"}
#: the day whose header loses post_channel (renamed: same field count, column absent)
NO_CHANNEL_DAY = "2026-02-02"


#: SPEC §3a features over the declared columns (built from the partial states ingest and
#: the backfill write)
FEATURES = """      visit_num_mean_7d: {aggregation: mean, field: visit_num, window_days: 7}
      evar12_max: {aggregation: max, field: evar12}
      channels_top2_30d: {aggregation: top_k, field: post_channel, k: 2, window_days: 30}
"""


def repo_with(path: Path, columns: dict[str, str], features: str = "") -> Path:
    text = DEFAULT_REPO.read_text()
    anchor = "    kind: weblog\n    table: events\n"
    assert anchor in text
    decl = ", ".join(f"{k}: {v}" for k, v in columns.items())
    text = text.replace(anchor, anchor + f"    columns: {{{decl}}}\n")
    if features:
        last = '      days_since_last_purchase: {aggregation: recency, filter: {event_id: "1"}}\n'
        assert last in text
        text = text.replace(last, last + features)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("cols") / "raw"
    assert main(["generate", str(root), "--days", "3", "--customers", "200", "--products",
                 "20", "--rows-per-day", "1200", "--parts", "2", "--start", "2026-02-01",
                 "--seed", "7", "--late-fraction", "0.05"]) == 0
    header = root / NO_CHANNEL_DAY / "column_headers.tsv"
    names = header.read_text().rstrip("\n").split("\t")
    header.write_text("\t".join("post_channel_v2" if n == "post_channel" else n
                                for n in names) + "\n")
    assert "post_channel" not in header.read_text().rstrip("\n").split("\t")
    return root


def _raw_frame(root: Path) -> pd.DataFrame:
    """Every hit of the drops, parsed with pandas alone (all fields as text)."""
    frames = []
    for day in sorted(p for p in root.iterdir() if p.is_dir()):
        names = (day / "column_headers.tsv").read_text().rstrip("\n").split("\t")
        for part in sorted(day.glob("hit_data-*.tsv.gz")):
            with gzip.open(part, "rt", encoding="utf-8") as f:
                df = pd.read_csv(f, sep="\t", header=None, names=names, dtype=str,
                                 keep_default_na=False, quoting=3)
            for c in COLUMNS:
                if c not in df:
                    df[c] = ""
            df = df[["hit_time_gmt", "customer_id", "exclude_hit", *COLUMNS]].copy()
            df["drop"] = day.name
            frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df = df[df["exclude_hit"] == "0"]
    return df.replace({"": None, "\\N": None})


def _events(store: Path) -> pd.DataFrame:
    return ds.dataset(str(store / "events"), format="parquet",
                      partitioning="hive").to_table().to_pandas()


def test_ingest_keeps_declared_columns_typed_and_counts_bad_values(raw, tmp_path, client,
                                                                   capsys):
    store = tmp_path / "store"
    sched = ["--scheduler", client.scheduler.address]
    repo = repo_with(tmp_path / "repo.yaml", COLUMNS)
    assert main(["apply", "--repo", str(repo), "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["ingest", str(raw), "--store", str(store), *sched, "--no-progress",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    expected = _raw_frame(raw)
    numbers = pd.to_numeric(expected["evar12"], errors="coerce")
    bad_evar = int((expected["evar12"].notna() & numbers.isna()).sum())
    assert bad_evar > 0  # the generator plants some
    assert report["column_bad_values"] == {"post_channel": 0, "visit_num": 0,
                                           "evar12": bad_evar, "geo_country": 0}
    assert [(m["drop"], m["column"]) for m in report["columns_missing"]] == [
        (NO_CHANNEL_DAY, "post_channel")]
    status = json.loads((store / "_ledger/weblog" / NO_CHANNEL_DAY / "_status.json").read_text())
    assert status["columns_missing"] == ["post_channel"] and status["complete"]

    # the dashboard's ingestion page: per drop, the bad values and the missing column
    days = {d["drop"]: d for d in ingestion(Store(str(store)))["days"]}
    assert sum(d["column_bad_values"].get("evar12", 0) for d in days.values()) == bad_evar
    assert days[NO_CHANNEL_DAY]["columns_missing"] == ["post_channel"]
    assert all(not d["columns_missing"] for k, d in days.items() if k != NO_CHANNEL_DAY)

    events = _events(store)
    schema = ds.dataset(str(store / "events"), format="parquet").schema
    assert str(schema.field("visit_num").type) == "int64"
    assert str(schema.field("evar12").type) == "double"
    assert str(schema.field("post_channel").type) == "large_string"
    assert len(events) == len(expected)
    got = events.assign(hit_time_gmt=events["hit_time_gmt"].astype(str)).sort_values(
        ["hit_time_gmt", "customer_id", "visit_num", "evar12"]).reset_index(drop=True)
    want = expected.assign(
        visit_num=expected["visit_num"].astype("Int64"),
        evar12=numbers,
        post_channel=np.where(expected["drop"] == NO_CHANNEL_DAY, None,
                              expected["post_channel"]),
    ).sort_values(["hit_time_gmt", "customer_id", "visit_num", "evar12"]).reset_index(drop=True)
    for c in ["visit_num", "geo_country", "post_channel"]:
        assert got[c].astype(object).where(got[c].notna(), None).tolist() == \
            want[c].astype(object).where(want[c].notna(), None).tolist(), c
    np.testing.assert_allclose(got["evar12"].astype(float), want["evar12"].astype(float))
    assert got["post_channel"].isna().sum() > got["post_channel"].notna().sum() * 0.1


def test_backfill_fills_a_newly_declared_column_like_a_fresh_ingest(raw, tmp_path, client,
                                                                    capsys):
    sched = ["--scheduler", client.scheduler.address]
    fresh, late = tmp_path / "fresh", tmp_path / "late"
    repo = repo_with(tmp_path / "repo.yaml", COLUMNS, FEATURES)
    assert main(["apply", "--repo", str(repo), "--store", str(fresh)]) == 0
    assert main(["ingest", str(raw), "--store", str(fresh), *sched, "--no-progress"]) == 0

    # ingested without the columns, then declared, then backfilled
    assert main(["ingest", str(raw), "--store", str(late), *sched, "--no-progress"]) == 0
    assert "visit_num" not in _events(late)
    assert main(["apply", "--repo", str(repo), "--store", str(late)]) == 0
    capsys.readouterr()
    assert main(["tables", "--store", str(late)]) == 0
    assert "run featurestore backfill" in capsys.readouterr().out
    assert main(["tables", "--store", str(late), "--json"]) == 0
    listed = {t["name"]: t["declared_columns"] for t in json.loads(capsys.readouterr().out)}
    assert listed["customer_features"] == {
        c: {"type": t, "complete_from": None, "pending": True, "features": f}
        for (c, t), f in zip(COLUMNS.items(), (["channels_top2_30d"], ["visit_num_mean_7d"],
                                                ["evar12_max"], []))}
    assert all(not v["features"] for v in listed["customer_product_features"].values())
    assert main(["backfill", "--store", str(late), *sched, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["columns"]["columns"] == sorted(COLUMNS)
    assert out["columns"]["rows_unfilled"] == 0
    assert all(not c["complete_from"] for c in out["columns"]["completeness"].values())

    keys = ["hit_time_gmt", "customer_id", "page_url", "post_event_list"]

    def frame(store):
        df = _events(store)
        return df.sort_values(keys + list(COLUMNS)).reset_index(drop=True)[keys + list(COLUMNS)]

    pd.testing.assert_frame_equal(frame(late), frame(fresh))
    # the tables built from the backfill's partials equal the fresh ingest's
    for table in ("customer_features", "customer_product_features"):
        a, b = (pd.read_parquet(s / table) for s in (late, fresh))
        if table == "customer_features":
            assert {"visit_num_mean_7d", "evar12_max", "channels_top2_30d"} <= set(a.columns)
            assert a["visit_num_mean_7d"].notna().any()
        cols = sorted(a.columns)
        pd.testing.assert_frame_equal(
            a[cols].astype(str).sort_values(cols).reset_index(drop=True),
            b[cols].astype(str).sort_values(cols).reset_index(drop=True), obj=table)
    partials = list((late / "_partials").rglob("*.arrow"))
    assert partials and {p.name for p in partials} == {
        p.name for p in (fresh / "_partials").rglob("*.arrow")}
    # a second backfill has nothing left to fill (exactly once)
    assert main(["backfill", "--store", str(late), *sched, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["columns"]
    assert again["files_rewritten"] == 0 and again["columns"] == []
    pd.testing.assert_frame_equal(frame(late), frame(fresh))


def test_backfill_with_a_raw_file_gone_says_from_which_date_the_column_is_complete(
        raw, tmp_path, client, capsys):
    sched = ["--scheduler", client.scheduler.address]
    moved = tmp_path / "moved"
    shutil.copytree(raw, moved)
    store = tmp_path / "store"
    assert main(["ingest", str(moved), "--store", str(store), *sched, "--no-progress"]) == 0
    (moved / "2026-02-01" / "hit_data-0001.tsv.gz").unlink()
    # the drops move: --raw names where they are now
    elsewhere = tmp_path / "elsewhere"
    shutil.move(moved, elsewhere)
    repo = repo_with(tmp_path / "repo.yaml", {"visit_num": "int"})
    assert main(["apply", "--repo", str(repo), "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["backfill", "--store", str(store), *sched, "--raw", str(elsewhere)]) == 0
    out = capsys.readouterr().out
    assert "hit_data-0001.tsv.gz: raw file gone" in out
    assert "column visit_num (int) is complete from 2026-02-02" in out
    events = _events(store)
    day1 = events[events["event_date"].astype(str) == "2026-02-01"]
    later = events[events["event_date"].astype(str) > "2026-02-01"]
    assert day1["visit_num"].isna().any() and day1["visit_num"].notna().any()
    assert later["visit_num"].notna().all()
    assert main(["tables", "--store", str(store)]) == 0
    assert "complete from 2026-02-02" in capsys.readouterr().out
    # --json carries it too: every table of the weblog source, with the features reading it
    assert main(["tables", "--store", str(store), "--json"]) == 0
    tables = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert set(tables) == {"customer_features", "customer_product_features"}
    for t in tables.values():
        assert t["declared_columns"] == {"visit_num": {
            "type": "int", "complete_from": "2026-02-02", "pending": False, "features": []}}
        assert {"key_columns", "features", "as_of_range", "rows_latest"} <= set(t)

    # the next backfill remembers the file is gone there: nothing re-read or rewritten, the
    # completeness still reported
    day1_files = {p: p.stat().st_mtime_ns
                  for p in (store / "events" / "event_date=2026-02-01").glob("*.parquet")}
    assert main(["backfill", "--store", str(store), *sched, "--raw", str(elsewhere),
                 "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["columns"]
    assert again["files_rewritten"] == 0 and again["raw_unavailable"] == []
    assert [i["file"] for i in again["raw_not_retried"]] == [
        f"{elsewhere}/2026-02-01/hit_data-0001.tsv.gz"]
    assert "raw file gone" in again["raw_not_retried"][0]["reason"]
    assert again["completeness"]["visit_num"]["complete_from"] == "2026-02-02"
    assert {p: p.stat().st_mtime_ns for p in day1_files} == day1_files
    assert main(["backfill", "--store", str(store), *sched, "--raw", str(elsewhere)]) == 0
    text = capsys.readouterr().out
    assert "not retried" in text and "complete from 2026-02-02" in text
    # the drops found again elsewhere (--raw names a new place): tried again, and filled
    back = tmp_path / "back"
    shutil.copytree(elsewhere, back)
    shutil.copy(raw / "2026-02-01" / "hit_data-0001.tsv.gz", back / "2026-02-01")
    assert main(["backfill", "--store", str(store), *sched, "--raw", str(back), "--json"]) == 0
    filled = json.loads(capsys.readouterr().out)["columns"]
    assert filled["rows_filled"] > 0 and filled["raw_not_retried"] == []
    assert filled["completeness"]["visit_num"]["complete_from"] is None
    assert _events(store)["visit_num"].notna().all()


def test_backfill_fills_rows_a_later_ingest_merged_before_the_column_was_filled(tmp_path,
                                                                                client,
                                                                                capsys):
    """Day 2's part, written before the column was declared, is merged with the late hits of
    day 3's drop after it was: the merged file has the column, null for the old rows. The
    backfill still fills those rows (the ledger says they were never given the column)."""
    sched = ["--scheduler", client.scheduler.address]
    full = tmp_path / "raw"
    assert main(["generate", str(full), "--days", "3", "--customers", "150", "--products",
                 "15", "--rows-per-day", "800", "--parts", "1", "--start", "2026-02-01",
                 "--seed", "4", "--late-fraction", "0.2"]) == 0
    first = tmp_path / "first"
    first.mkdir()
    for day in ("2026-02-01", "2026-02-02"):
        shutil.copytree(full / day, first / day)
    repo = repo_with(tmp_path / "repo.yaml", {"visit_num": "int", "post_channel": "string"})
    fresh, late = tmp_path / "fresh", tmp_path / "late"
    assert main(["apply", "--repo", str(repo), "--store", str(fresh)]) == 0
    assert main(["ingest", str(full), "--store", str(fresh), *sched, "--no-progress"]) == 0
    assert main(["ingest", str(first), "--store", str(late), *sched, "--no-progress"]) == 0
    assert main(["apply", "--repo", str(repo), "--store", str(late)]) == 0
    assert main(["ingest", str(full), "--store", str(late), *sched, "--no-progress"]) == 0
    merged = list((late / "events" / "event_date=2026-02-02").glob("part-c*.parquet"))
    assert merged, "day 2's old part and day 3's late hits were merged"
    day2 = pd.read_parquet(merged[0])
    assert day2["visit_num"].isna().any()  # the old rows, before the backfill
    # our events reader keeps the column though the first files lack it (null there)
    before = FeatureStore(Settings(store=str(late))).read_dataset("events")
    assert str(before["visit_num"].dtype) == "Int64" and before["visit_num"].notna().any()
    capsys.readouterr()
    assert main(["backfill", "--store", str(late), *sched, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["columns"]
    assert out["rows_unfilled"] == 0 and out["files_rewritten"] >= 2
    keys = ["hit_time_gmt", "customer_id", "page_url", "post_event_list", "visit_num",
            "post_channel"]

    def frame(store):
        return _events(store)[keys].sort_values(keys).reset_index(drop=True)

    pd.testing.assert_frame_equal(frame(late), frame(fresh))
    assert frame(late)["visit_num"].notna().all()


def test_ingest_and_backfill_of_declared_columns_on_s3(moto_server, s3_bucket, tmp_path,
                                                        client):
    """Raw drops and the store in moto S3: ingest without the column, then the backfill reads
    the raw files back from S3 (the ledger's URLs) and the events equal an ingest with it."""
    from featurestore.features.daily import daily_plan
    from featurestore.features.definitions import load_feature_repo
    from featurestore.sources.weblog.backfill import backfill_columns
    from featurestore.sources.weblog.ingest import ingest_weblog

    options = {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": moto_server, "region_name": "us-east-1"}}
    from featurestore.generate import generate_weblog

    generate_weblog(f"s3://{s3_bucket}/raw", storage_options=options, days=2, customers=100,
                    products=10, rows_per_day=500, parts=2, seed=9, late_fraction=0.1)
    raw = f"s3://{s3_bucket}/raw"
    repo = load_feature_repo(str(repo_with(tmp_path / "repo.yaml", COLUMNS)))
    fresh = Store(f"s3://{s3_bucket}/fresh", options)
    report = ingest_weblog(raw, fresh, client=client, repo=repo)
    assert report.ok and set(report.column_bad_values) == set(COLUMNS)
    late = Store(f"s3://{s3_bucket}/late", options)
    ingest_weblog(raw, late, client=client, repo=load_feature_repo(None))
    done = backfill_columns(late, repo.declared_columns(), client=client,
                            daily=daily_plan(repo))
    assert done.rows_unfilled == 0 and done.files_rewritten > 0
    assert done.column_bad_values == report.column_bad_values

    def frame(store):
        df = pd.read_parquet(store.uri("events"), storage_options=options)
        cols = ["hit_time_gmt", "customer_id", *COLUMNS]
        return df[cols].sort_values(cols).reset_index(drop=True)

    pd.testing.assert_frame_equal(frame(late), frame(fresh))
    assert frame(late)["visit_num"].notna().all()
