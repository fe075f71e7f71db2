"""Issue #14 item 2: one events file per event date per ingest run, exactly-once kept.

Every store here is compared with the same drops ingested with compaction off (the layout of
before: a part per raw file per date) and, for the events, with plain pandas over the raw
files."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore, Settings
from featurestore.events_compaction import COMPACTION, live_events
from featurestore.generate import generate_weblog
from featurestore.sources.weblog import WEBLOG_COLUMNS

EVENT_COLUMNS = [c for c in WEBLOG_COLUMNS if c != "exclude_hit"]
TABLES = ("events", "customer_features", "customer_product_features", "_quarantine/weblog")


@pytest.fixture(scope="module")
def raw_versions(tmp_path_factory):
    """Five daily drops of four files each with late hits, and a second generation of the same
    names (its first file is the "changed resend")."""
    base = tmp_path_factory.mktemp("compaction")
    first, other = base / "first", base / "other"
    for root, seed in ((first, 21), (other, 22)):
        generate_weblog(str(root), days=5, customers=150, products=20, rows_per_day=1200,
                        parts=4, seed=seed, late_fraction=0.15)
    return first, other


def _ingest(store: Path, raw: Path, client, accept_changed: bool = False, **settings):
    fs = FeatureStore(Settings(store=str(store), **settings), client=client)
    result = fs.ingest(str(raw), accept_changed=accept_changed)
    assert result.ok, result.report.problems()
    return result.report


def _dates(store: Path) -> list[str]:
    return sorted(p.name.split("=", 1)[1] for p in (store / "events").iterdir())


def _files(store: Path) -> dict[str, list[str]]:
    return {d: sorted(p.name for p in (store / "events" / f"event_date={d}").glob("*.parquet"))
            for d in _dates(store)}


def _state(store: Path) -> dict[str, bytes]:
    """Every file of events and of the compaction records, with its bytes."""
    out = {}
    for root in (store / "events", store / "_ledger" / "weblog" / COMPACTION):
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p.relative_to(store))] = p.read_bytes()
    return out


def _frame(store: Path, table: str) -> pd.DataFrame:
    df = pd.read_parquet(store / table)  # a plain reader: no double count once a run ended
    df = df.astype(str)
    return df.sort_values(sorted(df.columns)).reset_index(drop=True)


def _assert_same_tables(ours: Path, theirs: Path) -> None:
    for table in TABLES:
        assert (ours / table).exists() == (theirs / table).exists(), table
        if table.startswith("_") and not (ours / table).exists():
            continue  # no bad row generated
        a, b = _frame(ours, table), _frame(theirs, table)
        assert len(a) > 0, table
        pd.testing.assert_frame_equal(a[sorted(a.columns)], b[sorted(b.columns)], obj=table)


def _copy_drops(src: Path, dst: Path, days: list[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for day in days:
        shutil.copytree(src / day, dst / day)


def _raw_events(raw: Path) -> pd.DataFrame:
    """The hits of every raw file, read with plain pandas (no bad rows were generated)."""
    frames = []
    for day in sorted(p for p in raw.iterdir() if p.is_dir()):
        names = (day / "column_headers.tsv").read_text().rstrip("\n").split("\t")
        for f in sorted(day.glob("*.tsv.gz")):
            df = pd.read_csv(f, sep="\t", header=None, names=names, dtype=str, quoting=3,
                             keep_default_na=False, usecols=list(WEBLOG_COLUMNS))
            frames.append(df[df["exclude_hit"] == "0"][EVENT_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def _canon(df: pd.DataFrame) -> pd.DataFrame:
    df = df[EVENT_COLUMNS].astype(object).where(df[EVENT_COLUMNS].notna(), "").astype(str)
    return df.sort_values(EVENT_COLUMNS).reset_index(drop=True)


def _change_file(raw: Path, other: Path, day: str, name: str) -> None:
    """Deliver ``other``'s version of ``day/name`` under the same name, manifest updated."""
    data = (other / day / name).read_bytes()
    (raw / day / name).write_bytes(data)
    manifest = json.loads((raw / day / "manifest.json").read_text())
    theirs = {e["name"]: e for e in json.loads((other / day / "manifest.json").read_text())[
        "files"]}
    for entry in manifest["files"]:
        if entry["name"] == name:
            entry.update(theirs[name], md5=hashlib.md5(data).hexdigest())
    (raw / day / "manifest.json").write_text(json.dumps(manifest))
    assert gzip.decompress(data)


@pytest.mark.parametrize("copy_min_mb", [1.0, 0.0], ids=["decoded", "row-groups-copied"])
def test_one_file_per_date_same_tables_late_drop_and_changed_resend(raw_versions, tmp_path,
                                                                    client, copy_min_mb):
    """Both merge paths: these parts are small (decoded into one row group by default);
    ``events_copy_min_mb=0`` joins them as bytes, one row group per input."""
    first, other = raw_versions
    days = sorted(p.name for p in first.iterdir())
    raw = tmp_path / "raw"
    _copy_drops(first, raw, days[:-1])  # the last drop comes later (it has late hits)
    on, off = tmp_path / "on", tmp_path / "off"
    report = _ingest(on, raw, client, events_copy_min_mb=copy_min_mb)
    _ingest(off, raw, client, events_compaction=False)
    # one file per event date; every date of a multi-file drop was merged
    files = _files(on)
    assert files.keys() == set(_files(off)) and all(len(f) == 1 for f in files.values())
    assert sum(len(f) for f in _files(off).values()) > 2 * len(files)
    assert report.extra["compaction"]["outputs"] == len(files)
    assert report.extra["compaction"]["joined"] == (len(files) if copy_min_mb == 0 else 0)
    assert all(f[0].startswith("part-c") for f in files.values())
    assert max(p.stat().st_size for p in (on / "events").rglob("*.parquet")) < 128 * 2 ** 20
    _assert_same_tables(on, off)
    # every record names inputs whose row ranges tile its output
    store = FeatureStore(Settings(store=str(on))).offline_store
    for day in files:
        record = live_events(store, day).records[files[day][0]]
        ranges = [tuple(i["rows"]) for i in record["inputs"]]
        assert ranges[0][0] == 0 and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert ranges[-1][1] == record["rows"] == len(
            pd.read_parquet(on / "events" / f"event_date={day}"))
        meta = pq.ParquetFile(on / "events" / f"event_date={day}" / files[day][0]).metadata
        assert meta.num_row_groups == (len(ranges) if copy_min_mb == 0 else 1)
        if copy_min_mb == 0:  # each input's rows are one row group, in the record's order
            assert [meta.row_group(i).num_rows for i in range(len(ranges))] == [
                b - a for a, b in ranges]

    # a second run with nothing new changes nothing
    before = _state(on)
    again = _ingest(on, raw, client, events_copy_min_mb=copy_min_mb)
    assert again.files_ingested == 0 and "compaction" not in again.extra
    assert _state(on) == before

    # a late drop adds one file per date it touched
    _copy_drops(first, raw, days[-1:])
    late = _ingest(on, raw, client, events_copy_min_mb=copy_min_mb)
    _ingest(off, raw, client, events_compaction=False)
    touched = set(late.event_dates)
    assert len(touched) > 1 and days[-1] in touched
    after = _files(on)
    for day in after:
        assert len(after[day]) == len(files.get(day, [])) + (day in touched), day
    _assert_same_tables(on, off)

    # a changed resend of a compacted file replaces exactly its rows
    changed = (days[1], "hit_data-0000.tsv.gz")
    _change_file(raw, other, *changed)
    replaced = _ingest(on, raw, client, accept_changed=True, events_copy_min_mb=copy_min_mb)
    assert replaced.files_replaced == 1
    old_output = after[changed[0]][0]
    assert old_output.startswith("part-c") and replaced.extra["compaction"]["rewritten"] >= 1
    assert old_output not in _files(on)[changed[0]]
    fresh = tmp_path / "fresh"  # the final raw ingested once, no compaction, no replacement
    _ingest(fresh, raw, client, events_compaction=False)
    _assert_same_tables(on, fresh)
    # ... and, independently of the ingest code, the events are the raw hits
    pd.testing.assert_frame_equal(_canon(pd.read_parquet(on / "events")),
                                  _canon(_raw_events(raw)))
    # the rewritten outputs replaced the old ones (no superseded file or record left)
    for day, names in _files(on).items():
        view = live_events(store, day)
        assert view.clean and view.files == names
        recs = list((on / "_ledger" / "weblog" / COMPACTION / day).glob("*.json"))
        assert sorted(r.stem + ".parquet" for r in recs) == [n for n in names
                                                             if n.startswith("part-c")]


def test_split_above_target_size(raw_versions, tmp_path, client):
    first, _ = raw_versions
    store, off = tmp_path / "small", tmp_path / "off"
    target_mb = 0.03  # ~31 KB of parquet per output: the four parts of a date make several
    report = _ingest(store, first, client, events_target_mb=target_mb)
    _ingest(off, first, client, events_compaction=False)
    assert report.extra["compaction"]["outputs"] > len(_dates(store))
    files = _files(store)
    assert any(len(f) > 1 for f in files.values())
    fs = FeatureStore(Settings(store=str(store))).offline_store
    for day, names in files.items():
        view = live_events(fs, day)
        for name in names:
            if name in view.records:  # inputs were at most the target together
                assert len(view.records[name]["inputs"]) >= 2
                assert (store / "events" / f"event_date={day}" / name).stat().st_size <= (
                    target_mb * 2 ** 20)
    _assert_same_tables(store, off)
