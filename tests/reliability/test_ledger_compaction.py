"""The compacted ledger (issue #15, item 4): one file per complete drop instead of one record and
one content marker per raw file, so planning the next day reads O(days) objects, not O(files).

Through the real ``featurestore ingest`` command on generated drops: a complete drop leaves one
day file and no per-file objects; the delivery rules still hold on compacted drops; a crash
in the middle of a compaction, then a re-run, gives one clean run's tables; a store in the
per-file format (today's) opens, is compacted lazily and is not rebuilt from scratch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from featurestore import Store
from featurestore.cli import main
from featurestore.features.materialize import STATE_RECORD
from featurestore.generate import generate_weblog
from featurestore.ledger import DAYS
from featurestore.sources.weblog.ingest import LEDGER, ledger_entries
from tests.reference import store_tables

START = dt.date(2026, 1, 1)
KW = dict(customers=120, products=12, rows_per_day=400, parts=3, seed=11, columns=64,
          late_fraction=0.05, bad_rows=0.01)
FEATURE_TABLES = ("customer_features", "customer_product_features")


def _ingest(capsys, root: Path, store: Path, client, *extra: str) -> tuple[int, dict]:
    """``featurestore ingest ROOT --store STORE --json`` on the session cluster."""
    capsys.readouterr()
    code = main(["ingest", str(root), "--store", str(store), "--scheduler",
                 client.scheduler.address, "--json", "--no-progress", *extra])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, json.loads(out.out)


def _ledger_files(store: Path) -> list[str]:
    base = store / LEDGER
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def _per_file_objects(store: Path) -> list[str]:
    """Per-file records and content markers: what compaction folds away."""
    return [p for p in _ledger_files(store) if not p.startswith(DAYS)
            and not p.endswith("_status.json")
            and not p.startswith("_compaction/")]  # the events compaction's records


def _tables(store: Path) -> dict[str, pd.DataFrame]:
    """Events, quarantine and feature tables, sorted, for exact comparison between runs."""
    out = store_tables(Store(str(store)))
    for name in FEATURE_TABLES:
        df = pd.read_parquet(store / name)
        df["as_of"] = df["as_of"].astype(str)
        keys = [c for c in ("as_of", "customer_id", "product_id") if c in df.columns]
        out[name] = df.sort_values(keys).reset_index(drop=True)
    return out


def _assert_same_tables(ours: Path, clean: Path) -> None:
    theirs = _tables(clean)
    mine = _tables(ours)
    assert sorted(mine) == sorted(theirs)
    for name, df in theirs.items():
        pd.testing.assert_frame_equal(mine[name], df, obj=name)


@pytest.fixture(scope="module")
def drops(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ledger") / "raw"
    generate_weblog(str(root), days=3, start=START, **KW)
    return root


@pytest.fixture(scope="module")
def clean(drops, tmp_path_factory, client) -> Path:
    """One clean run of the three drops (compared against)."""
    store = tmp_path_factory.mktemp("clean") / "store"
    code = main(["ingest", str(drops), "--store", str(store), "--scheduler",
                 client.scheduler.address, "--json", "--no-progress"])
    assert code == 0
    return store


def test_complete_drop_is_one_day_file(drops, clean, tmp_path, capsys, client):
    """A complete drop's records and markers become one day file; nothing is lost: every file
    is still in the ledger with its record, and the next run skips them all."""
    files = _ledger_files(clean)
    assert [f for f in files if f.startswith(DAYS)] == [
        f"{DAYS}/{(START + dt.timedelta(i)).isoformat()}/000001.parquet" for i in range(3)]
    assert _per_file_objects(clean) == []
    entries = ledger_entries(Store(str(clean)))
    assert len(entries) == 9
    assert all(e["status"] == "ingested" and e["rows_ingested"] > 0 for e in entries.values())

    store = tmp_path / "store"
    shutil.copytree(clean, store)
    code, report = _ingest(capsys, drops, store, client)
    assert code == 0 and report["files_skipped"] == 9 and report["files_ingested"] == 0
    assert report["materialize"]["as_of_written"] == {}
    assert _ledger_files(store) == files  # nothing rewritten


def test_delivery_rules_hold_on_compacted_drops(drops, clean, tmp_path, capsys, client):
    """Changed file (refused, then --accept-changed), resend into a new drop, placeholder: the
    same outcomes as with per-file records, and the replacement is folded into the day file."""
    root, store = tmp_path / "raw", tmp_path / "store"
    shutil.copytree(drops, root)
    assert _ingest(capsys, root, store, client)[0] == 0  # (quarantine rows name their path)
    day0 = root / START.isoformat()
    victim = min(day0.glob("*.tsv.gz"))
    other = tmp_path / "other"
    generate_weblog(str(other), days=1, start=START, **{**KW, "seed": 99})
    new_bytes = min((other / START.isoformat()).glob("*.tsv.gz")).read_bytes()
    victim.write_bytes(new_bytes)
    (day0 / "manifest.json").unlink()  # no manifest: compared by size/stamp, then md5

    code, report = _ingest(capsys, root, store, client)
    assert code == 1 and [c["file"] for c in report["changed"]] == [str(victim)]
    assert report["changed"][0]["new_md5"] == hashlib.md5(new_bytes).hexdigest()

    code, report = _ingest(capsys, root, store, client, "--accept-changed")
    assert code == 0 and report["files_replaced"] == 1, report
    assert _per_file_objects(store) == []  # folded into a new version of the day file
    assert [f for f in _ledger_files(store) if f.startswith(f"{DAYS}/{START}")] == [
        f"{DAYS}/{START}/000002.parquet"]
    key = f"{START}/{victim.name}"
    assert ledger_entries(Store(str(store)), [key])[key]["md5"] == hashlib.md5(
        new_bytes).hexdigest()

    # a clean run of the corrected drops gives the same tables
    fresh = tmp_path / "fresh"
    assert _ingest(capsys, root, fresh, client)[0] == 0
    _assert_same_tables(store, fresh)

    # a resend of a compacted file into a new drop, and a placeholder there
    nxt = root / (START + dt.timedelta(3)).isoformat()
    nxt.mkdir()
    shutil.copy(day0 / "column_headers.tsv", nxt)
    (nxt / "hit_data-0007.tsv.gz").write_bytes(victim.read_bytes())
    (nxt / "hit_data-0008.tsv.gz").write_bytes(b"")
    code, report = _ingest(capsys, root, store, client)
    assert code == 1
    assert [d["same_as"] for d in report["duplicates"]] == [key]
    assert [p["file"] for p in report["placeholders"]] == [str(nxt / "hit_data-0008.tsv.gz")]
    assert report["incomplete_drops"] == [nxt.name]
    # the incomplete drop keeps its per-file objects until it is complete
    assert any(f.startswith(f"{nxt.name}/") for f in _per_file_objects(store))
    (nxt / "hit_data-0008.tsv.gz").unlink()
    code, report = _ingest(capsys, root, store, client)
    assert code == 0 and report["files_skipped"] == 10, report
    assert _per_file_objects(store) == []


def test_crash_mid_compaction_then_rerun_equals_clean_run(drops, clean, tmp_path, capsys,
                                                         client):
    """The two crash points of a compaction: (a) the day file is published but the per-file
    records and markers are still there; (b) a newer version is published but the older one
    is not removed yet. Readers agree either way, and a re-run leaves one clean run's state."""
    store = tmp_path / "store"
    shutil.copytree(clean, store)
    s = Store(str(store))
    entries = ledger_entries(s)
    day1 = (START + dt.timedelta(1)).isoformat()
    # (a): put back drop 1's per-file records and markers as they were before compaction
    for key, record in entries.items():
        if key.startswith(day1):
            drop, name = key.split("/")
            s.write_json(record, LEDGER, drop, f"{name}.json")
            s.write_bytes(b"", LEDGER, "_content", drop, name,
                          f"{record['md5']}-{record['size']}-")
    # (b): drop 2 also has a stale older version that lacks one file
    day2 = (START + dt.timedelta(2)).isoformat()
    latest = store / LEDGER / DAYS / day2 / "000001.parquet"
    stale = pd.read_parquet(latest).iloc[1:]
    stale.to_parquet(latest.with_name("000000.parquet"), index=False)
    assert ledger_entries(s) == entries

    code, report = _ingest(capsys, drops, store, client)
    assert code == 0 and report["files_skipped"] == 9 and report["files_ingested"] == 0
    assert report["materialize"]["as_of_written"] == {}
    assert _per_file_objects(store) == []
    assert [f for f in _ledger_files(store) if f.startswith(f"{DAYS}/{day2}")] == [
        f"{DAYS}/{day2}/000001.parquet"]  # the stale older version is gone
    assert ledger_entries(s) == entries
    _assert_same_tables(store, clean)


def _to_per_file_format(store: Path) -> None:
    """Rewrite a store's ledger and materialization record as the per-file format (the code
    before compaction) wrote them: one record and one marker per file, a ``files`` map of every
    key in ``_state/materialize.json``."""
    s = Store(str(store))
    entries = ledger_entries(s)
    shutil.rmtree(store / LEDGER / DAYS)
    for key, record in entries.items():
        drop, name = key.split("/")
        s.write_json(record, LEDGER, drop, f"{name}.json")
        s.write_bytes(b"", LEDGER, "_content", drop, name, f"{record['md5']}-{record['size']}-")
    state = s.read_json(STATE_RECORD)
    state.pop("days", None)
    state["files"] = {k: e["ingested_at"] for k, e in entries.items()}
    s.write_json(state, STATE_RECORD)


def test_store_in_per_file_format_opens_and_is_compacted_lazily(tmp_path, capsys, client):
    """A store written before compaction: the next ingest reads it, compacts its drops and
    materializes only what the new drop touched; the tables equal a clean run's."""
    root, store = tmp_path / "raw", tmp_path / "store"
    generate_weblog(str(root), days=3, start=START, **KW)
    assert _ingest(capsys, root, store, client)[0] == 0
    _to_per_file_format(store)
    assert _per_file_objects(store) and not (store / LEDGER / DAYS).exists()
    generate_weblog(str(root), days=1, start=START + dt.timedelta(3), **KW)

    code, report = _ingest(capsys, root, store, client)
    assert code == 0 and report["files_skipped"] == 9 and report["files_ingested"] == 3
    last = (START + dt.timedelta(3)).isoformat()
    assert max(report["materialize"]["daily_dates"]) == last
    assert len(report["materialize"]["daily_dates"]) <= 2  # the new day (+ its late hits)
    assert _per_file_objects(store) == []
    assert len(ledger_entries(Store(str(store)))) == 12
    state = Store(str(store)).read_json(STATE_RECORD)
    assert state["files"] == {} and sorted(state["days"]) == sorted(
        (START + dt.timedelta(i)).isoformat() for i in range(4))
    fresh = tmp_path / "fresh"
    assert _ingest(capsys, root, fresh, client)[0] == 0
    _assert_same_tables(store, fresh)
