"""Ingestion engine: counts against an independent reader, exactly-once, bad rows and files."""

from __future__ import annotations

import gzip
import json
import shutil

import pandas as pd
import pytest

from featurestore import Store, StoreLockedError
from featurestore.sources.weblog.ingest import ingest_weblog, ledger_entries
from tests.conftest import SAMPLE_DROPS
from tests.reference import kept_hits, read_drops, store_tables


def test_sample_drops_counts_match_expected(tmp_path, client):
    expected = json.loads((SAMPLE_DROPS.parent / "sample-drops.expected.json").read_text())
    report = ingest_weblog(str(SAMPLE_DROPS), Store(str(tmp_path / "s")), client=client)
    assert report.ok and report.files_ingested == 6
    assert report.lines == expected["lines"]
    # the file predates the too_old reason: a reason it does not name counts 0
    assert report.quarantined_by_reason == {**dict.fromkeys(report.quarantined_by_reason, 0),
                                            **expected["bad"]}
    assert report.rows_quarantined == expected["quarantined"]
    assert report.rows_excluded == expected["excluded"]
    assert report.rows_anonymous == expected["anonymous"]
    assert report.rows_late == expected["late"]
    events = pd.read_parquet(tmp_path / "s" / "events")
    assert len(events) == expected["lines"] - expected["quarantined"] - expected["excluded"]


def test_ingest_matches_independent_reader(drops, tmp_path, client):
    root, generated = drops
    store = Store(str(tmp_path / "store"))
    report = ingest_weblog(str(root), store, client=client)
    good, bad = read_drops(root)
    kept = kept_hits(good)

    assert report.ok
    assert report.files_ingested == generated.files
    assert report.lines == generated.lines == len(good) + len(bad)
    assert report.quarantined_by_reason == bad["reason"].value_counts().reindex(
        report.quarantined_by_reason, fill_value=0).to_dict() == generated.bad
    assert report.rows_excluded == int((good["exclude_hit"] != "0").sum()) > 0
    assert report.rows_late == int(good["late"].sum()) > 0

    events = pd.read_parquet(store.uri("events"))
    events["event_date"] = events["event_date"].astype(str)
    ours = events.groupby(["customer_id", "event_date"]).size()
    theirs = kept[kept["customer_id"] != ""].groupby(["customer_id", "event_date"]).size()
    # the store's one string type for ids (featurestore.schema): pandas ``string``, pd.NA
    assert str(events["customer_id"].dtype) == "string"
    pd.testing.assert_series_equal(ours.sort_index(), theirs.sort_index(), check_names=False,
                                   check_index_type=False)
    assert events["customer_id"].isna().sum() == (kept["customer_id"] == "").sum() > 0
    # Late hits sit under their own event date, whatever drop brought them.
    assert (pd.to_datetime(events["hit_time_gmt"], unit="s").dt.strftime("%Y-%m-%d")
            == events["event_date"]).all()
    # Every kept row lands with every value intact ("" and \\N are null).
    assert str(events["hit_time_gmt"].dtype) == "int64"
    cols = ["hit_time_gmt", "customer_id", "page_url", "post_page_event", "post_event_list",
            "post_product_list", "event_date"]
    ref = kept[cols].replace({"": None, "\\N": None})
    ours_rows = events[cols].astype(object).where(events[cols].notna(), None)
    key = lambda df: df.astype(str).sort_values(cols).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(key(ours_rows), key(ref))


def test_quarantine_rows_keep_file_line_reason_and_raw_bytes(drops, tmp_path, client):
    root, _ = drops
    store = Store(str(tmp_path / "store"))
    ingest_weblog(str(root), store, client=client)
    q = pd.read_parquet(store.uri("_quarantine/weblog"))
    _, bad = read_drops(root)
    assert sorted(zip(q["source_file"].str.rsplit("/", n=1).str[-1], q["line_number"],
                      q["reason"])) == sorted(zip(bad["file"], bad["line_number"],
                                                  bad["reason"]))
    messages = {
        "field_count": "tab-separated fields, found",
        "bad_utf8": "not valid UTF-8",
        "bad_time": "hit_time_gmt is not an integer Unix time",
        "future_time": "is after the end of the drop's day",
        "bad_product": "post_product_list has an entry that is not",
        "too_old": "days before the drop's day 20",
    }
    for reason, text in messages.items():
        rows = q[q["reason"] == reason]
        assert len(rows) > 0, reason
        assert rows["detail"].str.contains(text, regex=False).all(), reason
    # The raw line is the exact bytes of that line of the file.
    row = q.iloc[0]
    with open(row["source_file"], "rb") as f:
        lines = gzip.decompress(f.read()).split(b"\n")
    assert lines[row["line_number"] - 1] == row["raw_line"]


def test_rerun_is_noop_and_new_drop_only_adds_its_files(drops_copy, tmp_path, client):
    root, _ = drops_copy
    last = sorted(p for p in root.iterdir())[-1]
    held_back = tmp_path / "held"
    shutil.move(str(last), held_back)
    store = Store(str(tmp_path / "store"))
    first = ingest_weblog(str(root), store, client=client)
    before = store_tables(store)
    again = ingest_weblog(str(root), store, client=client)
    assert again.files_ingested == 0 and again.files_skipped == first.files_ingested
    for name, df in store_tables(store).items():
        pd.testing.assert_frame_equal(df, before[name])

    shutil.move(str(held_back), str(last))
    third = ingest_weblog(str(root), store, client=client)
    assert third.files_ingested == 2 and third.files_skipped == first.files_ingested
    clean = Store(str(tmp_path / "clean"))
    ingest_weblog(str(root), clean, client=client)
    for name, df in store_tables(store).items():
        pd.testing.assert_frame_equal(df, store_tables(clean)[name])


def _reject_case(root, case: str) -> tuple[str, str]:
    """Damage one file of the first drop as ``case``; return (file name, expected text)."""
    day = sorted(p for p in root.iterdir())[0]
    target = day / "hit_data-0000.tsv.gz"
    data = target.read_bytes()
    manifest = json.loads((day / "manifest.json").read_text())
    if case in ("corrupt", "truncated"):
        (day / "manifest.json").unlink()  # so the gzip check itself is what catches it
        target.write_bytes(b"this is not gzip" + data[16:] if case == "corrupt"
                           else data[: len(data) // 2])
        return target.name, "not a valid gzip file"
    if case == "bad_deflate":  # the gzip header is fine; a block of the stream is damaged
        (day / "manifest.json").unlink()
        target.write_bytes(data[:40] + bytes(b ^ 0x55 for b in data[40:80]) + data[80:])
        return target.name, "not a valid gzip file"
    if case == "md5":
        target.write_bytes(gzip.compress(gzip.decompress(data)))  # same lines, other bytes
        return target.name, "does not match manifest.json"
    if case == "records":
        manifest["files"][0]["records"] += 1
        manifest["files"][0].pop("md5")
        (day / "manifest.json").write_text(json.dumps(manifest))
        return target.name, "lines but manifest.json says"
    if case == "missing_column":
        headers = (day / "column_headers.tsv").read_text().replace("customer_id", "cust")
        (day / "column_headers.tsv").write_text(headers)
        return target.name, "lacks required column(s) customer_id"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["corrupt", "truncated", "bad_deflate", "md5", "records",
                                  "missing_column"])
def test_bad_file_is_rejected_whole_and_others_land(case, drops_copy, tmp_path, client):
    root, _ = drops_copy
    name, text = _reject_case(root, case)
    store = Store(str(tmp_path / "store"))
    report = ingest_weblog(str(root), store, client=client)
    assert not report.ok
    assert any(r["file"].endswith(name) and text in r["reason"] for r in report.rejected), (
        report.rejected)
    assert report.files_ingested > 0
    events = pd.read_parquet(store.uri("events"))
    assert len(events) == report.rows_ingested
    day = sorted(p for p in root.iterdir())[0].name
    assert f"{day}/{name}" not in ledger_entries(store)
    produced = [p.name for p in (tmp_path / "store" / "events").rglob("*.parquet")]
    assert not any(f"{day}-hit_data-0000" in p for p in produced)
    # A rejected file is retried on the next run and rejected again (still not ingested).
    assert not ingest_weblog(str(root), store, client=client).ok


def test_cli_json_report_and_exit_code(drops_copy, tmp_path, client):
    # in process on the session cluster: the report and the exit code main() gives the shell
    from tests._generated_store import cli_in_process

    root, generated = drops_copy
    cmd = ["ingest", str(root), "--store", str(tmp_path / "store"), "--scheduler",
           client.scheduler.address, "--json"]
    out = cli_in_process(*cmd, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("files_ingested", "files_skipped", "files_rejected", "rows_ingested",
                "rows_quarantined", "rows_excluded", "seconds"):
        assert key in report
    assert report["files_ingested"] == generated.files
    _reject_case(root, "corrupt")
    shutil.rmtree(tmp_path / "store")
    out = cli_in_process(*cmd[:-1], check=False)
    assert out.returncode == 1
    assert "not a valid gzip file" in out.stderr and "hit_data-0000.tsv.gz" in out.stderr


def _arrow_pool() -> str:
    import pyarrow as pa

    return pa.default_memory_pool().backend_name


def _environ(name: str) -> str | None:
    import os

    return os.environ.get(name)


def test_workers_keep_large_buffers_in_the_heap(client):
    """Our clusters raise glibc's mmap and trim thresholds (every large buffer was a fresh
    mmap; see featurestore.cluster.WORKER_CONFIG), and the image's Dask config does the same."""
    import os
    from pathlib import Path

    import yaml

    from featurestore.cluster import WORKER_CONFIG

    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        # read in the worker (``client.run(os.environ.get, ...)`` ships this process's mapping
        # with the bound method and reads that)
        assert set(client.run(_environ, name).values()) == {str(1 << 30)}
    # Arrow allocates from that heap too (its mimalloc pool gave memory back between the
    # ingest tasks and the materialization, which then ran ~0.5 s slower)
    assert set(client.run(_arrow_pool).values()) == {"system"}
    config = Path(__file__).resolve().parents[2] / "deploy" / "dask-config.yaml"
    image = yaml.safe_load(config.read_text())
    environ = image["distributed"]["nanny"]["pre-spawn-environ"]
    assert {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in environ.items()} == \
        WORKER_CONFIG


def test_store_lock_refuses_a_second_writer(tmp_path, drops):
    """Another writer (here another thread: the lock is re-entrant only within one thread)."""
    import threading

    store = Store(str(tmp_path / "store"))
    taken, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        with store.lock("other writer"):
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        assert taken.wait(30)
        with pytest.raises(StoreLockedError, match=r"is locked by .*\(other writer"):
            ingest_weblog(str(drops[0]), store)
    finally:
        release.set()
        thread.join()
    assert not (tmp_path / "store" / "_lock.json").exists()


def test_store_lock_nests_within_one_run(tmp_path, drops, client):
    """``featurestore ingest`` holds the lock across ingest and materialize: the inner takes
    nest, the outer holder stays recorded, and the lock goes only when the outer block ends."""
    from featurestore.materialization import materialize

    store = Store(str(tmp_path / "store"))
    with store.lock("ingest + materialize"):
        report = ingest_weblog(str(drops[0]), store, client=client)
        assert json.loads((tmp_path / "store" / "_lock.json").read_text())["purpose"] == \
            "ingest + materialize"
        materialize(store, client=client)
        assert (tmp_path / "store" / "_lock.json").exists()
    assert report.files_ingested > 0
    assert not (tmp_path / "store" / "_lock.json").exists()
