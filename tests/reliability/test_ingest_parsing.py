"""Issue #13 items 1, 2 and 5: raw file names, line endings and event-time bounds.

Every test runs the real CLI (``featurestore.cli.main``) against the session's LocalCluster
(``--scheduler``), on hand-built or generated drops, on disk or on the moto S3 server.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from featurestore import ConfigError
from featurestore.cli import main
from featurestore.generate import generate_weblog

NAMED = ["hit_time_gmt", "customer_id", "page_url", "post_page_event", "post_event_list",
         "post_product_list", "exclude_hit"]
DAY = dt.date(2026, 1, 5)
DAY_START = int(dt.datetime.combine(DAY, dt.time(), dt.UTC).timestamp())


def _hit(i: int, time: int | None = None) -> dict[str, str]:
    """The named fields of one good hit (every 5th excluded, every 7th anonymous)."""
    return {
        "hit_time_gmt": str(DAY_START + 60 * i if time is None else time),
        "customer_id": "" if i % 7 == 3 else f"C{i % 11}",
        "page_url": f"https://shop.example.com/p/{i}",
        "post_page_event": "0",
        "post_event_list": "2" if i % 2 else "",
        "post_product_list": f"Shoes;P{i % 5};1;9.5" if i % 2 else "",
        "exclude_hit": "1" if i % 5 == 4 else "0",
    }


def _line(hit: dict[str, str], columns: list[str]) -> str:
    return "\t".join(hit.get(c, f"x{len(c)}") for c in columns)


def _write_drop(root: str, day: dt.date, columns: list[str], files: dict[str, bytes],
                options: dict | None = None) -> None:
    """A drop folder without manifest: the header and each file's (uncompressed) body."""
    fs, path = fsspec.core.url_to_fs(f"{root}/{day.isoformat()}", **(options or {}))
    fs.makedirs(path, exist_ok=True)
    fs.pipe(f"{path}/column_headers.tsv", ("\t".join(columns) + "\n").encode())
    for name, body in files.items():
        fs.pipe(f"{path}/{name}", gzip.compress(body))


def _cli(capsys, client, *argv: str) -> tuple[int, dict]:
    """Run the CLI in this process on the session's cluster; (exit code, its JSON report)."""
    capsys.readouterr()
    code = main([*argv, "--scheduler", client.scheduler.address, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


# -- item 1: output names unique per source file ---------------------------------------------
NAMES = [
    "hit_data-0000.tsv.gz",  # ordinary: keeps today's id
    "hit_data.0000.tsv.gz",  # these two differ only after the first dot
    "hit_data.0001.tsv.gz",
    "hit data 0002.tsv.gz",  # spaces
    "hit_data_é_日本-0003.tsv.gz",  # unicode
    "h" * 293 + ".tsv.gz",  # 300 characters (S3 allows 1,024 bytes a key)
]


def _s3_options(endpoint: str) -> dict:
    # Explicit options: the LocalCluster workers may predate the moto env variables.
    return {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def test_every_file_name_gets_its_own_output(moto_server, s3_bucket, client, capsys):
    options = _s3_options(moto_server)
    columns = ["filler"] + NAMED
    files = {name: "".join(_line(_hit(10 * n + i), columns) + "\n" for i in range(n + 1)).encode()
             for n, name in enumerate(NAMES)}
    _write_drop(f"s3://{s3_bucket}/raw", DAY, columns, files, options)
    store = f"s3://{s3_bucket}/store"
    code, report = _cli(capsys, client, "ingest", f"s3://{s3_bucket}/raw", "--store", store,
                        "--storage-option", "key=testing", "--storage-option", "secret=testing",
                        "--storage-option", f"client_kwargs.endpoint_url={moto_server}")

    assert code == 0 and report["files_ingested"] == len(NAMES)
    events = pd.read_parquet(f"{store}/events", storage_options=options)
    lines = sum(n + 1 for n in range(len(NAMES)))
    excluded = sum(_hit(10 * n + i)["exclude_hit"] != "0"
                   for n in range(len(NAMES)) for i in range(n + 1))
    assert report["rows_ingested"] == len(events) == lines - excluded
    from featurestore.events_compaction import live_events
    from featurestore.storage import Store

    # each file's own part (merged into one file per date: named in the merge's record)
    view = live_events(Store(store, options), DAY)
    parts = [f"part-{fid}.parquet" for fids in view.file_ids.values() for fid in fids]
    assert len(parts) == len(set(parts)) == len(NAMES)
    assert f"part-{DAY}-hit_data-0000.parquet" in parts  # existing stores keep their names
    assert all(len(p) <= 100 and p.isascii() and " " not in p for p in parts)


# -- item 2: CRLF drops are the same data as LF ones -------------------------------------------
def _tables(store: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    events = pd.read_parquet(store / "events")
    events["event_date"] = events["event_date"].astype(str)
    quarantine = pd.read_parquet(store / "_quarantine" / "weblog")
    return (events.sort_values("hit_time_gmt").reset_index(drop=True),
            quarantine.sort_values("line_number").reset_index(drop=True)[
                ["line_number", "reason", "detail", "raw_line"]])


@pytest.mark.parametrize("last", ["exclude_hit", "customer_id", "hit_time_gmt"])
def test_crlf_drop_ingests_as_the_lf_drop(last, tmp_path, client, capsys):
    columns = [c for c in ["filler"] + NAMED if c != last] + [last]
    lines = [_line(_hit(i), columns) for i in range(40)]
    lines.insert(7, "\t".join(lines[7].split("\t")[:-2]))  # a bad row (field count), kept raw
    lf = "".join(line + "\n" for line in lines).encode()
    # every other line CRLF (a file mixing both), and one file all CRLF without a final newline
    mixed = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines)).encode()
    crlf = "\r\n".join(lines).encode()
    results = {}
    for kind, body in {"lf": lf, "mixed": mixed, "crlf": crlf}.items():
        _write_drop(str(tmp_path / kind), DAY, columns, {"hit_data-0000.tsv.gz": body})
        code, report = _cli(capsys, client, "ingest", str(tmp_path / kind),
                            "--store", str(tmp_path / f"store-{kind}"))
        assert code == 0
        results[kind] = report, _tables(tmp_path / f"store-{kind}")

    report, (events, quarantine) = results["lf"]
    assert report["rows_ingested"] == 32 and report["rows_excluded"] == 8
    assert report["quarantined_by_reason"]["field_count"] == report["rows_quarantined"] == 1
    assert set(events["customer_id"].dropna()) == {f"C{i}" for i in range(11)}
    for kind in ("mixed", "crlf"):
        other, (other_events, other_quarantine) = results[kind]
        for key in ("rows_ingested", "rows_excluded", "rows_anonymous", "rows_quarantined",
                    "quarantined_by_reason", "event_dates", "lines"):
            assert other[key] == report[key], (kind, key)
        pd.testing.assert_frame_equal(other_events, events)
        pd.testing.assert_frame_equal(other_quarantine, quarantine)  # raw line without \r


# -- item 5: event times far from the drop's date ----------------------------------------------
def _as_of_dates(store: Path) -> list[str]:
    return sorted(p.name.split("=", 1)[1] for p in (store / "customer_features").iterdir()
                  if p.name.startswith("as_of="))


@pytest.fixture()
def small_store(tmp_path, client, capsys):
    """Three generated drops (2026-01-01..03) ingested and materialized by the CLI."""
    gen = tmp_path / "gen"
    generate_weblog(str(gen), days=3, customers=40, products=8, rows_per_day=150, parts=1,
                    seed=4, columns=20)
    raw, store = tmp_path / "raw", tmp_path / "store"
    shutil.copytree(gen, raw)
    code, report = _cli(capsys, client, "ingest", str(raw), "--store", str(store))
    assert code == 0 and report["materialize"]["as_of_range"] == ["2026-01-01", "2026-01-03"]
    return raw, store


def _copy_drop(raw: Path, day: str, to: str) -> Path:
    """A copy of drop ``day`` as drop ``to`` (its manifest re-dated): same hits, new date.

    Each file is re-compressed at another level, so its bytes (and md5) differ from the
    original's: the copy is new content, not a resend the delivery rules would skip."""
    dest = raw / to
    shutil.copytree(raw / day, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    for entry in manifest["files"]:
        path = dest / entry["name"]
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
        entry["md5"] = hashlib.md5(path.read_bytes()).hexdigest()
    (dest / "manifest.json").write_text(json.dumps({**manifest, "date": to}))
    return dest


def test_misdated_drop_does_not_move_the_latest_as_of(small_store, client, capsys):
    raw, store = small_store
    dest = _copy_drop(raw, "2026-01-03", "2026-03-15")  # dated 71 days after its hits
    lines = sum(len(gzip.decompress(f.read_bytes()).splitlines()) for f in dest.glob("*.gz"))

    code, report = _cli(capsys, client, "ingest", str(raw), "--store", str(store))

    assert code == 0 and report["files_ingested"] == 1
    assert report["quarantined_by_reason"]["too_old"] == report["rows_quarantined"] == lines
    assert report["rows_ingested"] == 0
    mat = report["materialize"]
    assert mat["as_of_range"][1] == "2026-01-03" and mat["as_of_written"] == {}
    assert _as_of_dates(store)[-1] == "2026-01-03"
    quarantine = pd.read_parquet(store / "_quarantine" / "weblog" / "drop=2026-03-15")
    assert (quarantine["reason"] == "too_old").all()
    assert quarantine["detail"].str.contains("more than 30 days before the drop's day "
                                             "2026-03-15", regex=False).all()


def test_ancient_hit_is_quarantined_and_rebuilds_stay_bounded(small_store, client, capsys):
    raw, store = small_store
    dest = _copy_drop(raw, "2026-01-03", "2026-01-04")
    columns = (dest / "column_headers.tsv").read_text().rstrip("\n").split("\t")
    hits = {
        "ancient": int(dt.datetime(2024, 11, 20, 10, tzinfo=dt.UTC).timestamp()),
        "25 days late": int(dt.datetime(2025, 12, 10, 10, tzinfo=dt.UTC).timestamp()),
        "2 days late": int(dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC).timestamp()),
    }
    body = "".join(_line({**_hit(i, t), "exclude_hit": "0"}, columns) + "\n"
                   for i, t in enumerate(hits.values()))
    (dest / "hit_data-late.tsv.gz").write_bytes(gzip.compress(body.encode()))
    (dest / "manifest.json").unlink()  # optional; this drop has none

    # --max-late-days overrides the default 30: the hit 25 days late is too old as well
    code, report = _cli(capsys, client, "ingest", str(raw), "--store", str(store),
                        "--max-late-days", "20")

    assert code == 0
    assert report["quarantined_by_reason"]["too_old"] == 2
    mat = report["materialize"]
    assert mat["as_of_range"] == ["2026-01-01", "2026-01-04"]  # no as-of before the data
    # the late hit's day and the days after it, no more (the bound: max_late_days + 1)
    assert mat["as_of_written"]["customer_features"] == ["2026-01-02", "2026-01-03",
                                                         "2026-01-04"]
    assert mat["daily_dates"] == ["2026-01-02", "2026-01-03"]  # 01-04 has no hit of its own
    quarantine = pd.read_parquet(store / "_quarantine" / "weblog" / "drop=2026-01-04")
    old = quarantine[quarantine["reason"] == "too_old"]
    assert sorted(old["line_number"]) == [1, 2]
    assert old["detail"].str.contains("more than 20 days", regex=False).all()


def test_max_late_days_setting_is_validated(monkeypatch, capsys):
    from featurestore.settings import load_settings

    monkeypatch.setenv("FEATURESTORE_MAX_LATE_DAYS", "7")
    assert load_settings().max_late_days == 7
    monkeypatch.setenv("FEATURESTORE_MAX_LATE_DAYS", "-1")
    with pytest.raises(ConfigError, match="max_late_days"):
        load_settings()
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "raw", "--max-late-days", "soon"])
    assert exc.value.code == 2
    assert "whole number of days" in capsys.readouterr().err
