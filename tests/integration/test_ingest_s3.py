"""The same ingest on s3:// (real moto server on 127.0.0.1) gives the same tables as on disk."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from featurestore import Store
from featurestore.events_compaction import live_events
from featurestore.generate import generate_weblog
from featurestore.sources.weblog.ingest import ingest_weblog, ledger_entries


def _options(endpoint: str) -> dict:
    # Explicit options: the LocalCluster workers may predate the moto env variables.
    return {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def test_ingest_from_and_to_s3_equals_local(moto_server, s3_bucket, tmp_path, client):
    options = _options(moto_server)
    kwargs = dict(days=3, customers=200, products=20, rows_per_day=800, parts=2, seed=3,
                  bad_rows=0.01, late_fraction=0.05)
    generate_weblog(f"s3://{s3_bucket}/raw", storage_options=options, **kwargs)
    generate_weblog(str(tmp_path / "raw"), **kwargs)

    s3_store = Store(f"s3://{s3_bucket}/store", options)
    report = ingest_weblog(f"s3://{s3_bucket}/raw", s3_store, client=client)
    local = ingest_weblog(str(tmp_path / "raw"), Store(str(tmp_path / "store")), client=client)
    assert report.ok and report.files_ingested == 6
    for r in (report, local):  # durations differ; what was merged must not
        r.extra["compaction"].pop("seconds")
    assert {k: v for k, v in report.to_dict().items() if k not in ("seconds", "rejected")} == {
        k: v for k, v in local.to_dict().items() if k not in ("seconds", "rejected")}

    ours = pd.read_parquet(s3_store.uri("events"), storage_options=options)
    theirs = pd.read_parquet(tmp_path / "store" / "events")
    cols = [c for c in theirs.columns if c != "event_date"]
    key = lambda df: df[cols].sort_values(cols).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(key(ours), key(theirs))
    # complete drops are compacted into one ledger day file each (per-file records removed)
    assert s3_store.exists("_ledger/weblog/_days/2026-01-01/000001.parquet")
    assert not s3_store.exists("_ledger/weblog/2026-01-01/hit_data-0000.tsv.gz.json")
    assert ledger_entries(s3_store)["2026-01-01/hit_data-0000.tsv.gz"]["status"] == "ingested"
    again = ingest_weblog(f"s3://{s3_bucket}/raw", s3_store, client=client)
    assert again.files_skipped == 6 and again.files_ingested == 0
    assert not s3_store.exists("_lock.json")

    # the compaction path that joins parts as bytes (row groups copied) works on S3 too
    joined = Store(f"s3://{s3_bucket}/store-joined", options)
    ingest_weblog(f"s3://{s3_bucket}/raw", joined, client=client, copy_min_mb=0)
    pd.testing.assert_frame_equal(
        key(pd.read_parquet(joined.uri("events"), storage_options=options)), key(theirs))
    merged = [n for n in joined.find("events") if n.rsplit("/", 1)[-1].startswith("part-c")]
    assert merged
    folder, name = merged[0].split("/")
    inputs = live_events(joined, folder.split("=", 1)[1]).records[name]["inputs"]
    with joined.fs.open(joined.path("events", merged[0]), "rb") as f:
        meta = pq.ParquetFile(f).metadata  # one row group per input part, in record order
    assert len(inputs) > 1 and [meta.row_group(i).num_rows for i in range(
        meta.num_row_groups)] == [i["rows"][1] - i["rows"][0] for i in inputs]


def test_create_new_on_s3_claims_once(moto_server, s3_bucket):
    """The create-if-absent the model registry claims version numbers with, on real S3 calls."""
    store = Store(f"s3://{s3_bucket}/store", _options(moto_server))
    assert store.create_new(b"first", "_models", "m", "v0001", ".claim")
    assert not store.create_new(b"second", "_models", "m", "v0001", ".claim")
    assert store.fs.cat_file(store.path("_models", "m", "v0001", ".claim")) == b"first"
