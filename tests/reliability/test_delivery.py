"""Delivery rules (issue #13, items 3 and 4): corrected files, placeholders, missing files,
resends and bad folder names, each through the real ``featurestore ingest`` command on
hand-built drops. Nothing is skipped as if it were the same file, nothing is silent.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pandas as pd

from featurestore import Store
from featurestore.cli import main
from featurestore.sources.weblog import WEBLOG_COLUMNS
from featurestore.sources.weblog.ingest import LEDGER, ledger_entries

HEADERS = ("filler_a", *WEBLOG_COLUMNS, "filler_b")
DAY1, DAY2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


# -- hand-built drops ---------------------------------------------------------------------------
def _hit(day: dt.date, second: int, customer: str, product: str = "P1",
         events: str = "2") -> str:
    t = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) + second
    fields = {"hit_time_gmt": str(t), "customer_id": customer, "page_url": "https://s/x",
              "post_page_event": "0", "post_event_list": events,
              "post_product_list": f"cat;{product};1;9.50", "exclude_hit": "0"}
    return "\t".join(fields.get(c, "f") for c in HEADERS)


def _gzip(lines: list[str], size: int | None = None) -> bytes:
    """Gzip ``lines``; with ``size``, pad the gzip header's file-name field to exactly that many
    bytes (a corrected file of the same size as the one it corrects)."""
    data = ("\n".join(lines) + "\n").encode()
    plain = gzip.compress(data, mtime=0)
    if size is None:
        return plain
    pad = size - len(plain) - 1  # FNAME adds the name plus a NUL
    assert pad > 0, (size, len(plain))
    buf = io.BytesIO()
    with gzip.GzipFile(filename="x" * pad, mode="wb", fileobj=buf, mtime=0) as f:
        f.write(data)
    out = buf.getvalue()
    assert len(out) == size
    return out


def _write_drop(root: Path, day: dt.date, files: dict[str, bytes],
                manifest: dict[str, bytes] | None = None) -> Path:
    """A drop folder holding ``files``; ``manifest`` (name -> content) writes manifest.json
    naming those files, whether or not they are in ``files``."""
    folder = root / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "column_headers.tsv").write_text("\t".join(HEADERS) + "\n")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    if manifest is not None:
        _write_manifest(folder, manifest)
    return folder


def _write_manifest(folder: Path, files: dict[str, bytes]) -> None:
    entries = [{"name": n, "md5": hashlib.md5(d).hexdigest(),
                "records": gzip.decompress(d).count(b"\n")} for n, d in sorted(files.items())]
    (folder / "manifest.json").write_text(json.dumps({"date": folder.name, "files": entries}))


def _first_version() -> bytes:
    # two hits of the drop's day and one late hit of the day before (its own partition)
    return _gzip([_hit(DAY1, 10, "C001"), _hit(DAY1, 20, "C002", "P2"),
                  _hit(DAY1 - dt.timedelta(1), 30, "C003", "P3")], size=160)


def _corrected_version(size: int) -> bytes:
    # the corrected file: other customers and products, no late hit, same size on disk
    return _gzip([_hit(DAY1, 10, "C004", "P4"), _hit(DAY1, 25, "C002", "P1", "1"),
                  _hit(DAY1, 40, "C005", "P2")], size)


def _other_files() -> dict[str, dict[str, bytes]]:
    return {"day1": {"hit_data-0001.tsv.gz": _gzip([_hit(DAY1, 50, "C001", "P1", "12")])},
            "day2": {"hit_data-0000.tsv.gz": _gzip([_hit(DAY2, 5, "C002"),
                                                    _hit(DAY2, 6, "C001", "P3", "1")])}}


# -- running the command ------------------------------------------------------------------------
def _ingest(capsys, root: Path, store: Path, client, *extra: str) -> tuple[int, dict, str]:
    """``featurestore ingest ROOT --store STORE --json`` in this process, on the session cluster.
    Returns the exit code, the JSON report and stderr."""
    capsys.readouterr()
    code = main(["ingest", str(root), "--store", str(store), "--scheduler",
                 client.scheduler.address, "--json", "--no-progress", *extra])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def _events(store: Path) -> pd.DataFrame:
    df = pd.read_parquet(store / "events")
    df["event_date"] = df["event_date"].astype(str)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _table(store: Path, name: str) -> pd.DataFrame:
    df = pd.read_parquet(store / name)
    df["as_of"] = df["as_of"].astype(str)
    keys = [c for c in ("as_of", "customer_id", "product_id") if c in df.columns]
    return df.sort_values(keys).reset_index(drop=True)


def _status(store: Path, day: dt.date) -> dict:
    return json.loads((store / LEDGER / day.isoformat() / "_status.json").read_text())


FEATURE_TABLES = ("customer_features", "customer_product_features")


# -- the tests ----------------------------------------------------------------------------------
def test_corrected_file_same_size_with_manifest_is_refused_then_replaced(tmp_path, capsys,
                                                                         client):
    root, store = tmp_path / "raw", tmp_path / "store"
    first = _first_version()
    others = _other_files()
    day1 = _write_drop(root, DAY1, {"hit_data-0000.tsv.gz": first, **others["day1"]},
                       manifest={"hit_data-0000.tsv.gz": first, **others["day1"]})
    _write_drop(root, DAY2, others["day2"], manifest=others["day2"])
    code, report, _ = _ingest(capsys, root, store, client)
    assert code == 0 and report["files_ingested"] == 3
    assert (store / "events" / "event_date=2026-02-28").is_dir()
    before = _events(store)

    corrected = _corrected_version(len(first))
    (day1 / "hit_data-0000.tsv.gz").write_bytes(corrected)
    _write_manifest(day1, {"hit_data-0000.tsv.gz": corrected, **others["day1"]})
    for _ in range(2):  # refused on every run until an operator acts
        code, report, err = _ingest(capsys, root, store, client)
        assert code == 1
        assert report["ok"] is False and report["files_ingested"] == 0
        [changed] = report["changed"]
        assert changed["file"].endswith("2026-03-01/hit_data-0000.tsv.gz")
        assert changed["old_md5"] == hashlib.md5(first).hexdigest()
        assert changed["new_md5"] == hashlib.md5(corrected).hexdigest()
        assert "--accept-changed" in changed["action"]
        assert "hit_data-0000.tsv.gz" in err and "--accept-changed" in err
        pd.testing.assert_frame_equal(_events(store), before)

    code, report, _ = _ingest(capsys, root, store, client, "--accept-changed")
    assert code == 0, report
    assert report["files_replaced"] == 1 and report["changed"] == []
    [replaced] = report["replaced"]
    assert replaced["old_md5"] == hashlib.md5(first).hexdigest()
    # the late partition only the old version wrote is gone; tables equal a clean run's
    assert not list((store / "events").glob("event_date=2026-02-28/*.parquet"))
    clean = tmp_path / "clean"
    code, _, _ = _ingest(capsys, root, clean, client)
    assert code == 0
    pd.testing.assert_frame_equal(_events(store), _events(clean))
    for name in FEATURE_TABLES:
        ours, theirs = _table(store, name), _table(clean, name)
        pd.testing.assert_frame_equal(ours[ours["as_of"] >= "2026-03-01"].reset_index(drop=True),
                                      theirs)
        assert ours[ours["as_of"] < "2026-03-01"].empty  # the old late hit is gone everywhere
    assert "C004" in set(_table(store, "customer_features")["customer_id"])

    code, report, _ = _ingest(capsys, root, store, client)  # now the same file: skipped
    assert code == 0 and report["files_skipped"] == 3 and report["changed"] == []


def test_corrected_file_without_manifest_is_refused_and_touch_is_not(tmp_path, capsys,
                                                                     client):
    root, store = tmp_path / "raw", tmp_path / "store"
    first = _first_version()
    day1 = _write_drop(root, DAY1, {"hit_data-0000.tsv.gz": first})
    target = day1 / "hit_data-0000.tsv.gz"
    assert _ingest(capsys, root, store, client)[0] == 0

    # same bytes, new modification time (a re-sync): recognised by md5, skipped
    os.utime(target, (1_800_000_000, 1_800_000_000))
    code, report, _ = _ingest(capsys, root, store, client)
    assert code == 0 and report["files_skipped"] == 1 and report["changed"] == []

    target.write_bytes(_corrected_version(len(first)))
    code, report, err = _ingest(capsys, root, store, client)
    assert code == 1
    assert [c["new_md5"] for c in report["changed"]] == [
        hashlib.md5(target.read_bytes()).hexdigest()]
    assert "changed since it was ingested" in err
    assert set(_events(store)["customer_id"]) == {"C001", "C002", "C003"}


def test_placeholder_then_real_file(tmp_path, capsys, client):
    root, store = tmp_path / "raw", tmp_path / "store"
    others = _other_files()
    day1 = _write_drop(root, DAY1, {"hit_data-0000.tsv.gz": b"", **others["day1"]})
    code, report, err = _ingest(capsys, root, store, client)
    assert code == 1
    assert [p["file"].rsplit("/", 1)[-1] for p in report["placeholders"]] == [
        "hit_data-0000.tsv.gz"]
    assert report["incomplete_drops"] == ["2026-03-01"]
    assert "placeholder" in err
    assert report["files_ingested"] == 1 and len(_events(store)) == 1
    assert "2026-03-01/hit_data-0000.tsv.gz" not in ledger_entries(Store(str(store)))
    status = _status(store, DAY1)
    assert status["complete"] is False and status["placeholders"] == ["hit_data-0000.tsv.gz"]

    # a record of the zero-byte file as older code wrote it is no obstacle either
    (store / LEDGER / "2026-03-01" / "hit_data-0000.tsv.gz.json").write_text(json.dumps(
        {"status": "ingested", "size": 0, "md5": hashlib.md5(b"").hexdigest(), "lines": 0,
         "event_dates": [], "ingested_at": "2026-03-01T00:00:00+00:00"}))
    first = _first_version()
    (day1 / "hit_data-0000.tsv.gz").write_bytes(first)
    code, report, _ = _ingest(capsys, root, store, client)
    assert code == 0, report
    assert report["files_ingested"] == 1 and report["placeholders"] == []
    assert len(_events(store)) == 4
    assert _status(store, DAY1)["complete"] is True
    assert "C003" in set(_table(store, "customer_features")["customer_id"])


def test_manifest_names_a_missing_file_then_it_arrives(tmp_path, capsys, client):
    root, store = tmp_path / "raw", tmp_path / "store"
    first = _first_version()
    others = _other_files()
    listed = {"hit_data-0000.tsv.gz": first, **others["day1"]}
    day1 = _write_drop(root, DAY1, others["day1"], manifest=listed)
    for _ in range(2):  # exit 1 on every run until it arrives
        code, report, err = _ingest(capsys, root, store, client)
        assert code == 1
        [missing] = report["missing"]
        assert missing["file"].endswith("2026-03-01/hit_data-0000.tsv.gz")
        assert report["incomplete_drops"] == ["2026-03-01"]
        assert "missing" in err and "hit_data-0000.tsv.gz" in err
        assert _status(store, DAY1)["missing"] == ["hit_data-0000.tsv.gz"]
    assert len(_events(store)) == 1

    (day1 / "hit_data-0000.tsv.gz").write_bytes(first)
    code, report, _ = _ingest(capsys, root, store, client)
    assert code == 0 and report["missing"] == [] and report["files_ingested"] == 1
    assert len(_events(store)) == 4
    assert _status(store, DAY1) | {"checked_at": None} == {
        "drop": "2026-03-01", "complete": True, "missing": [], "placeholders": [],
        "changed": [], "rejected": [], "checked_at": None}


def test_resend_under_a_new_name_is_not_ingested_twice(tmp_path, capsys, client):
    root, store = tmp_path / "raw", tmp_path / "store"
    first = _first_version()
    others = _other_files()
    _write_drop(root, DAY1, {"hit_data-0000.tsv.gz": first})
    assert _ingest(capsys, root, store, client)[0] == 0
    before = _events(store)

    # resent in the next drop under another name: no manifest (md5 computed) ...
    day2 = _write_drop(root, DAY2, {**others["day2"], "hit_data-0001.tsv.gz": first})
    code, report, _ = _ingest(capsys, root, store, client)
    assert code == 0, report
    [dup] = report["duplicates"]
    assert dup["file"].endswith("2026-03-02/hit_data-0001.tsv.gz")
    assert dup["same_as"] == "2026-03-01/hit_data-0000.tsv.gz"
    assert report["files_ingested"] == 1
    assert len(_events(store)) == len(before) + 2

    # ... and with a manifest (md5 known without a read), in a third drop
    day3 = _write_drop(root, DAY2 + dt.timedelta(1), {"hit_data-0009.tsv.gz": first},
                       manifest={"hit_data-0009.tsv.gz": first})
    code, report, _ = _ingest(capsys, root, store, client)
    assert code == 0 and len(report["duplicates"]) == 1, report
    assert len(_events(store)) == len(before) + 2
    code, report, _ = _ingest(capsys, root, store, client)  # later runs just skip them
    assert code == 0 and report["duplicates"] == [] and report["files_skipped"] == 4
    assert day2.is_dir() and day3.is_dir()


def test_bad_folders_are_reported_and_good_drops_land(tmp_path, client, capsys):
    root, store = tmp_path / "raw", tmp_path / "store"
    others = _other_files()
    _write_drop(root, DAY1, {"hit_data-0000.tsv.gz": _first_version(), **others["day1"]})
    for bad in ("2026-13-45", "2026-1-1"):
        shutil.copytree(root / DAY1.isoformat(), root / bad)
    (root / "notes").mkdir()  # not a drop: ignored as before
    (root / "notes" / "readme.txt").write_text("hello")
    code, report, err = _ingest(capsys, root, store, client)  # in process: what it reports
    assert code == 1, err
    assert "Traceback" not in err
    folders = {b["folder"]: b for b in report["bad_folders"]}
    assert set(folders) == {"2026-13-45", "2026-1-1"}
    assert "not a valid date" in folders["2026-13-45"]["reason"]
    assert folders["2026-1-1"]["files"] == 2
    assert report["files_rejected"] == 4 and report["files_ingested"] == 2
    assert "2026-13-45" in err and "2026-1-1" in err
    assert len(_events(store)) == 4


def test_corrected_retail_file_is_refused_then_replaced(tmp_path, client, capsys):
    """The retail source keys files by name and content: a corrected CSV under the same name is
    refused (exit 1, nothing changes), then --accept-changed replaces its rows, and the tables
    equal a clean ingest of the corrected file."""
    import gzip as _gzip

    from featurestore.cli import main as cli
    from tests.conftest import ONLINE_RETAIL

    with _gzip.open(ONLINE_RETAIL, "rt") as f:
        lines = [next(f) for _ in range(2500)]
    original = tmp_path / "retail.csv"
    original.write_text("".join(lines))
    fields = lines[1].split(",")
    fields[3] = str(int(fields[3]) + 100)  # a corrected Quantity on the first row
    corrected_text = "".join([lines[0], ",".join(fields)] + lines[2:])
    sched = ["--scheduler", client.scheduler.address]
    store = tmp_path / "store"
    args = ["ingest", str(original), "--source", "retail", "--store", str(store), *sched]

    assert cli(args) == 0
    before = pd.read_parquet(store / "transactions")
    original.write_text(corrected_text)
    capsys.readouterr()
    assert cli(args) == 1
    assert "--accept-changed" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_parquet(store / "transactions"), before)

    assert cli([*args, "--accept-changed"]) == 0
    clean = tmp_path / "clean"
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "retail.csv").write_text(corrected_text)
    assert cli(["ingest", str(tmp_path / "c" / "retail.csv"), "--source", "retail", "--store",
                str(clean), *sched]) == 0
    for table in ("transactions", "customer_retail_features"):
        got = pd.read_parquet(store / table)
        want = pd.read_parquet(clean / table)
        key = sorted(got.columns)
        pd.testing.assert_frame_equal(
            got[key].sort_values(key, ignore_index=True).astype(str),
            want[key].sort_values(key, ignore_index=True).astype(str))
    assert len(pd.read_parquet(store / "transactions")) == len(before)  # replaced, not added
