"""Store.write_arrow: dictionary-typed columns are written as they are, read back as strings."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from featurestore.features._io import arrow_table
from featurestore.storage import Store


def _tables() -> tuple[pa.Table, pa.Table]:
    """The same rows twice: ids as plain strings, and as codes into a dictionary that also
    holds an id no row uses (a snapshot's dictionary may)."""
    ids = pa.array(["c1", "c2", "c3", "unused"], pa.large_string())
    codes = pa.array([0, 0, 1, 2, 2, 2], pa.int32())
    counts = pd.Series([3, 1, 4, 1, 5, 9]).to_numpy()
    plain = arrow_table({"customer_id": ids.take(codes), "n": counts})
    coded = arrow_table({"customer_id": pa.DictionaryArray.from_arrays(codes, ids), "n": counts})
    return plain, coded


def test_dictionary_columns_read_back_like_plain_strings(tmp_path):
    store = Store(str(tmp_path))
    plain, coded = _tables()
    assert pa.types.is_dictionary(coded.schema.field("customer_id").type)
    store.write_arrow(plain, "plain", "part-0.parquet")
    store.write_arrow(coded, "coded", "part-0.parquet", dictionary=["n"])
    a, b = (pq.read_table(store.path(t, "part-0.parquet")) for t in ("plain", "coded"))
    assert b.schema.equals(a.schema, check_metadata=True)  # pandas metadata and types kept
    assert b.equals(a)
    pd.testing.assert_frame_equal(pd.read_parquet(store.path("coded")),
                                  pd.read_parquet(store.path("plain")))
    assert ds.dataset(store.path("coded")).schema.field("customer_id").type == pa.large_string()
    got = duckdb.sql(f"select customer_id, sum(n) from read_parquet('{store.path('coded')}/*') "
                     "group by 1 order by 1").fetchall()
    assert got == [("c1", 4), ("c2", 4), ("c3", 15)]
    meta = pq.ParquetFile(store.path("coded", "part-0.parquet")).metadata.row_group(0).column(0)
    assert meta.has_dictionary_page
