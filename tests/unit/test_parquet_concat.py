"""Joining parquet files as bytes (events compaction's fast path, issue #18): the joined file
reads back as the concatenation in every reader, and anything it cannot join safely is
refused rather than written wrong."""

from __future__ import annotations

import io
import warnings

import dask.dataframe as dd
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.events_compaction import _merge_task, plan_merges
from featurestore.parquet_concat import concat_parquet, footer
from featurestore.schema import conform, footer_metadata, to_pandas
from featurestore.storage import Store


def _events(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = pd.array([f"C{i:06d}" if i % 7 else None for i in rng.integers(0, 5000, n)],
                   dtype="string")
    return conform(pa.table({
        "hit_time_gmt": pa.array(1767225600 + rng.integers(0, 86400, n), pa.int64()),
        "customer_id": pa.array(ids, pa.large_string()),
        "page_url": pa.array([f"https://shop.example/p/{i}" for i in rng.integers(0, 50, n)],
                             pa.large_string()),
    }))


def _fastparquet_bytes(table: pa.Table, tmp_path, name: str) -> bytes:
    """A part as ingest wrote it before issue #27: fastparquet, the store's footer keys, time
    statistics (stores made then still hold them)."""
    store = Store(str(tmp_path))
    store.write_parquet(to_pandas(table), "p", name, stats=["hit_time_gmt"],
                        metadata=footer_metadata(table.schema))
    return (tmp_path / "p" / name).read_bytes()


def _ingest_bytes(table: pa.Table, tmp_path, name: str) -> bytes:
    """A part as ingest writes it now (issue #27): pyarrow through ``write_events_file``."""
    from featurestore.events_compaction import write_events_file

    write_events_file(Store(str(tmp_path)), table, "q", name)
    return (tmp_path / "q" / name).read_bytes()


@pytest.mark.parametrize("write", [_ingest_bytes, _fastparquet_bytes],
                         ids=["ingest", "fastparquet-parts-of-older-stores"])
def test_joined_file_reads_as_the_concatenation_in_every_reader(tmp_path, write):
    tables = [_events(n, seed) for seed, n in enumerate((1000, 1, 2500, 700))]
    parts = [write(t, tmp_path, f"{i}.parquet") for i, t in enumerate(tables)]
    joined, counts = concat_parquet(parts)
    assert counts == [t.num_rows for t in tables]
    assert concat_parquet(parts)[0] == joined  # deterministic: a resumed run writes the same
    out = tmp_path / "joined.parquet"
    out.write_bytes(joined)
    expected = pa.concat_tables(tables)
    back = pq.read_table(out)
    assert back.schema == expected.schema and back.equals(expected)
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == counts
    # statistics travel with their row group (the time column's min/max per input)
    assert [meta.row_group(i).column(0).statistics.min for i in range(4)] == [
        pa.compute.min(t["hit_time_gmt"]).as_py() for t in tables]
    want = to_pandas(expected)
    pd.testing.assert_frame_equal(pd.read_parquet(out), want)
    with warnings.catch_warnings():  # dask's reader calls a pandas API deprecated in 3.1
        warnings.simplefilter("ignore", DeprecationWarning)
        from_dask = dd.read_parquet(str(out)).compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(from_dask, want)
    got = duckdb.sql(f"select count(*), count(customer_id), max(page_url) from '{out}'"
                     ).fetchall()[0]
    assert got == (len(want), want["customer_id"].notna().sum(), want["page_url"].max())


def test_refuses_what_it_cannot_join_safely(tmp_path):
    a = _fastparquet_bytes(_events(100, 1), tmp_path, "a.parquet")
    other = _events(100, 2).append_column("extra", pa.array(range(100), pa.int64()))
    b = _fastparquet_bytes(conform(other), tmp_path, "b.parquet")
    assert concat_parquet([a, b]) is None  # schemas differ
    indexed = io.BytesIO()  # a page index holds absolute offsets we do not rewrite
    pq.write_table(_events(100, 3), indexed, write_page_index=True)
    assert concat_parquet([indexed.getvalue(), indexed.getvalue()]) is None
    assert concat_parquet([]) is None
    with pytest.raises(ValueError, match="not a parquet file"):
        footer(b"PAR1 but not parquet")


def test_merge_task_copies_large_parts_and_decodes_small_ones(tmp_path):
    """The planner's ``copy`` flag picks the path: row groups copied above the size, one row
    group below it; the rows are the same either way."""
    store = Store(str(tmp_path / "store"))
    day, tables = "2026-01-02", [_events(n, s) for s, n in enumerate((400, 300, 500))]
    ids = [f"{day}-hit_data-{i:04d}" for i in range(3)]
    for fid, table in zip(ids, tables, strict=True):
        store.write_parquet(to_pandas(table), "events", f"event_date={day}",
                            f"part-{fid}.parquet", stats=["hit_time_gmt"],
                            metadata=footer_metadata(table.schema))
    sizes = {fid: (tmp_path / "store" / "events" / f"event_date={day}" /
                   f"part-{fid}.parquet").stat().st_size for fid in ids}
    for copy_min, groups in ((min(sizes.values()), 3), (max(sizes.values()) + 1, 1)):
        (merge,) = plan_merges(day, sizes, set(ids), 2 ** 30, copy_min_bytes=copy_min)
        assert merge.copy == (groups == 3)
        assert _merge_task(store, [merge]) == [([t.num_rows for t in tables], groups == 3)]
        path = tmp_path / "store" / "events" / f"event_date={day}" / merge.output
        assert pq.ParquetFile(path).metadata.num_row_groups == groups
        assert pq.read_table(path).equals(pa.concat_tables(tables))


def test_dictionary_pages_of_another_writer_are_shifted_too():
    """pyarrow's files carry dictionary pages (their own offsets) and row group offsets:
    both move with the bytes."""
    tables = [_events(n, seed) for seed, n in enumerate((800, 1300))]
    parts = []
    for t in tables:
        sink = io.BytesIO()
        pq.write_table(t, sink, use_dictionary=True, write_page_index=False, row_group_size=500)
        parts.append(sink.getvalue())
    assert footer(parts[0]).row_groups[0].columns[1].meta_data.dictionary_page_offset is not None
    joined, counts = concat_parquet(parts)
    assert counts == [800, 1300]
    back = pq.read_table(pa.BufferReader(joined))
    assert back.equals(pa.concat_tables(tables))
    assert pq.ParquetFile(pa.BufferReader(joined)).metadata.num_row_groups == 2 + 3
